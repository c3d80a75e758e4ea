/**
 * The deadline for a request's body: armed by the listener, longer for a route that takes uploads.
 */
import type { IncomingMessage } from 'node:http';

const deadlines = new WeakMap<IncomingMessage, NodeJS.Timeout>();

/** Cuts the request if its body has not all arrived within `ms` (the headers have their own deadline). */
export function armDeadline(req: IncomingMessage, ms: number): void {
  clearTimeout(deadlines.get(req));
  if (req.complete || hasNoBody(req)) return;
  const timer = setTimeout(() => {
    if (req.complete) return;
    // HTTP/2: this stream only; HTTP/1.1: the connection, the only way to stop a body.
    const stream = (req as unknown as { stream?: { close(code?: number): void } }).stream;
    if (req.httpVersionMajor === 2 && stream) stream.close(8 /* NGHTTP2_CANCEL */);
    else req.socket.destroy();
  }, ms);
  timer.unref();
  deadlines.set(req, timer);
  const clear = () => clearTimeout(timer);
  req.once('end', clear);
  req.once('close', clear);
}

/**
 * HTTP/1.x without Content-Length or Transfer-Encoding: no body (RFC 9112 6.3), so nothing for a
 * deadline to wait for. Most requests are such GETs; `complete` only turns true just after the
 * listener runs, and a timer with two listeners per request is a measurable share of a session
 * check. HTTP/2 streams may carry a body without either header.
 */
function hasNoBody(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 1 && req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
}

/**
 * Gives this request's body `ms` from now instead of REQUEST_TIMEOUT_MS: for uploads, which may
 * be slow on a phone's network. The idle timeout still cuts a body that stalls.
 */
export function extendRequestDeadline(req: IncomingMessage, ms: number): void {
  if (deadlines.has(req)) armDeadline(req, ms);
}
