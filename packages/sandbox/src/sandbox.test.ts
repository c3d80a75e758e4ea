/**
 * The sandbox of api.weixin.qq.com, driven over real HTTP as minigate (and a test harness) would
 * drive it: jscode2session, session keys, user data, faults, stats and the control API.
 * Expected behaviour comes from docs/wechat-api.md (§0, §1, §3, §6, §7, §12).
 * Tokens, checksession and phone numbers are in sandbox-tokens.test.ts.
 */
import { createDecipheriv, createHash, createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sandboxRequest, type Reply, type RequestOptions } from '../test/http.js';
import { createSandbox, createSandboxClock, type Sandbox, type SandboxClock, type SandboxOptions } from './index.js';

// ---- fixtures ----------------------------------------------------------------------------------

/** A fixed instant (mid-day UTC) so that only `clock.advance` moves sandbox time. */
const T0 = Date.UTC(2025, 0, 15, 8, 0, 0);
const APP = { appid: 'wx1111111111111111', secret: 'secret-of-app-a-0123456789abcdef' };
const APP_B = { appid: 'wx2222222222222222', secret: 'secret-of-app-b-0123456789abcdef' };
const UNION_APP = { appid: 'wx3333333333333333', secret: 'secret-of-app-u-0123456789abcdef', unionBound: true };

/** errmsg texts as WeChat returns them (docs/wechat-api.md §0, §1, §3). */
const SPEC_ERRMSG: Record<number, string> = {
  [-1]: 'system error',
  40001: 'invalid credential, access_token is invalid or not latest',
  40002: 'invalid grant_type',
  40003: 'invalid openid',
  40013: 'invalid appid',
  40029: 'invalid code',
  40125: 'invalid appsecret',
  40163: 'code been used',
  40226: 'code blocked',
  41001: 'access_token missing',
  41002: 'appid missing',
  41004: 'appsecret missing',
  41008: 'missing code',
  42001: 'access_token expired',
  45011: 'api minute-quota reach limit mustslower retry next minute',
  87009: 'invalid signature',
};
const RID = / rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/;

// ---- harness -----------------------------------------------------------------------------------

let sandbox: Sandbox;
let clock: SandboxClock;
let base: string;
const started: Sandbox[] = [];

async function startSandbox(options: SandboxOptions = {}): Promise<{ sandbox: Sandbox; clock: SandboxClock; url: string }> {
  const c = options.clock ?? createSandboxClock(() => T0);
  const s = createSandbox({ apps: [APP, APP_B, UNION_APP], ...options, clock: c });
  started.push(s);
  const url = await s.start();
  return { sandbox: s, clock: c, url };
}

beforeEach(async () => {
  ({ sandbox, clock, url: base } = await startSandbox());
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});

async function request(
  method: string,
  path: string,
  options: RequestOptions & { url?: string } = {},
): Promise<Reply> {
  return sandboxRequest(options.url ?? base, method, path, options);
}

/** POST to the control API; returns the reply whatever its status. */
function control(path: string, json?: unknown, method = 'POST'): Promise<Reply> {
  return request(method, path, json === undefined ? {} : { json });
}

/** A wx.login code via the control API (must succeed). */
async function issueCode(input: Record<string, unknown>): Promise<{ code: string; openid: string; unionid?: string }> {
  const reply = await control('/__sandbox/login', input);
  expect(reply.status, reply.text).toBe(200);
  return reply.body;
}

function jscode2session(
  app: { appid: string; secret: string },
  code: string,
  overrides: Record<string, string | null> = {},
): Promise<Reply> {
  const query: Record<string, string> = {};
  const all = { appid: app.appid, secret: app.secret, js_code: code, grant_type: 'authorization_code', ...overrides };
  for (const [k, v] of Object.entries(all)) if (v !== null) query[k] = v;
  return request('GET', '/sns/jscode2session', { query });
}

/** A logged-in user: their openid and the session_key jscode2session gave. */
async function loginUser(app = APP, input: Record<string, unknown> = {}): Promise<{ openid: string; sessionKey: string }> {
  const { code } = await issueCode({ appid: app.appid, ...input });
  const reply = await jscode2session(app, code);
  expect(reply.body.session_key, reply.text).toBeTypeOf('string');
  return { openid: reply.body.openid, sessionKey: reply.body.session_key };
}

