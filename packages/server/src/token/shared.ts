/**
 * Where instances share the access_token and agree who refreshes it.
 *
 * Contract: `read` returns the newest record known; `write` keeps a record only if it expires
 * later than the one stored (a slow refresh can never replace a newer token with an older one);
 * `lock` is a lease (it ends by itself, so a crashed holder frees it) held by one owner at a time.
 *
 * The database always has the record (it is the source of truth); Redis, when configured, holds
 * a copy and the lease, and when it is down the database's lease takes over (logged once).
 */
import type { Logger } from '../core/logger.js';
import type { SharedRedis } from '../core/redis.js';
import type { Store } from '../store/index.js';

export interface TokenRecord {
  token: string;
  /** Epoch ms. */
  expiresAt: number;
  fetchedAt: number;
}

export interface TokenShare {
  read(appid: string): Promise<TokenRecord | null>;
  /** Stores the record unless a record that expires later is already there; true when stored. */
  write(appid: string, record: TokenRecord): Promise<boolean>;
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

/** Compare-and-set in Redis: keep the record that expires later. */
const REDIS_WRITE_IF_NEWER = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and tonumber(decoded.expiresAt) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1`;

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

  async function writeDb(appid: string, record: TokenRecord): Promise<boolean> {
    // kv.updated_at carries the record's expiry, so the comparison happens in the database.
    const existing = await readDb(appid);
    if (existing && existing.expiresAt >= record.expiresAt) return false;
    await store.kvSet(dbKey(appid), JSON.stringify(record), record.expiresAt);
    // Two writers may pass the check together; the one that expires later must end up stored.
    const stored = await readDb(appid);
    if (stored && stored.expiresAt < record.expiresAt) await store.kvSet(dbKey(appid), JSON.stringify(record), record.expiresAt);
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
          if (cached && (!durable || cached.expiresAt >= durable.expiresAt)) return cached;
          return durable;
        } catch {
          // fall through to the database
        }
      }
      return fromDb;
    },

    async write(appid, record) {
      const stored = await writeDb(appid, record);
      if (useRedis()) {
        const ttl = Math.max(1_000, record.expiresAt - clock.now());
        await redis!.client
          .eval(REDIS_WRITE_IF_NEWER, 1, `${prefix}${dbKey(appid)}`, JSON.stringify(record), String(record.expiresAt), String(ttl))
          .catch(() => undefined);
      }
      return stored;
    },

    async replace(appid, record) {
      await store.kvSet(dbKey(appid), JSON.stringify(record), record.expiresAt);
      if (useRedis()) {
        const ttl = Math.max(1_000, record.expiresAt - clock.now());
        await redis!.client.set(`${prefix}${dbKey(appid)}`, JSON.stringify(record), 'PX', ttl).catch(() => undefined);
      }
    },

    async lock(appid, owner, ttlMs) {
      if (useRedis()) {
        try {
          return (await redis!.client.set(`${prefix}${lockName(appid)}`, owner, 'PX', ttlMs, 'NX')) === 'OK';
        } catch {
          // Redis failed between the check and the command: the database decides.
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
