/**
 * Login and sessions end to end: a real minigate (port 0, SQLite) talking over HTTP to the real
 * sandbox, driven over HTTP as a mini program would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OTHER_APPID,
  OTHER_SECRET,
  TEST_APPID,
  TEST_SECRET,
  startHarness,
  type Harness,
} from './helpers/harness.js';

let h: Harness;
const issuedTokens: string[] = [];
const issuedCodes: string[] = [];

async function code(input: { appid?: string; openid?: string } = {}) {
  const result = await h.code(input);
  issuedCodes.push(result.code);
  return result;
}

async function loginOk(body: Record<string, unknown>) {
  const response = await h.login(body);
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  issuedTokens.push(response.body.token);
  return response.body;
}

async function jscodeCalls(): Promise<number> {
  const stats = (await (await fetch(`${h.sandbox.url}/__sandbox/stats`)).json()) as { paths: Record<string, number> };
  return stats.paths['/sns/jscode2session'] ?? 0;
}

async function sessionCount(): Promise<number> {
  const row = await h.server.store.db
    .selectFrom('sessions')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

beforeAll(async () => {
  h = await startHarness({
    apps: [
      { appid: TEST_APPID, secret: TEST_SECRET },
      { appid: OTHER_APPID, secret: OTHER_SECRET },
    ],
  });
});

afterAll(async () => {
  await h?.close();
});

describe('POST /auth/login', () => {
  it('exchanges a wx.login code for a session that /auth/session shows', async () => {
    const { code: c, openid } = await code();
    const body = await loginOk({ code: c, appid: TEST_APPID });
    expect(body).toMatchObject({ openid, user: { openid } });
    expect(body.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(body.expiresAt).toBeGreaterThan(Date.now());
    const session = await h.get('/auth/session', body.token);
    expect(session.status).toBe(200);
    expect(session.body).toMatchObject({ appid: TEST_APPID, openid, expiresAt: body.expiresAt, user: { openid } });
    // Never the session_key, never the secret.
    const sessionKey = h.sandbox.model.user(TEST_APPID, openid)!.sessionKey;
    expect(JSON.stringify([body, session.body])).not.toContain(sessionKey);
  });

  it('refuses a used code with AUTH_CODE_USED and creates no second session', async () => {
    const { code: c } = await code();
    await loginOk({ code: c, appid: TEST_APPID });
    const before = await sessionCount();
    const again = await h.login({ code: c, appid: TEST_APPID });
    expect(again.status).toBe(400);
    expect(again.body.error).toMatchObject({ code: 'AUTH_CODE_USED', requestId: expect.any(String) });
    expect(await sessionCount()).toBe(before);
  });

  it('lets exactly one of several concurrent logins with one code succeed', async () => {
    const { code: c } = await code();
    const before = await sessionCount();
    const results = await Promise.all(Array.from({ length: 6 }, () => h.login({ code: c, appid: TEST_APPID })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200)) expect(r.body.error.code).toBe('AUTH_CODE_USED');
    expect(await sessionCount()).toBe(before + 1);
  });

  it('saves and returns the profile from user data (encryptedData + rawData + signature)', async () => {
    const { code: c, openid } = await code();
    const data = await h.control<Record<string, string>>('userinfo', {
      appid: TEST_APPID,
      openid,
      userInfo: { nickName: '小程序用户', gender: 2, city: 'Shenzhen' },
    });
    const body = await loginOk({ code: c, appid: TEST_APPID, ...pick(data, ['encryptedData', 'iv', 'rawData', 'signature']) });
    expect(body.user.profile).toMatchObject({ nickName: '小程序用户', gender: 2, city: 'Shenzhen' });
    const session = await h.get('/auth/session', body.token);
    expect(session.body.user.profile).toMatchObject({ nickName: '小程序用户' });
    // A later plain login keeps the saved profile.
    const { code: c2 } = await code({ openid });
    const later = await loginOk({ code: c2, appid: TEST_APPID });
    expect(later.user.profile).toMatchObject({ nickName: '小程序用户' });
  });

  it('refuses a forged signature with AUTH_SIGNATURE_MISMATCH and saves nothing', async () => {
    const { code: c, openid } = await code();
    const data = await h.control<Record<string, string>>('userinfo', { appid: TEST_APPID, openid });
    const before = await sessionCount();
    const forged = await h.login({
      code: c,
      appid: TEST_APPID,
      rawData: data.rawData!.replace('微信用户', 'admin'),
      signature: data.signature,
    });
    expect(forged.status).toBe(400);
    expect(forged.body.error.code).toBe('AUTH_SIGNATURE_MISMATCH');
    expect(await sessionCount()).toBe(before);
    expect(await h.server.store.findUser(TEST_APPID, openid)).toBeNull();
  });

  it('refuses user data made for another app (watermark) and data from a stale session_key', async () => {
    const other = await code({ appid: OTHER_APPID });
    const foreign = await h.control<Record<string, string>>('userinfo', { appid: OTHER_APPID, openid: other.openid });
    // Same user data bytes, presented to TEST_APPID with a TEST_APPID code whose key decrypts it.
    const { code: c, openid } = await code();
    h.sandbox.model.user(TEST_APPID, openid)!.sessionKey = h.sandbox.model.user(OTHER_APPID, other.openid)!.sessionKey;
    const watermark = await h.login({ code: c, appid: TEST_APPID, encryptedData: foreign.encryptedData, iv: foreign.iv });
    expect(watermark.body.error.code).toBe('AUTH_WATERMARK_MISMATCH');

    const mine = await h.control<Record<string, string>>('userinfo', { appid: TEST_APPID, openid });
    const rotated = await h.control<{ code: string }>('login', { appid: TEST_APPID, openid, rotateSessionKey: true });
    const stale = await h.login({ code: rotated.code, appid: TEST_APPID, encryptedData: mine.encryptedData, iv: mine.iv });
    expect(stale.status).toBe(400);
    expect(stale.body.error.code).toBe('AUTH_DECRYPT_FAILED');
  });

  it('rejects malformed codes before calling WeChat', async () => {
    const before = await jscodeCalls();
    for (const bad of ['', 'x'.repeat(10_000), '登录码', 'a b', 12345, null, ['c'], { $ne: 1 }]) {
      const r = await h.login({ code: bad, appid: TEST_APPID });
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(r.body.error.code).toBe('BAD_REQUEST');
    }
    expect(await h.login({ appid: TEST_APPID })).toMatchObject({ status: 400 });
    expect(await jscodeCalls()).toBe(before);
  });

  it('takes identity only from WeChat, never from the client', async () => {
    const { code: c, openid } = await code();
    const body = await loginOk({ code: c, appid: TEST_APPID, openid: 'o-attacker', unionid: 'u-attacker', session_key: 'AAAAAAAAAAAAAAAAAAAAAA==' });
    expect(body.openid).toBe(openid);
    expect(JSON.stringify(body)).not.toContain('attacker');
  });

  it('finds the app from the body, X-WX-AppId, the Referer, or asks', async () => {
    const a = await code({ appid: OTHER_APPID });
    const viaHeader = await h.post('/auth/login', { code: a.code }, { 'x-wx-appid': OTHER_APPID });
    expect(viaHeader.status).toBe(200);
    const b = await code({ appid: OTHER_APPID });
    const viaReferer = await h.post('/auth/login', { code: b.code }, { referer: `https://servicewechat.com/${OTHER_APPID}/0/page-frame.html` });
    expect(viaReferer.status).toBe(200);
    const c = await code();
    expect((await h.login({ code: c.code })).body.error.code).toBe('APP_REQUIRED');
    expect((await h.login({ code: c.code, appid: 'wx9999999999999999' })).body.error.code).toBe('APP_UNKNOWN');
  });

  it('accepts an urlencoded form, refuses bad JSON, other types and big bodies', async () => {
    const { code: c } = await code();
    const form = await fetch(`${h.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `code=${c}&appid=${TEST_APPID}`,
    });
    expect(form.status).toBe(200);
    const raw = (body: string, type = 'application/json') =>
      fetch(`${h.url}/auth/login`, { method: 'POST', headers: { 'content-type': type }, body }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
    // What `curl -d '{…}'` sends: JSON labelled as a form.
    const { code: c2 } = await code();
    const curlStyle = await raw(JSON.stringify({ code: c2, appid: TEST_APPID }), 'application/x-www-form-urlencoded');
    expect(curlStyle.status).toBe(200);
    expect((await raw('{"code":')).body.error.code).toBe('BAD_REQUEST');
    expect((await raw('[1,2]')).body.error.code).toBe('BAD_REQUEST');
    expect((await raw('<xml/>', 'application/xml')).body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const big = await raw(JSON.stringify({ code: 'x', pad: 'y'.repeat(100_000) }));
    expect(big).toMatchObject({ status: 413, body: { error: { code: 'BODY_TOO_LARGE' } } });
  });
});

describe('sessions over HTTP', () => {
  it('needs a token, and tells missing, invalid and revoked apart', async () => {
    expect((await h.get('/auth/session')).body.error.code).toBe('SESSION_MISSING');
    expect((await h.get('/auth/session', 'not-a-token')).body.error.code).toBe('SESSION_INVALID');
    expect((await h.get('/auth/session', undefined, { authorization: 'Basic abc' })).body.error.code).toBe('SESSION_INVALID');
    const { code: c } = await code();
    const { token } = await loginOk({ code: c, appid: TEST_APPID });
    const logout = await h.post('/auth/logout', undefined, { authorization: `Bearer ${token}` });
    expect(logout).toMatchObject({ status: 200, body: { ok: true, revoked: true } });
    const after = await h.get('/auth/session', token);
    expect(after).toMatchObject({ status: 401, body: { error: { code: 'SESSION_REVOKED' } } });
  });

  it('expires sessions when the sandbox clock passes the idle time', async () => {
    const { code: c } = await code();
    const { token } = await loginOk({ code: c, appid: TEST_APPID });
    h.clock.advance(7 * 86_400_000 + 1000);
    await new Promise((r) => setTimeout(r, 1100)); // let the 1 s session cache lapse
    expect((await h.get('/auth/session', token)).body.error.code).toBe('SESSION_EXPIRED');
  });

  it('answers unknown paths and methods with 404 and 405 + Allow', async () => {
    expect((await h.get('/nope')).status).toBe(404);
    const r = await fetch(`${h.url}/auth/login`, { method: 'GET' });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('POST');
    expect(r.headers.get('x-request-id')).toMatch(/^[0-9a-f]{16}$/);
  });

  it('reports health and readiness', async () => {
    expect(await h.get('/healthz')).toMatchObject({ status: 200, body: { ok: true } });
    expect(await h.get('/readyz')).toMatchObject({ status: 200, body: { ok: true } });
  });
});

describe('Wafer2 compatibility', () => {
  it('logs in with X-WX-Code / X-WX-Encrypted-Data / X-WX-IV and serves /weapp/user with X-WX-Skey', async () => {
    const { code: c, openid } = await code();
    const data = await h.control<Record<string, string>>('userinfo', { appid: TEST_APPID, openid, userInfo: { nickName: 'Wafer' } });
    const response = await fetch(`${h.url}/weapp/login`, {
      headers: { 'x-wx-code': c, 'x-wx-encrypted-data': data.encryptedData!, 'x-wx-iv': data.iv!, 'x-wx-appid': TEST_APPID },
    });
    const body = (await response.json()) as any;
    expect(response.status).toBe(200);
    expect(body).toMatchObject({ code: 0, data: { skey: expect.any(String), userinfo: { openId: openid, nickName: 'Wafer' } } });
    issuedTokens.push(body.data.skey);

    const user = await fetch(`${h.url}/weapp/user`, { headers: { 'x-wx-skey': body.data.skey } });
    expect(await user.json()).toMatchObject({ code: 0, data: { openId: openid, nickName: 'Wafer' } });
    // The skey is a session token everywhere.
    expect((await h.get('/auth/session', undefined, { 'x-wx-skey': body.data.skey })).status).toBe(200);
  });

  it('answers an invalid session the way the Wafer2 SDK expects, and other errors with our code', async () => {
    const invalid = await fetch(`${h.url}/weapp/user`, { headers: { 'x-wx-skey': 'expired-or-made-up' } });
    expect(invalid.status).toBe(401);
    expect(await invalid.json()).toEqual({ code: -1, error: 'ERR_SESSION_INVALID' });

    const { code: c } = await code();
    await fetch(`${h.url}/weapp/login`, { method: 'POST', headers: { 'x-wx-code': c, 'x-wx-appid': TEST_APPID } });
    const used = await fetch(`${h.url}/weapp/login`, { method: 'POST', headers: { 'x-wx-code': c, 'x-wx-appid': TEST_APPID } });
    expect(used.status).toBe(400);
    expect(await used.json()).toMatchObject({ code: -1, error: 'AUTH_CODE_USED' });
  });
});

describe('when WeChat misbehaves', () => {
  it('retries a busy (-1) answer twice and then logs in', async () => {
    const { code: c } = await code();
    await h.control('faults', { path: '/sns/jscode2session', errcode: -1, times: 2 });
    const before = await jscodeCalls();
    await loginOk({ code: c, appid: TEST_APPID });
    expect((await jscodeCalls()) - before).toBe(3);
  });

  it('gives up after three busy answers with WECHAT_UNAVAILABLE (503)', async () => {
    const { code: c } = await code();
    await h.control('faults', { path: '/sns/jscode2session', errcode: -1, times: 3 });
    const r = await h.login({ code: c, appid: TEST_APPID });
    expect(r).toMatchObject({ status: 503, body: { error: { code: 'WECHAT_UNAVAILABLE' } } });
  });

  it('answers WECHAT_UNAVAILABLE within the 5 s timeout when WeChat stalls for 10 s, and creates no session', async () => {
    const { code: c } = await code();
    await h.control('faults', { path: '/sns/jscode2session', delayMs: 10_000, times: 1 });
    const before = await sessionCount();
    const started = performance.now();
    const r = await h.login({ code: c, appid: TEST_APPID });
    const elapsed = performance.now() - started;
    expect(r).toMatchObject({ status: 503, body: { error: { code: 'WECHAT_UNAVAILABLE' } } });
    expect(elapsed).toBeGreaterThan(4_500);
    expect(elapsed).toBeLessThan(6_500);
    expect(await sessionCount()).toBe(before);
  });

  it('maps 45011 to WECHAT_RATE_LIMITED (429) and a blocked user to AUTH_USER_BLOCKED (403)', async () => {
    const { code: c } = await code();
    await h.control('faults', { path: '/sns/jscode2session', errcode: 45011, times: 1 });
    expect(await h.login({ code: c, appid: TEST_APPID })).toMatchObject({ status: 429, body: { error: { code: 'WECHAT_RATE_LIMITED' } } });
    const blocked = await h.control<{ code: string }>('login', { appid: TEST_APPID, blocked: true });
    expect(await h.login({ code: blocked.code, appid: TEST_APPID })).toMatchObject({ status: 403, body: { error: { code: 'AUTH_USER_BLOCKED' } } });
  });

  it('says WECHAT_CREDENTIALS_INVALID when the AppSecret is wrong, without leaking it', async () => {
    const wrong = await startHarness({ apps: [{ appid: TEST_APPID, secret: 'the-wrong-secret-value' }], sandbox: h.sandbox });
    try {
      const { code: c } = await code();
      const r = await wrong.login({ code: c, appid: TEST_APPID });
      expect(r).toMatchObject({ status: 502, body: { error: { code: 'WECHAT_CREDENTIALS_INVALID' } } });
      expect(wrong.logs.text()).not.toContain('the-wrong-secret-value');
      expect(JSON.stringify(r.body)).not.toContain('the-wrong-secret-value');
    } finally {
      await wrong.close();
    }
  });
});

describe('logs', () => {
  it('never contain an AppSecret, a session_key, a session token or a login code', async () => {
    const text = h.logs.text();
    expect(h.logs.lines.length).toBeGreaterThan(20);
    const secrets = [TEST_SECRET, OTHER_SECRET, ...issuedTokens, ...issuedCodes];
    // every session_key the sandbox handed out
    for (const user of h.sandbox.model.listUsers()) secrets.push(user.sessionKey);
    expect(secrets.length).toBeGreaterThan(30);
    for (const secret of secrets) expect(text.includes(secret), `log contains ${secret.slice(0, 6)}…`).toBe(false);
  });
});

function pick<T extends Record<string, unknown>>(source: T, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, source[k]]));
}
