/**
 * The route table: which route a request belongs to, by host and the longest path prefix.
 * `/api` matches `/api`, `/api/` and `/api/x`, never `/apix`. A route for a host beats one for
 * any host at the same prefix length.
 */
import type { HttpContext, UpgradeHandler } from '../http/index.js';

export type AuthMode = 'none' | 'optional' | 'required';

export interface EdgeRoute {
  /** Lower-case host, or undefined for any. */
  host?: string;
  /** The configured path, for messages. */
  path: string;
  /** The route's name in metrics and access lines (its configured host and path). */
  label: string;
  auth: AuthMode;
  maxBodyBytes: number;
  /** Answers a request; `rest` is the path after the prefix (starts with `/`, or is ``). */
  handle(ctx: HttpContext, rest: string): void | Promise<void>;
  /** Answers a WebSocket upgrade, when the route can. */
  upgrade?: UpgradeHandler;
  /** Served on plain HTTP even when it redirects to HTTPS (signed traffic that cannot follow a redirect). */
  plainHttp?: boolean;
}

interface Entry {
  route: EdgeRoute;
  prefix: string;
}

export function normalizePrefix(path: string): string {
  return path.replace(/\/+$/, '');
}

export class RouteTable {
  private readonly entries: Entry[];
  /** Whether any route is bound to a host: without one, a request's host is never looked at. */
  private readonly hostBound: boolean;

  constructor(routes: readonly EdgeRoute[]) {
    // Longest prefix first; at equal length a host-bound route first.
    this.entries = routes
      .map((route) => ({ route, prefix: normalizePrefix(route.path) }))
      .sort((a, b) => b.prefix.length - a.prefix.length || Number(Boolean(b.route.host)) - Number(Boolean(a.route.host)));
    this.hostBound = this.entries.some((entry) => entry.route.host !== undefined);
  }

  match(host: string, path: string): { route: EdgeRoute; rest: string } | null {
    // The host without its port or IPv6 brackets; two regular expressions a request, so only when a route needs it.
    const bareHost = this.hostBound ? host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1') : '';
    for (const { route, prefix } of this.entries) {
      if (route.host !== undefined && route.host !== bareHost) continue;
      if (path === prefix) return { route, rest: '' };
      if (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47 /* / */) {
        return { route, rest: path.slice(prefix.length) };
      }
    }
    return null;
  }
}
