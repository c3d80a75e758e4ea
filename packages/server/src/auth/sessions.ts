/**
 * Sessions: creation at login, the check on every request, revocation.
 *
 * The check must not cost a database round trip per request, yet a revoked session must stop
 * working within a second: lookups are cached in process for SESSION_CACHE_TTL_MS (one second)
 * and revocation through this instance drops the entry at once. Last-seen is written at most
 * once per LAST_SEEN_WRITE_INTERVAL_MS per session, so idle expiry is exact to within that.
 */
import type { AppConfig } from '../config/index.js';
import type { Clock, Logger, Random } from '../core/index.js';
import { storeOp, type SessionRecord, type Store, type UserRecord } from '../store/index.js';
import type { SecretBox } from './secret-box.js';
import { hashToken, isWellFormedToken, newToken } from './tokens.js';

export const SESSION_CACHE_TTL_MS = 1_000;
export const SESSION_CACHE_MAX_ENTRIES = 50_000;
export const LAST_SEEN_WRITE_INTERVAL_MS = 60_000;

/** A session that passed the check. */
export interface ActiveSession {
  tokenHash: string;
  appid: string;
  openid: string;
  unionid: string | null;
  createdAt: number;
  /** When it ends if unused: the idle end or the absolute end, whichever is first. */
  expiresAt: number;
  /** When it ends however much it is used. */
  absoluteExpiresAt: number;
}

export interface SessionLookup {
  record: SessionRecord;
  /** What a request with this session would get now. */
  status: 'active' | 'expired' | 'revoked';
  /** When it ends if unused from now on: the idle end or the absolute end, whichever is first. */
  endsAt: number;
}

export type SessionFailure = 'SESSION_MISSING' | 'SESSION_INVALID' | 'SESSION_EXPIRED' | 'SESSION_REVOKED';
export type SessionCheck = { ok: true; session: ActiveSession } | { ok: false; reason: SessionFailure };

export interface NewSession {
  token: string;
  session: ActiveSession;
  user: UserRecord;
}

export interface SessionService {
  /** Saves a login (user, session, limit) atomically and returns the new token. */
  create(input: {
    app: AppConfig;
    openid: string;
    unionid: string | null;
    sessionKey: string;
    profile: Record<string, unknown> | null;
    /** Where the login came from, recorded when admin.recordClientInfo is on. */
    client?: { address: string; userAgent: string | null };
  }): Promise<NewSession>;
  /** Checks a token; "no session" is a result, not a throw. Store failures throw STORE_UNAVAILABLE. */
  check(token: string | undefined): Promise<SessionCheck>;
  /**
   * check() without a promise when this instance can answer at once (no token, a malformed one, a
   * session read from the store within the last second); a promise only when the store is asked.
   * For the hot path of every authenticated request, where the promise and its ticks cost more
   * than the check.
   */
  checkNow(token: string | undefined): SessionCheck | Promise<SessionCheck>;
  /** The same check by the session's id (the token's SHA-256). */
  checkHash(tokenHash: string): Promise<SessionCheck>;
  /** Ends the session of a token; false when it was not live. */
  revoke(token: string, reason?: string): Promise<boolean>;
  /** A session by its id (the token's SHA-256), live or not, with its state now, for the internal API. */
  byId(id: string): Promise<SessionLookup | null>;
  /** Ends a session by its id. */
  revokeById(id: string, reason?: string): Promise<boolean>;
  /** Drops the cached user so the next read sees a change (a phone number saved). */
  forgetUser(appid: string, openid: string): void;
  /** Ends every session of a user. */
  revokeUser(appid: string, openid: string, reason?: string): Promise<number>;
  /** Called with the ids of sessions this instance ends (revoked, logged out, over maxPerUser). */
  onEnded(listener: (tokenHashes: readonly string[]) => void): void;
  /** Sessions any instance ended at or after `since` (epoch ms), oldest first, at most 1000. */
  endedSince(since: number): Promise<{ tokenHash: string; revokedAt: number }[]>;
  /** Marks a session used now (an open WebSocket counts as use). */
  keepAlive(session: Pick<ActiveSession, 'tokenHash' | 'appid' | 'openid'>): void;
  /** The user behind a session, cached like sessions (one second), or null when deleted. */
  userOf(session: ActiveSession): Promise<UserRecord | null>;
  /** userOf() without a promise when the user is cached. */
  userNow(session: ActiveSession): UserRecord | null | Promise<UserRecord | null>;
  /** WeChat's session_key for a live session (server side only; never sent out). */
  sessionKey(session: ActiveSession): Promise<string | null>;
  /** Keeps a new session_key on a session (after resetUserSessionKey). */
  setSessionKey(session: ActiveSession, sessionKey: string): Promise<void>;
  /** Deletes sessions that ended long ago. */
  purge(olderThanMs: number): Promise<number>;
  /** Waits for last-seen writes in flight. */
  flush(): Promise<void>;
}

