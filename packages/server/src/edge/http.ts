/**
 * The HTTP plumbing every feature's routes use: a small router, request context, JSON bodies
 * with limits, the error wire shape, and an access log line per request.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppError, errorBody, errorHeaders } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { requestId as newRequestId } from '../core/random.js';
import { applyRequestTarget } from './request-target.js';

/** What `OPTIONS *` and a refused CONNECT list. */
export const ALLOWED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** JSON bodies larger than this are refused (413) unless a route sets its own limit. */
export const JSON_BODY_LIMIT_BYTES = 64 * 1024;

export interface HttpContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  /** Path without the query. */
  readonly path: string;
  /** The raw query string (without `?`). */
  readonly query: string;
  /** `:name` segments of the route (service routes). */
  params: Record<string, string>;
  /** Who and how, as the edge established it (see forwarded.ts). */
  readonly client: ClientInfo;
}

/** The client of a request: its address and the scheme and host it used (behind trusted proxies, theirs). */
export interface ClientInfo {
  ip: string;
  scheme: 'http' | 'https';
  host: string;
  /** The X-Forwarded-For chain to send upstream (trusted hops kept, the peer appended). */
  forwardedFor: string;
  /** The peer is a trusted proxy (a load balancer that may have terminated TLS). */
  viaTrustedProxy: boolean;
}

export type Handler = (ctx: HttpContext) => void | Promise<void>;

interface PatternRoute {
  segments: string[];
  handlers: Map<string, Handler>;
}

/**
 * Routes by method and path. Paths are literal (`/auth/login`), have `:name` segments
 * (`/files/:id`), or end in `*` for any rest (`/wechat/*`, the rest in params['*']).
 * HEAD is answered by GET routes.
 */
export class Router {
  private readonly exact = new Map<string, Map<string, Handler>>();
  private readonly patterns: PatternRoute[] = [];

  add(methods: string | string[], path: string, handler: Handler): this {
    const list = Array.isArray(methods) ? methods : [methods];
    let handlers: Map<string, Handler>;
    if (path.includes('/:') || path.endsWith('/*')) {
      const segments = path.split('/');
      let route = this.patterns.find((r) => r.segments.join('/') === segments.join('/'));
      if (!route) {
        route = { segments, handlers: new Map() };
        this.patterns.push(route);
      }
      handlers = route.handlers;
    } else {
      handlers = this.exact.get(path) ?? new Map();
      this.exact.set(path, handlers);
    }
    for (const method of list) {
      if (handlers.has(method)) throw new Error(`route ${method} ${path} is defined twice`);
      handlers.set(method, handler);
    }
    return this;
  }

  /** The handler and params, `{allowed}` when the path exists with other methods, or null. */
  match(
    method: string,
    path: string,
  ): { handler: Handler; params: Record<string, string> } | { allowed: string[] } | null {
    const lookup = method === 'HEAD' ? ['HEAD', 'GET'] : [method];
    const exact = this.exact.get(path);
    if (exact) return pick(exact, lookup, {});
    const segments = path.split('/');
    for (const route of this.patterns) {
      const tail = route.segments[route.segments.length - 1] === '*';
      if (tail ? segments.length < route.segments.length : route.segments.length !== segments.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < route.segments.length && ok; i++) {
        const want = route.segments[i]!;
        const got = segments[i]!;
        if (want === '*' && i === route.segments.length - 1) {
          params['*'] = segments.slice(i).join('/');
          if (!params['*']) ok = false;
        } else if (want.startsWith(':')) {
          if (!got) ok = false;
          else params[want.slice(1)] = safeDecode(got);
        } else if (want !== got) ok = false;
      }
      if (ok) return pick(route.handlers, lookup, params);
    }
    return null;
  }
}