async function classicToken(app = APP): Promise<string> {
  const reply = await request('GET', '/cgi-bin/token', {
    query: { grant_type: 'client_credential', appid: app.appid, secret: app.secret },
  });
  expect(reply.body.access_token, reply.text).toBeTypeOf('string');
  return reply.body.access_token;
}

function hmac(sessionKey: string): string {
  return createHmac('sha256', sessionKey).update('').digest('hex');
}

function checkSession(token: string, openid: string, signature: string): Promise<Reply> {
  return request('GET', '/wxa/checksession', {
    query: { access_token: token, openid, signature, sig_method: 'hmac_sha256' },
  });
}

/** A WeChat business error as §0 describes it: HTTP 200, JSON, errcode, errmsg + rid suffix. */
function expectWeChatError(reply: Reply, errcode: number): void {
  expect(reply.status, reply.text).toBe(200);
  expect(reply.body, reply.text).toBeTypeOf('object');
  expect(reply.body.errcode, reply.text).toBe(errcode);
  expect(reply.body.errmsg).toMatch(RID);
  const expected = SPEC_ERRMSG[errcode];
  if (expected !== undefined) expect(reply.body.errmsg.replace(RID, '')).toBe(expected);
}

function isBase64Of16Bytes(value: string): boolean {
  const bytes = Buffer.from(value, 'base64');
  return bytes.length === 16 && bytes.toString('base64') === value;
}

// ---- jscode2session ----------------------------------------------------------------------------

