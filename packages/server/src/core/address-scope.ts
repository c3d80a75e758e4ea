/**
 * Where an address can be reached from: this host only (loopback), a private network, or the
 * internet. Used to keep the internal API off public interfaces.
 */
import { BlockList, isIP } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';

export type AddressScope = 'loopback' | 'private' | 'public';

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** Not globally reachable (IANA special-purpose registries): private, shared, link-local, documentation. */
const unroutable = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
] as const) {
  unroutable.addSubnet(net, bits, 'ipv4');
}
unroutable.addSubnet('fc00::', 7, 'ipv6'); // unique local
unroutable.addSubnet('fe80::', 10, 'ipv6'); // link-local
unroutable.addSubnet('2001:db8::', 32, 'ipv6'); // documentation

/** The scope of an IP address (IPv4-mapped IPv6 as its IPv4). */
export function addressScope(ip: string): AddressScope {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
  const address = mapped ?? ip.replace(/%.*$/, '');
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  if (loopback.check(address, family)) return 'loopback';
  if (unroutable.check(address, family)) return 'private';
  return 'public';
}

export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

/**
 * How exposed a listener on `host` is. The wildcard listens on every interface: `private` when
 * every interface of this host is loopback or private (a container's case), else `public`.
 */
export function listenExposure(
  host: string,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>,
): { scope: AddressScope; wildcard: boolean; publicInterfaces: string[] } {
  if (!isWildcard(host)) return { scope: addressScope(host), wildcard: false, publicInterfaces: [] };
  const publicInterfaces = Object.entries(interfaces).flatMap(([name, infos]) =>
    (infos ?? []).filter((info) => addressScope(info.address) === 'public').map((info) => `${name} ${info.address}`),
  );
  return { scope: publicInterfaces.length ? 'public' : 'private', wildcard: true, publicInterfaces };
}

/** Why the internal API may not listen on `host`, or null when it may (`allowPublic` opts in). */
export function internalListenProblem(host: string, exposure: ReturnType<typeof listenExposure>, allowPublic: boolean): string | null {
  if (exposure.scope !== 'public' || allowPublic) return null;
  const what = exposure.wildcard
    ? `${host} listens on every interface, and this host has public ones (${exposure.publicInterfaces.join(', ')})`
    : `${host} is a public address`;
  return `${what}: the internal API would be reachable from the internet. Bind a loopback or private address (e.g. 127.0.0.1:9090), or set internal.allowPublic: true if a firewall keeps outsiders off it`;
}
