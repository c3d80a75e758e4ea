/**
 * HTTP/1 strictness that Node's parser leaves to us (RFC 9112): one Host header (two are how a
 * request means one host to us and another to a proxy behind), a request line of exactly
 * `METHOD SP target SP HTTP/1.x` (llhttp reads `GET /` as HTTP/0.9 and accepts several
 * spaces), and our JSON error shape on every refusal, the parser's own included.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ErrorCode } from 'minigate-protocol';
import { AppError, errorBody } from '../core/errors.js';
import { requestId as newRequestId } from '../core/random.js';

const REQUEST_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^\s]+ HTTP\/1\.[01]$/;
/** Longer request lines are the parser's to refuse (431). */
const MAX_LINE_BYTES = 16 * 1024;

interface LineWatch {
  /** The next byte on the connection begins a request (the previous one is answered and read). */
  atStart: boolean;
  partial: string;
  bad: boolean;
  stop(): void;
}
const watches = new WeakMap<Duplex, LineWatch>();

/**
 * Reads the request line of each request that starts on an idle connection before the parser
 * does, and marks a malformed one; the request handler answers it (requestProblem). Requests
 * pipelined behind another are left to the parser alone (no browser or WeChat client sends them).
 */
export function watchRequestLines(socket: Socket): void {
  const onData = (chunk: Buffer) => {
    if (!watch.atStart) return;
    // An empty line before a request may be skipped (RFC 9112 §2.2; old clients send one after a
    // body). Dropped as it comes, so a stream of them holds no memory.
    const text = (watch.partial + chunk.toString('latin1', 0, Math.min(chunk.length, MAX_LINE_BYTES))).replace(/^[\r\n]+/, '');
    const end = text.indexOf('\n');
    watch.partial = text;
    if (end === -1 && text.length < MAX_LINE_BYTES) return;
    watch.atStart = false;
    watch.partial = '';
    if (end !== -1 && !REQUEST_LINE.test(text.slice(0, end).replace(/\r$/, ''))) watch.bad = true;
  };
  const watch: LineWatch = {
    atStart: true,
    partial: '',
    bad: false,
    stop: () => {
      watch.atStart = false;
      socket.off('data', onData);
    },
  };
  watches.set(socket, watch);
  // Before the parser's own listener, so the flag is set when the request is emitted.
  socket.prependListener('data', onData);
}

/** After an upgrade the connection carries another protocol. */
export function stopWatching(socket: Duplex): void {
  watches.get(socket)?.stop();
}

/** Once the request is answered and its body read, the next byte begins the next request. */
export function watchNextRequest(req: IncomingMessage, res: ServerResponse): void {
  const watch = watches.get(req.socket);
  if (!watch) return;
  res.once('finish', () => {
    if (req.complete) watch.atStart = true;
    else req.once('end', () => (watch.atStart = true));
  });
}

/** What is wrong with an HTTP/1 request the parser let through, or null (HTTP/2 has its own rules). */
export function requestProblem(req: IncomingMessage): string | null {
  if (req.httpVersionMajor === 2 && 'stream' in req) return null;
  if (watches.get(req.socket)?.bad || (req.httpVersion !== '1.1' && req.httpVersion !== '1.0')) {
    return 'The request line must be "METHOD /path HTTP/1.1", with single spaces.';
  }
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') hosts++;
  if (hosts > 1) return 'The request has more than one Host header.';
  if (hosts === 0 && req.httpVersion === '1.1') return 'An HTTP/1.1 request needs a Host header.';
  return null;
}

function errorJson(code: ErrorCode, message?: string): { status: number; text: string; requestId: string } {
  const requestId = newRequestId();
  const { status, body } = errorBody(new AppError(code, message ? { message } : {}), requestId);
  return { status, text: JSON.stringify(body), requestId };
}

/** Answers a refused request in our shape and closes the connection after. */
export function refuseRequest(res: ServerResponse, code: ErrorCode, message?: string): string {
  const { status, text, requestId } = errorJson(code, message);
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
export function refusalBytes(code: ErrorCode, message?: string): { bytes: string; requestId: string } {
  const { status, text, requestId } = errorJson(code, message);
  return {
    requestId,
    bytes:
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(text)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${text}`,
  };
}
