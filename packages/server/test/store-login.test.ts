/**
 * A login's writes (store/login.ts) on SQLite, MariaDB and PostgreSQL: the statements a login
 * costs (counted by the store's query timer, so the count cannot creep back up), maxPerUser over
 * returning logins, logins of one user at once from two instances, a login racing another one
 * held open on the user row, and the user row a returning login leaves.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Metrics } from '../src/core/index.js';
import { silentLogger } from '../src/core/logger.js';
import { createStore, type SessionRecord, type Store } from '../src/store/index.js';
import { captureLogs } from './helpers/capture-logger.js';
import { createTestDatabase, TEST_DIALECTS, type TestDatabase } from './helpers/databases.js';
import { sessionRecords } from './helpers/session-records.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 5, 1);
const APPID = 'wx0123456789abcdef';
const record = sessionRecords({ pad: 'c', start: T0, stepMs: 10, lifetimeMs: 30 * DAY, appid: APPID, sessionKey: 'v1.sealed' });
const session = (openid: string, overrides: Partial<SessionRecord> = {}): SessionRecord => record({ openid, ...overrides });

/** Metrics that keep the statement label of every query the store's timer observes. */
function statementLog(): { metrics: Metrics; statements: string[] } {
  const statements: string[] = [];
  const none = { inc: () => {}, bind: () => ({ inc: () => {} }) };
  return {
    statements,
    metrics: {
      counter: () => none,
      gauge: () => ({ set: () => {} }),
      histogram: (name) => ({
        observe: () => {},
        bind: (labels) => ({ observe: () => void (name === 'minigate_store_query_duration_seconds' && statements.push(labels.statement ?? '?')) }),
      }),
    },
  };
}

/** Statements of one login, by store: [without revocation, with one]. */
const STATEMENTS_PER_LOGIN = {
  // BEGIN, upsert returning the user and the sessions over the limit, session insert, [revocation], COMMIT
  sqlite: [['other', 'insert', 'insert', 'other'], ['other', 'insert', 'insert', 'update', 'other']],
  // BEGIN, upsert, session insert, the user with the sessions over the limit, [revocation], COMMIT
  mysql: [['other', 'insert', 'insert', 'select', 'other'], ['other', 'insert', 'insert', 'select', 'update', 'other']],
  // one statement, revocation included
  postgres: [['other'], ['other']],
};

