/**
 * A login's writes: the user (created, or marked seen), the new session, and the end of the user's
 * oldest live sessions beyond maxPerUser — atomically, in as few statements as each database
 * allows (issue 17: every statement of a login is a round trip to MariaDB or PostgreSQL, and on
 * SQLite each costs Kysely's building and compiling, so the statements are prepared once).
 *
 *   PostgreSQL      one statement (data-modifying WITH parts), no BEGIN/COMMIT; the transaction
 *                   below when a concurrent write to the user row makes its snapshot too old
 *   SQLite          BEGIN, upsert returning the user and the sessions over the limit, session
 *                   insert, [revocation], COMMIT
 *   MySQL/MariaDB   BEGIN, upsert, session insert, the user with its other live sessions,
 *                   [revocation], COMMIT
 *
 * What every path guarantees, as the one transaction before it did: the user row and the session
 * are written together or not at all; every login writes the user row first, and the sessions over
 * the limit are chosen from data that includes every login of the user committed before this one
 * took that row's lock — so logins of one user at once still leave at most maxPerUser live
 * sessions; the new session is never one of those ended; the ended ones get reason 'limit'.
 */
import { sql, type Kysely } from 'kysely';
import type { DialectName } from './dialects.js';
import { prepare } from './prepared.js';
import { revokeSessions, toUserRecord, type SessionRecord, type UserRecord } from './records.js';
import type { Database, UsersTable } from './schema.js';

export interface SaveLoginInput {
  session: SessionRecord;
  /** A profile from decrypted user data, or null to keep the saved one. */
  profile: Record<string, unknown> | null;
  /** Live sessions the user may keep, counting the new one. */
  maxPerUser: number;
  idleMs: number;
}

export interface SaveLoginResult {
  user: UserRecord;
  /** Sessions ended because the user went over maxPerUser. */
  revokedHashes: string[];
}

/** The values a login's statements bind. */
interface LoginValues extends Record<string, unknown> {
  appid: string;
  openid: string;
  unionid: string | null;
  profile: string | null;
  tokenHash: string;
  sessionKey: string | null;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  revokedAt: number | null;
  revokedReason: string | null;
  clientAddress: string | null;
  userAgent: string | null;
  /** A session last used at or before this is idle (not live). */
  idleBefore: number;
  /** How many of the user's other live sessions stay (newest first); the rest end. */
  keep: number;
}

function loginValues(input: SaveLoginInput): LoginValues {
  const { session } = input;
  return {
    appid: session.appid,
    openid: session.openid,
    unionid: session.unionid,
    profile: input.profile ? JSON.stringify(input.profile) : null,
    tokenHash: session.tokenHash,
    sessionKey: session.sessionKey,
    createdAt: session.createdAt,
    lastSeenAt: session.lastSeenAt,
    expiresAt: session.expiresAt,
    revokedAt: session.revokedAt,
    revokedReason: session.revokedReason,
    clientAddress: session.clientAddress ?? null,
    userAgent: session.userAgent ?? null,
    idleBefore: session.createdAt - input.idleMs,
    keep: Math.max(0, input.maxPerUser - 1),
  };
}

/** Hashes from a space-separated list (as the aggregates below return them). */
function hashList(list: string | null | undefined): string[] {
  return list ? list.split(' ').map((hash) => hash.trim()) : [];
}

type UserRow = UsersTable & { excess: string | null };

/**
 * What saveLogin runs for one store: the statements are built and compiled here, once.
 * `keepParsed` (dialects.ts) makes PostgreSQL parse and plan the one statement once per connection.
 */
