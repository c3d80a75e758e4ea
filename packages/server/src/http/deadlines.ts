/**
 * The deadline for a request's body: armed by the listener, longer for a route that takes uploads.
 */
import type { IncomingMessage } from 'node:http';

const deadlines = new WeakMap<IncomingMessage, NodeJS.Timeout>();

/** Cuts the request if its body has not all arrived within `ms` (the headers have their own deadline). */
export function armDeadline(req: IncomingMessage, ms: number): void {
  clearTimeout(deadlines.get(req));
  if (req.complete) return;
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
 * Gives this request's body `ms` from now instead of REQUEST_TIMEOUT_MS: for uploads, which may
 * be slow on a phone's network. The idle timeout still cuts a body that stalls.
 */
export function extendRequestDeadline(req: IncomingMessage, ms: number): void {
  if (deadlines.has(req)) armDeadline(req, ms);
}
