/**
 * The data layer: one interface over SQLite, MySQL/MariaDB and PostgreSQL.
 *
 * Contract: every method either completes or throws an AppError — STORE_UNAVAILABLE when the
 * database cannot be reached or is busy (the caller may retry; nothing was half-written, since
 * multi-row changes run in one transaction), INTERNAL for anything else. No method waits longer
 * than STORE_OP_TIMEOUT_MS. The store keeps no state of its own between calls, so a database
 * that comes back is used again without a restart.
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Logger, Metrics } from '../core/index.js';
import { openDatabase, type DialectName } from './dialects.js';
import { queryTimer, type PoolUse } from './metrics.js';
import { isUniqueViolation, storeOp } from './errors.js';
import { runMigrations, type MigrationReport } from './migrations.js';
import { loginWriter, type SaveLoginInput, type SaveLoginResult } from './login.js';
import {
  liveSessionHashes,
  lookups,
  purgeSessions,
  revokeSessions,
  setUserPhone,
  touchSession,
  type SessionRecord,
  type UserRecord,
} from './records.js';
import type { Database, OutboxTable } from './schema.js';

export type { SaveLoginInput, SaveLoginResult };

export interface Store {
  readonly dialect: DialectName;
  /** The URL with its password hidden. */
  readonly redactedUrl: string;
  /** The connection pool's use now, for the pool gauges (undefined for SQLite: no pool). */
  poolUse(): PoolUse | undefined;
  /** Applies pending migrations. */
  migrate(): Promise<MigrationReport>;
  /** Saves a login atomically: the user, the new session, and the ending of sessions over the limit. */
  saveLogin(input: SaveLoginInput): Promise<SaveLoginResult>;
  findSession(tokenHash: string): Promise<SessionRecord | null>;
  touchSession(session: Pick<SessionRecord, 'tokenHash' | 'appid' | 'openid'>, now: number): Promise<void>;
  /** Sessions revoked at or after `since`, oldest first. */
  revokedSince(since: number, limit: number): Promise<{ tokenHash: string; revokedAt: number }[]>;
  /** Ends one session; false when it was unknown or already ended. */
  revokeSession(tokenHash: string, now: number, reason: string): Promise<boolean>;
  /** Ends all live sessions of a user; returns their hashes. */
  revokeUserSessions(appid: string, openid: string, now: number, reason: string): Promise<string[]>;
  findUser(appid: string, openid: string): Promise<UserRecord | null>;
  /** Saves the user's phone number; false when there is no such user. */
  setUserPhone(appid: string, openid: string, phoneNumber: string): Promise<boolean>;
  purgeSessions(before: number): Promise<number>;
  /** The value of a meta key; when absent and `init` is given, stores and returns `init`. */
  meta(key: string, init?: string): Promise<string | null>;
  /** Shared small state: the value of a key, or null. */
  kvGet(key: string): Promise<string | null>;
  kvSet(key: string, value: string, now: number): Promise<void>;
  kvDelete(key: string): Promise<void>;
  /**
   * Takes the lease `name` for `owner` until now + ttlMs when it is free, expired, or already
   * held by `owner` (which extends it); false when someone else holds it. Leases end by
   * themselves, so an instance that dies holding one does not block the others for long.
   */
  lockAcquire(name: string, owner: string, ttlMs: number, now: number): Promise<boolean>;
  lockRelease(name: string, owner: string): Promise<void>;
  /** Adds a delivery; false when (appid, dedupKey) is already there (a repeat). */
  outboxAdd(entry: { id: string; kind: string; appid: string; dedupKey: string; payload: string; now: number }): Promise<boolean>;
  /** Pending deliveries whose time has come. */
  outboxDue(now: number, limit: number): Promise<OutboxEntry[]>;
  /** Takes a delivery for `leaseUntil` (so another instance leaves it); false when someone took it first. */
  outboxClaim(entry: OutboxEntry, leaseUntil: number): Promise<boolean>;
  outboxDone(id: string, now: number): Promise<void>;
  /** Records a failed attempt: try again at `nextAt`, or give up when `nextAt` is null. */
  outboxRetry(id: string, attempts: number, nextAt: number | null, error: string): Promise<void>;
  outboxGet(id: string): Promise<OutboxEntry | null>;
  /** The latest deliveries, newest first (the admin console); `status` narrows them. */
  outboxRecent(limit: number, status?: OutboxEntry['status']): Promise<OutboxEntry[]>;
  /** Makes a delivery not yet delivered due now (an operator's retry); false when delivered or unknown. */
  outboxRetryNow(id: string, now: number): Promise<boolean>;
  /** Deletes finished deliveries (delivered or given up) created before `before`; returns how many. */
  outboxPurge(before: number): Promise<number>;
  /** A cheap round trip, to see the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** The Kysely instance, for other features' tables. */
  readonly db: Kysely<Database>;
}