describe('jscode2session', () => {
  it('answers a success with openid and a base64 16-byte session_key, and no errcode/errmsg keys', async () => {
    const { code, openid } = await issueCode({ appid: APP.appid, openid: 'o-user-0001' });
    expect(openid).toBe('o-user-0001');
    const reply = await jscode2session(APP, code);
    expect(reply.status).toBe(200);
    expect(reply.contentType).toMatch(/json/);
    expect(reply.body.openid).toBe('o-user-0001');
    expect(isBase64Of16Bytes(reply.body.session_key)).toBe(true);
    expect(Object.keys(reply.body).sort()).toEqual(['openid', 'session_key']);
    expect(reply.body).not.toHaveProperty('errcode');
    expect(reply.body).not.toHaveProperty('errmsg');
    expect(reply.body).not.toHaveProperty('unionid');
  });

  it('makes an openid when the login gives none, and the exchange returns that openid', async () => {
    const { code, openid } = await issueCode({ appid: APP.appid });
    expect(openid).toMatch(/^o[A-Za-z0-9_-]{27}$/);
    expect((await jscode2session(APP, code)).body.openid).toBe(openid);
  });

  it('returns a unionid only for a unionBound app or when a unionid was given', async () => {
    const bound = await issueCode({ appid: UNION_APP.appid });
    expect(bound.unionid).toBeTypeOf('string');
    const boundReply = await jscode2session(UNION_APP, bound.code);
    expect(boundReply.body.unionid).toBe(bound.unionid);
    // the same user keeps the same unionid
    const again = await issueCode({ appid: UNION_APP.appid, openid: bound.openid });
    expect((await jscode2session(UNION_APP, again.code)).body.unionid).toBe(bound.unionid);

    const plain = await issueCode({ appid: APP.appid });
    expect(plain).not.toHaveProperty('unionid');
    expect(await jscode2session(APP, plain.code).then((r) => r.body)).not.toHaveProperty('unionid');

    const given = await issueCode({ appid: APP.appid, unionid: 'oUnion-given-0001' });
    expect(given.unionid).toBe('oUnion-given-0001');
    const givenReply = await jscode2session(APP, given.code);
    expect(givenReply.body.unionid).toBe('oUnion-given-0001');
    expect(givenReply.body).not.toHaveProperty('errcode');
  });

  it('refuses the same code twice with 40163', async () => {
    const { code } = await issueCode({ appid: APP.appid });
    expect((await jscode2session(APP, code)).body.openid).toBeTypeOf('string');
    expectWeChatError(await jscode2session(APP, code), 40163);
  });

  it('refuses an unknown code with 40029', async () => {
    expectWeChatError(await jscode2session(APP, 'no-such-code-0123456789abcdef0123'), 40029);
  });

  it('refuses a code older than 5 minutes with 40029, and accepts it just before', async () => {
    const early = await issueCode({ appid: APP.appid });
    const late = await issueCode({ appid: APP.appid });
    clock.advance(5 * 60_000 - 1_000);
    expect((await jscode2session(APP, early.code)).body.openid).toBe(early.openid);
    clock.advance(2_000);
    expectWeChatError(await jscode2session(APP, late.code), 40029);
  });

  it('moves the clock through POST /__sandbox/clock too', async () => {
    const { code } = await issueCode({ appid: APP.appid });
    const before = await control('/__sandbox/clock', undefined, 'GET');
    expect(before.body.now).toBe(T0);
    const moved = await control('/__sandbox/clock', { advanceMs: 5 * 60_000 + 1 });
    expect(moved.status).toBe(200);
    expect(moved.body.now).toBe(T0 + 5 * 60_000 + 1);
    expectWeChatError(await jscode2session(APP, code), 40029);
  });

  it("refuses a code issued for app A when exchanged with app B's credentials (40029)", async () => {
    const { code, openid } = await issueCode({ appid: APP.appid });
    expectWeChatError(await jscode2session(APP_B, code), 40029);
    // the refused exchange did not consume it: app A can still use it
    expect((await jscode2session(APP, code)).body.openid).toBe(openid);
  });

  it('refuses a wrong secret with 40125 (before looking at the code)', async () => {
    const { code } = await issueCode({ appid: APP.appid });
    expectWeChatError(await jscode2session({ appid: APP.appid, secret: 'wrong-secret' }, code), 40125);
    // a wrong secret with an unknown code is still 40125 (decision order, §1)
    expectWeChatError(await jscode2session({ appid: APP.appid, secret: 'wrong-secret' }, 'unknown'), 40125);
    // and the code was not consumed
    expect((await jscode2session(APP, code)).body.openid).toBeTypeOf('string');
  });

  it('refuses an unknown appid with 40013', async () => {
    const { code } = await issueCode({ appid: APP.appid });
    expectWeChatError(await jscode2session({ appid: 'wx9999999999999999', secret: APP.secret }, code), 40013);
  });

  it('reports missing parameters with 41002, 41004 and 41008', async () => {
    const { code } = await issueCode({ appid: APP.appid });
    expectWeChatError(await jscode2session(APP, code, { appid: null }), 41002);
    expectWeChatError(await jscode2session(APP, code, { appid: '' }), 41002);
    expectWeChatError(await jscode2session(APP, code, { secret: null }), 41004);
    expectWeChatError(await jscode2session(APP, code, { js_code: null }), 41008);
    expectWeChatError(await request('GET', '/sns/jscode2session'), 41002);
  });

  it('refuses a grant_type other than authorization_code with 40002', async () => {
    const { code } = await issueCode({ appid: APP.appid });
    expectWeChatError(await jscode2session(APP, code, { grant_type: 'client_credential' }), 40002);
    expectWeChatError(await jscode2session(APP, code, { grant_type: null }), 40002);
    expect((await jscode2session(APP, code)).body.openid).toBeTypeOf('string');
  });

  it('answers 41002 to a POST with the parameters in the body', async () => {
    const { code } = await issueCode({ appid: APP.appid });
    const params = { appid: APP.appid, secret: APP.secret, js_code: code, grant_type: 'authorization_code' };
    expectWeChatError(await request('POST', '/sns/jscode2session', { json: params }), 41002);
    expectWeChatError(
      await request('POST', '/sns/jscode2session', {
        raw: new URLSearchParams(params).toString(),
        contentType: 'application/x-www-form-urlencoded',
      }),
      41002,
    );
  });

  it('refuses a blocked user with 40226, and lets them in once unblocked', async () => {
    const { code, openid } = await issueCode({ appid: APP.appid, blocked: true });
    expectWeChatError(await jscode2session(APP, code), 40226);
    const next = await issueCode({ appid: APP.appid, openid });
    expectWeChatError(await jscode2session(APP, next.code), 40226);
    const unblocked = await issueCode({ appid: APP.appid, openid, blocked: false });
    expect((await jscode2session(APP, unblocked.code)).body.openid).toBe(openid);
  });

  it('refuses the 101st exchange for one user within a minute with 45011', async () => {
    const openid = 'o-busy-user-000000000000000';
    const codes: string[] = [];
    for (let i = 0; i < 101; i++) codes.push((await issueCode({ appid: APP.appid, openid })).code);
    for (let i = 0; i < 100; i++) {
      const reply = await jscode2session(APP, codes[i]!);
      expect(reply.body.openid, `exchange ${i + 1}: ${reply.text}`).toBe(openid);
    }
    expectWeChatError(await jscode2session(APP, codes[100]!), 45011);
    // another user is not limited
    expect((await loginUser(APP)).openid).not.toBe(openid);
    // a minute later the limit has passed, and the refused code was not consumed
    clock.advance(60_000);
    expect((await jscode2session(APP, codes[100]!)).body.openid).toBe(openid);
  });

  it('answers every business error as HTTP 200 JSON with errmsg ending in " rid: 8hex-8hex-8hex"', async () => {
    const { code } = await issueCode({ appid: APP.appid });
    const replies = [
      await jscode2session(APP, 'unknown'),
      await jscode2session(APP, code, { secret: 'bad' }),
      await jscode2session(APP, code, { appid: 'wx0000000000000000' }),
      await jscode2session(APP, code, { appid: null }),
      await jscode2session(APP, code, { secret: null }),
      await jscode2session(APP, code, { js_code: null }),
      await jscode2session(APP, code, { grant_type: 'x' }),
    ];
    for (const reply of replies) {
      expect(reply.status).toBe(200);
      expect(reply.contentType).toMatch(/json/);
      expect(reply.body.errcode).toBeGreaterThan(0);
      expect(reply.body.errmsg).toMatch(RID);
    }
    // rids differ from call to call
    const rids = new Set(replies.map((r) => (r.body.errmsg as string).slice(-26)));
    expect(rids.size).toBe(replies.length);
  });
});

