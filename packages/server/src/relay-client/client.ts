/**
 * `minigate tunnel`: the relay client. It dials minigate's HTTPS port (one TLS connection, ALPN
 * minigate-relay, the server's certificate verified), says hello with its name and token, and
 * once welcomed serves HTTP/2 over that connection: every stream minigate opens is a phone's
 * request for the local service. It pings the link, and after any drop reconnects with jittered
 * exponential back-off. Imports only Node and minigate-protocol (it shares nothing else with the
 * server).
 */
import { createServer as createH2Server, type Http2Session } from 'node:http2';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import { decodeRelayFrame, encodeRelayFrame, RELAY_ALPN, RELAY_VERSION, type RelayControlFrame } from 'minigate-protocol';
import { serveStream, type Served } from './local.js';

/** First wait after a drop; doubled per failed attempt up to BACKOFF_MAX_MS, then jittered (50–100 %). */
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 30_000;
/** How often the client pings minigate; a ping unanswered by the next means the link is dead. */
export const CLIENT_PING_MS = 15_000;
/** Time for the TLS handshake and the welcome. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Flow-control windows the client offers minigate (uploads): per stream and per link. */
const STREAM_WINDOW_BYTES = 1024 * 1024;
const LINK_WINDOW_BYTES = 16 * 1024 * 1024;
/** The largest DATA frame the client accepts (uploads): 1 MiB, not HTTP/2's 16 KiB, as on the server side. */
const MAX_FRAME_BYTES = 1024 * 1024;

export interface TunnelOptions {
  /** https://host[:port] of minigate. */
  server: URL;
  name: string;
  token: string;
  /** The local service: http(s)://host:port. */
  to: URL;
  /** Extra CA certificates (PEM) to trust for the server's certificate. */
  ca?: string | Buffer | undefined;
  replace: boolean;
  /** One line per request and per change of the link's state. */
  print: (line: string) => void;
  /** Tests shorten these. */
  backoffBaseMs?: number;
  pingMs?: number;
}

export interface Tunnel {
  /** Ends the link and stops reconnecting; resolves when closed. */
  close(): Promise<void>;
  /** Resolves with an error message when the server refused for good (bad token), never otherwise. */
  fatal: Promise<string>;
}

/** Waits before attempt n (0-based) after a drop: 2^n × base, capped, times a random 0.5–1. */
export function backoffMs(attempt: number, base = BACKOFF_BASE_MS, random = Math.random): number {
  return Math.round(Math.min(BACKOFF_MAX_MS, base * 2 ** attempt) * (0.5 + random() / 2));
}

export function startTunnel(options: TunnelOptions): Tunnel {
  const { print } = options;
  let stopped = false;
  let attempt = 0;
  let current: { socket: TLSSocket } | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let onFatal: (message: string) => void = () => undefined;
  const fatal = new Promise<string>((resolve) => (onFatal = resolve));
  const h2 = createH2Server({
    settings: { enableConnectProtocol: true, initialWindowSize: STREAM_WINDOW_BYTES, maxFrameSize: MAX_FRAME_BYTES },
  });
  h2.on('stream', (stream, headers) => {
    serveStream(stream, headers, options.to, (s: Served) => print(`${s.method} ${s.path} ${s.status} ${s.ms}ms`));
  });
  h2.on('session', (session: Http2Session) => {
    session.once('connect', () => session.setLocalWindowSize(LINK_WINDOW_BYTES));
    session.on('error', () => undefined);
  });

  function retry(reason: string): void {
    current = undefined;
    if (stopped) return;
    const wait = backoffMs(attempt++, options.backoffBaseMs);
    print(`link down: ${reason}; retrying in ${(wait / 1000).toFixed(1)}s`);
    retryTimer = setTimeout(connect, wait);
  }

  function connect(): void {
    const { hostname, port } = options.server;
    const host = hostname.replace(/^\[(.*)\]$/, '$1');
    let settled = false;
    let reason = 'connection closed';
    const socket = tlsConnect({
      host,
      port: Number(port || 443),
      ...(isIP(host) ? {} : { servername: host }),
      ALPNProtocols: [RELAY_ALPN],
      ...(options.ca ? { ca: options.ca } : {}),
      // The server's certificate is checked (chain and name); there is no switch to turn that off.
      rejectUnauthorized: true,
    });
    current = { socket };
    const timer = setTimeout(() => {
      reason = 'no welcome in time';
      socket.destroy();
    }, CONNECT_TIMEOUT_MS);
    socket.on('error', (error: NodeJS.ErrnoException) => {
      reason = error.code === 'ECONNREFUSED' ? `${options.server.host} refused the connection` : `${error.code ?? 'error'}: ${error.message}`;
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (!settled) retry(reason);
    });
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== RELAY_ALPN) {
        reason = `${options.server.host} does not speak the relay (is \`relay: {}\` in its config?)`;
        return socket.destroy();
      }
      socket.write(encodeRelayFrame({ type: 'hello', version: RELAY_VERSION, name: options.name, token: options.token, replace: options.replace }));
    });
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      let decoded: { frame: RelayControlFrame; rest: Uint8Array } | null;
      try {
        decoded = decodeRelayFrame(buffered);
      } catch {
        reason = 'the server sent something that is not a relay frame';
        return socket.destroy();
      }
      if (!decoded) return;
      socket.off('data', onData);
      socket.pause();
      const { frame, rest } = decoded;
      if (frame.type === 'refused') {
        reason = `refused: ${frame.code}: ${frame.message}`;
        if (frame.code !== 'RELAY_NAME_TAKEN') {
          // A wrong token or an old client stays wrong: retrying would only knock on the door.
          settled = true;
          stopped = true;
          print(`link refused: ${frame.code}: ${frame.message}`);
          onFatal(`${frame.code}: ${frame.message}`);
        }
        return socket.destroy();
      }
      if (frame.type !== 'welcome') return socket.destroy();
      clearTimeout(timer);
      if (rest.length) socket.unshift(Buffer.from(rest));
      attempt = 0;
      print(`link up: ${options.name} via ${options.server.origin} → ${options.to.origin}`);
      // The HTTP/2 server takes the socket over; 'session' is emitted while it does.
      let session: Http2Session | undefined;
      const take = (made: Http2Session) => (session = made);
      h2.once('session', take);
      h2.emit('connection', socket);
      h2.off('session', take);
      if (session) watch(socket, session);
    };
    socket.on('data', onData);
  }

  /** Pings minigate; a ping not answered by the next one ends the link (and a reconnect follows). */
  function watch(socket: TLSSocket, session: Http2Session): void {
    let waiting = false;
    const pinger = setInterval(() => {
      if (waiting) {
        print('link: no answer to ping');
        socket.destroy();
        return;
      }
      waiting = true;
      session.ping((error) => {
        if (!error) waiting = false;
      });
    }, options.pingMs ?? CLIENT_PING_MS);
    socket.once('close', () => clearInterval(pinger));
    session.once('close', () => socket.destroy());
  }

  connect();
  return {
    fatal,
    async close() {
      stopped = true;
      clearTimeout(retryTimer);
      const socket = current?.socket;
      if (socket && !socket.destroyed) {
        await new Promise<void>((resolve) => {
          socket.once('close', () => resolve());
          socket.destroy();
        });
      }
    },
  };
}
