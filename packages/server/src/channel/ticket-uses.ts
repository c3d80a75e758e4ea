/**
 * Which Wafer tunnel tickets have been used, agreed by every instance of the deployment: a ticket
 * opens one socket, once.
 *
 * Contract: `claim(id)` is true for exactly one caller per ticket id across all instances and
 * false for every later (or concurrent, losing) caller while the ticket could still be accepted.
 * Redis, when configured and up, decides (SET NX, expiring by itself); otherwise the store does,
 * through the primary key of `used_tickets` (so `workers:` on one machine, which share the
 * store, agree too). While Redis is down the store decides; an instance that still reaches Redis
 * then does not see those uses, so in that window a URL could open at most one socket per side.
 * Failures to reach either are thrown (the upgrade is refused with 503): never open on doubt.
 */
import type { Logger, SharedRedis } from '../core/index.js';
import { isUniqueViolation, storeOp, type Store } from '../store/index.js';

/**
 * A use is remembered this long past the ticket's expiry, so that an instance whose clock is
 * behind (and so still takes the ticket as unexpired) by up to this much still finds it used.
 */
export const USED_TICKET_KEEP_MS = 10 * 60_000;
const REDIS_PREFIX = 'minigate:wafer-ticket:';

export interface TicketUses {
  /** Records the use; true when this is the ticket's first use anywhere, false when it was used before. */
  claim(id: string, expiresAt: number, now: number): Promise<boolean>;
  /** Forgets the store's uses of tickets long expired (Redis keys expire by themselves); returns how many. */
  purge(now: number): Promise<number>;
}

export function createTicketUses(deps: { store: Store; redis?: SharedRedis; logger: Logger }): TicketUses {
  const { store, redis, logger } = deps;
  let fellBack = false;
  const fallBack = (reason: string) => {
    if (!fellBack) logger.warn({ reason }, 'channel: redis unavailable; the store records used tunnel tickets until it is back');
    fellBack = true;
  };

  async function claimInStore(id: string, expiresAt: number): Promise<boolean> {
    return storeOp('usedTicketClaim', async () => {
      try {
        await store.db.insertInto('used_tickets').values({ id, expires_at: expiresAt }).execute();
        return true;
      } catch (error) {
        if (isUniqueViolation(error)) return false;
        throw error;
      }
    });
  }

  return {
    async claim(id, expiresAt, now) {
      if (redis?.up) {
        try {
          const ttl = Math.max(1, expiresAt + USED_TICKET_KEEP_MS - now);
          const set = await redis.client.set(`${REDIS_PREFIX}${id}`, '1', 'PX', ttl, 'NX');
          fellBack = false;
          return set === 'OK';
        } catch (error) {
          fallBack((error as Error).message);
        }
      } else if (redis) {
        fallBack('down');
      }
      return claimInStore(id, expiresAt);
    },
    purge: (now) =>
      storeOp('usedTicketPurge', async () => {
        const result = await store.db.deleteFrom('used_tickets').where('expires_at', '<', now - USED_TICKET_KEEP_MS).executeTakeFirst();
        return Number(result.numDeletedRows);
      }),
  };
}
