/**
 * Listeners with the limits a server facing the internet needs: header and request deadlines
 * (slowloris), an idle-socket timeout, a header size cap, Node's strict HTTP
 * parser (never the lenient one: smuggling), keep-alive, and a close that drains.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createSecureServer as createHttp2Server } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket, TlsOptions } from 'node:tls';
import type { ListenAddress } from '../config/index.js';
import type { Logger } from '../core/index.js';
import { armDeadline } from '../http/index.js';
import { refusalBytes, refuseRequest, requestProblem } from './strict-http.js';

/** Headers must arrive within this (nginx's client_header_timeout is 60 s; slowloris wants less). */
export const HEADERS_TIMEOUT_MS = 15_000;
/** A whole request (headers and body) must arrive within this. */
export const REQUEST_TIMEOUT_MS = 300_000;
/** A connection with no traffic in either direction for this long is closed (a stalled body, a client that stopped reading). */
export const SOCKET_IDLE_TIMEOUT_MS = 60_000;
/** An idle keep-alive connection is closed after this. */
export const KEEP_ALIVE_TIMEOUT_MS = 30_000;
/** Total header bytes accepted (Node's default). */
export const MAX_HEADER_BYTES = 16 * 1024;
/**
 * A TLS handshake must finish within this (Node's default is 120 s): a connection that never
 * starts or never finishes its handshake is not yet an HTTP request, so the header deadline
 * does not cover it.
 */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** How long close() waits for in-flight requests before cutting connections. */
export const DRAIN_GRACE_MS = 10_000;
/**
 * While draining, an HTTP/1 connection with no request in progress is closed only once it has
 * been quiet this long (no request started or answered, or accepted this long ago). Closing an
 * idle keep-alive connection at once races a client that is writing its next request on it (the
 * client sees a reset); a busy client sends that request within milliseconds and gets its answer
 * with `connection: close` instead. It also covers a connection the cluster primary handed this
 * worker just before the drain, whose request is still on its way.
 */
export const DRAIN_QUIET_MS = 500;

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface Listener {
  readonly name: string;
  /** The bound address (port filled in when 0 was asked). */
  readonly address: AddressInfo | null;
  readonly server: HttpServer;
  start(): Promise<AddressInfo>;
  /** Stops accepting, lets in-flight requests finish (up to the grace), then closes. */
  close(graceMs?: number): Promise<void>;
}

const httpOptions = {
  headersTimeout: HEADERS_TIMEOUT_MS,
  // How often the deadlines above are enforced (Node's default, 30 s, lets a slow client linger).
  connectionsCheckingInterval: 1_000,
  // The body's deadline is ours (armDeadline, in http/deadlines.ts), so that an upload route can have a longer one.
  requestTimeout: 0,
  keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
  maxHeaderSize: MAX_HEADER_BYTES,
  insecureHTTPParser: false,
  // A missing Host is answered by the handler, in our error shape (Node's 400 has no body).
  requireHostHeader: false,
};

export interface ListenerOptions {
  name: string;
  address: ListenAddress;
  handler: RequestHandler;
  upgrade?: UpgradeListener;
  logger: Logger;
  /** TLS options for an HTTPS listener; plain HTTP without. */
  tls?: TlsOptions;
  /** Offer HTTP/2 by ALPN (with HTTP/1.1 still allowed). */
  http2?: boolean;
  /** The body deadline (tests shorten it). */
  requestTimeoutMs?: number;
  /** One more ALPN protocol on an HTTPS listener: its connections go to `accept`, never to HTTP. */
  alpn?: { protocol: string; accept: (socket: TLSSocket) => void };
}

/** ALPN's wire list (each name preceded by its length), as tls.Server keeps it. */
function alpnWire(protocols: readonly string[]): Buffer {
  return Buffer.concat(protocols.map((p) => Buffer.concat([Buffer.from([Buffer.byteLength(p)]), Buffer.from(p)])));
}