describe.each(TEST_DIALECTS)('logins on %s', (dialect) => {
  let database: TestDatabase;
  let store: Store;
  /** A second instance on the same database (SQLite: the same one; a second connection there only waits on the first). */
  let other: Store;
  const log = statementLog();

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    store = await createStore({ url: database.url, logger: silentLogger(), metrics: log.metrics });
    await store.migrate();
    other = dialect === 'sqlite' ? store : await createStore({ url: database.url, logger: silentLogger() });
  });
  afterAll(async () => {
    if (other !== store) await other?.close();
    await store?.close();
    await database?.drop();
  });

  const live = async (openid: string) =>
    (
      await store.db
        .selectFrom('sessions')
        .select('token_hash')
        .where('appid', '=', APPID)
        .where('openid', '=', openid)
        .where('revoked_at', 'is', null)
        .orderBy('created_at', 'desc')
        .orderBy('token_hash', 'desc')
        .execute()
    ).map((row) => row.token_hash.trim());

  it('costs the same few statements for a new user and a returning one, the revocation only when there is one', async () => {
    const [plain, revoking] = STATEMENTS_PER_LOGIN[dialect];
    const login = async (s: SessionRecord) => {
      log.statements.length = 0;
      const result = await store.saveLogin({ session: s, profile: { nickName: 'n' }, maxPerUser: 2, idleMs: DAY });
      return { statements: [...log.statements], revoked: result.revokedHashes };
    };
    const first = session('o-count');
    expect(await login(first)).toEqual({ statements: plain, revoked: [] }); // new user
    expect(await login(session('o-count'))).toEqual({ statements: plain, revoked: [] }); // returning
    expect(await login(session('o-count'))).toEqual({ statements: revoking, revoked: [first.tokenHash] }); // returning, over the limit
  });

  it('keeps maxPerUser over returning logins: the oldest end with reason limit, newest first, the new one never', async () => {
    const made: SessionRecord[] = [];
    for (let i = 0; i < 6; i++) {
      const s = session('o-returning');
      made.push(s);
      const { revokedHashes, user } = await store.saveLogin({ session: s, profile: null, maxPerUser: 3, idleMs: DAY });
      expect(user.openid).toBe('o-returning');
      expect(revokedHashes).toEqual(i >= 3 ? [made[i - 3]!.tokenHash] : []);
      expect(await live('o-returning')).toEqual(made.slice(Math.max(0, i - 2)).map((m) => m.tokenHash).reverse());
    }
    for (const s of made.slice(0, 3)) expect(await store.findSession(s.tokenHash)).toMatchObject({ revokedReason: 'limit', revokedAt: s.createdAt + 30 });

    // A lower limit ends several at once, newest first; idle and expired sessions do not count.
    const idle = session('o-returning', { lastSeenAt: T0 - 2 * DAY });
    const expired = session('o-returning', { expiresAt: T0 });
    for (const s of [idle, expired]) await store.saveLogin({ session: s, profile: null, maxPerUser: 100, idleMs: DAY });
    const now = session('o-returning');
    const { revokedHashes } = await store.saveLogin({ session: now, profile: null, maxPerUser: 1, idleMs: DAY });
    expect(revokedHashes).toEqual(made.slice(3).map((m) => m.tokenHash).reverse());
    expect(await live('o-returning')).toEqual([now.tokenHash, expired.tokenHash, idle.tokenHash]);

    // maxPerUser 1 over and over: the previous session ends each time.
    let previous = now;
    for (let i = 0; i < 3; i++) {
      const next = session('o-returning');
      expect((await store.saveLogin({ session: next, profile: null, maxPerUser: 1, idleMs: DAY })).revokedHashes).toEqual([previous.tokenHash]);
      previous = next;
    }
  });

  it('updates the user row on a returning login: unionid and profile when given, last-seen never back, phone and first-seen kept', async () => {
    const first = session('o-user');
    const a = await store.saveLogin({ session: first, profile: { nickName: 'A' }, maxPerUser: 10, idleMs: DAY });
    expect(a.user).toEqual({ appid: APPID, openid: 'o-user', unionid: null, profile: { nickName: 'A' }, phoneNumber: null, firstSeenAt: first.createdAt, lastSeenAt: first.createdAt });
    expect(await store.setUserPhone(APPID, 'o-user', '+8613800000000')).toBe(true);

    const second = session('o-user', { unionid: 'u-user' });
    const b = await store.saveLogin({ session: second, profile: { nickName: 'B', avatarUrl: 'https://x/y.png' }, maxPerUser: 10, idleMs: DAY });
    expect(b.user).toEqual({
      appid: APPID,
      openid: 'o-user',
      unionid: 'u-user',
      profile: { nickName: 'B', avatarUrl: 'https://x/y.png' },
      phoneNumber: '+8613800000000',
      firstSeenAt: first.createdAt,
      lastSeenAt: second.createdAt,
    });
    expect(await store.findUser(APPID, 'o-user')).toEqual(b.user);

    // An instance with a slow clock logs the user in "earlier", with nothing new to say.
    const late = session('o-user', { createdAt: second.createdAt - 5, lastSeenAt: second.createdAt - 5 });
    const c = await store.saveLogin({ session: late, profile: null, maxPerUser: 10, idleMs: DAY });
    expect(c.user).toEqual(b.user);
    expect(await store.findUser(APPID, 'o-user')).toEqual(b.user);
    expect(await store.findSession(late.tokenHash)).toEqual(late);

    const third = session('o-user', { unionid: 'u-other' });
    const d = await store.saveLogin({ session: third, profile: null, maxPerUser: 10, idleMs: DAY });
    expect(d.user).toMatchObject({ unionid: 'u-other', profile: { nickName: 'B', avatarUrl: 'https://x/y.png' }, lastSeenAt: third.createdAt });
    expect(await store.findUser(APPID, 'o-user')).toEqual(d.user);
  });

  it('saves the client information recorded with a login, and none when not recorded', async () => {
    const recorded = session('o-client', { clientAddress: '203.0.113.7', userAgent: 'Mozilla/5.0 MicroMessenger' });
    const plain = session('o-client');
    await store.saveLogin({ session: recorded, profile: null, maxPerUser: 10, idleMs: DAY });
    await store.saveLogin({ session: plain, profile: null, maxPerUser: 10, idleMs: DAY });
    expect(await store.findSession(recorded.tokenHash)).toEqual(recorded);
    expect(await store.findSession(plain.tokenHash)).toEqual(plain);
  });

  it('leaves at most maxPerUser live sessions when one user logs in many times at once, from two instances', async () => {
    for (const [round, maxPerUser] of [1, 2, 3, 1, 2, 3].entries()) {
      const openid = `o-rush-${round}`;
      // Rounds 0–2: the user's first logins all at once; rounds 3–5: a returning user (three sessions already).
      if (round >= 3) for (let i = 0; i < 3; i++) await store.saveLogin({ session: session(openid), profile: null, maxPerUser: 10, idleMs: DAY });
      const sessions = Array.from({ length: 8 }, () => session(openid));
      const results = await Promise.all(
        sessions.map((s, i) => (i % 2 ? other : store).saveLogin({ session: s, profile: { n: i }, maxPerUser, idleMs: DAY })),
      );
      const left = await live(openid);
      expect(left.length, `round ${round}, maxPerUser ${maxPerUser}: ${left.length} live`).toBeLessThanOrEqual(maxPerUser);
      expect(left.length).toBeGreaterThanOrEqual(1);
      // Whatever a login reported as ended is ended, for the limit, and no login ended its own session.
      results.forEach((result, i) => expect(result.revokedHashes).not.toContain(sessions[i]!.tokenHash));
      for (const hash of results.flatMap((r) => r.revokedHashes)) expect((await store.findSession(hash))?.revokedReason).toBe('limit');
      expect((await store.findUser(APPID, openid))?.lastSeenAt).toBe(Math.max(...sessions.map((s) => s.createdAt)));
    }
  });

  // A login that starts while another login of the same user holds the user row: it waits for the
  // lock, and must then count the session the other one committed (PostgreSQL: its statement's
  // snapshot predates that commit, so it takes the transaction path; MariaDB: its first plain
  // read comes after the lock). SQLite has one writer at a time: no login waits inside another's.
  if (dialect !== 'sqlite') it('counts the session of a login that committed while this one waited for the user row', async () => {
    const openid = 'o-held';
    const existing = session(openid);
    await store.saveLogin({ session: existing, profile: null, maxPerUser: 10, idleMs: DAY });
    const held = session(openid);
    const waiting = session(openid);

    let commit!: () => void;
    let heldOpen!: () => void;
    const opened = new Promise<void>((resolve) => (heldOpen = resolve));
    const holder = other.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ last_seen_at: held.createdAt }).where('appid', '=', APPID).where('openid', '=', openid).execute();
      await trx
        .insertInto('sessions')
        .values({ token_hash: held.tokenHash, appid: APPID, openid, unionid: null, session_key: 'v1.sealed', created_at: held.createdAt, last_seen_at: held.createdAt, expires_at: held.expiresAt, revoked_at: null, revoked_reason: null })
        .execute();
      heldOpen();
      await new Promise<void>((resolve) => (commit = resolve));
    });
    await opened;
    log.statements.length = 0;
    const login = store.saveLogin({ session: waiting, profile: null, maxPerUser: 2, idleMs: DAY });
    // Until the login waits on the row lock (asked through the other instance: the timer counts only this one's statements).
    const waitingNow =
      dialect === 'postgres'
        ? sql<{ n: string | number }>`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`
        : sql<{ n: string | number }>`SELECT count(*) AS n FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()`;
    // (InnoDB refreshes INNODB_TRX only when it was not read for 0.1 s: asking faster never sees the wait.)
    for (let i = 0; Number((await waitingNow.execute(other.db)).rows[0]?.n ?? 0) === 0; i++) {
      if (i > 40) throw new Error('the login never waited for the user row');
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    commit();
    await holder;
    const { revokedHashes } = await login;
    const statements = [...log.statements];
    expect(revokedHashes).toEqual([existing.tokenHash]);
    expect(await live(openid)).toEqual([waiting.tokenHash, held.tokenHash]);
    // PostgreSQL: the one statement wrote nothing, then the transaction (BEGIN, SET LOCAL, upsert, insert, select, revocation, COMMIT).
    expect(statements).toEqual(dialect === 'postgres' ? ['other', 'other', 'other', 'insert', 'insert', 'select', 'update', 'other'] : STATEMENTS_PER_LOGIN.mysql[1]);
  });
});


