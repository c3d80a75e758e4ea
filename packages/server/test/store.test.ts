/**
 * The store suite, run against SQLite, MariaDB and PostgreSQL: same migrations, same queries,
 * same answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/core/logger.js';
import { isAppError } from '../src/core/errors.js';
import { createStore, MIGRATION_NAMES, type SessionRecord, type Store } from '../src/store/index.js';
import { runMigrations } from '../src/store/migrations.js';
import { createTestDatabase, TEST_DIALECTS, type TestDatabase } from './helpers/databases.js';
import { sessionRecords } from './helpers/session-records.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 5, 1);
const session = sessionRecords({ pad: '0', start: T0, stepMs: 1, lifetimeMs: 30 * DAY, appid: 'wx0123456789abcdef', openid: 'o-user-1', sessionKey: 'v1.sealed' });

describe.each(TEST_DIALECTS)('store on %s', (dialect) => {
  let database: TestDatabase;
  let store: Store;

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    store = await createStore({ url: database.url, logger: silentLogger() });
    await store.migrate();
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it('migrates once and then reports up to date', async () => {
    const again = await store.migrate();
    expect(again.applied).toEqual([]);
    expect(again.current).toEqual(MIGRATION_NAMES);
    expect(store.dialect).toBe(dialect);
  });

  it('saves a login: the user, the session, and reads them back', async () => {
    const s = session({ openid: 'o-save', unionid: 'u-save' });
    const { user, revokedHashes } = await store.saveLogin({
      session: s,
      profile: { nickName: '小明', gender: 1 },
      maxPerUser: 10,
      idleMs: 7 * DAY,
    });
    expect(revokedHashes).toEqual([]);
    expect(user).toMatchObject({ openid: 'o-save', unionid: 'u-save', profile: { nickName: '小明', gender: 1 } });
    expect(user.firstSeenAt).toBe(s.createdAt);
    expect(await store.findSession(s.tokenHash)).toEqual(s);
    expect(await store.findUser(s.appid, 'o-save')).toEqual(user);
  });

  it('keeps a known unionid and profile when a later login has none', async () => {
    const first = session({ openid: 'o-keep', unionid: 'u-keep' });
    await store.saveLogin({ session: first, profile: { nickName: 'A' }, maxPerUser: 10, idleMs: DAY });
    const second = session({ openid: 'o-keep', unionid: null, createdAt: first.createdAt + 1000 });
    const { user } = await store.saveLogin({ session: second, profile: null, maxPerUser: 10, idleMs: DAY });
    expect(user).toMatchObject({ unionid: 'u-keep', profile: { nickName: 'A' }, firstSeenAt: first.createdAt });
    expect(user.lastSeenAt).toBe(second.createdAt);
    const third = session({ openid: 'o-keep', createdAt: first.createdAt + 2000 });
    const updated = await store.saveLogin({ session: third, profile: { nickName: 'B' }, maxPerUser: 10, idleMs: DAY });
    expect(updated.user.profile).toEqual({ nickName: 'B' });
  });

  it('ends the oldest sessions beyond maxPerUser', async () => {
    const made: SessionRecord[] = [];
    for (let i = 0; i < 4; i++) {
      const s = session({ openid: 'o-limit', createdAt: T0 + 10_000 + i, lastSeenAt: T0 + 10_000 + i });
      made.push(s);
      const { revokedHashes } = await store.saveLogin({ session: s, profile: null, maxPerUser: 3, idleMs: DAY });
      expect(revokedHashes).toEqual(i === 3 ? [made[0]!.tokenHash] : []);
    }
    expect((await store.findSession(made[0]!.tokenHash))?.revokedReason).toBe('limit');
    for (const s of made.slice(1)) expect((await store.findSession(s.tokenHash))?.revokedAt).toBeNull();
  });

  it('writes nothing when a login fails half way (the transaction rolls back)', async () => {
    const existing = session({ openid: 'o-dup-owner' });
    await store.saveLogin({ session: existing, profile: null, maxPerUser: 10, idleMs: DAY });
    // Same token hash as an existing session: the session insert fails after the user upsert.
    const clash = session({ openid: 'o-never-saved', tokenHash: existing.tokenHash });
    await expect(store.saveLogin({ session: clash, profile: null, maxPerUser: 10, idleMs: DAY })).rejects.toSatisfy(
      (error) => isAppError(error),
    );
    expect(await store.findUser(clash.appid, 'o-never-saved')).toBeNull();
  });

  it('revokes one session, and all of a user', async () => {
    const a = session({ openid: 'o-revoke' });
    const b = session({ openid: 'o-revoke' });
    await store.saveLogin({ session: a, profile: null, maxPerUser: 10, idleMs: DAY });
    await store.saveLogin({ session: b, profile: null, maxPerUser: 10, idleMs: DAY });
    expect(await store.revokeSession(a.tokenHash, T0 + DAY, 'logout')).toBe(true);
    expect(await store.revokeSession(a.tokenHash, T0 + DAY, 'logout')).toBe(false);
    expect(await store.findSession(a.tokenHash)).toMatchObject({ revokedAt: T0 + DAY, revokedReason: 'logout' });
    expect(await store.revokeUserSessions(a.appid, 'o-revoke', T0 + DAY, 'admin')).toEqual([b.tokenHash]);
    expect((await store.findSession(b.tokenHash))?.revokedReason).toBe('admin');
  });

  it('moves last-seen forward only', async () => {
    const s = session({ openid: 'o-touch' });
    await store.saveLogin({ session: s, profile: null, maxPerUser: 10, idleMs: DAY });
    await store.touchSession(s, s.lastSeenAt + 60_000);
    await store.touchSession(s, s.lastSeenAt + 1_000);
    expect((await store.findSession(s.tokenHash))?.lastSeenAt).toBe(s.lastSeenAt + 60_000);
    expect((await store.findUser(s.appid, 'o-touch'))?.lastSeenAt).toBe(s.lastSeenAt + 60_000);
  });

  it('purges sessions that ended before a time, and only those', async () => {
    const old = session({ openid: 'o-purge', expiresAt: T0 - DAY });
    const live = session({ openid: 'o-purge' });
    await store.saveLogin({ session: old, profile: null, maxPerUser: 10, idleMs: DAY });
    await store.saveLogin({ session: live, profile: null, maxPerUser: 10, idleMs: DAY });
    expect(await store.purgeSessions(T0)).toBeGreaterThanOrEqual(1);
    expect(await store.findSession(old.tokenHash)).toBeNull();
    expect(await store.findSession(live.tokenHash)).not.toBeNull();
  });

  it('keeps a long session_key blob and non-ASCII profile text intact', async () => {
    const blob = 'v1.' + 'x'.repeat(600);
    const s = session({ openid: 'o-blob', sessionKey: blob });
    await store.saveLogin({ session: s, profile: { nickName: '😀 微信用户 "quoted"' }, maxPerUser: 10, idleMs: DAY });
    expect((await store.findSession(s.tokenHash))?.sessionKey).toBe(blob);
    expect((await store.findUser(s.appid, 'o-blob'))?.profile).toEqual({ nickName: '😀 微信用户 "quoted"' });
  });

  it('meta: the first value written wins, even when two race', async () => {
    const [a, b] = await Promise.all([store.meta('race', 'one'), store.meta('race', 'two')]);
    expect(a).toBe(b);
    expect(await store.meta('race')).toBe(a);
    expect(await store.meta('absent')).toBeNull();
  });

  it('kv: set, overwrite, read, delete', async () => {
    expect(await store.kvGet('k1')).toBeNull();
    await store.kvSet('k1', 'one', T0);
    await store.kvSet('k1', 'one', T0); // the same value again is fine
    await store.kvSet('k1', 'two'.repeat(5000), T0 + 1);
    expect(await store.kvGet('k1')).toBe('two'.repeat(5000));
    await Promise.all([store.kvSet('k2', 'a', T0), store.kvSet('k2', 'b', T0)]);
    expect(['a', 'b']).toContain(await store.kvGet('k2'));
    await store.kvDelete('k1');
    expect(await store.kvGet('k1')).toBeNull();
  });

  it('locks: one holder at a time, renewable by its holder, free once expired or released', async () => {
    expect(await store.lockAcquire('order', 'a', 1000, T0)).toBe(true);
    expect(await store.lockAcquire('order', 'b', 1000, T0 + 10)).toBe(false);
    expect(await store.lockAcquire('order', 'a', 1000, T0)).toBe(true); // same holder, same instant
    expect(await store.lockAcquire('order', 'b', 1000, T0 + 1000)).toBe(true); // expired
    await store.lockRelease('order', 'a'); // not the holder: nothing happens
    expect(await store.lockAcquire('order', 'a', 1000, T0 + 1001)).toBe(false);
    await store.lockRelease('order', 'b');
    const racers = await Promise.all(['x', 'y', 'z'].map((owner) => store.lockAcquire('race', owner, 1000, T0)));
    expect(racers.filter(Boolean)).toHaveLength(1);
  });

  it('outbox: drops a repeat, hands out what is due, lets one claim win, retries, finishes and purges', async () => {
    const add = (id: string, dedupKey: string, now = T0) => store.outboxAdd({ id, kind: 'push', appid: 'wx0123456789abcdef', dedupKey, payload: `{"n":"${id} 你好"}`, now });
    expect(await add('ob-1', 'msg:24000000000000001')).toBe(true);
    expect(await add('ob-2', 'msg:24000000000000001')).toBe(false); // WeChat's repeat
    expect(await add('ob-3', 'msg:24000000000000002', T0 + 10)).toBe(true);
    expect(await store.outboxAdd({ id: 'ob-4', kind: 'pay.transaction', appid: 'wxfedcba9876543210', dedupKey: 'msg:24000000000000001', payload: '{}', now: T0 })).toBe(true);
    expect(await store.outboxGet('ob-2')).toBeNull();

    const due = await store.outboxDue(T0 + 5, 10);
    expect(due.map((e) => e.id).sort()).toEqual(['ob-1', 'ob-4']);
    const first = due.find((e) => e.id === 'ob-1')!;
    expect(first).toMatchObject({ status: 'pending', attempts: 0, payload: '{"n":"ob-1 你好"}', deliveredAt: null });
    expect(due.find((e) => e.id === 'ob-4')!.kind).toBe('pay.transaction');
    expect(first.kind).toBe('push');
    // Two workers saw it; only one gets it, and it is not due again while leased.
    const claims = await Promise.all([store.outboxClaim(first, T0 + 60_000), store.outboxClaim(first, T0 + 60_000)]);
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect((await store.outboxDue(T0 + 5, 10)).map((e) => e.id)).toEqual(['ob-4']);

    await store.outboxRetry('ob-1', 1, T0 + 1_000, 'HTTP 500');
    expect(await store.outboxGet('ob-1')).toMatchObject({ status: 'pending', attempts: 1, nextAttemptAt: T0 + 1_000, lastError: 'HTTP 500' });
    await store.outboxRetry('ob-4', 10, null, 'x'.repeat(400));
    expect(await store.outboxGet('ob-4')).toMatchObject({ status: 'failed', attempts: 10 });
    expect((await store.outboxGet('ob-4'))!.lastError).toHaveLength(250);
    await store.outboxDone('ob-3', T0 + 20);
    expect(await store.outboxGet('ob-3')).toMatchObject({ status: 'delivered', deliveredAt: T0 + 20 });

    // Finished rows older than the cut go; pending ones stay whatever their age.
    expect(await store.outboxPurge(T0 + 100)).toBe(2);
    expect(await store.outboxGet('ob-1')).not.toBeNull();
    expect(await store.outboxGet('ob-3')).toBeNull();
    expect(await add('ob-5', 'msg:24000000000000002')).toBe(true); // its repeat window is over
  });

  it('outbox: rows written before kinds existed (migration 0007) become kind push and are still due', async () => {
    const older = await createTestDatabase(dialect);
    const before = await createStore({ url: older.url, logger: silentLogger() });
    try {
      await runMigrations(before.db, '0006_used_tickets');
      await before.db
        .insertInto('outbox')
        .values({ id: 'old-1', appid: 'wx0123456789abcdef', dedup_key: 'msg:1', payload: '{}', status: 'pending', attempts: 0, next_attempt_at: T0, created_at: T0, delivered_at: null, last_error: null } as never)
        .execute();
      expect((await before.migrate()).applied).toEqual(MIGRATION_NAMES.filter((name) => name >= '0007'));
      expect(await before.outboxGet('old-1')).toMatchObject({ kind: 'push', status: 'pending', dedupKey: 'msg:1' });
      expect((await before.outboxDue(T0, 10)).map((e) => e.id)).toEqual(['old-1']);
      // The repeat rule is unchanged: same app and key, one row.
      expect(await before.outboxAdd({ id: 'new-1', kind: 'push', appid: 'wx0123456789abcdef', dedupKey: 'msg:1', payload: '{}', now: T0 })).toBe(false);
    } finally {
      await before.close();
      await older.drop();
    }
  });

  it('answers ping', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });
});

describe('store URLs', () => {
  it('refuses a store it cannot reach with STORE_UNAVAILABLE, naming no password', async () => {
    const store = await createStore({ url: 'postgres://u:hunter2@127.0.0.1:1/x', logger: silentLogger() });
    const error = await store.migrate().catch((e: unknown) => e);
    expect(isAppError(error, 'STORE_UNAVAILABLE')).toBe(true);
    expect(store.redactedUrl).toBe('postgres://u:***@127.0.0.1:1/x');
    await store.close();
  });
});
