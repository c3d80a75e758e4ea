/**
 * One `multipart/form-data` upload, as wx.uploadFile and `curl -F` send it: one file part under
 * the configured field name and a few text fields (formData). Streamed through busboy with every
 * limit set (its defaults are unlimited), the file handed to `onFile` as it
 * arrives. Whatever goes wrong — a limit, a malformed body, a client that goes away, the
 * server shutting down (`signal`) — ends in one AppError, after `onFile`'s work has settled
 * (its writer aborted, or committed if the file part was complete: the caller removes it then).
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import busboy from 'busboy';
import { AppError } from '../core/index.js';
import { boundaryOf, partHeaderCounter } from './part-headers.js';

export interface MultipartLimits {
  field: string;
  maxFileSize: number;
  maxFields: number;
  maxFieldSize: number;
  maxParts: number;
  maxHeaderPairs: number;
}

export interface MultipartResult<T> {
  file: T;
  filename: string | undefined;
  fields: Record<string, string>;
}

/** Room for the boundaries, part headers and fields around the file, when judging Content-Length. */
const OVERHEAD_BYTES = 64 * 1024;

export function receiveMultipart<T>(
  req: IncomingMessage,
  limits: MultipartLimits,
  onFile: (stream: Readable, maxBytes: number) => Promise<T>,
  signal?: AbortSignal,
): Promise<MultipartResult<T>> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  const type = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data\s*;/i.test(type) || !/boundary=/i.test(type)) {
    return Promise.reject(new AppError('UPLOAD_MALFORMED', { message: 'Send multipart/form-data with a boundary (as wx.uploadFile and curl -F do).' }));
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limits.maxFileSize + limits.maxFields * limits.maxFieldSize + OVERHEAD_BYTES) {
    // Known from the headers: refused before a byte of the body is read.
    return Promise.reject(new AppError('FILE_TOO_LARGE', { message: `The upload is ${declared} bytes; files may be up to ${limits.maxFileSize}.` }));
  }

  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        defParamCharset: 'utf8',
        limits: {
          fieldNameSize: 100,
          fieldSize: limits.maxFieldSize,
          fields: limits.maxFields,
          // One byte over the limit is how busboy says "over"; the ingest counts exactly anyway.
          fileSize: limits.maxFileSize + 1,
          files: 1,
          parts: limits.maxParts,
          headerPairs: limits.maxHeaderPairs,
        },
      });
    } catch (error) {
      reject(new AppError('UPLOAD_MALFORMED', { message: (error as Error).message }));
      return;
    }
    const fields: Record<string, string> = {};
    let filename: string | undefined;
    let fileWork: Promise<T> | undefined;
    let failed: AppError | undefined;
    let parsed = false;

    const fail = (error: AppError) => {
      if (failed) return;
      failed = error;
      req.off('data', countHeaders);
      req.unpipe(parser);
      parser.removeAllListeners('file');
      parser.on('error', () => undefined);
      // The file stream ends here; its consumer sees the error and aborts its writer, or had
      // every byte already and commits: the caller removes that file when this rejects.
      currentFile?.destroy(error);
      settle();
    };
    let currentFile: Readable | undefined;

    const settle = () => {
      signal?.removeEventListener('abort', onAbort);
      if (failed) {
        if (fileWork) fileWork.then(() => reject(failed), () => reject(failed));
        else reject(failed);
        return;
      }
      if (!parsed) return;
      if (!fileWork) {
        reject(new AppError('UPLOAD_NO_FILE', { message: `No file in the field "${limits.field}" (wx.uploadFile's name).` }));
        return;
      }
      fileWork.then((file) => resolve({ file, filename, fields }), reject);
    };

    parser.on('file', (name, stream, info) => {
      if (!name) return fail(new AppError('UPLOAD_MALFORMED', { message: 'A part has an empty field name.' }));
      if (name !== limits.field) {
        stream.resume();
        return fail(new AppError('UPLOAD_NO_FILE', { message: `The file must be in the field "${limits.field}" (wx.uploadFile's name), not "${name}".` }));
      }
      currentFile = stream;
      filename = info.filename;
      stream.on('limit', () => fail(new AppError('FILE_TOO_LARGE', { message: `Files may be up to ${limits.maxFileSize} bytes.` })));
      fileWork = onFile(stream, limits.maxFileSize);
      fileWork.catch((error: unknown) => fail(error instanceof AppError ? error : new AppError('INTERNAL', { cause: error })));
    });
    parser.on('field', (name, value, info) => {
      if (!name) return fail(new AppError('UPLOAD_MALFORMED', { message: 'A part has an empty field name.' }));
      if (info.nameTruncated || info.valueTruncated) return fail(new AppError('UPLOAD_LIMIT', { message: `Field names are up to 100 bytes, values up to ${limits.maxFieldSize}.` }));
      if (name !== limits.field) fields[name] = value;
    });
    parser.on('partsLimit', () => fail(new AppError('UPLOAD_LIMIT', { message: `At most ${limits.maxParts} parts.` })));
    parser.on('filesLimit', () => fail(new AppError('UPLOAD_LIMIT', { message: 'One file per upload.' })));
    parser.on('fieldsLimit', () => fail(new AppError('UPLOAD_LIMIT', { message: `At most ${limits.maxFields} fields.` })));
    parser.on('error', (error: Error) => fail(new AppError('UPLOAD_MALFORMED', { message: `The multipart body does not parse: ${error.message}.` })));
    parser.on('close', () => {
      parsed = true;
      settle();
    });
    req.on('error', () => fail(new AppError('UPLOAD_ABORTED')));
    req.on('close', () => {
      if (!req.complete) fail(new AppError('UPLOAD_ABORTED'));
    });
    // busboy takes a headerPairs limit but does not apply it: the part headers are counted here.
    // (A boundary busboy reads but this does not is left uncounted rather than guessed.)
    const boundary = boundaryOf(type);
    const counter = boundary ? partHeaderCounter(boundary, limits.maxHeaderPairs) : () => false;
    const countHeaders = (chunk: Buffer) => {
      if (counter(chunk)) fail(new AppError('UPLOAD_LIMIT', { message: `A part has more than ${limits.maxHeaderPairs} header lines (files.maxHeaderPairs).` }));
    };
    // Shutting down: a body still arriving is refused (its bytes removed); one fully read finishes.
    const onAbort = () => {
      if (!req.complete) fail(signal!.reason instanceof AppError ? signal!.reason : new AppError('INTERNAL', { cause: signal!.reason }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('data', countHeaders);
    req.pipe(parser);
  });
}
