import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createIdentitySigner, identityHeaders, identityPayload } from './headers.js';

const SECRET = 'upstream-secret-0123456789abcdef';
const alice = { appid: 'wx0000000000000001', openid: 'o_alice', unionid: null, session: 'a'.repeat(64) };
const bob = { appid: 'wx0000000000000001', openid: 'o_bob', unionid: 'u_bob', session: 'b'.repeat(64) };

function verifies(headers: Record<string, string>, identity: typeof alice | typeof bob): boolean {
  const payload = identityPayload(headers['x-minigate-timestamp']!, identity);
  return headers['x-minigate-signature'] === `v1=${createHmac('sha256', SECRET).update(payload).digest('hex')}`;
}

describe('createIdentitySigner', () => {
  it('signs as identityHeaders does, and reuses the headers within one second', () => {
    const sign = createIdentitySigner(SECRET);
    const first = sign(alice, 1_700_000_000_100);
    expect(first).toEqual(identityHeaders(alice, SECRET, 1_700_000_000_100));
    expect(verifies(first, alice)).toBe(true);
    expect(sign(alice, 1_700_000_000_900)).toBe(first);
  });

  it('stamps a new second afresh, and never hands one session the headers of another', () => {
    const sign = createIdentitySigner(SECRET);
    const first = sign(alice, 1_700_000_000_100);
    const next = sign(alice, 1_700_000_001_000);
    expect(next).not.toBe(first);
    expect(next['x-minigate-timestamp']).toBe('1700000001');
    expect(verifies(next, alice)).toBe(true);
    const other = sign(bob, 1_700_000_001_200);
    expect(other['x-minigate-openid']).toBe('o_bob');
    expect(other['x-minigate-unionid']).toBe('u_bob');
    expect(verifies(other, bob)).toBe(true);
    // The same session id with another user (cannot happen with real hashes) is signed anew.
    const impostor = { ...bob, session: alice.session };
    expect(sign(impostor, 1_700_000_001_300)['x-minigate-openid']).toBe('o_bob');
  });
});

describe('identityHeaders', () => {
  it('refuses an identity with a control character (it would split the head sent upstream)', () => {
    for (const openid of ['o_a\r\nX-Minigate-Openid: o_admin', 'o_a\nb', 'o_a\x00', 'o_a\x7f']) {
      expect(() => identityHeaders({ ...alice, openid }, SECRET, 1_700_000_000_000), JSON.stringify(openid)).toThrow(/control character/);
    }
    expect(() => identityHeaders({ ...bob, unionid: 'u\r\n' }, SECRET, 1_700_000_000_000)).toThrow(/control character/);
  });
});
