/**
 * Tunnel tickets: what a ticket carries, and that nothing about it can be changed without the key.
 * (Single use is ticket-uses.ts, tested over real sockets in test/channel*.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { cryptoRandom } from '../core/random.js';
import { createTickets, TICKET_TTL_MS } from './tickets.js';

const KEY = Buffer.alloc(32, 7);
const HASH = 'ab'.repeat(32);
const T0 = Date.UTC(2026, 5, 1);

describe('tunnel tickets', () => {
  const tickets = createTickets(KEY, cryptoRandom);

  it('names the session and expiry, with a new id each time even within one millisecond', () => {
    const one = tickets.check(tickets.issue(HASH, T0), T0);
    const two = tickets.check(tickets.issue(HASH, T0), T0);
    expect(one).toMatchObject({ tokenHash: HASH, expiresAt: T0 + TICKET_TTL_MS });
    expect(one!.id).toMatch(/^[0-9a-f]{32}$/);
    expect(two!.id).not.toBe(one!.id);
  });

  it('ends after its minute', () => {
    const ticket = tickets.issue(HASH, T0);
    expect(tickets.check(ticket, T0 + TICKET_TTL_MS - 1)).not.toBeNull();
    expect(tickets.check(ticket, T0 + TICKET_TTL_MS)).toBeNull();
  });

  it('refuses any changed part, a ticket signed with another key, and junk', () => {
    const ticket = tickets.issue(HASH, T0);
    const parts = ticket.split('.');
    for (let i = 0; i < parts.length; i++) {
      const changed = [...parts];
      const part = changed[i]!;
      changed[i] = (part[0] === '0' ? '1' : '0') + part.slice(1);
      expect(tickets.check(changed.join('.'), T0)).toBeNull();
    }
    expect(createTickets(Buffer.alloc(32, 8), cryptoRandom).check(ticket, T0)).toBeNull();
    for (const junk of ['', '.', `${ticket}.x`, parts.slice(0, 3).join('.'), ticket.toUpperCase()]) expect(tickets.check(junk, T0)).toBeNull();
  });
});
