/**
 * What a route handler is given: the request, its answer, its id, its path and query, and the
 * client as the edge established it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

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
  /** The matched route as configured (`/api`), for metrics and the access line; `` until matched. */
  route: string;
  /** The session's app and user, once a route has checked one (for the access line only). */
  appid?: string | undefined;
  openid?: string | undefined;
  /** Time until the upstream's answer began, for proxied requests. */
  upstreamMs?: number | undefined;
  /** Body bytes sent, where the answer has no content-length (a streamed proxied answer). */
  bytes?: number | undefined;
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

/** Answers a WebSocket upgrade on a route's path; `rest` is the path after the route's prefix. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, rest: string, client: ClientInfo) => void;

/** A header's single value (the first when repeated). */
export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