export function createListener(options: ListenerOptions): Listener {
  const { logger } = options;
  let draining = false;
  // While draining, answers tell HTTP/1.1 clients not to reuse the connection.
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const handler: RequestHandler = (req, res) => {
    const problem = requestProblem(req);
    if (problem) {
      const requestId = refuseRequest(res, 'BAD_REQUEST', problem);
      logger.debug({ listener: options.name, requestId, reason: problem }, 'http: bad request from client');
      return;
    }
    if (draining && req.httpVersionMajor === 1) res.setHeader('connection', 'close');
    armDeadline(req, requestTimeoutMs);
    options.handler(req, res);
  };
  let server: HttpServer;
  if (!options.tls) server = createHttpServer(httpOptions, handler);
  else if (!options.http2) {
    const alpn = options.alpn ? { ALPNProtocols: ['http/1.1', options.alpn.protocol] } : {};
    server = createHttpsServer({ ...httpOptions, ...options.tls, ...alpn, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS }, handler) as unknown as HttpServer;
  } else {
    server = createHttp2Server({ ...options.tls, allowHTTP1: true, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS }, handler as never) as unknown as HttpServer;
    Object.assign(server, { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: 0, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS, requireHostHeader: false });
    // http2 sets its own list (h2, http/1.1) over any given; tls.Server reads this field per connection.
    if (options.alpn) Object.assign(server, { ALPNProtocols: alpnWire(['h2', 'http/1.1', options.alpn.protocol]) });
  }
  server.timeout = SOCKET_IDLE_TIMEOUT_MS;
  // HTTP/2 sessions are told to go away (GOAWAY) on close, so they drain like HTTP/1.1 keep-alive.
  const sessions = new Set<{ close(): void }>();
  server.on('session', (session: { close(): void; once(event: 'close', fn: () => void): void }) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  const upgrade = options.upgrade;
  if (upgrade) {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const problem = requestProblem(req);
      if (!problem) return upgrade(req, socket, head);
      socket.on('error', () => socket.destroy());
      socket.end(refusalBytes('BAD_REQUEST', problem));
    });
  }

  // HTTP/1 connections and the last request each carried, for the drain to close each one only
  // once it is truly idle. Per request this is one Map lookup and one assignment (no listener, no
  // closure: this runs on every request). HTTP/2 sessions are told to go away instead.
  interface Connection {
    /** The last request's answer on this connection (undefined before the first request). */
    res: ServerResponse | undefined;
    /** Accepted at; then, while draining, when the drain first saw it idle with `idleRes`. */
    quietSince: number;
    idleRes: ServerResponse | undefined | null;
  }
  const connections = new Map<Socket, Connection>();
  if (!options.http2) {
    server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
      connections.set(socket, { res: undefined, quietSince: Date.now(), idleRes: null });
      socket.once('close', () => connections.delete(socket));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const state = connections.get(req.socket as Socket);
      if (state) state.res = res;
    });
    // An upgraded socket (WebSocket) is no longer the listener's to close.
    server.on('upgrade', (req: IncomingMessage) => connections.delete(req.socket as Socket));
  }
  const closeQuiet = () => {
    const now = Date.now();
    for (const [socket, state] of connections) {
      if (state.res && !state.res.writableFinished) {
        state.idleRes = null; // answering
        continue;
      }
      if (state.res === undefined) {
        // Never sent a request: quiet since it was accepted.
        if (now - state.quietSince >= DRAIN_QUIET_MS) socket.destroy();
        continue;
      }
      // Idle after an answer: quiet once the drain has seen it idle, with the same last answer,
      // for DRAIN_QUIET_MS (a request written meanwhile is answered with `connection: close`).
      if (state.idleRes !== state.res) {
        state.idleRes = state.res;
        state.quietSince = now;
      } else if (now - state.quietSince >= DRAIN_QUIET_MS) socket.destroy();
    }
  };

  if (options.alpn) handOverAlpn(server, options.alpn);

  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    logger.debug({ listener: options.name, code: error.code }, 'http: bad request from client');
    if (!socket.writable || socket.destroyed) {
      socket.destroy();
      return;
    }
    const code = error.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST';
    // end() sends the answer and then closes; a client that never reads is cut after a second.
    socket.end(refusalBytes(code, code === 'BAD_REQUEST' ? 'The request is not valid HTTP/1.1.' : undefined));
    setTimeout(() => socket.destroy(), 1000).unref();
  });
  // A TLS handshake that fails (old protocol, no shared cipher, a scanner) is the client's problem.
  server.on('tlsClientError', (error: NodeJS.ErrnoException) => {
    logger.debug({ listener: options.name, code: error.code, reason: error.message }, 'tls: handshake failed');
  });
  let bound: AddressInfo | null = null;

  return {
    name: options.name,
    server,
    get address() {
      return bound;
    },
    start: () =>
      new Promise((resolve, reject) => {
        const onError = (error: NodeJS.ErrnoException) => reject(error);
        server.once('error', onError);
        server.listen(options.address.port, options.address.host, () => {
          server.off('error', onError);
          server.on('error', (error) => logger.error({ listener: options.name, err: error }, 'http: listener error'));
          bound = server.address() as AddressInfo;
          resolve(bound);
        });
      }),
    close: (graceMs = DRAIN_GRACE_MS) =>
      new Promise((resolve) => {
        if (!server.listening) return resolve();
        draining = true;
        const timer = setTimeout(() => server.closeAllConnections?.(), graceMs);
        timer.unref();
        // Connections that finish their request while draining close themselves (`connection:
        // close`); the quiet ones are closed here.
        const sweep = setInterval(options.http2 ? () => server.closeIdleConnections?.() : closeQuiet, 100);
        const done = () => {
          clearTimeout(timer);
          clearInterval(sweep);
          resolve();
        };
        if (options.http2) {
          server.close(done);
          server.closeIdleConnections?.();
        } else {
          // Node's close() (>= 19) also closes every idle keep-alive connection at once: the race
          // DRAIN_QUIET_MS is there to avoid. Everything else it does (stop accepting, which in a
          // cluster worker tells the primary to route elsewhere; stop the deadline checks) is kept.
          server.closeIdleConnections = () => undefined;
          try {
            server.close(done);
          } finally {
            delete (server as Partial<HttpServer>).closeIdleConnections;
          }
          // Requests already in progress: their answers, not yet sent, end the connection too.
          for (const { res } of connections.values()) if (res && !res.headersSent && res.req.httpVersionMajor === 1) res.setHeader('connection', 'close');
          closeQuiet();
        }
        for (const session of sessions) session.close();
      }),
  };
}

/**
 * Puts a listener in front of the server's own 'secureConnection' listeners (HTTP/1's parser or
 * HTTP/2's session), so that a connection that chose `alpn.protocol` never reaches them.
 */
function handOverAlpn(server: HttpServer, alpn: NonNullable<ListenerOptions['alpn']>): void {
  const own = server.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
  server.removeAllListeners('secureConnection');
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol === alpn.protocol) return alpn.accept(socket);
    for (const listener of own) listener.call(server, socket);
  });
}

/**
 * `http://host:port` of a bound address as it is, for people to read: `0.0.0.0` and `::` stay,
 * with a note that every interface is meant.
 */
export function boundUrl(address: AddressInfo, scheme = 'http'): string {
  const host = address.address;
  const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  return host === '0.0.0.0' || host === '::' ? `${url} (every interface)` : url;
}

/** `http://host:port` for a bound address; wildcard hosts become 127.0.0.1 for local use. */
export function localUrl(address: AddressInfo, scheme = 'http'): string {
  let host = address.address;
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
}