export function loginWriter(
  db: Kysely<Database>,
  dialect: DialectName,
  keepParsed: (sql: string) => void = () => {},
): (input: SaveLoginInput) => Promise<SaveLoginResult> {
  type V = <K extends keyof LoginValues & string>(name: K) => LoginValues[K];

  const insertSession = prepare<LoginValues, never>(db, (v) =>
    db.insertInto('sessions').values({
      token_hash: v('tokenHash'),
      appid: v('appid'),
      openid: v('openid'),
      unionid: v('unionid'),
      session_key: v('sessionKey'),
      created_at: v('createdAt'),
      last_seen_at: v('lastSeenAt'),
      expires_at: v('expiresAt'),
      revoked_at: v('revokedAt'),
      revoked_reason: v('revokedReason'),
      client_address: v('clientAddress'),
      user_agent: v('userAgent'),
    }),
  );

  /** The user's other live sessions, newest first (ties by hash, so every database agrees); callers skip the first `keep`. */
  const overQuery = (v: V) =>
    db
      .selectFrom('sessions')
      .select(['token_hash', 'created_at'])
      .where('appid', '=', v('appid'))
      .where('openid', '=', v('openid'))
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', v('createdAt'))
      .where('last_seen_at', '>', v('idleBefore'))
      .where('token_hash', '!=', v('tokenHash'))
      .orderBy('created_at', 'desc')
      .orderBy('token_hash', 'desc');

  const userValues = (v: V) => ({
    appid: v('appid'),
    openid: v('openid'),
    unionid: v('unionid'),
    profile: v('profile'),
    phone_number: sql<null>`NULL`,
    first_seen_at: v('createdAt'),
    last_seen_at: v('createdAt'),
  });

  /**
   * The user upsert of SQLite and of PostgreSQL's transaction path (ON CONFLICT): a unionid or
   * profile the login does not bring keeps the saved one; last-seen never goes back. `greatest`:
   * SQLite's two-argument MAX, PostgreSQL's GREATEST.
   */
  const upsertUser = (v: V, greatest: 'MAX' | 'GREATEST') =>
    db
      .insertInto('users')
      .values(userValues(v))
      .onConflict((oc) =>
        oc.columns(['appid', 'openid']).doUpdateSet({
          unionid: sql`COALESCE(excluded.unionid, users.unionid)`,
          profile: sql`COALESCE(excluded.profile, users.profile)`,
          last_seen_at: sql`${sql.raw(greatest)}(excluded.last_seen_at, users.last_seen_at)`,
        }),
      );

  if (dialect === 'sqlite') {
    // SQLite runs one transaction at a time on its one connection, so the upsert's RETURNING can
    // read the sessions over the limit in the same statement (before this login's session is
    // inserted; its hash is left out all the same). SQLite ≥ 3.44 (better-sqlite3 bundles it) for
    // ORDER BY inside string_agg.
    const upsert = prepare<LoginValues, UserRow>(db, (v) =>
      upsertUser(v, 'MAX')
        .returning([
          'appid',
          'openid',
          'unionid',
          'profile',
          'phone_number',
          'first_seen_at',
          'last_seen_at',
          sql<string | null>`(SELECT string_agg(token_hash, ' ' ORDER BY created_at DESC, token_hash DESC) FROM ${overQuery(v).limit(sql.lit(-1)).offset(v('keep'))})`.as('excess'),
        ]),
    );
    return (input) =>
      db.transaction().execute(async (trx) => {
        const values = loginValues(input);
        const row = (await upsert.run(trx, values)).rows[0];
        if (!row) throw new Error('user row missing after upsert');
        await insertSession.run(trx, values);
        const over = hashList(row.excess);
        await revokeSessions(trx, over, values.createdAt, 'limit'); // a statement only when there are some
        return { user: toUserRecord(row), revokedHashes: over };
      });
  }

  if (dialect === 'mysql') {
    // MySQL has no RETURNING (MariaDB's is MariaDB-only): the user is read back in the statement
    // that finds its other live sessions. It runs after the upsert took the user row's lock; on
    // InnoDB a transaction's snapshot is taken at its first plain read, so this one sees every
    // login of the user that committed before.
    const upsert = prepare<LoginValues, never>(db, (v) =>
      db
        .insertInto('users')
        .values(userValues(v))
        .onDuplicateKeyUpdate({
          unionid: sql`COALESCE(VALUES(unionid), unionid)`,
          profile: sql`COALESCE(VALUES(profile), profile)`,
          last_seen_at: sql`GREATEST(VALUES(last_seen_at), last_seen_at)`,
        }),
    );
    // A plain LEFT JOIN of the user's live sessions, the ones over the limit sliced off here: the
    // server spends less on it than on a derived table with LIMIT/OFFSET (about 107 against 130–170
    // µs of MariaDB CPU a run, measured) or on the two reads it replaces.
    const userAndLive = prepare<LoginValues, UsersTable & { live_hash: string | null }>(db, (v) =>
      db
        .selectFrom('users')
        .leftJoin('sessions', (join) =>
          join
            .onRef('sessions.appid', '=', 'users.appid')
            .onRef('sessions.openid', '=', 'users.openid')
            .on('sessions.revoked_at', 'is', null)
            .on('sessions.expires_at', '>', v('createdAt'))
            .on('sessions.last_seen_at', '>', v('idleBefore'))
            .on('sessions.token_hash', '!=', v('tokenHash')),
        )
        .select([
          'users.appid',
          'users.openid',
          'users.unionid',
          'users.profile',
          'users.phone_number',
          'users.first_seen_at',
          'users.last_seen_at',
          'sessions.token_hash as live_hash',
        ])
        .where('users.appid', '=', v('appid'))
        .where('users.openid', '=', v('openid'))
        .orderBy('sessions.created_at', 'desc')
        .orderBy('sessions.token_hash', 'desc'),
    );
    return (input) =>
      db.transaction().execute(async (trx) => {
        const values = loginValues(input);
        await upsert.run(trx, values);
        await insertSession.run(trx, values);
        const rows = (await userAndLive.run(trx, values)).rows;
        if (!rows[0]) throw new Error('user row missing after upsert');
        const over = rows.flatMap((row) => (row.live_hash === null ? [] : [row.live_hash.trim()])).slice(values.keep);
        await revokeSessions(trx, over, values.createdAt, 'limit'); // a statement only when there are some
        return { user: toUserRecord(rows[0]), revokedHashes: over };
      });
  }

  // PostgreSQL. One statement is atomic on its own; its parts all read one snapshot, taken when it
  // starts. That snapshot can miss a login of the same user that committed while this statement
  // waited for the user row's lock (or just before it took it) — and so miss that login's session
  // when counting. Every login writes the user row first, so such a login left a newer version of
  // the row than the one in the snapshot: the upsert compares the version it locked with the one
  // in its snapshot (xmin, the id of the transaction that wrote a row version) and does nothing
  // when they differ — then no part writes anything (the session insert and the revocation hang
  // on the upsert's row), the statement returns no row, and the login runs as a transaction whose
  // statements each take a fresh snapshot after the lock. A last-seen write racing the login
  // (touchSession, at most once a minute per session) takes that path too: correct, slower, rare.
  //
  // A login is as durable on PostgreSQL as on SQLite (WAL, synchronous NORMAL): committed in order,
  // kept across a crash of minigate, possibly lost with the last instants before a crash of the
  // database or the machine — the client then logs in again (docs/operations.md). Not waiting for
  // the WAL flush doubles logins per second; only logins, payments keep the default. In the one
  // statement, set_config(…, true) holds until its implicit transaction commits, which is when the
  // setting counts (measured: 300 such single-statement commits, 2 WAL flushes; without it, 300).
  // It sits in the upsert's source so that it runs before anything is written, whatever the plan.
  const oneStatement = prepare<LoginValues, UserRow>(
    db,
    (v) => sql`
      WITH seen AS (
        SELECT xmin AS version FROM users WHERE appid = ${v('appid')} AND openid = ${v('openid')}
      ), u AS (
        INSERT INTO users (appid, openid, unionid, profile, phone_number, first_seen_at, last_seen_at)
        SELECT ${v('appid')}::text, ${v('openid')}::text, ${v('unionid')}::text, ${v('profile')}::text, NULL, ${v('createdAt')}::bigint, ${v('createdAt')}::bigint
        FROM (SELECT set_config('synchronous_commit', 'off', true)) AS durability
        ON CONFLICT (appid, openid) DO UPDATE SET
          unionid = COALESCE(excluded.unionid, users.unionid),
          profile = COALESCE(excluded.profile, users.profile),
          last_seen_at = GREATEST(excluded.last_seen_at, users.last_seen_at)
        WHERE users.xmin = (SELECT version FROM seen)
        RETURNING appid, openid, unionid, profile, phone_number, first_seen_at, last_seen_at
      ), s AS (
        INSERT INTO sessions (token_hash, appid, openid, unionid, session_key, created_at, last_seen_at, expires_at, revoked_at, revoked_reason, client_address, user_agent)
        SELECT ${v('tokenHash')}::text, u.appid, u.openid, ${v('unionid')}::text, ${v('sessionKey')}::text, ${v('createdAt')}::bigint, ${v('lastSeenAt')}::bigint,
          ${v('expiresAt')}::bigint, ${v('revokedAt')}::bigint, ${v('revokedReason')}::text, ${v('clientAddress')}::text, ${v('userAgent')}::text
        FROM u
      ), excess AS (
        SELECT token_hash, created_at FROM sessions
        WHERE appid = ${v('appid')} AND openid = ${v('openid')} AND revoked_at IS NULL
          AND expires_at > ${v('createdAt')}::bigint AND last_seen_at > ${v('idleBefore')}::bigint
        ORDER BY created_at DESC, token_hash DESC
        OFFSET ${v('keep')}::bigint
      ), r AS (
        UPDATE sessions SET revoked_at = ${v('createdAt')}::bigint, revoked_reason = 'limit'
        WHERE appid = ${v('appid')} AND openid = ${v('openid')} AND token_hash IN (SELECT token_hash FROM excess)
          AND revoked_at IS NULL AND EXISTS (SELECT 1 FROM u)
      )
      SELECT u.appid, u.openid, u.unionid, u.profile, u.phone_number, u.first_seen_at, u.last_seen_at,
        (SELECT string_agg(token_hash, ' ' ORDER BY created_at DESC, token_hash DESC) FROM excess) AS excess
      FROM u`,
  );
  // Named, its columns listed: a column added to users later does not change a kept plan's result.
  keepParsed(oneStatement.sql);
  const upsert = prepare<LoginValues, UsersTable>(db, (v) => upsertUser(v, 'GREATEST').returningAll());
  const over = prepare<LoginValues, { token_hash: string }>(db, (v) => overQuery(v).offset(v('keep')));
  return async (input) => {
    const values = loginValues(input);
    const row = (await oneStatement.run(db, values)).rows[0];
    if (row) return { user: toUserRecord(row), revokedHashes: hashList(row.excess) };
    return db.transaction().execute(async (trx) => {
      await sql`SET LOCAL synchronous_commit = off`.execute(trx);
      const user = (await upsert.run(trx, values)).rows[0];
      if (!user) throw new Error('user row missing after upsert');
      await insertSession.run(trx, values);
      const hashes = (await over.run(trx, values)).rows.map((r) => r.token_hash.trim());
      await revokeSessions(trx, hashes, values.createdAt, 'limit');
      return { user: toUserRecord(user), revokedHashes: hashes };
    });
  };
}
