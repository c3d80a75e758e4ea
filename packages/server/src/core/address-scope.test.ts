import { describe, expect, it } from 'vitest';
import { addressScope, internalListenProblem, listenExposure } from './address-scope.js';

const iface = (address: string) => ({ address, netmask: '', family: address.includes(':') ? 'IPv6' : 'IPv4', mac: '', internal: false, cidr: null }) as never;

describe('address scope', () => {
  it('tells loopback, private and public addresses apart', () => {
    for (const ip of ['127.0.0.1', '127.8.0.1', '::1', '::ffff:127.0.0.1']) expect(addressScope(ip), ip).toBe('loopback');
    for (const ip of ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '169.254.1.1', 'fd00::2', 'fe80::1', '::ffff:10.0.0.1'])
      expect(addressScope(ip), ip).toBe('private');
    for (const ip of ['8.8.8.8', '172.32.0.1', '1.1.1.1', '2606:4700::1111', '::ffff:8.8.8.8']) expect(addressScope(ip), ip).toBe('public');
  });

  it('judges the wildcard by the host interfaces: private in a container, public on a host with a public one', () => {
    const container = { lo: [iface('127.0.0.1'), iface('::1')], eth0: [iface('172.17.0.2'), iface('fe80::42')] };
    expect(listenExposure('0.0.0.0', container)).toMatchObject({ scope: 'private', wildcard: true });
    expect(internalListenProblem('0.0.0.0', listenExposure('0.0.0.0', container), false)).toBeNull();
    const server = { ...container, eth1: [iface('203.0.114.7')] };
    const exposure = listenExposure('::', server);
    expect(exposure).toMatchObject({ scope: 'public', publicInterfaces: ['eth1 203.0.114.7'] });
    expect(internalListenProblem('::', exposure, false)).toContain(':: listens on every interface, and this host has public ones (eth1 203.0.114.7)');
    expect(internalListenProblem('::', exposure, true)).toBeNull();
  });
});
