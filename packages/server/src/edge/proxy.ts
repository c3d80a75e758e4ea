/**
 * The reverse proxy: streams requests and answers both ways with back-pressure, over keep-alive
 * pools, to one upstream or several (round robin; an upstream that fails to connect is skipped
 * for UPSTREAM_DOWN_MS). Upstream trouble becomes 502/504 in our error shape, never a crash
 * (docs/reliability.md#proxy). Headers are cleaned as in headers.ts.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ClientRequest, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import { AppError, type Logger } from '../core/index.js';
import { upstreamRequestHeaders, upstreamResponseHeaders } from './headers.js';
import { rejectUpgrade, type HttpContext } from '../http/index.js';
import { websocketAccept } from './upgrade.js';
import { createTunnel, type Tunnel } from './ws-tunnel.js';
import { UpstreamPool, type Exchange, type UpstreamFailure } from './upstream-pool.js';

/** A failed upstream is skipped this long. */
export const UPSTREAM_DOWN_MS = 10_000;
/** Time to open a connection to an upstream. */
export const UPSTREAM_CONNECT_TIMEOUT_MS = 5_000;
/** Idle keep-alive connections kept per upstream (WebSocket agent). */
export const UPSTREAM_MAX_FREE_SOCKETS = 64;
/** Connections open at once to one upstream. */
export const UPSTREAM_MAX_CONNECTIONS = 256;
/** An idle connection to an upstream is closed after this (below common upstream keep-alive timeouts). */
export const UPSTREAM_KEEP_ALIVE_MS = 4_000;

export interface ProxyOptions {
  upstreams: readonly string[];
  /** Keep minigate's session token (Authorization: Bearer) from the upstream. */
  dropBearer: boolean;
  /** Time for the upstream to start its answer. */
  timeoutMs: number;
  maxBodyBytes: number;
  logger: Logger;
  /** The route prefix, replaced by the upstream URL's path when it has one (nginx's proxy_pass rule). */
  prefix: string;
  /** Upstream latency (until the answer's headers) and failures of this route, bound to its label. */
  observe?: { latency: { observe(seconds: number): void }; error: (code: string) => void };
}

interface Upstream {
  url: URL;
  /** Requests: minigate's own HTTP/1.1 client (upstream-pool.ts), leaner than undici's dispatcher. */
  pool: UpstreamPool;
  /** WebSocket upgrades. */
  agent: HttpAgent;
  downUntil: number;
}

/** Headers of the answer minigate adds to every request it sends upstream (identity, forwarding). */
export type ExtraHeaders = Record<string, string>;

export interface Proxy {
  handle(ctx: HttpContext, rest: string, extra: ExtraHeaders): Promise<void>;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, rest: string, extra: ExtraHeaders): void;
  /** Ends open WebSocket tunnels with 1001 (the listeners drain the rest meanwhile). */
  closeTunnels(): Promise<void>;
  /** Drops the keep-alive pools (once nothing is in flight). */
  destroy(): void;
  /** Connections open to this route's upstreams for requests (in use and idle). */
  connections(): number;
}

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UPSTREAM_CONNECT_TIMEOUT']);

