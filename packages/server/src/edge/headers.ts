/**
 * Header hygiene at the edge (docs/edge.md#what-reaches-an-upstream): what a
 * client sends never reaches an upstream as identity or forwarding information, hop-by-hop
 * headers stay on their hop, and the identity minigate vouches for is signed.
 */
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { ClientInfo } from '../http/index.js';

/** Headers that belong to one connection (RFC 9110 §7.6.1) and never cross the proxy. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  // Not hop-by-hop, but the 100-continue exchange is between the client and minigate.
  'expect',
]);

const CONTROL = /[\x00-\x1f\x7f]/;

/** Forwarding headers: minigate sets its own; a client's are dropped. */
const FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'forwarded']);

/** Identity headers a client might forge: any X-Minigate-* and X-WX-*. */
function isIdentity(name: string): boolean {
  return name.startsWith('x-minigate-') || name.startsWith('x-wx-');
}

/** Headers a Connection header names: hop-by-hop for this message (RFC 9110 §7.6.1). */
const NONE_LISTED: ReadonlySet<string> = new Set();

function listedInConnection(headers: IncomingHttpHeaders): ReadonlySet<string> {
  // Most messages have no Connection header or a bare keep-alive (hop-by-hop anyway): no set to build.
  const connection = headers.connection;
  if (connection === undefined || connection === 'keep-alive') return NONE_LISTED;
  return new Set(
    String(connection)
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
}

/** The request headers to send upstream (before minigate adds its own). */
export function upstreamRequestHeaders(
  headers: IncomingHttpHeaders,
  options: { dropBearer?: boolean } = {},
): OutgoingHttpHeaders {
  const connectionListed = listedInConnection(headers);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':')) continue; // HTTP/2 pseudo-headers
    if (name === 'host') continue; // the upstream's host is set when sending
    // Underscores: some frameworks read X_Minigate_OpenId as X-Minigate-OpenId (nginx drops these too).
    if (name.includes('_')) continue;
    if (isIdentity(name) || FORWARDING.has(name)) continue;
    // On routes where minigate checked the session, its token stays here: upstreams get the identity.
    if (options.dropBearer && name === 'authorization' && /^bearer\s/i.test(String(value))) continue;
    if (HOP_BY_HOP.has(name) || connectionListed.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** The answer headers to pass to the client. */
export function upstreamResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const connectionListed = listedInConnection(headers);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || connectionListed.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** X-Forwarded-* and X-Real-IP for a request minigate forwards. */
export function forwardingHeaders(client: ClientInfo): Record<string, string> {
  return {
    'x-forwarded-for': client.forwardedFor,
    'x-forwarded-proto': client.scheme,
    'x-forwarded-host': client.host,
    'x-real-ip': client.ip,
  };
}

export interface Identity {
  appid: string;
  openid: string;
  unionid: string | null;
  /** The session's id (SHA-256 of its token; not the token). */
  session: string;
}

/** The string the signature covers; docs/upstream-identity.md shows it in Node, Java and Python. */
export function identityPayload(timestamp: string, identity: Identity): string {
  return ['v1', timestamp, identity.appid, identity.openid, identity.unionid ?? '', identity.session].join('\n');
}

/** X-Minigate-* identity headers, signed with HMAC-SHA256 under the upstream secret. */
export function identityHeaders(identity: Identity, secret: string, nowMs: number): Record<string, string> {
  // These go into request heads as they are (the proxy's client writes the head itself): a CR or
  // LF in a stored openid would split the head, any control character is refused.
  for (const value of [identity.appid, identity.openid, identity.unionid ?? '', identity.session]) {
    if (CONTROL.test(value)) throw new Error('a control character in an identity to sign');
  }
  const timestamp = String(Math.floor(nowMs / 1000));
  const signature = createHmac('sha256', secret).update(identityPayload(timestamp, identity)).digest('hex');
  return {
    'x-minigate-appid': identity.appid,
    'x-minigate-openid': identity.openid,
    ...(identity.unionid ? { 'x-minigate-unionid': identity.unionid } : {}),
    'x-minigate-session': identity.session,
    'x-minigate-timestamp': timestamp,
    'x-minigate-signature': `v1=${signature}`,
  };
}

/**
 * identityHeaders with the signed headers kept for the second they are stamped with: a client
 * making many requests a second gets one HMAC a second, not one per request. Only the current
 * second's entries are held (the map is emptied when the second changes), so it stays as small
 * as the number of sessions active in one second.
 */
export function createIdentitySigner(secret: string): (identity: Identity, nowMs: number) => Record<string, string> {
  let second = -1;
  const signed = new Map<string, Record<string, string>>();
  return (identity, nowMs) => {
    const now = Math.floor(nowMs / 1000);
    if (now !== second) {
      second = now;
      signed.clear();
    }
    let headers = signed.get(identity.session);
    if (headers === undefined || headers['x-minigate-openid'] !== identity.openid || headers['x-minigate-appid'] !== identity.appid) {
      headers = identityHeaders(identity, secret, nowMs);
      signed.set(identity.session, headers);
    }
    return headers;
  };
}