describe('the PostgreSQL login statement, parsed once per connection', () => {
  it('runs as a named prepared statement, and unnamed from the first time the server does not know the name', async () => {
    const database = await createTestDatabase('postgres');
    const logs = captureLogs();
    const store = await createStore({ url: database.url, logger: logs.logger });
    // Everything here runs one thing at a time, and the pool hands out the client released last:
    // each step below is on the same connection.
    const prepared = async () => (await sql<{ name: string }>`SELECT name FROM pg_prepared_statements ORDER BY name`.execute(store.db)).rows.map((row) => row.name);
    try {
      await store.migrate();
      const first = session('o-named');
      await store.saveLogin({ session: first, profile: null, maxPerUser: 1, idleMs: DAY });
      expect(await prepared()).toEqual([expect.stringMatching(/^minigate_[0-9a-f]{24}$/)]);
      // What a pooler in transaction mode without prepared statements amounts to: the server
      // connection under this client does not have the statement.
      await sql`DEALLOCATE ALL`.execute(store.db);
      const second = session('o-named');
      expect((await store.saveLogin({ session: second, profile: { nickName: 'B' }, maxPerUser: 1, idleMs: DAY })).revokedHashes).toEqual([first.tokenHash]);
      expect(logs.text()).toContain('refused a named prepared statement');
      const third = session('o-named');
      expect((await store.saveLogin({ session: third, profile: null, maxPerUser: 1, idleMs: DAY })).revokedHashes).toEqual([second.tokenHash]);
      expect(await prepared()).toEqual([]);
      expect(await store.findUser(APPID, 'o-named')).toMatchObject({ profile: { nickName: 'B' }, lastSeenAt: third.createdAt });
    } finally {
      await store.close();
      await database.drop();
    }
  });
});