// ---- session_key -------------------------------------------------------------------------------

describe('session_key', () => {
  it('stays the same across logins by default', async () => {
    const first = await loginUser(APP, { openid: 'o-steady' });
    const second = await loginUser(APP, { openid: 'o-steady' });
    const third = await loginUser(APP, { openid: 'o-steady' });
    expect(second.sessionKey).toBe(first.sessionKey);
    expect(third.sessionKey).toBe(first.sessionKey);
  });

  it('differs between users and apps', async () => {
    const a = await loginUser(APP, { openid: 'o-same-openid' });
    const b = await loginUser(APP_B, { openid: 'o-same-openid' });
    const c = await loginUser(APP, { openid: 'o-other-openid' });
    expect(new Set([a.sessionKey, b.sessionKey, c.sessionKey]).size).toBe(3);
  });

  it('changes with rotateSessionKey: true, and the new key then sticks', async () => {
    const first = await loginUser(APP, { openid: 'o-rotating' });
    const rotated = await loginUser(APP, { openid: 'o-rotating', rotateSessionKey: true });
    expect(rotated.sessionKey).not.toBe(first.sessionKey);
    expect(isBase64Of16Bytes(rotated.sessionKey)).toBe(true);
    expect((await loginUser(APP, { openid: 'o-rotating' })).sessionKey).toBe(rotated.sessionKey);
  });

  it('is set by sessionKey', async () => {
    const key = Buffer.alloc(16, 7).toString('base64');
    expect((await loginUser(APP, { openid: 'o-fixed', sessionKey: key })).sessionKey).toBe(key);
    expect((await loginUser(APP, { openid: 'o-fixed' })).sessionKey).toBe(key);
  });

  it('answers 400 when sessionKey is not base64 of 16 bytes', async () => {
    for (const bad of [
      'short',
      Buffer.alloc(15).toString('base64'),
      Buffer.alloc(17).toString('base64'),
      Buffer.alloc(32).toString('base64'),
      '!!!!!!!!!!!!!!!!!!!!!!!!',
    ]) {
      const reply = await control('/__sandbox/login', { appid: APP.appid, sessionKey: bad });
      expect(reply.status, bad).toBe(400);
      expect(reply.body.error.code, bad).toBe('BAD_REQUEST');
    }
    const notString = await control('/__sandbox/login', { appid: APP.appid, sessionKey: 16 });
    expect(notString.status).toBe(400);
  });

  it('answers 400 when sessionKey holds characters outside base64, even if it decodes to 16 bytes', async () => {
    // Node's decoder skips the "*" and accepts the url-safe alphabet; a session_key must be base64 (§1).
    for (const bad of ['AAAAAAAAAA*AAAAAAAAAAAA==', 'AAAAAAAAAAAAAAAAAAAA-_==']) {
      expect(Buffer.from(bad, 'base64').length).toBe(16);
      const reply = await control('/__sandbox/login', { appid: APP.appid, sessionKey: bad });
      expect.soft(reply.status, `${bad} -> ${reply.text}`).toBe(400);
    }
  });
});

