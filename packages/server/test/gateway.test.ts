/**
 * The access_token manager and the WeChat API gateway, in one process against the sandbox:
 * caching and single flight, recovery after WeChat refuses a token, forced refresh limits,
 * back-off, and the internal API's helpers (phone, content check, wxacode,
 * links) and passthrough.
 */
import { createHash } from 'node:crypto';
import { noisePng } from 'minigate-sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TEST_APPID, TEST_SECRET, type Harness } from './helpers/harness.js';

const INTERNAL_TOKEN = 'internal-token-for-tests-0123456789abcdef';
const CLASSIC_APPID = 'wxc1a55ic000000001';
let h: Harness;

async function stats(path: string): Promise<number> {
  const body = (await (await fetch(`${h.sandbox.url}/__sandbox/stats`)).json()) as { paths: Record<string, number> };
  return body.paths[path] ?? 0;
}

async function accepted(token: string): Promise<boolean> {
  const response = await fetch(`${h.sandbox.url}/__sandbox/check-token`, { method: 'POST', body: JSON.stringify({ access_token: token }) });
  return ((await response.json()) as { ok: boolean }).ok;
}

beforeAll(async () => {
  h = await startHarness({
    apps: [
      { appid: TEST_APPID, secret: TEST_SECRET },
      { appid: CLASSIC_APPID, secret: 'classic-secret', tokenMode: 'classic' } as never,
    ],
    config: { listen: { internal: '127.0.0.1:0' }, internal: { token: INTERNAL_TOKEN } },
  });
});
afterAll(async () => {
  await h?.close();
});