export function createProxy(options: ProxyOptions): Proxy {
  const upstreams: Upstream[] = options.upstreams.map((text) => {
    const url = new URL(text);
    const agentOptions = { keepAlive: true, maxFreeSockets: UPSTREAM_MAX_FREE_SOCKETS };
    const pool = new UpstreamPool({
      origin: new URL(url.origin),
      maxConnections: UPSTREAM_MAX_CONNECTIONS,
      keepAliveMs: UPSTREAM_KEEP_ALIVE_MS,
      connectTimeoutMs: UPSTREAM_CONNECT_TIMEOUT_MS,
      headersTimeoutMs: options.timeoutMs,
      // Between reads of a streamed answer; the answer itself may take as long as it streams.
      bodyTimeoutMs: Math.max(options.timeoutMs, 60_000),
    });
    return { url, pool, agent: url.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions), downUntil: 0 };
  });
  let next = 0;
  const tunnels = new Set<Tunnel>();

  /** Upstreams in the order to try: round robin, healthy ones first. */
  function order(): Upstream[] {
    if (upstreams.length === 1) return upstreams;
    const start = next++ % upstreams.length;
    const rotated = [...upstreams.slice(start), ...upstreams.slice(0, start)];
    const now = Date.now();
    return [...rotated.filter((u) => u.downUntil <= now), ...rotated.filter((u) => u.downUntil > now)];
  }

  function targetPath(upstream: Upstream, rest: string, query: string): string {
    const base = upstream.url.pathname === '/' ? options.prefix : upstream.url.pathname.replace(/\/$/, '');
    const path = base + rest || '/';
    return query ? `${path}?${query}` : path;
  }

  function open(upstream: Upstream, method: string, path: string, headers: OutgoingHttpHeaders): ClientRequest {
    const send = upstream.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const request = send({
      protocol: upstream.url.protocol,
      hostname: upstream.url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: upstream.url.port || undefined,
      method,
      path,
      headers: { ...headers, host: upstream.url.host },
      agent: upstream.agent,
    });
    // A connection that does not open in time counts as "cannot connect".
    const connectTimer = setTimeout(() => {
      const error = Object.assign(new Error('upstream connect timeout'), { code: 'UPSTREAM_CONNECT_TIMEOUT' });
      request.destroy(error);
    }, UPSTREAM_CONNECT_TIMEOUT_MS);
    request.once('socket', (socket) => {
      if (!socket.connecting) clearTimeout(connectTimer);
      else socket.once('connect', () => clearTimeout(connectTimer));
    });
    request.once('close', () => clearTimeout(connectTimer));
    return request;
  }

  function markDown(upstream: Upstream, error: { code?: string | undefined }): void {
    upstream.downUntil = Date.now() + UPSTREAM_DOWN_MS;
    options.logger.warn({ upstream: upstream.url.origin, code: error.code }, 'proxy: upstream failed, skipped for 10 s');
  }

  return {
    handle(ctx, rest, extra) {
      const { req, res } = ctx;
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > options.maxBodyBytes) {
        req.resume();
        throw new AppError('BODY_TOO_LARGE', { message: `The body is over ${options.maxBodyBytes} bytes.` });
      }
      const hasBody = declared > 0 || req.headers['transfer-encoding'] !== undefined;
      const headers = upstreamRequestHeaders(req.headers, { dropBearer: options.dropBearer }) as Record<string, string | string[]>;
      // `extra` values are safe to write into a head: the forwarding ones come from headers Node's
      // parser accepted (no CR, LF or NUL), the request id is checked, the identity at signing.
      for (const name in extra) headers[name] = extra[name]!;
      const method = req.method ?? 'GET';
      const candidates = order();

      return new Promise<void>((resolve, reject) => {
        let attempt = 0;
        const tryNext = () => {
          const upstream = candidates[attempt++]!;
          let exchange: Exchange | undefined;
          let started = false;
          const onClientGone = () => {
            if (!res.writableFinished) exchange?.abort();
            resolve();
          };
          res.once('close', onClientGone);
          const onDrain = () => exchange?.resume();
          const sent = performance.now();
          exchange = upstream.pool.request(
            { method, path: targetPath(upstream, rest, ctx.query), headers, body: hasBody ? req : null, maxBodyBytes: options.maxBodyBytes },
            {
              onHead(head) {
                started = true;
                const seconds = (performance.now() - sent) / 1000;
                ctx.upstreamMs = Math.round(seconds * 10_000) / 10;
                options.observe?.latency.observe(seconds);
                res.writeHead(head.status, head.statusText, upstreamResponseHeaders(head.headers));
              },
              onData(chunk, last) {
                ctx.bytes = (ctx.bytes ?? 0) + chunk.length;
                if (last) {
                  // Head and body in one write, where the answer is small enough to come in one read.
                  res.off('close', onClientGone);
                  res.end(chunk);
                  return true;
                }
                if (res.write(chunk)) return true;
                // A listener only when the client is slower than the upstream (most answers never are).
                res.once('drain', onDrain);
                return false;
              },
              onEnd() {
                res.off('close', onClientGone);
                if (!res.writableEnded) res.end();
                resolve();
              },
              onError(error: UpstreamFailure) {
                res.off('close', onClientGone);
                if (started) {
                  // An upstream reset mid-answer: the client sees its connection closed (the status is out).
                  res.destroy();
                  resolve();
                  return;
                }
                if (error.kind === 'too-large') return reject(new AppError('BODY_TOO_LARGE', { message: error.message }));
                if (res.destroyed) return resolve();
                if (error.kind === 'protocol') options.logger.warn({ upstream: upstream.url.origin, reason: error.message }, 'proxy: the upstream sent a malformed answer; answered 502');
                const cannotConnect = error.kind === 'connect';
                if (cannotConnect) markDown(upstream, error);
                // Without a body nothing was consumed, so another upstream may take the request.
                if (cannotConnect && !hasBody && attempt < candidates.length) return tryNext();
                options.observe?.error(error.kind);
                reject(
                  new AppError(error.kind === 'timeout' ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNAVAILABLE', {
                    cause: error,
                    details: { upstream: upstream.url.origin },
                  }),
                );
              },
            },
          );
        };
        tryNext();
      });
    },

    upgrade(req, socket, head, rest, extra) {
      const upstream = order()[0]!;
      const query = (req.url ?? '').includes('?') ? (req.url ?? '').slice((req.url ?? '').indexOf('?') + 1) : '';
      // The edge let only a valid WebSocket handshake through; it goes upstream as exactly that.
      const headers = {
        ...upstreamRequestHeaders(req.headers, { dropBearer: options.dropBearer }),
        ...extra,
        connection: 'Upgrade',
        upgrade: 'websocket',
      };
      const request = open(upstream, req.method ?? 'GET', targetPath(upstream, rest, query), headers);
      const fail = () => rejectUpgrade(socket, new AppError('UPSTREAM_UNAVAILABLE'));
      request.once('upgrade', (answer, upstreamSocket, upstreamHead) => {
        // A 101 that is not a WebSocket acceptance of this key would let anything flow after it.
        const key = String(req.headers['sec-websocket-key'] ?? '');
        if (String(answer.headers.upgrade ?? '').toLowerCase() !== 'websocket' || answer.headers['sec-websocket-accept'] !== websocketAccept(key)) {
          options.logger.warn({ upstream: upstream.url.origin }, 'proxy: upstream answered 101 without a valid WebSocket acceptance');
          upstreamSocket.destroy();
          return fail();
        }
        const lines = [`HTTP/1.1 101 ${answer.statusMessage ?? 'Switching Protocols'}`];
        for (let i = 0; i < answer.rawHeaders.length; i += 2) lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (upstreamHead.length) socket.write(upstreamHead);
        if (head.length) upstreamSocket.write(head);
        const tunnel = createTunnel(socket, upstreamSocket, { extensions: answer.headers['sec-websocket-extensions'] !== undefined });
        tunnels.add(tunnel);
        void tunnel.closed.then(() => tunnels.delete(tunnel));
      });
      request.once('response', (answer) => {
        // The upstream refused to upgrade: pass its answer on and close.
        const lines = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage ?? ''}`];
        const clean = upstreamResponseHeaders(answer.headers);
        for (const [name, value] of Object.entries(clean)) {
          for (const v of Array.isArray(value) ? value : [value]) if (v !== undefined) lines.push(`${name}: ${v}`);
        }
        lines.push('connection: close');
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        answer.pipe(socket);
      });
      request.once('error', (error: NodeJS.ErrnoException) => {
        if (CONNECT_ERRORS.has(error.code ?? '')) markDown(upstream, error);
        options.observe?.error(CONNECT_ERRORS.has(error.code ?? '') ? 'connect' : 'reset');
        options.logger.warn({ upstream: upstream.url.origin, code: error.code }, 'proxy: WebSocket upgrade failed');
        fail();
      });
      socket.once('error', () => request.destroy());
      request.end();
    },

    async closeTunnels() {
      // Open WebSockets get 1001 "going away" between frames, both ways.
      for (const tunnel of tunnels) tunnel.close(1001);
      await Promise.all([...tunnels].map((t) => t.closed));
    },

    connections() {
      let open = 0;
      for (const u of upstreams) open += u.pool.size;
      return open;
    },

    destroy() {
      for (const u of upstreams) {
        u.agent.destroy();
        u.pool.close();
      }
    },
  };
}
