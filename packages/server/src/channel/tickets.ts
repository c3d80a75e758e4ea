/**
 * Wafer tunnel tickets. Wafer's client opens the socket with wx.connectSocket({url}) and no
 * headers, so the URL must say who it is: not the session token, but a ticket that names the
 * session, ends after a minute and is signed with a key derived from secretKey (so any instance
 * of the deployment can check it).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TICKET_TTL_MS = 60_000;

export interface Tickets {
  issue(tokenHash: string, now: number): string;
  /** The session id inside a good, unexpired ticket, else null. */
  check(ticket: string, now: number): string | null;
}

export function createTickets(secretKey: Buffer): Tickets {
  const key = createHmac('sha256', secretKey).update('minigate wafer tunnel ticket v1').digest();
  const mac = (payload: string) => createHmac('sha256', key).update(payload).digest('base64url').slice(0, 32);
  return {
    issue(tokenHash, now) {
      const payload = `${(now + TICKET_TTL_MS).toString(36)}.${tokenHash}`;
      return `${payload}.${mac(payload)}`;
    },
    check(ticket, now) {
      const match = /^([0-9a-z]{1,12})\.([0-9a-f]{64})\.([A-Za-z0-9_-]{32})$/.exec(ticket);
      if (!match) return null;
      const payload = `${match[1]}.${match[2]}`;
      const expected = Buffer.from(mac(payload));
      if (!timingSafeEqual(expected, Buffer.from(match[3]!))) return null;
      return parseInt(match[1]!, 36) > now ? match[2]! : null;
    },
  };
}
