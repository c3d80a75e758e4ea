/**
 * Who the client is. A peer in `trustedProxies` (a load balancer) is believed about the client
 * behind it (X-Forwarded-For, -Proto, -Host); anyone else's X-Forwarded-* is ignored, so a client
 * cannot claim another address (X-Forwarded-For spoofing).
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ClientInfo } from '../http/index.js';

export interface TrustedProxies {
  has(address: string): boolean;
  readonly empty: boolean;
}

/** Parses `10.0.0.0/8`, `192.168.1.7`, `fd00::/8`; throws naming a bad entry. */
export function trustedProxies(entries: readonly string[]): TrustedProxies {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits] = entry.split('/');
    const family = isIP(address ?? '');
    if (!family) throw new Error(`trustedProxies: "${entry}" is not an IP address or CIDR`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address!, type);
    else list.addSubnet(address!, Number(bits), type);
  }
  return {
    empty: entries.length === 0,
    has(address) {
      const plain = unmapped(address);
      const family = isIP(plain);
      return family !== 0 && list.check(plain, family === 6 ? 'ipv6' : 'ipv4');
    },
  };
}

/** `::ffff:1.2.3.4` → `1.2.3.4`. */
export function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

function first(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  return text?.split(',')[0]?.trim() || undefined;
}

/** Client info for a request that reached this listener over `scheme`. */
export function clientInfo(req: IncomingMessage, scheme: 'http' | 'https', trusted: TrustedProxies): ClientInfo {
  const peer = unmapped(req.socket.remoteAddress ?? '');
  const ownScheme = (req.socket as TLSSocket).encrypted ? 'https' : scheme;
  const host = (req.headers.host ?? (req.headers[':authority'] as string | undefined) ?? '').toLowerCase();
  if (trusted.empty || !trusted.has(peer)) {
    return { ip: peer, scheme: ownScheme, host, forwardedFor: peer, viaTrustedProxy: false };
  }
  // From a trusted proxy: the client is the rightmost address that is not itself trusted.
  const header = req.headers['x-forwarded-for'];
  const chain = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => isIP(unmapped(s)) !== 0);
  let ip = peer;
  for (let i = chain.length - 1; i >= 0; i--) {
    ip = unmapped(chain[i]!);
    if (!trusted.has(ip)) break;
  }
  const proto = first(req.headers['x-forwarded-proto']);
  return {
    ip,
    scheme: proto === 'https' || proto === 'http' ? proto : ownScheme,
    host: (first(req.headers['x-forwarded-host']) ?? host).toLowerCase(),
    forwardedFor: [...chain, peer].join(', '),
    viaTrustedProxy: true,
  };
}
