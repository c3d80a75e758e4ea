/**
 * What a `tunnel:` route does with a request: one HTTP/2 stream on the link of its relay name,
 * carrying the request as the edge cleaned it (identity headers included) and the answer back,
 * with back-pressure both ways (HTTP/2 flow control per stream). A WebSocket upgrade becomes an
 * extended CONNECT stream (RFC 8441) whose bytes are the WebSocket frames, untouched.
 *
 * With `workers`, the link may be held by another worker: the request is then handed to that
 * worker (handoff.ts), which sends it over its link the same way.
 */
import { constants as h2, type ClientHttp2Stream, type IncomingHttpHeaders as H2Headers, type OutgoingHttpHeaders } from 'node:http2';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';
import { AppError, type Logger } from '../core/index.js';
import { extendRequestDeadline, rejectUpgrade } from '../http/index.js';
import { createTunnel, upstreamRequestHeaders, upstreamResponseHeaders, websocketAccept, type Tunnel, type TunnelRoute, type TunnelTarget } from '../edge/index.js';
import { pipeCoalesced } from './coalesce.js';
import type { Link } from './link.js';
import type { RelayMeter } from './metrics.js';
import type { Bucket } from './throttle.js';

/** Hands a request or an upgrade to the worker or instance holding a name's link (with `workers`, or several instances on `redis`). */
export interface Handoff {
  /** The hand-off address of the other worker or instance holding the name, if one does. */
  locate(name: string): Promise<string | undefined>;
  request(address: string, name: string, headers: OutgoingHttpHeaders, req: IncomingMessage, res: ServerResponse, timeoutMs: number): Promise<void>;
  upgrade(address: string, name: string, headers: OutgoingHttpHeaders, socket: Duplex, head: Buffer): void;
}

export interface ForwardOptions {
  /** The link holding the name in this process, if any. */
  link: (name: string) => Link | undefined;
  /** Another worker's link, when this process has none. */
  handoff?: Handoff | undefined;
  maxStreams: number;
  idleMs: number;
  uploadMs: number;
  /** Cookies a laptop's answer may not set (the admin console's). */
  protectedCookies: readonly string[];
  /** The name's bandwidth bucket (relay.maxBytesPerSecond), if capped. */
  bucket?: ((name: string) => Bucket) | undefined;
  meter: RelayMeter;
  logger: Logger;
  /** Keeps an open WebSocket, so shutdown can end it with 1001 (it is dropped once closed). */
  track: (tunnel: Tunnel) => void;
}

/** Limits of one relayed request, and what to note of it for its access line. */
export interface SendOptions {
  maxBodyBytes: number;
  timeoutMs: number;
  observe?: { started(ms: number): void; bytes(n: number): void };
}

export const offline = (name: string) =>
  new AppError('TUNNEL_OFFLINE', {
    message: `No relay client is connected for "${name}"; run \`minigate tunnel --name ${name} …\` on the machine that serves it.`,
    public: true,
  });

/** The answer's headers as the phone may see them: no HTTP/2 pseudo-headers, no identity headers, no minigate cookies. */
function answerHeaders(headers: H2Headers, protectedCookies: readonly string[]): OutgoingHttpHeaders {
  const plain: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || name.startsWith('x-minigate-') || value === undefined) continue;
    (plain as Record<string, unknown>)[name] = value;
  }
  if (plain['set-cookie']) {
    const kept = plain['set-cookie'].filter((cookie) => !protectedCookies.includes(cookie.slice(0, cookie.indexOf('=')).trim()));
    if (kept.length) plain['set-cookie'] = kept;
    else delete plain['set-cookie'];
  }
  return upstreamResponseHeaders(plain);
}