function pick(handlers: Map<string, Handler>, lookup: string[], params: Record<string, string>) {
  for (const method of lookup) {
    const handler = handlers.get(method);
    if (handler) return { handler, params };
  }
  return { allowed: [...handlers.keys()] };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export interface DispatchOptions {
  logger: Logger;
  /** Works out the client (address, scheme, host) of a request. */
  client: (req: IncomingMessage) => ClientInfo;
  /** Answers the request; throw an AppError (or return a rejected promise) for an error answer. */
  handle: (ctx: HttpContext) => void | Promise<void>;
}

/** The request listener for a node:http(s) server: answers errors in our shape, logs one line. */
export function createDispatcher(options: DispatchOptions) {
  const { logger, handle } = options;
  return (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const requestId = newRequestId();
    const method = req.method ?? 'GET';
    let path = '';
    let query = '';
    res.setHeader('x-request-id', requestId);

    let failure: unknown;
    const finish = () => {
      const status = res.statusCode;
      const entry: Record<string, unknown> = {
        requestId,
        method,
        path,
        status,
        ms: Math.round((performance.now() - started) * 10) / 10,
      };
      if (failure instanceof AppError && failure.code === 'SHUTTING_DOWN') {
        // Expected while draining: the client is told to retry elsewhere; no stack to read.
        entry.code = failure.code;
        logger.warn(entry, 'request cut by shutdown');
      } else if (failure !== undefined && status >= 500) {
        entry.err = failure instanceof AppError && failure.cause !== undefined ? failure.cause : failure;
        if (failure instanceof AppError && failure.details) entry.details = failure.details;
        logger.error(entry, 'request failed');
      } else {
        if (failure instanceof AppError) entry.code = failure.code;
        logger.info(entry, 'request');
      }
    };
    res.once('finish', finish);
    res.once('close', () => {
      if (!res.writableFinished) logger.info({ requestId, method, path, aborted: true }, 'request aborted by client');
    });

    const fail = (error: unknown) => {
      failure = error;
      if (res.headersSent || res.destroyed) {
        if (!(error instanceof AppError)) logger.error({ requestId, method, path, err: error }, 'request failed after the answer began');
        res.destroy();
        return;
      }
      const { status, body } = errorBody(error, requestId);
      if (status === 405 && error instanceof AppError && Array.isArray(error.details?.allowed)) {
        res.setHeader('allow', (error.details.allowed as string[]).join(', '));
      }
      for (const [name, value] of Object.entries(errorHeaders(error))) res.setHeader(name, value);
      sendJson(res, status, body);
    };

    let client: ClientInfo;
    try {
      // CONNECT (authority-form) tunnels nothing here; HTTP/1.1's arrives on 'connect' (edge.ts).
      if (method === 'CONNECT') throw new AppError('METHOD_NOT_ALLOWED', { details: { allowed: ALLOWED_METHODS } });
      ({ path, query } = applyRequestTarget(req));
      if (path === '*') {
        res.writeHead(204, { allow: ALLOWED_METHODS.join(', ') });
        res.end();
        return;
      }
      client = options.client(req);
    } catch (error) {
      // A refused target is logged raw, never with its query (which may carry secrets).
      if (!path) path = (req.url ?? '/').split('?', 1)[0]!;
      return fail(error);
    }
    try {
      const result = handle({ req, res, requestId, path, query, params: {}, client });
      if (result) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  };
}

/** Runs a service router for a path (relative to where the service is mounted). */
export function routeTo(router: Router, ctx: HttpContext, path: string): void | Promise<void> {
  const found = router.match(ctx.req.method ?? 'GET', path);
  if (!found) throw new AppError('NOT_FOUND');
  if ('allowed' in found) throw new AppError('METHOD_NOT_ALLOWED', { details: { allowed: found.allowed } });
  ctx.params = found.params;
  return found.handler(ctx);
}

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
 * Reads a JSON object body (or an urlencoded form, as `wx.request` sends with that header).
 * Over the limit → BODY_TOO_LARGE before reading when Content-Length says so; bad JSON or a
 * non-object → BAD_REQUEST; another content type → UNSUPPORTED_MEDIA_TYPE. An empty body is {}.
 */
export async function readJsonBody(req: IncomingMessage, limit = JSON_BODY_LIMIT_BYTES): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const raw = await readBody(req, limit);
  if (raw.length === 0) return {};
  // `curl -d '{…}'` labels JSON as a form; a form never starts with "{".
  if (type === 'application/x-www-form-urlencoded' && raw[0] !== 0x7b) {
    return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  }
  if (type !== '' && type !== 'application/json' && !type.endsWith('+json') && type !== 'text/plain' && type !== 'application/x-www-form-urlencoded') {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8').replace(/^\uFEFF/, ''));
  } catch {
    throw new AppError('BAD_REQUEST', { message: 'The body is not valid JSON.' });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new AppError('BAD_REQUEST', { message: 'The body must be a JSON object.' });
  }
  return parsed as Record<string, unknown>;
}

/** The whole body, or BODY_TOO_LARGE as soon as it (or its Content-Length) passes `limit`. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  if (Number(req.headers['content-length'] ?? NaN) > limit) {
    req.resume();
    return Promise.reject(new AppError('BODY_TOO_LARGE', { message: `The body is over ${limit} bytes.` }));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.resume();
        reject(new AppError('BODY_TOO_LARGE', { message: `The body is over ${limit} bytes.` }));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
    req.once('aborted', () => reject(new AppError('BAD_REQUEST', { message: 'The client aborted the body.' })));
  });
}

/** A header's single value (the first when repeated). */
export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
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