// ---- user data (getUserProfile) ----------------------------------------------------------------

describe('/__sandbox/userinfo', () => {
  it('returns encryptedData/iv that decrypt with the session_key to the userInfo plus a watermark, without openId', async () => {
    const { openid, sessionKey } = await loginUser(APP);
    clock.advance(42_000);
    const reply = await control('/__sandbox/userinfo', {
      appid: APP.appid,
      openid,
      userInfo: { nickName: 'Alice', city: 'Hangzhou', gender: 2 },
    });
    expect(reply.status, reply.text).toBe(200);
    const { encryptedData, iv, rawData, signature } = reply.body as Record<string, string>;
    for (const value of [encryptedData, iv, rawData, signature]) expect(value).toBeTypeOf('string');
    expect(Buffer.from(iv!, 'base64')).toHaveLength(16);

    const decipher = createDecipheriv('aes-128-cbc', Buffer.from(sessionKey, 'base64'), Buffer.from(iv!, 'base64'));
    const plain = Buffer.concat([decipher.update(Buffer.from(encryptedData!, 'base64')), decipher.final()]);
    const data = JSON.parse(plain.toString('utf8'));
    expect(data).toMatchObject({ nickName: 'Alice', city: 'Hangzhou', gender: 2 });
    for (const field of ['nickName', 'avatarUrl', 'gender', 'language', 'city', 'province', 'country']) {
      expect(data, field).toHaveProperty(field);
    }
    expect(data.watermark).toEqual({ appid: APP.appid, timestamp: Math.floor((T0 + 42_000) / 1000) });
    expect(data).not.toHaveProperty('openId');
    expect(data).not.toHaveProperty('unionId');
    expect(JSON.stringify(data)).not.toContain(openid);

    // rawData is the userInfo, and signature = sha1(rawData + session_key) (§7)
    expect(JSON.parse(rawData!)).toEqual({ ...data, watermark: undefined });
    expect(signature).toBe(createHash('sha1').update(rawData! + sessionKey).digest('hex'));
  });

  it('defaults to the anonymous profile ("微信用户")', async () => {
    const { openid, sessionKey } = await loginUser(APP);
    const reply = await control('/__sandbox/userinfo', { appid: APP.appid, openid });
    const raw = JSON.parse(reply.body.rawData);
    expect(raw.nickName).toBe('微信用户');
    expect(reply.body.signature).toBe(createHash('sha1').update(reply.body.rawData + sessionKey).digest('hex'));
  });

  it('encrypts with the current key: after a rotation the old key no longer decrypts it', async () => {
    const old = await loginUser(APP, { openid: 'o-userinfo-rot' });
    const fresh = await loginUser(APP, { openid: 'o-userinfo-rot', rotateSessionKey: true });
    const reply = await control('/__sandbox/userinfo', { appid: APP.appid, openid: 'o-userinfo-rot' });
    expect(reply.body.signature).toBe(createHash('sha1').update(reply.body.rawData + fresh.sessionKey).digest('hex'));
    expect(reply.body.signature).not.toBe(createHash('sha1').update(reply.body.rawData + old.sessionKey).digest('hex'));
  });

  it('answers 404 USER_UNKNOWN for a user that never logged in', async () => {
    const reply = await control('/__sandbox/userinfo', { appid: APP.appid, openid: 'o-nobody' });
    expect(reply.status).toBe(404);
    expect(reply.body.error.code).toBe('USER_UNKNOWN');
  });
});

// ---- faults ------------------------------------------------------------------------------------

