/**
 * Queries over users and sessions, written once for all three databases. Each takes the
 * executor it runs on (the database or an open transaction) so callers can compose them
 * atomically.
 */
import type { Kysely, Selectable } from 'kysely';
import { prepare } from './prepared.js';
import type { Database, SessionsTable, UsersTable } from './schema.js';

type Executor = Kysely<Database>;

export interface SessionRecord {
  tokenHash: string;
  appid: string;
  openid: string;
  unionid: string | null;
  /** Encrypted session_key (opaque to the store). */
  sessionKey: string | null;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  revokedAt: number | null;
  revokedReason: string | null;
  /** Where the login came from (admin.recordClientInfo); absent when not recorded. */
  clientAddress?: string | null;
  userAgent?: string | null;
}

export interface UserRecord {
  appid: string;
  openid: string;
  unionid: string | null;
  /** The profile as saved (parsed JSON), or null. */
  profile: Record<string, unknown> | null;
  phoneNumber: string | null;
  firstSeenAt: number;
  lastSeenAt: number;
}

export function toSessionRecord(row: Selectable<SessionsTable>): SessionRecord {
  return {
    tokenHash: row.token_hash.trim(),
    appid: row.appid,
    openid: row.openid,
    unionid: row.unionid,
    sessionKey: row.session_key,
    createdAt: Number(row.created_at),
    lastSeenAt: Number(row.last_seen_at),
    expiresAt: Number(row.expires_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    revokedReason: row.revoked_reason,
    // Only when recorded (admin.recordClientInfo), so records from before read as they did.
    ...(row.client_address ? { clientAddress: row.client_address } : {}),
    ...(row.user_agent ? { userAgent: row.user_agent } : {}),
  };
}

export function toUserRecord(row: Selectable<UsersTable>): UserRecord {
  let profile: Record<string, unknown> | null = null;
  if (row.profile) {
    try {
      profile = JSON.parse(row.profile) as Record<string, unknown>;
    } catch {
      profile = null;
    }
  }
  return {
    appid: row.appid,
    openid: row.openid,
    unionid: row.unionid,
    profile,
    phoneNumber: row.phone_number,
    firstSeenAt: Number(row.first_seen_at),
    lastSeenAt: Number(row.last_seen_at),
  };
}

/**
 * The lookups of the session check's cache refills (every cached session and its user, about
 * once a second each while in use): prepared once (prepared.ts), since building and compiling
 * a Kysely query costs more than SQLite takes to answer it.
 */
export function lookups(db: Executor) {
  const user = prepare<{ appid: string; openid: string }, Selectable<UsersTable>>(db, (v) =>
    db.selectFrom('users').selectAll().where('appid', '=', v('appid')).where('openid', '=', v('openid')),
  );
  const session = prepare<{ tokenHash: string }, Selectable<SessionsTable>>(db, (v) =>
    db.selectFrom('sessions').selectAll().where('token_hash', '=', v('tokenHash')),
  );
  return {
    async findUser(appid: string, openid: string): Promise<UserRecord | null> {
      const row = (await user.run(db, { appid, openid })).rows[0];
      return row ? toUserRecord(row) : null;
    },
    async findSession(tokenHash: string): Promise<SessionRecord | null> {
      const row = (await session.run(db, { tokenHash })).rows[0];
      return row ? toSessionRecord(row) : null;
    },
  };
}

/**
 * The user's live sessions, newest first (ties broken by hash so every database agrees).
 * Live: not revoked, before the absolute end, and (when idleMs is given) used within the idle time.
 */
export async function liveSessionHashes(
  db: Executor,
  appid: string,
  openid: string,
  now: number,
  idleMs: number | null,
): Promise<string[]> {
  let query = db
    .selectFrom('sessions')
    .select('token_hash')
    .where('appid', '=', appid)
    .where('openid', '=', openid)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now);
  if (idleMs !== null) query = query.where('last_seen_at', '>', now - idleMs);
  const rows = await query
    .orderBy('created_at', 'desc')
    .orderBy('token_hash', 'desc')
    .execute();
  return rows.map((r) => r.token_hash.trim());
}

/** Marks sessions revoked; returns how many changed. */
export async function revokeSessions(
  db: Executor,
  tokenHashes: readonly string[],
  now: number,
  reason: string,
): Promise<number> {
  if (tokenHashes.length === 0) return 0;
  const result = await db
    .updateTable('sessions')
    .set({ revoked_at: now, revoked_reason: reason })
    .where('token_hash', 'in', tokenHashes)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Moves last_seen forward (never back) for the session and its user. */
export async function touchSession(db: Executor, session: Pick<SessionRecord, 'tokenHash' | 'appid' | 'openid'>, now: number): Promise<void> {
  await db
    .updateTable('sessions')
    .set({ last_seen_at: now })
    .where('token_hash', '=', session.tokenHash)
    .where('last_seen_at', '<', now)
    .execute();
  await db
    .updateTable('users')
    .set({ last_seen_at: now })
    .where('appid', '=', session.appid)
    .where('openid', '=', session.openid)
    .where('last_seen_at', '<', now)
    .execute();
}

export async function setUserPhone(db: Executor, appid: string, openid: string, phoneNumber: string): Promise<boolean> {
  const result = await db
    .updateTable('users')
    .set({ phone_number: phoneNumber })
    .where('appid', '=', appid)
    .where('openid', '=', openid)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Deletes sessions that ended (absolute end or revocation) before `before`. */
export async function purgeSessions(db: Executor, before: number): Promise<number> {
  const result = await db
    .deleteFrom('sessions')
    .where((eb) => eb.or([eb('expires_at', '<', before), eb('revoked_at', '<', before)]))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
