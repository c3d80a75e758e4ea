/**
 * The console's tables and reads on SQLite, MariaDB and PostgreSQL: admin users and console
 * sessions, the audit log and its purge, user search (LIKE with the operator's text taken
 * literally), a user's sessions with the client information of migration 0009 and its clearing,
 * storage used, and the outbox listing and operator retry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminRecords, hashPassword, verifyPassword } from '../src/admin/index.js';
import { createLogger } from '../src/core/index.js';
import { createStore, type SessionRecord, type Store } from '../src/store/index.js';
import { createTestDatabase, TEST_DIALECTS, type TestDatabase } from './helpers/databases.js';
import { sessionRecords } from './helpers/session-records.js';

const T0 = Date.UTC(2026, 5, 1);
const APPID = 'wx0123456789abcdef';
const record = sessionRecords({ pad: 'a', start: T0, stepMs: 1, lifetimeMs: 86_400_000, appid: APPID, sessionKey: null });
const session = (openid: string, overrides: Partial<SessionRecord> = {}): SessionRecord => record({ openid, ...overrides });

describe('admin passwords', () => {
  it('hash with scrypt and its parameters, a salt per hash; verify in constant time; refuse malformed hashes', async () => {
    const a = await hashPassword('correct horse battery');
    const b = await hashPassword('correct horse battery');
    expect(a).toMatch(/^scrypt\$15\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword('correct horse battery', a)).toBe(true);
    expect(await verifyPassword('correct horse batterY', a)).toBe(false);
    for (const bad of ['', 'scrypt$15$8$1$x', 'scrypt$40$8$1$AAAA$AAAA', 'bcrypt$1$2$3$4$5', a.slice(0, -2)]) expect(await verifyPassword('x', bad)).toBe(false);
  });
});

describe.each(TEST_DIALECTS)('admin records on %s', (dialect) => {
  let database: TestDatabase;
  let store: Store;
  let records: ReturnType<typeof createAdminRecords>;

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    store = await createStore({ url: database.url, logger: createLogger({ level: 'silent' }) });
    await store.migrate();
    records = createAdminRecords(store);
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it('keeps admin users and their console sessions; a new password or removal ends the sessions', async () => {
    await records.addUser({ name: 'alice', passwordHash: 'scrypt$h', totpSecret: null, createdAt: T0 });
    await records.addUser({ name: 'bob', passwordHash: 'scrypt$h', totpSecret: 'v1.sealed', createdAt: T0 });
    expect(await records.listUsers()).toEqual([
      { name: 'alice', totp: false, createdAt: T0 },
      { name: 'bob', totp: true, createdAt: T0 },
    ]);
    const s = { tokenHash: 'c'.repeat(64), name: 'alice', csrf: 'd'.repeat(64), address: '10.0.0.1', createdAt: T0, lastSeenAt: T0 };
    await records.addSession(s);
    expect(await records.getSession(s.tokenHash)).toEqual(s);
    await records.touchSession(s.tokenHash, T0 + 5);
    expect((await records.getSession(s.tokenHash))?.lastSeenAt).toBe(T0 + 5);
    expect(await records.setPassword('alice', 'scrypt$new')).toBe(true);
    expect(await records.getSession(s.tokenHash)).toBeNull();
    await records.addSession({ ...s, name: 'bob', tokenHash: 'e'.repeat(64) });
    expect(await records.removeUser('bob')).toBe(true);
    expect(await records.getSession('e'.repeat(64))).toBeNull();
    expect(await records.removeUser('bob')).toBe(false);
    await records.addSession({ ...s, tokenHash: 'f'.repeat(64) });
    expect(await records.purgeSessions(T0 + 1)).toBe(1);
  });

  it('writes the audit log newest first and purges it by age', async () => {
    await records.audit({ id: 'a1', at: T0, actor: 'alice', action: 'login', target: null, address: '10.0.0.1', detail: null });
    await records.audit({ id: 'a2', at: T0 + 10, actor: 'alice', action: 'session.revoke', target: 'session x', address: '10.0.0.1', detail: '{"revoked":true}' });
    expect((await records.auditRecent(10)).map((e) => e.id)).toEqual(['a2', 'a1']);
    expect(await records.purgeAudit(T0 + 5)).toBe(1);
    expect((await records.auditRecent(10)).map((e) => e.id)).toEqual(['a2']);
  });

  it('finds users by part of the openid or unionid, wildcards taken literally; lists a user\'s sessions with client information, cleared after retention', async () => {
    const plain = session('o_100%_sure', { clientAddress: '203.0.113.9', userAgent: 'Mozilla/5.0 <b>x</b>' });
    await store.saveLogin({ session: plain, profile: null, maxPerUser: 10, idleMs: 86_400_000 });
    await store.saveLogin({ session: session('oOther', { unionid: 'u_100' }), profile: null, maxPerUser: 10, idleMs: 86_400_000 });
    await store.saveLogin({ session: session('oX1000'), profile: null, maxPerUser: 10, idleMs: 86_400_000 });
    expect((await records.findUsers('100%', 10)).map((u) => u.openid)).toEqual(['o_100%_sure']);
    expect((await records.findUsers('_100', 10)).map((u) => u.openid).sort()).toEqual(['oOther', 'o_100%_sure']);
    expect((await records.findUsers('!', 10))).toEqual([]);
    expect((await records.findUsers('', 10)).length).toBe(3);
    const [row] = await records.userSessions(APPID, 'o_100%_sure', 10);
    expect(row).toMatchObject({ id: plain.tokenHash, clientAddress: '203.0.113.9', userAgent: 'Mozilla/5.0 <b>x</b>', revokedAt: null });
    expect(await records.sessionCounts(T0, T0 + 10)).toEqual({ loginsSince: 3, open: 3 });
    expect(await records.clearClientInfo(plain.createdAt + 1)).toBe(1);
    expect((await records.userSessions(APPID, 'o_100%_sure', 10))[0]).toMatchObject({ clientAddress: null, userAgent: null });
    expect((await store.findSession(plain.tokenHash))?.clientAddress).toBeUndefined();
    expect(await records.storageUsed()).toEqual({ files: 0, bytes: 0 });
  });

  it('lists outbox deliveries and lets an operator retry one not yet delivered', async () => {
    await store.outboxAdd({ id: 'ob-a', kind: 'push', appid: APPID, dedupKey: 'k-a', payload: '{}', now: T0 });
    await store.outboxAdd({ id: 'ob-b', kind: 'push', appid: APPID, dedupKey: 'k-b', payload: '{}', now: T0 + 1 });
    await store.outboxRetry('ob-a', 10, null, 'HTTP 500: busy');
    await store.outboxDone('ob-b', T0 + 2);
    expect((await store.outboxRecent(10)).map((e) => e.id)).toEqual(['ob-b', 'ob-a']);
    expect((await store.outboxRecent(10, 'failed')).map((e) => [e.id, e.lastError])).toEqual([['ob-a', 'HTTP 500: busy']]);
    expect(await store.outboxRetryNow('ob-b', T0 + 3)).toBe(false);
    expect(await store.outboxRetryNow('nope', T0 + 3)).toBe(false);
    expect(await store.outboxRetryNow('ob-a', T0 + 3)).toBe(true);
    expect(await store.outboxGet('ob-a')).toMatchObject({ status: 'pending', attempts: 10, nextAttemptAt: T0 + 3 });
    expect((await store.outboxDue(T0 + 3, 10)).map((e) => e.id)).toEqual(['ob-a']);
  });
});