describe('faults', () => {
  it('{errcode: -1, times: 2} answers -1 twice, then the call succeeds with the same (unconsumed) code', async () => {
    const { code, openid } = await issueCode({ appid: APP.appid });
    const added = await control('/__sandbox/faults', { path: '/sns/jscode2session', errcode: -1, times: 2 });
    expect(added.status).toBe(200);
    expect(added.body).toMatchObject({ path: '/sns/jscode2session', errcode: -1, times: 2 });
    expect(added.body.id).toBeTypeOf('number');
    expectWeChatError(await jscode2session(APP, code), -1);
    expectWeChatError(await jscode2session(APP, code), -1);
    const third = await jscode2session(APP, code);
    expect(third.body.openid).toBe(openid);
    expect(third.body).not.toHaveProperty('errcode');
  });

  it('defaults to one call, and uses a given errmsg', async () => {
    await control('/__sandbox/faults', { path: '/sns/jscode2session', errcode: 45011, errmsg: 'slow down' });
    const { code } = await issueCode({ appid: APP.appid });
    const faulted = await jscode2session(APP, code);
    expect(faulted.body.errcode).toBe(45011);
    expect(faulted.body.errmsg).toMatch(/^slow down rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/);
    expect((await jscode2session(APP, code)).body.openid).toBeTypeOf('string');
  });

  it('only affects its own path', async () => {
    await control('/__sandbox/faults', { path: '/cgi-bin/token', errcode: -1 });
    const { code } = await issueCode({ appid: APP.appid });
    expect((await jscode2session(APP, code)).body.openid).toBeTypeOf('string');
    expectWeChatError(
      await request('GET', '/cgi-bin/token', { query: { grant_type: 'client_credential', ...APP } }),
      -1,
    );
  });

  it('httpStatus: 502 answers a non-JSON 502', async () => {
    await control('/__sandbox/faults', { path: '/sns/jscode2session', httpStatus: 502 });
    const { code } = await issueCode({ appid: APP.appid });
    const reply = await jscode2session(APP, code);
    expect(reply.status).toBe(502);
    expect(reply.contentType).not.toMatch(/json/);
    expect(reply.body).toBeUndefined();
    expect((await jscode2session(APP, code)).status).toBe(200);
  });

  it('drop: true makes the request fail at the network level', async () => {
    await control('/__sandbox/faults', { path: '/sns/jscode2session', drop: true });
    const { code, openid } = await issueCode({ appid: APP.appid });
    await expect(jscode2session(APP, code)).rejects.toThrow();
    expect((await jscode2session(APP, code)).body.openid).toBe(openid);
  });

  it('delayMs delays the answer, which is otherwise normal', async () => {
    const { code, openid } = await issueCode({ appid: APP.appid });
    const quickStart = performance.now();
    await jscode2session(APP, 'warm-up');
    const quick = performance.now() - quickStart;
    await control('/__sandbox/faults', { path: '/sns/jscode2session', delayMs: 300 });
    const start = performance.now();
    const reply = await jscode2session(APP, code);
    const elapsed = performance.now() - start;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2_000);
    expect(quick).toBeLessThan(elapsed);
    expect(reply.body.openid).toBe(openid);
  });

  it('appid restricts a fault to one app (jscode2session: appid in the query)', async () => {
    await control('/__sandbox/faults', { path: '/sns/jscode2session', appid: APP_B.appid, errcode: -1, times: 5 });
    const a = await issueCode({ appid: APP.appid });
    const b = await issueCode({ appid: APP_B.appid });
    expect((await jscode2session(APP, a.code)).body.openid).toBe(a.openid);
    expectWeChatError(await jscode2session(APP_B, b.code), -1);
  });

  it('appid restricts a fault to one app (checksession: app of the access_token)', async () => {
    const userA = await loginUser(APP);
    const userB = await loginUser(APP_B);
    const tokenA = await classicToken(APP);
    const tokenB = await classicToken(APP_B);
    await control('/__sandbox/faults', { path: '/wxa/checksession', appid: APP.appid, errcode: -1 });
    expect((await checkSession(tokenB, userB.openid, hmac(userB.sessionKey))).body.errcode).toBe(0);
    expectWeChatError(await checkSession(tokenA, userA.openid, hmac(userA.sessionKey)), -1);
    expect((await checkSession(tokenA, userA.openid, hmac(userA.sessionKey))).body.errcode).toBe(0);
  });

  it('appid restricts a fault to one app (stable_token: appid in the JSON body)', async () => {
    await control('/__sandbox/faults', { path: '/cgi-bin/stable_token', appid: APP.appid, errcode: -1 });
    const stable = (app: { appid: string; secret: string }) =>
      request('POST', '/cgi-bin/stable_token', { json: { grant_type: 'client_credential', ...app } });
    expect((await stable(APP_B)).body.access_token).toBeTypeOf('string');
    const faulted = await stable(APP);
    expect(faulted.body.errcode, faulted.text).toBe(-1);
  });

  it('DELETE /__sandbox/faults clears every fault', async () => {
    await control('/__sandbox/faults', { path: '/sns/jscode2session', errcode: -1, times: 10 });
    await control('/__sandbox/faults', { path: '/sns/jscode2session', httpStatus: 503, times: 10 });
    const cleared = await control('/__sandbox/faults', undefined, 'DELETE');
    expect(cleared.status).toBe(200);
    expect(cleared.body).toEqual({ ok: true });
    const { code } = await issueCode({ appid: APP.appid });
    expect((await jscode2session(APP, code)).body.openid).toBeTypeOf('string');
  });

  it('refuses a fault with none of errcode/httpStatus/delayMs/drop, or a bad times/path, with 400', async () => {
    for (const body of [
      { path: '/sns/jscode2session' },
      { path: '/sns/jscode2session', times: 2 },
      { path: '/sns/jscode2session', drop: false },
      { path: '/sns/jscode2session', errcode: -1, times: 0 },
      { path: '/sns/jscode2session', errcode: -1, times: 1.5 },
      { errcode: -1 },
    ]) {
      const reply = await control('/__sandbox/faults', body);
      expect(reply.status, JSON.stringify(body)).toBe(400);
      expect(reply.body.error.code).toBe('BAD_REQUEST');
    }
    // none of them was installed
    const { code } = await issueCode({ appid: APP.appid });
    expect((await jscode2session(APP, code)).body.openid).toBeTypeOf('string');
  });
});

