/**
 * HTTP/1 strictness that Node's parser leaves to us (RFC 9112): one Host header (two are how a
 * request means one host to us and another to a proxy behind), an HTTP/1.x version (llhttp reads
 * `GET /` as HTTP/0.9), and our JSON error shape on every refusal, the parser's own included.
 *
 * Several spaces between the parts of a request line are not refused: llhttp reads
 * `GET  / HTTP/1.1` as `GET / HTTP/1.1` and leaves no trace of it, so seeing it would mean reading
 * every connection's bytes in JavaScript before the parser (which takes the parser off its native
 * fast path: about 15 % fewer requests a second on a bare server, and twice the memory growth
 * under 1,000 aborted uploads). Nothing downstream can read such a line differently: upstreams get
 * a request line minigate writes itself.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorCode } from 'minigate-protocol';
import { AppError, errorBody, requestId as newRequestId } from '../core/index.js';
import { errorResponseBytes } from '../http/index.js';

/** What is wrong with an HTTP/1 request the parser let through, or null (HTTP/2 has its own rules). */
export function requestProblem(req: IncomingMessage): string | null {
  if (req.httpVersionMajor === 2 && 'stream' in req) return null;
  // `GET /` alone is HTTP/0.9 to llhttp; `HTTP/2.0` as text is no HTTP/1 request either.
  if (req.httpVersion !== '1.1' && req.httpVersion !== '1.0') return 'The request line must be "METHOD /path HTTP/1.1".';
  let hosts = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    // Length first: this runs for every request, and most names are not four letters long.
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') hosts++;
  }
  if (hosts > 1) return 'The request has more than one Host header.';
  if (hosts === 0 && req.httpVersion === '1.1') return 'An HTTP/1.1 request needs a Host header.';
  return null;
}

/** Answers a refused request in our shape and closes the connection after; returns its request id. */
export function refuseRequest(res: ServerResponse, code: ErrorCode, message?: string): string {
  const requestId = newRequestId();
  const { status, body } = errorBody(new AppError(code, message ? { message } : {}), requestId);
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'x-request-id': requestId,
    connection: 'close',
  });
  res.end(text);
  return requestId;
}

/** The same answer as bytes, for a socket the parser gave up on (or an upgrade). */
export function refusalBytes(code: ErrorCode, message?: string): string {
  return errorResponseBytes(new AppError(code, message ? { message } : {}), { requestId: newRequestId() });
}