export function createForwarder(options: ForwardOptions) {
  const { meter } = options;

  /** A stream on the name's link, counted against its cap; throws TUNNEL_OFFLINE / TUNNEL_BUSY. */
  function openStream(name: string, headers: OutgoingHttpHeaders, endStream: boolean): ClientHttp2Stream & { link: Link } {
    const link = options.link(name);
    if (!link || link.session.closed || link.session.destroyed) throw offline(name);
    if (link.streams >= options.maxStreams) throw new AppError('TUNNEL_BUSY');
    let stream: ClientHttp2Stream;
    try {
      stream = link.session.request(headers, { endStream });
    } catch (error) {
      // The session is going away (GOAWAY sent or received).
      throw new AppError('TUNNEL_OFFLINE', { message: offline(name).message, public: true, cause: error });
    }
    link.streams++;
    meter.streamOpened();
    stream.once('close', () => {
      link.streams--;
      meter.streamClosed();
    });
    stream.setTimeout(options.idleMs, () => stream.close(h2.NGHTTP2_CANCEL));
    return Object.assign(stream, { link });
  }

  /** Sends a request (headers already made, pseudo-headers included) over this process's link, and its answer back. */
  function send(name: string, headers: OutgoingHttpHeaders, req: IncomingMessage, res: ServerResponse, limits: SendOptions): Promise<void> {
    const declared = Number(req.headers['content-length'] ?? 0);
    const hasBody = declared > 0 || req.headers['transfer-encoding'] !== undefined;
    const stream = openStream(name, headers, !hasBody);
    if (hasBody) extendRequestDeadline(req, options.uploadMs);
    const sent = performance.now();
    return new Promise<void>((resolve, reject) => {
      let tooLarge = false;
      let answered = false;
      const timer = setTimeout(() => {
        stream.close(h2.NGHTTP2_CANCEL);
        reject(new AppError('UPSTREAM_TIMEOUT', { details: { tunnel: name } }));
      }, limits.timeoutMs);
      if (hasBody) {
        let size = 0;
        req.on('data', (chunk: Buffer) => {
          size += chunk.length;
          meter.bytesIn(chunk.length);
          if (size > limits.maxBodyBytes && !tooLarge) {
            tooLarge = true;
            req.unpipe();
            stream.close(h2.NGHTTP2_CANCEL);
          }
        });
        (options.bucket ? req.pipe(options.bucket(name).through()) : req).pipe(stream);
      }
      res.once('close', () => {
        if (!res.writableFinished) stream.close(h2.NGHTTP2_CANCEL);
      });
      stream.once('response', (answer) => {
        answered = true;
        clearTimeout(timer);
        limits.observe?.started(performance.now() - sent);
        res.writeHead(Number(answer[':status']), answerHeaders(answer, options.protectedCookies));
        stream.on('data', (chunk: Buffer) => {
          limits.observe?.bytes(chunk.length);
          meter.bytesOut(chunk.length);
        });
        pipeCoalesced(options.bucket ? stream.pipe(options.bucket(name).through()) : stream, res);
        stream.once('end', resolve);
      });
      stream.once('close', () => {
        clearTimeout(timer);
        if (tooLarge && !answered) return reject(new AppError('BODY_TOO_LARGE', { message: `The body is over ${limits.maxBodyBytes} bytes.` }));
        if (!answered) {
          // The link went down under the request (the laptop's client stopped or lost its network).
          if (stream.link.session.destroyed || stream.link.session.closed) return reject(offline(name));
          return reject(new AppError('UPSTREAM_UNAVAILABLE', { message: `The relay client for "${name}" dropped the request (its link closed).`, public: true, details: { tunnel: name } }));
        }
        // Cut mid-answer: the phone sees its connection closed (the status is out).
        if (!res.writableFinished && stream.rstCode !== h2.NGHTTP2_NO_ERROR) res.destroy();
        resolve();
      });
      stream.on('error', () => undefined);
    });
  }

  /** Carries a WebSocket upgrade over this process's link; `key` is the phone's Sec-WebSocket-Key. */
  function sendUpgrade(name: string, headers: OutgoingHttpHeaders, key: string, socket: Duplex, head: Buffer): void {
    const connect: OutgoingHttpHeaders = { ...headers, ':method': 'CONNECT', ':protocol': 'websocket' };
    // RFC 8441: no key and no accept on HTTP/2; minigate answers the phone's key itself.
    delete connect['sec-websocket-key'];
    let stream: ClientHttp2Stream;
    try {
      stream = openStream(name, connect, false);
    } catch (error) {
      return rejectUpgrade(socket, error);
    }
    socket.on('error', () => stream.close(h2.NGHTTP2_CANCEL));
    stream.on('error', () => socket.destroy());
    stream.once('response', (answer) => {
      const status = Number(answer[':status']);
      if (status !== 200) {
        // The laptop's service refused the upgrade: its answer goes to the phone, then close.
        const lines = [`HTTP/1.1 ${status} Refused`];
        for (const [k, v] of Object.entries(answerHeaders(answer, options.protectedCookies))) for (const one of [v].flat()) lines.push(`${k}: ${one}`);
        lines.push('connection: close');
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        stream.pipe(socket);
        return;
      }
      const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${websocketAccept(key)}`];
      for (const field of ['sec-websocket-protocol', 'sec-websocket-extensions']) if (answer[field]) lines.push(`${field}: ${String(answer[field])}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) stream.write(head);
      stream.on('data', (chunk: Buffer) => meter.bytesOut(chunk.length));
      socket.on('data', (chunk: Buffer) => meter.bytesIn(chunk.length));
      // Followed frame by frame (as proxied WebSockets are), so shutdown can put 1001 between frames.
      const upstream = options.bucket ? throttled(stream, options.bucket(name)) : stream;
      options.track(createTunnel(socket, upstream, { extensions: answer['sec-websocket-extensions'] !== undefined }));
    });
    stream.once('close', () => socket.destroy());
    socket.once('close', () => stream.close(h2.NGHTTP2_CANCEL));
  }

  function requestHeaders(req: IncomingMessage, route: TunnelRoute, path: string, extra: Record<string, string>, host: string): OutgoingHttpHeaders {
    return {
      ...upstreamRequestHeaders(req.headers, { dropBearer: route.dropBearer }),
      ...extra,
      ':path': path,
      ':authority': host,
      ':scheme': 'https',
    };
  }

  /** 'local', or the hand-off address of the worker or instance that holds the link, or 'offline'. */
  const localOrHandoff = async (name: string) => (options.link(name) ? 'local' : ((await options.handoff?.locate(name)) ?? 'offline'));

  function target(name: string, route: TunnelRoute): TunnelTarget {
    return {
      async handle(ctx, rest, extra) {
        const { req, res } = ctx;
        const declared = Number(req.headers['content-length'] ?? 0);
        if (declared > route.maxBodyBytes) {
          req.resume();
          throw new AppError('BODY_TOO_LARGE', { message: `The body is over ${route.maxBodyBytes} bytes.` });
        }
        const path = (route.prefix + rest || '/') + (ctx.query ? `?${ctx.query}` : '');
        const headers = { ...requestHeaders(req, route, path, extra, ctx.client.host), ':method': req.method ?? 'GET' };
        const where = await localOrHandoff(name);
        if (where === 'offline') throw offline(name);
        if (where !== 'local') {
          // The body limit is kept here (the other worker trusts what it is handed).
          meter.handoff();
          return options.handoff!.request(where, name, headers, limitedBody(req, route.maxBodyBytes), res, route.timeoutMs);
        }
        return send(name, headers, req, res, {
          maxBodyBytes: route.maxBodyBytes,
          timeoutMs: route.timeoutMs,
          observe: {
            started: (ms) => (ctx.upstreamMs = Math.round(ms * 10) / 10),
            bytes: (n) => (ctx.bytes = (ctx.bytes ?? 0) + n),
          },
        });
      },

      upgrade(req, socket, head, rest, extra) {
        const query = (req.url ?? '').includes('?') ? (req.url ?? '').slice((req.url ?? '').indexOf('?')) : '';
        const headers = requestHeaders(req, route, (route.prefix + rest || '/') + query, extra, String(req.headers.host ?? ''));
        const key = String(req.headers['sec-websocket-key']);
        // The owner may be asked of Redis (several instances): the phone's first bytes wait in `head` or the socket.
        localOrHandoff(name).then(
          (where) => {
            if (where === 'offline') return rejectUpgrade(socket, offline(name));
            if (where === 'local') return sendUpgrade(name, headers, key, socket, head);
            meter.handoff();
            return options.handoff!.upgrade(where, name, { ...headers, 'sec-websocket-key': key, 'sec-websocket-version': '13' }, socket, head);
          },
          (error: unknown) => rejectUpgrade(socket, error),
        );
      },
    };
  }

  return { target, send, sendUpgrade };
}

/** The stream with both directions through the name's bandwidth bucket. */
function throttled(stream: Duplex, bucket: Bucket): Duplex {
  const down = bucket.through();
  const up = bucket.through();
  stream.pipe(down);
  up.pipe(stream);
  const both = Duplex.from({ readable: down, writable: up });
  stream.once('close', () => both.destroy());
  both.once('close', () => stream.destroy());
  return both;
}

/** The request with its body cut (and the request destroyed) past `max` bytes: 413 stays the route's rule across a hand-off. */
function limitedBody(req: IncomingMessage, max: number): IncomingMessage {
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > max) req.destroy(new AppError('BODY_TOO_LARGE', { message: `The body is over ${max} bytes.` }));
  });
  return req;
}
