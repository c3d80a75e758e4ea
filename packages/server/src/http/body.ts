/**
 * Request bodies with limits: the whole body, or a JSON object (or urlencoded form) from it.
 */
import type { IncomingMessage } from 'node:http';
import { AppError } from '../core/index.js';

/** JSON bodies larger than this are refused (413) unless a route sets its own limit. */
export const JSON_BODY_LIMIT_BYTES = 64 * 1024;

/**
 * Reads a JSON object body (or an urlencoded form, as `wx.request` sends with that header).
 * Over the limit → BODY_TOO_LARGE before reading when Content-Length says so; bad JSON or a
 * non-object → BAD_REQUEST; another content type → UNSUPPORTED_MEDIA_TYPE. An empty body is {}.
 */
export async function readJsonBody(req: IncomingMessage, limit = JSON_BODY_LIMIT_BYTES): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const raw = await readBody(req, limit);
  if (raw.length === 0) return {};
  // `curl -d '{…}'` labels JSON as a form; a form never starts with "{".
  if (type === 'application/x-www-form-urlencoded' && raw[0] !== 0x7b) {
    return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  }
  if (type !== '' && type !== 'application/json' && !type.endsWith('+json') && type !== 'text/plain' && type !== 'application/x-www-form-urlencoded') {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8').replace(/^\uFEFF/, ''));
  } catch {
    throw new AppError('BAD_REQUEST', { message: 'The body is not valid JSON.' });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new AppError('BAD_REQUEST', { message: 'The body must be a JSON object.' });
  }
  return parsed as Record<string, unknown>;
}

/** The whole body, or BODY_TOO_LARGE as soon as it (or its Content-Length) passes `limit`. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  if (Number(req.headers['content-length'] ?? NaN) > limit) {
    req.resume();
    return Promise.reject(new AppError('BODY_TOO_LARGE', { message: `The body is over ${limit} bytes.` }));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.resume();
        reject(new AppError('BODY_TOO_LARGE', { message: `The body is over ${limit} bytes.` }));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
    req.once('aborted', () => reject(new AppError('BAD_REQUEST', { message: 'The client aborted the body.' })));
  });
}
