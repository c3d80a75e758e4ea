/**
 * A small router: method and path to a handler, `:name` segments and a `*` tail.
 */
import { AppError } from '../core/index.js';
import type { Handler, HttpContext } from './context.js';
import type { Operation } from './operation.js';

/** One method and path as registered, with its description when it has one. */
export interface RouteEntry {
  method: string;
  path: string;
  operation: Operation | undefined;
}

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
  private readonly entries: RouteEntry[] = [];

  /** A documented route: its operation goes into the OpenAPI document (see docs/design.md). */
  route(methods: string | string[], path: string, operation: Operation, handler: Handler): this {
    return this.add(methods, path, handler, operation);
  }

  /** Every method and path registered, in order (for the documents and the drift test). */
  list(): readonly RouteEntry[] {
    return this.entries;
  }

  /** A route without a description; the drift test refuses it on a served router. */
  add(methods: string | string[], path: string, handler: Handler, operation?: Operation): this {
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
      this.entries.push({ method, path, operation });
    }
    return this;
  }

  /** The handler and params, `{allowed}` when the path exists with other methods, or null. */
  match(
    method: string,
    path: string,
  ): { handler: Handler; params: Record<string, string> } | { allowed: string[] } | null {
    const exact = this.exact.get(path);
    if (exact) return pick(exact, lookupOf(method), {});
    // Health is asked on every request; most routers have no patterns to split the path for.
    if (this.patterns.length === 0) return null;
    const lookup = lookupOf(method);
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

function pick(handlers: Map<string, Handler>, lookup: readonly string[], params: Record<string, string>) {
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

/** Runs a service router for a path (relative to where the service is mounted). */
export function routeTo(router: Router, ctx: HttpContext, path: string): void | Promise<void> {
  const found = router.match(ctx.req.method ?? 'GET', path);
  if (!found) throw new AppError('NOT_FOUND');
  if ('allowed' in found) throw new AppError('METHOD_NOT_ALLOWED', { details: { allowed: found.allowed } });
  ctx.params = found.params;
  return found.handler(ctx);
}

const HEAD_LOOKUP: readonly string[] = ['HEAD', 'GET'];
/** The methods whose handler answers `method` (HEAD falls back to GET); made only once a path matched. */
function lookupOf(method: string): readonly string[] {
  return method === 'HEAD' ? HEAD_LOOKUP : [method];
}
