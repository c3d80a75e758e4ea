/**
 * Where plain HTTP is sent when listen.https exists: the same host, path and query on HTTPS.
 *
 * The host comes from the request's Host header, so one listener can redirect for every name it
 * serves; the header is the client's own, but a shared cache could keep an answer for others, so
 * only a plain host name or IP literal is accepted (no userinfo, path, backslash or space that could
 * move the redirect elsewhere).
 *
 * The port does not: Host carries the port the client dialled for HTTP, which says nothing about
 * HTTPS. It is listen.publicHttpsPort when set (a container or NAT maps 443 to 8443 inside), else
 * the port listen.https bound, and left out when it is 443.
 */
import { AppError } from '../core/index.js';

const LABEL = '[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?';
const HOST_NAME = new RegExp(`^(?:${LABEL}\\.)*${LABEL}\\.?$`, 'i');
const IPV6_LITERAL = /^\[[0-9a-f:.]+\]$/i;
/** host[:port] → host (a bracketed IPv6 literal keeps its brackets). */
const PORT_SUFFIX = /:\d{1,5}$/;

export function httpsRedirectLocation(hostHeader: string, httpsPort: number | undefined, path: string, query: string): string {
  const host = hostHeader.replace(PORT_SUFFIX, '');
  if (!host) throw new AppError('BAD_REQUEST', { message: 'The request has no Host header.' });
  if (host.length > 253 || !(HOST_NAME.test(host) || IPV6_LITERAL.test(host))) {
    throw new AppError('BAD_REQUEST', { message: 'The Host header is not a host name.' });
  }
  const port = httpsPort && httpsPort !== 443 ? `:${httpsPort}` : '';
  return `https://${host}${port}${path}${query ? `?${query}` : ''}`;
}
