/**
 * A plain HTTP listener with the limits a server facing the internet needs: header and request
 * deadlines (slowloris), a header size cap, keep-alive, and a close that drains.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ListenAddress } from '../config/index.js';
import type { Logger } from '../core/logger.js';

/** Headers must arrive within this (nginx's client_header_timeout is 60 s; slowloris wants less). */
export const HEADERS_TIMEOUT_MS = 15_000;
/** A whole request (headers and body) must arrive within this. */
export const REQUEST_TIMEOUT_MS = 60_000;
/** An idle keep-alive connection is closed after this. */
export const KEEP_ALIVE_TIMEOUT_MS = 30_000;
/** Total header bytes accepted (Node's default). */
export const MAX_HEADER_BYTES = 16 * 1024;
/** How long close() waits for in-flight requests before cutting connections. */
export const DRAIN_GRACE_MS = 10_000;

export interface HttpListener {
  /** The bound address (port filled in when 0 was asked). */
  readonly address: AddressInfo | null;
  start(): Promise<AddressInfo>;
  /** Stops accepting, lets in-flight requests finish (up to the grace), then closes. */
  close(graceMs?: number): Promise<void>;
}

export function createHttpListener(
  address: ListenAddress,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  logger: Logger,
): HttpListener {
  const server: Server = createServer(
    {
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      maxHeaderSize: MAX_HEADER_BYTES,
      // Never the lenient parser: it is what request smuggling needs.
      insecureHTTPParser: false,
    },
    handler,
  );
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    logger.debug({ code: error.code }, 'http: bad request from client');
    if (!socket.writable || socket.destroyed) {
      socket.destroy();
      return;
    }
    const status =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : '400 Bad Request';
    // end() sends the answer and then closes; a client that never reads is cut after a second.
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    setTimeout(() => socket.destroy(), 1000).unref();
  });
  let bound: AddressInfo | null = null;

  return {
    get address() {
      return bound;
    },
    start: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(address.port, address.host, () => {
          server.off('error', reject);
          server.on('error', (error) => logger.error({ err: error }, 'http: listener error'));
          bound = server.address() as AddressInfo;
          resolve(bound);
        });
      }),
    close: (graceMs = DRAIN_GRACE_MS) =>
      new Promise((resolve) => {
        if (!server.listening) return resolve();
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

/** `http://host:port` for a bound address; wildcard hosts become 127.0.0.1 for local use. */
export function localUrl(address: AddressInfo, scheme = 'http'): string {
  let host = address.address;
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
}
