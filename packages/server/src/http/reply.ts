/**
 * Answers in our shapes: a JSON body, and an error on a WebSocket upgrade that never became one.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppError, errorBody, errorHeaders } from '../core/index.js';

/** Sends a JSON body with its length; never cached (answers are per user). */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/**
 * An error answer as raw HTTP/1.1 bytes, for a socket no ServerResponse owns (an upgrade that
 * never became one, a request the parser refused); it closes the connection. With a request id,
 * the body and an `x-request-id` header carry it.
 */
export function errorResponseBytes(error: unknown, options: { requestId?: string; headers?: Record<string, string> } = {}): string {
  const appError = error instanceof AppError ? error : new AppError('INTERNAL');
  const { requestId } = options;
  const body = JSON.stringify(
    requestId === undefined ? { error: { code: appError.code, message: appError.message } } : errorBody(appError, requestId).body,
  );
  const headers = { ...(requestId === undefined ? {} : { 'x-request-id': requestId }), ...errorHeaders(appError), ...options.headers };
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return (
    `HTTP/1.1 ${appError.status} ${STATUS_CODES[appError.status] ?? 'Error'}\r\n` +
    `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`
  );
}

/** Answers a WebSocket upgrade with an error (the socket is still raw HTTP) and ends it. */
export function rejectUpgrade(socket: Duplex, error: unknown, headers: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(errorResponseBytes(error, { headers }));
}