// ---- stats -------------------------------------------------------------------------------------

describe('stats', () => {
  it('counts calls per path and per appid, including faulted calls, and not control calls', async () => {
    const a1 = await issueCode({ appid: APP.appid });
    const a2 = await issueCode({ appid: APP.appid });
    const b1 = await issueCode({ appid: APP_B.appid });
    await jscode2session(APP, a1.code);
    await control('/__sandbox/faults', { path: '/sns/jscode2session', errcode: -1 });
    expectWeChatError(await jscode2session(APP, a2.code), -1);
    await jscode2session(APP_B, b1.code);
    await jscode2session(APP, 'unknown-code');
    const token = await classicToken(APP);
    await checkSession(token, a1.openid, 'bad-signature');

    const stats = await control('/__sandbox/stats', undefined, 'GET');
    expect(stats.status).toBe(200);
    expect(stats.body.paths).toEqual({ '/sns/jscode2session': 4, '/cgi-bin/token': 1, '/wxa/checksession': 1 });
    expect(stats.body.total).toBe(6);
    expect(stats.body.apps[APP.appid]).toEqual({ '/sns/jscode2session': 3, '/cgi-bin/token': 1, '/wxa/checksession': 1 });
    expect(stats.body.apps[APP_B.appid]).toEqual({ '/sns/jscode2session': 1 });
  });

  it('filters by ?appid=', async () => {
    const a = await issueCode({ appid: APP.appid });
    const b = await issueCode({ appid: APP_B.appid });
    await jscode2session(APP, a.code);
    await jscode2session(APP_B, b.code);
    await classicToken(APP_B);
    const onlyB = await request('GET', '/__sandbox/stats', { query: { appid: APP_B.appid } });
    expect(onlyB.body).toEqual({
      total: 2,
      paths: { '/sns/jscode2session': 1, '/cgi-bin/token': 1 },
      apps: { [APP_B.appid]: { '/sns/jscode2session': 1, '/cgi-bin/token': 1 } },
    });
    const none = await request('GET', '/__sandbox/stats', { query: { appid: 'wx0000000000000000' } });
    expect(none.body.total).toBe(0);
  });

  it('counts stable_token calls under the appid of the JSON body', async () => {
    await request('POST', '/cgi-bin/stable_token', { json: { grant_type: 'client_credential', ...APP } });
    const stats = await request('GET', '/__sandbox/stats', { query: { appid: APP.appid } });
    expect(stats.body.paths).toEqual({ '/cgi-bin/stable_token': 1 });
  });

  it('DELETE /__sandbox/stats resets the counts', async () => {
    await jscode2session(APP, 'x');
    expect((await control('/__sandbox/stats', undefined, 'GET')).body.total).toBe(1);
    const reset = await control('/__sandbox/stats', undefined, 'DELETE');
    expect(reset.status).toBe(200);
    expect((await control('/__sandbox/stats', undefined, 'GET')).body).toEqual({ total: 0, paths: {}, apps: {} });
    await jscode2session(APP, 'y');
    expect((await control('/__sandbox/stats', undefined, 'GET')).body.paths).toEqual({ '/sns/jscode2session': 1 });
  });
});

