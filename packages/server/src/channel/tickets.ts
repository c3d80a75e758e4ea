/**
 * Wafer tunnel tickets. Wafer's client opens the socket with wx.connectSocket({url}) and no
 * headers, so the URL must say who it is: not the session token, but a ticket that names the
 * session, ends after a minute and is signed with a key derived from secretKey (so any instance
 * of the deployment can check it). Each ticket carries a random id, so that it can be used once
 * (see ticket-uses.ts): a URL seen in a log or by a proxy opens nothing.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Random } from '../core/index.js';

export const TICKET_TTL_MS = 60_000;
/** Random bytes in a ticket's id (32 hex digits: no case to fold in MySQL's default collation). */
const TICKET_ID_BYTES = 16;

export interface CheckedTicket {
  /** The ticket's random id: the key its single use is recorded under. */
  id: string;
  /** The session the ticket names (SHA-256 of its token, hex). */
  tokenHash: string;
  /** Epoch ms after which the ticket is refused. */
  expiresAt: number;
}

export interface Tickets {
  issue(tokenHash: string, now: number): string;
  /** A good, unexpired ticket's contents, else null (used or not: that is ticket-uses' part). */
  check(ticket: string, now: number): CheckedTicket | null;
}

const TICKET = /^([0-9a-z]{1,12})\.([0-9a-f]{32})\.([0-9a-f]{64})\.([A-Za-z0-9_-]{32})$/;

export function createTickets(secretKey: Buffer, random: Random): Tickets {
  // v2: the payload gained the id; v1 tickets (no id) match neither the pattern nor this key.
  const key = createHmac('sha256', secretKey).update('minigate wafer tunnel ticket v2').digest();
  const mac = (payload: string) => createHmac('sha256', key).update(payload).digest('base64url').slice(0, 32);
  return {
    issue(tokenHash, now) {
      const id = random.bytes(TICKET_ID_BYTES).toString('hex');
      const payload = `${(now + TICKET_TTL_MS).toString(36)}.${id}.${tokenHash}`;
      return `${payload}.${mac(payload)}`;
    },
    check(ticket, now) {
      const match = TICKET.exec(ticket);
      if (!match) return null;
      const payload = `${match[1]}.${match[2]}.${match[3]}`;
      const expected = Buffer.from(mac(payload));
      if (!timingSafeEqual(expected, Buffer.from(match[4]!))) return null;
      const expiresAt = parseInt(match[1]!, 36);
      return expiresAt > now ? { id: match[2]!, tokenHash: match[3]!, expiresAt } : null;
    },
  };
}
