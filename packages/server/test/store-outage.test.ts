/**
 * The database goes away under a running minigate (a TCP proxy in front of the shared server is
 * cut): logins answer 503 STORE_UNAVAILABLE with nothing half-written, session checks fail
 * closed, and once the connection is back everything works without a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kysely } from 'kysely';
import { createStore, type Store } from '../src/store/index.js';
import { silentLogger } from '../src/core/logger.js';
import { createTestDatabase, type TestDatabase } from './helpers/databases.js';
import { startHarness, TEST_APPID, TEST_SECRET, type Harness } from './helpers/harness.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';

describe.each(['mysql', 'postgres'] as const)('%s going away', (dialect) => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let h: Harness;
  let direct: Store; // bypasses the proxy, to see what was written

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    proxy = await startTcpProxy(database.host!, database.port!);
    const viaProxy = new URL(database.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    h = await startHarness({ store: viaProxy.toString(), apps: [{ appid: TEST_APPID, secret: TEST_SECRET, push: { token: 'push-token' } } as never] });
    direct = await createStore({ url: database.url, logger: silentLogger() });
  });
  afterAll(async () => {
    await h?.close();
    await direct?.close();
    await proxy?.close();
    await database?.drop();
  });

  const lapse = () => new Promise((r) => setTimeout(r, 1100)); // the session cache's second

  async function counts(openid: string) {
    const db = direct.db as Kysely<any>;
    const users = await db.selectFrom('users').select((eb) => eb.fn.countAll().as('n')).where('openid', '=', openid).executeTakeFirstOrThrow();
    const sessions = await db.selectFrom('sessions').select((eb) => eb.fn.countAll().as('n')).where('openid', '=', openid).executeTakeFirstOrThrow();
    return { users: Number(users.n), sessions: Number(sessions.n) };
  }

  it('answers 503 STORE_UNAVAILABLE while the database is cut, and recovers without a restart', async () => {
    const before = await h.code();
    const first = await h.login({ code: before.code });
    expect(first.status).toBe(200);

    await proxy.cut('refuse');
    await lapse();
    const during = await h.code();
    const refused = await h.login({ code: during.code, appid: TEST_APPID });
    expect(refused).toMatchObject({ status: 503, body: { error: { code: 'STORE_UNAVAILABLE' } } });
    expect(await counts(during.openid)).toEqual({ users: 0, sessions: 0 });
    // A session check cannot be answered: it fails closed (503), it does not let the request in.
    expect(await h.get('/auth/session', first.body.token)).toMatchObject({ status: 503, body: { error: { code: 'STORE_UNAVAILABLE' } } });
    expect((await h.get('/readyz')).status).toBe(503);
    expect((await h.get('/healthz')).status).toBe(200);

    await proxy.restore();
    const after = await h.code({ openid: during.openid }); // the earlier code was spent at WeChat
    const ok = await h.login({ code: after.code });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(await counts(during.openid)).toEqual({ users: 1, sessions: 1 });
    expect((await h.get('/auth/session', first.body.token)).status).toBe(200);
    expect((await h.get('/readyz')).status).toBe(200);
  });

  it('answers 503 within the connect timeout when the database accepts but never answers', async () => {
    await proxy.cut('blackhole');
    await lapse();
    const during = await h.code();
    const started = performance.now();
    const refused = await h.login({ code: during.code });
    expect(refused).toMatchObject({ status: 503, body: { error: { code: 'STORE_UNAVAILABLE' } } });
    expect(performance.now() - started).toBeLessThan(11_000);
    await proxy.restore();
    const ok = await h.login({ code: (await h.code({ openid: during.openid })).code });
    expect(ok.status).toBe(200);
    expect(await counts(during.openid)).toEqual({ users: 1, sessions: 1 });
  });

  it('refuses a push with 503 while the database is cut (so WeChat sends it again), and takes it once back', async () => {
    const push = () =>
      h.control<{ attempts: { status: number; body: string }[] }>('push', {
        url: `${h.url}/wechat/push/${TEST_APPID}`,
        appid: TEST_APPID,
        token: 'push-token',
        message: { FromUserName: 'oOutage', CreateTime: 1714030000, MsgType: 'event', Event: 'outage' },
      });
    await proxy.cut('refuse');
    const refused = (await push()).attempts[0]!;
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body).error.code).toBe('STORE_UNAVAILABLE');
    await proxy.restore();
    expect((await push()).attempts[0]).toEqual({ status: 200, body: 'success' });
    const rows = await (direct.db as Kysely<any>).selectFrom('outbox').selectAll().execute();
    expect(rows.filter((r) => String(r.payload).includes('oOutage'))).toHaveLength(1);
  });

  it('stays up: the process survived every fault above', async () => {
    expect((await h.get('/healthz')).status).toBe(200);
    // Each refused login left one error line with its requestId and the driver's reason.
    const failures = h.logs.entries().filter((e) => e.status === 503 && e.path === '/auth/login');
    expect(failures.length).toBeGreaterThanOrEqual(2);
    for (const entry of failures) expect(entry).toMatchObject({ requestId: expect.any(String), err: expect.anything() });
  });
});
