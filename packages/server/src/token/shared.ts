/**
 * Where instances share the access_token and agree who refreshes it.
 *
 * Contract: `read` returns the newest record known; `write` keeps a record only if it was fetched
 * later than the one stored (a slow refresh can never replace a newer token with an older one),
 * or when the stored token is one WeChat has just refused;
 * `lock` is a lease (it ends by itself, so a crashed holder frees it) held by one owner at a time.
 *
 * The database always has the record (it is the source of truth) and the lease; Redis, when
 * configured, holds a copy of both and answers first; when it is down the database alone decides
 * (logged once). Taking both leases keeps instances that disagree on whether Redis is up from
 * refreshing together.
 */
import type { Logger, SharedRedis } from '../core/index.js';
import type { Store } from '../store/index.js';

export interface TokenRecord {
  token: string;
  /** Epoch ms. */
  expiresAt: number;
  fetchedAt: number;
  /** No instance asks WeChat again before this (WeChat answered with the same token: not rotating yet). */
  quietUntil?: number;
}

export interface TokenShare {
  read(appid: string): Promise<TokenRecord | null>;
  /**
   * Stores the record unless one fetched later is already there (or, when `rejected` is given,
   * the stored token is that rejected one, which anything replaces); true when stored.
   */
  write(appid: string, record: TokenRecord, rejected?: string): Promise<boolean>;
  /** Stores the record whatever is there (a forced refresh: the old token is dead). */
  replace(appid: string, record: TokenRecord): Promise<void>;
  lock(appid: string, owner: string, ttlMs: number): Promise<boolean>;
  unlock(appid: string, owner: string): Promise<void>;
  /** Which lock is in use now, for logs. */
  readonly lockKind: 'redis' | 'database';
}

const dbKey = (appid: string) => `token:${appid}`;
const lockName = (appid: string) => `token-refresh:${appid}`;

function parse(text: string | null): TokenRecord | null {
  if (!text) return null;
  try {
    const record = JSON.parse(text) as TokenRecord;
    return typeof record.token === 'string' && typeof record.expiresAt === 'number' ? record : null;
  } catch {
    return null;
  }
}

/** Compare-and-set in Redis: keep the record fetched later, unless the stored token was refused. */
const REDIS_WRITE_IF_NEWER = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and decoded.token ~= ARGV[4] and tonumber(decoded.fetchedAt) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1`;

/** True when `record` should replace `existing`. */
export function supersedes(record: TokenRecord, existing: TokenRecord | null, rejected?: string): boolean {
  return !existing || existing.token === rejected || record.fetchedAt > existing.fetchedAt;
}

const REDIS_UNLOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export function createTokenShare(options: { store: Store; redis?: SharedRedis; clock: { now(): number }; logger: Logger }): TokenShare {
  const { store, redis, clock, logger } = options;
  const prefix = 'minigate:';
  let warnedFallback = false;

  const useRedis = () => {
    if (!redis) return false;
    if (redis.up) {
      warnedFallback = false;
      return true;
    }
    if (!warnedFallback) {
      warnedFallback = true;
      logger.warn('token: redis is down; using the database for the token lock and cache');
    }
    return false;
  };

  async function readDb(appid: string): Promise<TokenRecord | null> {
    return parse(await store.kvGet(dbKey(appid)));
  }

  async function writeDb(appid: string, record: TokenRecord, rejected?: string): Promise<boolean> {
    if (!supersedes(record, await readDb(appid), rejected)) return false;
    await store.kvSet(dbKey(appid), JSON.stringify(record), record.fetchedAt);
    // Two writers may pass the check together; the one fetched later must end up stored.
    const stored = await readDb(appid);
    if (stored && stored.token !== record.token && supersedes(record, stored)) {
      await store.kvSet(dbKey(appid), JSON.stringify(record), record.fetchedAt);
    }
    return true;
  }

  return {
    get lockKind() {
      return redis?.up ? 'redis' : 'database';
    },

    async read(appid) {
      const fromDb = readDb(appid);
      if (useRedis()) {
        try {
          const cached = parse(await redis!.client.get(`${prefix}${dbKey(appid)}`));
          const durable = await fromDb;
          if (cached && (!durable || cached.fetchedAt >= durable.fetchedAt)) return cached;
          return durable;
        } catch {
          // fall through to the database
        }
      }
      return fromDb;
    },

    async write(appid, record, rejected) {
      const stored = await writeDb(appid, record, rejected);
      if (useRedis()) {
        const ttl = Math.max(1_000, record.expiresAt - clock.now());
        await redis!.client
          .eval(REDIS_WRITE_IF_NEWER, 1, `${prefix}${dbKey(appid)}`, JSON.stringify(record), String(record.fetchedAt), String(ttl), rejected ?? '')
          .catch(() => undefined);
      }
      return stored;
    },

    async replace(appid, record) {
      await store.kvSet(dbKey(appid), JSON.stringify(record), record.fetchedAt);
      if (useRedis()) {
        const ttl = Math.max(1_000, record.expiresAt - clock.now());
        await redis!.client.set(`${prefix}${dbKey(appid)}`, JSON.stringify(record), 'PX', ttl).catch(() => undefined);
      }
    },

    async lock(appid, owner, ttlMs) {
      if (useRedis()) {
        let held: boolean | undefined;
        try {
          held = (await redis!.client.set(`${prefix}${lockName(appid)}`, owner, 'PX', ttlMs, 'NX')) === 'OK';
        } catch {
          // Redis failed between the check and the command: the database decides.
        }
        if (held === false) return false;
        if (held) {
          // The database's lease too: an instance that has just lost Redis (or not reached it
          // yet) takes only that one, and must still be kept out. One write per rotation.
          if (await store.lockAcquire(lockName(appid), owner, ttlMs, clock.now())) return true;
          await redis!.client.eval(REDIS_UNLOCK, 1, `${prefix}${lockName(appid)}`, owner).catch(() => undefined);
          return false;
        }
      }
      return store.lockAcquire(lockName(appid), owner, ttlMs, clock.now());
    },

    async unlock(appid, owner) {
      if (redis) await redis.client.eval(REDIS_UNLOCK, 1, `${prefix}${lockName(appid)}`, owner).catch(() => undefined);
      await store.lockRelease(lockName(appid), owner).catch(() => undefined);
    },
  };
}