export interface SessionServiceDeps {
  store: Store;
  apps: ReadonlyMap<string, AppConfig>;
  box: SecretBox;
  clock: Clock;
  random: Random;
  logger: Logger;
}

interface CacheEntry<T> {
  value: T;
  fetchedAt: number;
}

/**
 * A small read-through cache on real time (not the injected clock: it bounds staleness) with a
 * single flight per key, bounded in size (oldest entries go first).
 */
function createReadCache<T>(ttlMs: number, maxEntries: number) {
  const entries = new Map<string, CacheEntry<T>>();
  const inflight = new Map<string, Promise<T>>();
  const put = (key: string, value: T) => {
    entries.delete(key);
    entries.set(key, { value, fetchedAt: performance.now() });
    if (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
  };
  const load = async (key: string, read: () => Promise<T>): Promise<T> => {
    let pending = inflight.get(key);
    if (!pending) {
      pending = read().finally(() => inflight.delete(key));
      inflight.set(key, pending);
    }
    const value = await pending;
    put(key, value);
    return value;
  };
  return {
    /** The cached value when fresh, without a promise; else the read's promise (one read at a time per key). */
    now(key: string, read: () => Promise<T>): T | Promise<T> {
      const entry = entries.get(key);
      return entry && performance.now() - entry.fetchedAt < ttlMs ? entry.value : load(key, read);
    },
    put,
    delete: (key: string) => entries.delete(key),
  };
}

export function createSessionService(deps: SessionServiceDeps): SessionService {
  const { store, apps, box, clock, random, logger } = deps;
  const sessionCache = createReadCache<SessionRecord | null>(SESSION_CACHE_TTL_MS, SESSION_CACHE_MAX_ENTRIES);
  const userCache = createReadCache<UserRecord | null>(SESSION_CACHE_TTL_MS, SESSION_CACHE_MAX_ENTRIES);
  const userKey = (appid: string, openid: string) => `${appid}\n${openid}`;
  const writes = new Set<Promise<void>>();

  function toActive(record: SessionRecord, app: AppConfig): ActiveSession {
    return {
      tokenHash: record.tokenHash,
      appid: record.appid,
      openid: record.openid,
      unionid: record.unionid,
      createdAt: record.createdAt,
      expiresAt: Math.min(record.lastSeenAt + app.session.idle, record.expiresAt),
      absoluteExpiresAt: record.expiresAt,
    };
  }

  /** The check of a token's hash: answered from the cache when it can, else after the store's read. */
  function checkHashNow(hash: string): SessionCheck | Promise<SessionCheck> {
    const record = sessionCache.now(hash, () => store.findSession(hash));
    return record instanceof Promise ? record.then(verdict) : verdict(record);
  }

  function verdict(record: SessionRecord | null): SessionCheck {
    if (!record) return { ok: false, reason: 'SESSION_INVALID' };
    const app = apps.get(record.appid);
    if (!app) return { ok: false, reason: 'SESSION_INVALID' };
    if (record.revokedAt !== null) return { ok: false, reason: 'SESSION_REVOKED' };
    const now = clock.now();
    if (now >= record.expiresAt || now >= record.lastSeenAt + app.session.idle) {
      return { ok: false, reason: 'SESSION_EXPIRED' };
    }
    touch(record, now);
    return { ok: true, session: toActive(record, app) };
  }

  function checkNow(token: string | undefined): SessionCheck | Promise<SessionCheck> {
    if (token === undefined) return { ok: false, reason: 'SESSION_MISSING' };
    if (!isWellFormedToken(token)) return { ok: false, reason: 'SESSION_INVALID' };
    return checkHashNow(hashToken(token));
  }

  function userNow(session: ActiveSession): UserRecord | null | Promise<UserRecord | null> {
    return userCache.now(userKey(session.appid, session.openid), () => store.findUser(session.appid, session.openid));
  }

  const endedListeners: ((hashes: readonly string[]) => void)[] = [];
  const ended = (hashes: readonly string[]) => {
    if (hashes.length) for (const listener of endedListeners) listener(hashes);
  };

  function touch(record: SessionRecord, now: number): void {
    if (now - record.lastSeenAt < LAST_SEEN_WRITE_INTERVAL_MS) return;
    const previous = record.lastSeenAt;
    record.lastSeenAt = now; // the cached copy, so this instance does not write again at once
    const write = store
      .touchSession(record, now)
      .catch((error: unknown) => {
        record.lastSeenAt = previous;
        logger.warn({ code: (error as { code?: string }).code }, 'session: last-seen write failed');
      })
      .finally(() => writes.delete(write));
    writes.add(write);
  }

  return {
    async create(input) {
      const now = clock.now();
      const token = newToken(random);
      const record: SessionRecord = {
        tokenHash: hashToken(token),
        appid: input.app.appid,
        openid: input.openid,
        unionid: input.unionid,
        sessionKey: box.seal(input.sessionKey),
        createdAt: now,
        lastSeenAt: now,
        expiresAt: now + input.app.session.absolute,
        revokedAt: null,
        revokedReason: null,
        ...(input.client ? { clientAddress: input.client.address.slice(0, 64), userAgent: input.client.userAgent } : {}),
      };
      const { user, revokedHashes } = await store.saveLogin({
        session: record,
        profile: input.profile,
        maxPerUser: input.app.session.maxPerUser,
        idleMs: input.app.session.idle,
      });
      for (const hash of revokedHashes) sessionCache.delete(hash);
      ended(revokedHashes);
      // A client's first request comes right after its login: answered without a read.
      sessionCache.put(record.tokenHash, record);
      userCache.put(userKey(user.appid, user.openid), user);
      return { token, session: toActive(record, input.app), user };
    },

    async check(token) {
      return checkNow(token);
    },

    checkNow,

    async checkHash(hash) {
      return checkHashNow(hash);
    },


    async revoke(token, reason = 'logout') {
      if (!isWellFormedToken(token)) return false;
      const hash = hashToken(token);
      sessionCache.delete(hash);
      const changed = await store.revokeSession(hash, clock.now(), reason);
      sessionCache.delete(hash);
      if (changed) ended([hash]);
      return changed;
    },

    async byId(id) {
      if (!/^[0-9a-f]{64}$/.test(id)) return null;
      const record = await store.findSession(id);
      if (!record) return null;
      const idle = apps.get(record.appid)?.session.idle ?? 0;
      const endsAt = Math.min(record.lastSeenAt + idle, record.expiresAt);
      const status = record.revokedAt !== null ? 'revoked' : clock.now() >= endsAt ? 'expired' : 'active';
      return { record, status, endsAt };
    },

    async revokeById(id, reason = 'admin') {
      if (!/^[0-9a-f]{64}$/.test(id)) return false;
      sessionCache.delete(id);
      const changed = await store.revokeSession(id, clock.now(), reason);
      sessionCache.delete(id);
      if (changed) ended([id]);
      return changed;
    },

    forgetUser: (appid, openid) => userCache.delete(userKey(appid, openid)),

    async revokeUser(appid, openid, reason = 'admin') {
      const hashes = await store.revokeUserSessions(appid, openid, clock.now(), reason);
      for (const hash of hashes) sessionCache.delete(hash);
      ended(hashes);
      return hashes.length;
    },

    onEnded(listener) {
      endedListeners.push(listener);
    },

    async endedSince(since) {
      const rows = await store.revokedSince(since, 1000);
      for (const row of rows) sessionCache.delete(row.tokenHash);
      return rows;
    },

    keepAlive(session) {
      const now = clock.now();
      store.touchSession(session, now).catch((error: unknown) => logger.warn({ code: (error as { code?: string }).code }, 'session: last-seen write failed'));
    },

    async userOf(session) {
      return userNow(session);
    },

    userNow,

    async sessionKey(session) {
      const record = await store.findSession(session.tokenHash);
      if (!record?.sessionKey) return null;
      const key = box.open(record.sessionKey);
      if (key === null) logger.error({ tokenHash: session.tokenHash.slice(0, 8) }, 'session: session_key does not open with this secret key');
      return key;
    },

    async setSessionKey(session, sessionKey) {
      const sealed = box.seal(sessionKey);
      await storeOp('setSessionKey', () => store.db.updateTable('sessions').set({ session_key: sealed }).where('token_hash', '=', session.tokenHash).execute());
    },

    purge: (olderThanMs) => store.purgeSessions(clock.now() - olderThanMs),

    async flush() {
      await Promise.all([...writes]);
    },
  };
}