// ---- control API -------------------------------------------------------------------------------

describe('control API', () => {
  it('answers 404 APP_UNKNOWN for an unknown app', async () => {
    const login = await control('/__sandbox/login', { appid: 'wx0000000000000000' });
    expect(login.status).toBe(404);
    expect(login.body).toMatchObject({ error: { code: 'APP_UNKNOWN' } });
    expect(login.body.error.message).toBeTypeOf('string');
    const phone = await control('/__sandbox/phone', { appid: 'wx0000000000000000', openid: 'o', phoneNumber: '13800138000' });
    expect(phone.status).toBe(404);
    expect(phone.body.error.code).toBe('APP_UNKNOWN');
  });

  it('answers 400 BAD_REQUEST to a body that is not a JSON object or lacks required fields', async () => {
    for (const raw of ['{not json', '[1,2]', '"text"', 'null']) {
      const reply = await request('POST', '/__sandbox/login', { raw, contentType: 'application/json' });
      expect(reply.status, raw).toBe(400);
      expect(reply.body.error.code, raw).toBe('BAD_REQUEST');
    }
    const missing = await control('/__sandbox/login', {});
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe('BAD_REQUEST');
    const clock = await control('/__sandbox/clock', { advanceMs: -5 });
    expect(clock.status).toBe(400);
  });

  it('answers 404 NOT_FOUND to an unknown route or method', async () => {
    for (const [method, path] of [
      ['GET', '/__sandbox/nope'],
      ['POST', '/__sandbox/nope'],
      ['GET', '/__sandbox/login'],
      ['PUT', '/__sandbox/faults'],
    ] as const) {
      const reply = await request(method, path);
      expect(reply.status, `${method} ${path}`).toBe(404);
      expect(reply.body.error.code).toBe('NOT_FOUND');
    }
  });

  it('GET /__sandbox lists the routes', async () => {
    const reply = await request('GET', '/__sandbox');
    expect(reply.status).toBe(200);
    expect(Array.isArray(reply.body.routes)).toBe(true);
    const routes = (reply.body.routes as string[]).join('\n');
    for (const route of ['/__sandbox/apps', '/__sandbox/login', '/__sandbox/userinfo', '/__sandbox/phone', '/__sandbox/faults', '/__sandbox/clock', '/__sandbox/stats']) {
      expect(routes).toContain(route);
    }
    expect(reply.body.now).toBe(T0);
    expect((await request('GET', '/__sandbox/')).status).toBe(200);
  });

  it('POST /__sandbox/apps registers an app that can then log users in and get tokens', async () => {
    const app = { appid: 'wx4444444444444444', secret: 'a-new-secret' };
    expect((await control('/__sandbox/login', { appid: app.appid })).status).toBe(404);
    const reg = await control('/__sandbox/apps', { ...app, unionBound: true });
    expect(reg.status).toBe(200);
    expect(reg.body).toEqual({ ...app, unionBound: true, tokenTtlMs: 7_200_000 });
    const user = await issueCode({ appid: app.appid });
    const reply = await jscode2session(app, user.code);
    expect(reply.body.unionid).toBeTypeOf('string');
    expect(await classicToken(app)).toBeTypeOf('string');
    expect((await control('/__sandbox/apps', { appid: 'wx5' })).status).toBe(400);
  });

  it('answers an unknown WeChat path with a 404', async () => {
    const reply = await request('GET', '/cgi-bin/nope');
    expect(reply.status).toBe(404);
  });

  it('sandboxes are independent of each other', async () => {
    const other = await startSandbox({ apps: [APP] });
    const { code } = await issueCode({ appid: APP.appid });
    expectWeChatError(await request('GET', '/sns/jscode2session', {
      url: other.url,
      query: { appid: APP.appid, secret: APP.secret, js_code: code, grant_type: 'authorization_code' },
    }), 40029);
    expect(other.sandbox.model).not.toBe(sandbox.model);
  });
});