export interface OutboxEntry {
  id: string;
  /** The kind of event (`push`, …); the outbox looks up where it goes by it. */
  kind: string;
  appid: string;
  dedupKey: string;
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: number;
  createdAt: number;
  deliveredAt: number | null;
  lastError: string | null;
}

function toOutboxEntry(row: Selectable<OutboxTable>): OutboxEntry {
  return {
    id: row.id,
    kind: row.kind,
    appid: row.appid,
    dedupKey: row.dedup_key,
    payload: row.payload,
    status: row.status,
    attempts: Number(row.attempts),
    nextAttemptAt: Number(row.next_attempt_at),
    createdAt: Number(row.created_at),
    deliveredAt: row.delivered_at === null ? null : Number(row.delivered_at),
    lastError: row.last_error,
  };
}

export interface StoreOptions {
  url: string;
  logger: Logger;
  /** minigate_store_query_duration_seconds (docs/metrics.md); nothing timed without it. */
  metrics?: Metrics;
}

export async function createStore(options: StoreOptions): Promise<Store> {
  const { db, dialect, redactedUrl, poolUse, keepParsed } = await openDatabase(options.url, options.logger, options.metrics ? { onQuery: queryTimer(options.metrics) } : {});

  const guard = storeOp;
  const saveLogin = loginWriter(db, dialect, keepParsed);
  const { findSession, findUser } = lookups(db);

  return {
    dialect,
    redactedUrl,
    db,
    poolUse,
    migrate: () => guard('migrate', () => runMigrations(db)),

    saveLogin: (input) => guard('saveLogin', () => saveLogin(input)),

    findSession: (tokenHash) => guard('findSession', () => findSession(tokenHash)),
    touchSession: (session, now) => guard('touchSession', () => touchSession(db, session, now)),
    revokedSince: (since, limit) =>
      guard('revokedSince', async () =>
        (
          await db
            .selectFrom('sessions')
            .select(['token_hash', 'revoked_at'])
            .where('revoked_at', '>=', since)
            .orderBy('revoked_at')
            .limit(limit)
            .execute()
        ).map((row) => ({ tokenHash: row.token_hash, revokedAt: Number(row.revoked_at) })),
      ),
    revokeSession: (tokenHash, now, reason) =>
      guard('revokeSession', async () => (await revokeSessions(db, [tokenHash], now, reason)) > 0),
    revokeUserSessions: (appid, openid, now, reason) =>
      guard('revokeUserSessions', () =>
        db.transaction().execute(async (trx) => {
          const hashes = await liveSessionHashes(trx, appid, openid, now, null);
          await revokeSessions(trx, hashes, now, reason);
          return hashes;
        }),
      ),
    findUser: (appid, openid) => guard('findUser', () => findUser(appid, openid)),
    setUserPhone: (appid, openid, phone) => guard('setUserPhone', () => setUserPhone(db, appid, openid, phone)),
    purgeSessions: (before) => guard('purgeSessions', () => purgeSessions(db, before)),

    meta: (key, init) =>
      guard('meta', async () => {
        const row = await db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst();
        if (row) return row.value;
        if (init === undefined) return null;
        // Two instances may race here; the first value written wins and both return it.
        try {
          await db.insertInto('meta').values({ key, value: init }).execute();
        } catch {
          // fall through to read the winner
        }
        const again = await db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst();
        return again?.value ?? null;
      }),

    kvGet: (key) =>
      guard('kvGet', async () => (await db.selectFrom('kv').select('value').where('key', '=', key).executeTakeFirst())?.value ?? null),
    kvSet: (key, value, now) =>
      guard('kvSet', async () => {
        const updated = await db.updateTable('kv').set({ value, updated_at: now }).where('key', '=', key).executeTakeFirst();
        if (Number(updated.numUpdatedRows) > 0) return;
        try {
          await db.insertInto('kv').values({ key, value, updated_at: now }).execute();
        } catch {
          // Inserted by another instance meanwhile: the later write wins, as an update would.
          await db.updateTable('kv').set({ value, updated_at: now }).where('key', '=', key).execute();
        }
      }),
    kvDelete: (key) =>
      guard('kvDelete', async () => {
        await db.deleteFrom('kv').where('key', '=', key).execute();
      }),
    lockAcquire: (name, owner, ttlMs, now) =>
      guard('lockAcquire', async () => {
        const taken = await db
          .updateTable('locks')
          .set({ owner, expires_at: now + ttlMs })
          .where('name', '=', name)
          .where((eb) => eb.or([eb('expires_at', '<=', now), eb('owner', '=', owner)]))
          .executeTakeFirst();
        if (Number(taken.numUpdatedRows) > 0) return true;
        try {
          await db.insertInto('locks').values({ name, owner, expires_at: now + ttlMs }).execute();
          return true;
        } catch {
          return false; // held by another instance
        }
      }),
    lockRelease: (name, owner) =>
      guard('lockRelease', async () => {
        await db.deleteFrom('locks').where('name', '=', name).where('owner', '=', owner).execute();
      }),

    outboxAdd: (entry) =>
      guard('outboxAdd', async () => {
        try {
          await db
            .insertInto('outbox')
            .values({
              id: entry.id,
              kind: entry.kind,
              appid: entry.appid,
              dedup_key: entry.dedupKey,
              payload: entry.payload,
              status: 'pending',
              attempts: 0,
              next_attempt_at: entry.now,
              created_at: entry.now,
              delivered_at: null,
              last_error: null,
            })
            .execute();
          return true;
        } catch (error) {
          if (isUniqueViolation(error)) return false;
          throw error;
        }
      }),
    outboxDue: (now, limit) =>
      guard('outboxDue', async () =>
        (
          await db
            .selectFrom('outbox')
            .selectAll()
            .where('status', '=', 'pending')
            .where('next_attempt_at', '<=', now)
            .orderBy('next_attempt_at')
            .limit(limit)
            .execute()
        ).map(toOutboxEntry),
      ),
    outboxClaim: (entry, leaseUntil) =>
      guard('outboxClaim', async () => {
        const result = await db
          .updateTable('outbox')
          .set({ next_attempt_at: leaseUntil })
          .where('id', '=', entry.id)
          .where('status', '=', 'pending')
          .where('next_attempt_at', '=', entry.nextAttemptAt)
          .executeTakeFirst();
        return Number(result.numUpdatedRows) > 0;
      }),
    outboxDone: (id, now) =>
      guard('outboxDone', async () => {
        await db.updateTable('outbox').set({ status: 'delivered', delivered_at: now, last_error: null }).where('id', '=', id).execute();
      }),
    outboxRetry: (id, attempts, nextAt, error) =>
      guard('outboxRetry', async () => {
        await db
          .updateTable('outbox')
          .set({ attempts, status: nextAt === null ? 'failed' : 'pending', next_attempt_at: nextAt ?? 0, last_error: error.slice(0, 250) })
          .where('id', '=', id)
          .execute();
      }),
    outboxGet: (id) =>
      guard('outboxGet', async () => {
        const row = await db.selectFrom('outbox').selectAll().where('id', '=', id).executeTakeFirst();
        return row ? toOutboxEntry(row) : null;
      }),
    outboxRecent: (limit, status) =>
      guard('outboxRecent', async () => {
        let query = db.selectFrom('outbox').selectAll().orderBy('created_at', 'desc').orderBy('id').limit(limit);
        if (status) query = query.where('status', '=', status);
        return (await query.execute()).map(toOutboxEntry);
      }),
    outboxRetryNow: (id, now) =>
      guard('outboxRetryNow', async () => {
        const result = await db
          .updateTable('outbox')
          .set({ status: 'pending', next_attempt_at: now })
          .where('id', '=', id)
          .where('status', '!=', 'delivered')
          .executeTakeFirst();
        return Number(result.numUpdatedRows) > 0;
      }),
    outboxPurge: (before) =>
      guard('outboxPurge', async () => {
        const result = await db.deleteFrom('outbox').where('status', '!=', 'pending').where('created_at', '<', before).executeTakeFirst();
        return Number(result.numDeletedRows);
      }),

    ping: () =>
      guard('ping', async () => {
        await sql`select 1`.execute(db);
      }),
    close: () => db.destroy(),
  };
}
