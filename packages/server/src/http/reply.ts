/**
 * Answers in our shapes: a JSON body, and an error on a WebSocket upgrade that never became one.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppError, errorHeaders } from '../core/index.js';

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

/** Answers a WebSocket upgrade with an error (the socket is still raw HTTP) and ends it. */
export function rejectUpgrade(socket: Duplex, error: unknown, headers: Record<string, string> = {}): void {
  const appError = error instanceof AppError ? error : new AppError('INTERNAL');
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code: appError.code, message: appError.message } });
  const extra = Object.entries({ ...errorHeaders(error), ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${appError.status} ${STATUS_CODES[appError.status] ?? 'Error'}\r\n` +
      `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`,
  );
}
