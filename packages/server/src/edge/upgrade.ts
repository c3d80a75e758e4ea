/**
 * Which protocol switches the edge accepts. Node hands every request that
 * carries `Connection: upgrade` + `Upgrade: …` to the upgrade listener; if minigate proxied any
 * of them and the upstream answered 101 (h2c, a custom protocol), the bytes that follow would
 * bypass routing, the session check and header hygiene. So only a well-formed WebSocket handshake
 * is let through; an upgrade to anything else is answered as the ordinary request it also is
 * (what a server that does not speak h2c does, so `curl --http2 http://…` still works), and a
 * broken WebSocket handshake is refused.
 */
import { createHash } from 'node:crypto';
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { AppError } from '../core/index.js';

const WEBSOCKET_KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Whether the request asks for WebSocket at all (then it must be a valid handshake). */
export function wantsWebSocket(req: IncomingMessage): boolean {
  return String(req.headers.upgrade ?? '')
    .split(',')
    .some((token) => token.trim().toLowerCase() === 'websocket');
}

/** Refuses a WebSocket handshake that is not one (RFC 6455 §4.2.1), naming what is wrong. */
export function checkWebSocketHandshake(req: IncomingMessage): void {
  const refuse = (why: string) => {
    throw new AppError('UPGRADE_REFUSED', { message: `Not a valid WebSocket handshake: ${why}.` });
  };
  if (req.method !== 'GET') refuse('the method must be GET');
  if (req.httpVersion !== '1.1') refuse('HTTP/1.1 is required');
  const upgrades = req.rawHeaders.filter((_, i) => i % 2 === 0 && req.rawHeaders[i]!.toLowerCase() === 'upgrade');
  if (upgrades.length !== 1 || String(req.headers.upgrade).trim().toLowerCase() !== 'websocket') refuse('Upgrade must be websocket alone');
  if (req.headers['sec-websocket-version'] !== '13') refuse('Sec-WebSocket-Version must be 13');
  if (!WEBSOCKET_KEY.test(String(req.headers['sec-websocket-key'] ?? ''))) refuse('Sec-WebSocket-Key must be 16 bytes in base64');
}

/** The Sec-WebSocket-Accept a server must answer for a key. */
export function websocketAccept(key: string): string {
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
}

/**
 * Answers a request that asked for another protocol as a plain HTTP/1.1 request: the Upgrade is
 * dropped and the server's request listeners run on a response bound to the socket, which is
 * closed after the answer (the parser has let go of it). A body cannot follow such a request.
 */
export function serveWithoutUpgrade(req: IncomingMessage, socket: Duplex, emitRequest: (req: IncomingMessage, res: ServerResponse) => void): void {
  if (Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined) {
    throw new AppError('UPGRADE_REFUSED', { message: 'A request with a body cannot ask for a protocol upgrade; send it without Upgrade.' });
  }
  delete req.headers.upgrade;
  delete req.headers['http2-settings'];
  req.headers.connection = 'close';
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  res.once('finish', () => {
    res.detachSocket(socket as Socket);
    socket.end();
  });
  emitRequest(req, res);
}