describe('internal API access', () => {
  it('refuses a call without the bearer token or with another one', async () => {
    const none = await fetch(`${h.server.urls.internal}/v1/apps/${TEST_APPID}/access-token`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as any).error.code).toBe('INTERNAL_AUTH_REQUIRED');
    const wrong = await h.internal('GET', `/v1/apps/${TEST_APPID}/access-token`, undefined, { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    expect((await h.internal('GET', '/v1/apps/wx9999999999999999/access-token')).body.error.code).toBe('APP_UNKNOWN');
    expect((await fetch(`${h.server.urls.internal}/healthz`)).status).toBe(200);
  });
});

describe('access_token', () => {
  it('hands out one cached token: a hundred concurrent callers cause one fetch', async () => {
    const before = await stats('/cgi-bin/stable_token');
    const answers = await Promise.all(Array.from({ length: 100 }, () => h.internal('GET', `/v1/apps/${TEST_APPID}/access-token`)));
    expect(new Set(answers.map((a) => a.body.accessToken)).size).toBe(1);
    expect((await stats('/cgi-bin/stable_token')) - before).toBe(1);
    expect(answers[0]!.body.expiresAt).toBeGreaterThan(Date.now() + 7_000_000);
    expect(await accepted(answers[0]!.body.accessToken)).toBe(true);
  });

  it('recovers once when WeChat has replaced the token (40001), and the call succeeds', async () => {
    const { accessToken: old } = await h.server.tokens.get(TEST_APPID);
    // Someone else forces a rotation: our cached token is dead at once.
    await fetch(`${h.sandbox.url}/cgi-bin/stable_token`, {
      method: 'POST',
      body: JSON.stringify({ grant_type: 'client_credential', appid: TEST_APPID, secret: TEST_SECRET, force_refresh: true }),
    });
    expect(await accepted(old)).toBe(false);
    const before = await stats('/cgi-bin/stable_token');
    const calls = await Promise.all(
      Array.from({ length: 20 }, () => h.internal('GET', `/v1/apps/${TEST_APPID}/wechat/wxa/checksession?openid=nobody&signature=x&sig_method=hmac_sha256`)),
    );
    // Every call reached WeChat with a valid token (40003: unknown openid, not a token error).
    for (const call of calls) expect(call.body.errcode).toBe(40003);
    expect((await stats('/cgi-bin/stable_token')) - before).toBe(1);
    expect(h.logs.text()).toContain('token: WeChat rejected a token we believed valid; refreshing once');
  });

  it('limits forced refreshes as WeChat does: 30 s apart', async () => {
    const first = await h.internal('POST', `/v1/apps/${TEST_APPID}/access-token/refresh`);
    expect(first.status).toBe(200);
    expect(await accepted(first.body.accessToken)).toBe(true);
    const again = await h.internal('POST', `/v1/apps/${TEST_APPID}/access-token/refresh`);
    expect(again.status).toBe(429);
    expect(again.body.error.code).toBe('TOKEN_REFRESH_LIMITED');
    expect((await h.internal('GET', `/v1/apps/${TEST_APPID}/access-token`)).body.accessToken).toBe(first.body.accessToken);
  });

  it('takes a service’s report of a refused token: refreshes once, and not for a token already replaced', async () => {
    const { accessToken: old } = await h.server.tokens.get(TEST_APPID);
    h.clock.advance(31_000); // WeChat forces at most every 30 s, and a refresh was forced above
    await fetch(`${h.sandbox.url}/cgi-bin/stable_token`, {
      method: 'POST',
      body: JSON.stringify({ grant_type: 'client_credential', appid: TEST_APPID, secret: TEST_SECRET, force_refresh: true }),
    });
    expect(await accepted(old)).toBe(false);
    const before = await stats('/cgi-bin/stable_token');
    const reports = await Promise.all(Array.from({ length: 5 }, () => h.internal('POST', `/v1/apps/${TEST_APPID}/access-token/rejected`, { accessToken: old })));
    const fresh = reports[0]!.body.accessToken as string;
    expect(reports.every((r) => r.status === 200 && r.body.accessToken === fresh)).toBe(true);
    expect(fresh).not.toBe(old);
    expect(await accepted(fresh)).toBe(true);
    expect((await stats('/cgi-bin/stable_token')) - before).toBe(1);
    // A late report of the old token changes nothing.
    expect((await h.internal('POST', `/v1/apps/${TEST_APPID}/access-token/rejected`, { accessToken: old })).body.accessToken).toBe(fresh);
    expect((await stats('/cgi-bin/stable_token')) - before).toBe(1);
    expect((await h.internal('POST', `/v1/apps/${TEST_APPID}/access-token/rejected`, {})).body.error.code).toBe('BAD_REQUEST');
  });

  it('refuses HEAD on the passthrough (the router would have sent it on as a call)', async () => {
    const head = await fetch(`${h.server.urls.internal}/v1/apps/${TEST_APPID}/wechat/wxa/checksession`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${INTERNAL_TOKEN}` },
    });
    expect(head.status).toBe(405);
  });

  it('another instance stops handing out a token forced out here within seconds', async () => {
    const other = await startHarness({
      apps: [{ appid: TEST_APPID, secret: TEST_SECRET }],
      dataDir: h.config.dataDir,
      sandbox: h.sandbox,
      clock: h.clock,
      config: { listen: { internal: '127.0.0.1:0' }, internal: { token: INTERNAL_TOKEN } },
    });
    try {
      const before = (await other.internal('GET', `/v1/apps/${TEST_APPID}/access-token`)).body.accessToken;
      h.clock.advance(31_000); // forced refreshes are 30 s apart
      const forced = await h.internal('POST', `/v1/apps/${TEST_APPID}/access-token/refresh`);
      expect(forced.status).toBe(200);
      expect(await accepted(before)).toBe(false);
      h.clock.advance(6_000);
      await other.internal('GET', `/v1/apps/${TEST_APPID}/access-token`); // notices, in the background
      await new Promise((r) => setTimeout(r, 200));
      expect((await other.internal('GET', `/v1/apps/${TEST_APPID}/access-token`)).body.accessToken).toBe(forced.body.accessToken);
    } finally {
      await other.stop();
    }
  });

  it('uses the classic API when asked, once per rotation', async () => {
    const before = await stats('/cgi-bin/token');
    const answers = await Promise.all(Array.from({ length: 10 }, () => h.internal('GET', `/v1/apps/${CLASSIC_APPID}/access-token`)));
    expect(new Set(answers.map((a) => a.body.accessToken)).size).toBe(1);
    expect((await stats('/cgi-bin/token')) - before).toBe(1);
  });
});

describe('helpers', () => {
  it('POST /auth/phone returns the number and saves it; a reused code is PHONE_CODE_INVALID', async () => {
    const { code, openid } = await h.code();
    const { token } = (await h.login({ code, appid: TEST_APPID })).body;
    const { code: phoneCode } = await h.control<{ code: string }>('phone', { appid: TEST_APPID, openid, phoneNumber: '13800138000' });
    const answer = await h.post('/auth/phone', { code: phoneCode }, { authorization: `Bearer ${token}` });
    expect(answer).toMatchObject({ status: 200, body: { phoneNumber: '13800138000', purePhoneNumber: '13800138000', countryCode: '86' } });
    expect((await h.get('/auth/session', token)).body.user.phoneNumber).toBe('13800138000');
    const reused = await h.post('/auth/phone', { code: phoneCode }, { authorization: `Bearer ${token}` });
    expect(reused).toMatchObject({ status: 400, body: { error: { code: 'PHONE_CODE_INVALID' } } });
    expect((await h.post('/auth/phone', { code: phoneCode })).status).toBe(401);
    expect((await h.post('/auth/phone', { code: '' }, { authorization: `Bearer ${token}` })).body.error.code).toBe('BAD_REQUEST');
  });

  it('checks content (msgSecCheck v2) and validates its input first', async () => {
    const { openid } = await h.code();
    const pass = await h.internal('POST', `/v1/apps/${TEST_APPID}/msg-sec-check`, { openid, scene: 2, content: 'hello' });
    expect(pass.body).toMatchObject({ suggest: 'pass', label: 100 });
    const risky = await h.internal('POST', `/v1/apps/${TEST_APPID}/msg-sec-check`, { openid, scene: 2, content: 'this has a risky-word' });
    expect(risky.body).toMatchObject({ suggest: 'risky', label: 20001, traceId: expect.any(String) });
    const bad = await h.internal('POST', `/v1/apps/${TEST_APPID}/msg-sec-check`, { openid, scene: 9, content: 'x' });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'BAD_REQUEST', message: expect.stringContaining('scene') } } });
  });

  // Subscribe messages (grants, data checks, msgid, no retry on doubt): test/subscribe.test.ts.

  it('passes a 2 MB wxacode image through byte for byte, and through the helper', async () => {
    const request = { scene: 'order=7', width: 820 };
    const expected = noisePng(820, `${TEST_APPID}/order=7/`);
    expect(expected.length).toBeGreaterThan(2_000_000);
    const raw = await h.internal('POST', `/v1/apps/${TEST_APPID}/wechat/wxa/getwxacodeunlimit`, request);
    expect(raw.headers.get('content-type')).toBe('image/png');
    expect(createHash('sha256').update(raw.raw).digest('hex')).toBe(createHash('sha256').update(expected).digest('hex'));
    const helper = await h.internal('POST', `/v1/apps/${TEST_APPID}/wxacode`, request);
    expect(helper.raw.equals(expected)).toBe(true);
    const invalid = await h.internal('POST', `/v1/apps/${TEST_APPID}/wxacode`, { scene: 'has space' });
    expect(invalid.body.error.code).toBe('BAD_REQUEST');
    // WeChat's JSON error comes through the passthrough untouched.
    const refused = await h.internal('POST', `/v1/apps/${TEST_APPID}/wechat/wxa/getwxacodeunlimit`, { scene: 'x'.repeat(40) });
    expect(refused.body.errcode).toBe(40129);
  });

  it('wxacode helper: retries WeChat’s -1 (making a code changes nothing), maps credential errors, checks lineColor', async () => {
    const before = await stats('/wxa/getwxacodeunlimit');
    await h.control('faults', { path: '/wxa/getwxacodeunlimit', errcode: -1, times: 1 });
    const image = await h.internal('POST', `/v1/apps/${TEST_APPID}/wxacode`, { scene: 'busy=1', width: 280 });
    expect(image.headers.get('content-type')).toBe('image/png');
    expect((await stats('/wxa/getwxacodeunlimit')) - before).toBe(2);
    await h.control('faults', { path: '/wxa/getwxacodeunlimit', errcode: 40013, times: 1 });
    const refused = await h.internal('POST', `/v1/apps/${TEST_APPID}/wxacode`, { scene: 'creds=1' });
    expect(refused).toMatchObject({ status: 502, body: { error: { code: 'WECHAT_CREDENTIALS_INVALID' } } });
    const color = await h.internal('POST', `/v1/apps/${TEST_APPID}/wxacode`, { scene: 'c=1', lineColor: { r: 300, g: 0, b: 0 } });
    expect(color.body.error).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('lineColor') });
    expect((await h.internal('POST', '/v1/apps/wx9999999999999999/wxacode', '[1]' as never)).body.error.code).toBe('APP_UNKNOWN');
  });

  it('generates URL schemes and URL links', async () => {
    const scheme = await h.internal('POST', `/v1/apps/${TEST_APPID}/url-scheme`, { path: 'pages/index', query: 'a=1', expireInterval: 7 });
    expect(scheme.body.openlink).toMatch(/^weixin:\/\/dl\/business\/\?t=/);
    const link = await h.internal('POST', `/v1/apps/${TEST_APPID}/url-link`, { path: 'pages/index', query: 'a=1' });
    expect(link.body.urlLink).toMatch(/^https:\/\/wxaurl\.cn\//);
    expect((await h.internal('POST', `/v1/apps/${TEST_APPID}/url-link`, { expireInterval: 90 })).body.error.code).toBe('BAD_REQUEST');
    const now = Math.floor(Date.now() / 1000);
    const inTenDays = await h.internal('POST', `/v1/apps/${TEST_APPID}/url-link`, { expireTime: now + 10 * 86_400 });
    expect(inTenDays.status).toBe(200);
    for (const body of [{ expireTime: now + 31 * 86_400 }, { expireTime: now - 60 }, { expireTime: now + 3600, expireInterval: 1 }]) {
      const answer = await h.internal('POST', `/v1/apps/${TEST_APPID}/url-scheme`, body);
      expect(answer.body.error, JSON.stringify(body)).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('expireTime') });
    }
  });
});

describe('sessions through the internal API', () => {
  it('looks a session up by its id and ends it', async () => {
    const { code, openid } = await h.code();
    const { token } = (await h.login({ code, appid: TEST_APPID })).body;
    const id = createHash('sha256').update(token).digest('hex');
    const live = (await h.internal('GET', `/v1/sessions/${id}`)).body;
    expect(live).toMatchObject({ id, openid, appid: TEST_APPID, status: 'active', revokedAt: null });
    expect(live.endsAt).toBeLessThanOrEqual(live.expiresAt);
    // Unused past the idle timeout: over, though never revoked and before its absolute end.
    h.clock.advance(live.endsAt - h.clock.now() + 1_000);
    expect((await h.internal('GET', `/v1/sessions/${id}`)).body).toMatchObject({ status: 'expired', revokedAt: null });
    expect((await h.get('/auth/session', token)).body.error.code).toBe('SESSION_EXPIRED');
    expect((await h.internal('DELETE', `/v1/sessions/${id}`)).body).toEqual({ revoked: true });
    expect((await h.internal('GET', `/v1/sessions/${id}`)).body.status).toBe('revoked');
    expect((await h.internal('GET', `/v1/sessions/${'0'.repeat(64)}`)).status).toBe(404);
  });
});

describe('logs', () => {
  it('never contain an access token, the AppSecret or the internal token', async () => {
    const { accessToken } = await h.server.tokens.get(TEST_APPID);
    const text = h.logs.text();
    expect(text).not.toContain(accessToken);
    expect(text).not.toContain(TEST_SECRET);
    expect(text).not.toContain(INTERNAL_TOKEN);
    expect(text).not.toContain('access_token=');
  });
});
