/**
 * The sandbox's access tokens (classic and stable, docs/wechat-api.md §2 and the §2.4 state
 * machine), the session-key APIs (§3) and the phone-number API (§4), over real HTTP; plus direct
 * SandboxModel tests where moving a clock is easier than a round trip. A token is judged "accepted"
 * when /wxa/checksession with a valid signature answers errcode 0.
 */
import { createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sandboxRequest, type Reply, type RequestOptions } from '../test/http.js';
import {
  CODE_TTL_MS,
  SandboxInputError,
  SandboxModel,
  TOKEN_GRACE_MS,
  TOKEN_TTL_MS,
  createSandbox,
  createSandboxClock,
  sessionKeyHmac,
  type Sandbox,
  type SandboxClock,
  type SandboxOptions,
} from './index.js';

// ---- fixtures ----------------------------------------------------------------------------------

const T0 = Date.UTC(2025, 0, 15, 8, 0, 0);
const APP = { appid: 'wx1111111111111111', secret: 'secret-of-app-a-0123456789abcdef' };
const APP_B = { appid: 'wx2222222222222222', secret: 'secret-of-app-b-0123456789abcdef' };
const RID = / rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/;
const MIN = 60_000;
const S = 1_000;

let clock: SandboxClock;
let base: string;
const started: Sandbox[] = [];

async function startSandbox(options: SandboxOptions = {}): Promise<{ sandbox: Sandbox; clock: SandboxClock; url: string }> {
  const c = options.clock ?? createSandboxClock(() => T0);
  const s = createSandbox({ apps: [APP, APP_B], ...options, clock: c });
  started.push(s);
  const url = await s.start();
  return { sandbox: s, clock: c, url };
}

beforeEach(async () => {
  ({ clock, url: base } = await startSandbox());
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});

async function request(method: string, path: string, options: RequestOptions = {}): Promise<Reply> {
  return sandboxRequest(base, method, path, options);
}

function expectWeChatError(reply: Reply, errcode: number): void {
  expect(reply.status, reply.text).toBe(200);
  expect(reply.body?.errcode, reply.text).toBe(errcode);
  expect(reply.body.errmsg).toMatch(RID);
}

/** A user that logged in, with the session_key jscode2session returned. */
async function loginUser(app = APP, input: Record<string, unknown> = {}): Promise<{ openid: string; sessionKey: string }> {
  const issued = await request('POST', '/__sandbox/login', { json: { appid: app.appid, ...input } });
  expect(issued.status, issued.text).toBe(200);
  const reply = await request('GET', '/sns/jscode2session', {
    query: { appid: app.appid, secret: app.secret, js_code: issued.body.code, grant_type: 'authorization_code' },
  });
  expect(reply.body.session_key, reply.text).toBeTypeOf('string');
  return { openid: reply.body.openid, sessionKey: reply.body.session_key };
}

function classic(app: { appid: string; secret: string } = APP, grantType = 'client_credential'): Promise<Reply> {
  return request('GET', '/cgi-bin/token', { query: { grant_type: grantType, appid: app.appid, secret: app.secret } });
}

async function classicToken(app = APP): Promise<string> {
  const reply = await classic(app);
  expect(reply.body.access_token, reply.text).toBeTypeOf('string');
  return reply.body.access_token;
}

function stable(app: { appid: string; secret: string } = APP, force?: boolean): Promise<Reply> {
  return request('POST', '/cgi-bin/stable_token', {
    json: { grant_type: 'client_credential', appid: app.appid, secret: app.secret, ...(force === undefined ? {} : { force_refresh: force }) },
  });
}

function hmac(sessionKey: string): string {
  return createHmac('sha256', sessionKey).update('').digest('hex');
}

function checkSession(token: string | null, openid: string, signature: string, sigMethod = 'hmac_sha256'): Promise<Reply> {
  const query: Record<string, string> = { openid, signature, sig_method: sigMethod };
  if (token !== null) query.access_token = token;
  return request('GET', '/wxa/checksession', { query });
}

/** The errcode /wxa/checksession gives for this token and a valid signature (0: token accepted). */
let probe: { openid: string; sessionKey: string } | undefined;
let probeB: { openid: string; sessionKey: string } | undefined;
beforeEach(() => {
  probe = undefined;
  probeB = undefined;
});
async function tokenErrcode(token: string, app = APP): Promise<number> {
  let user: { openid: string; sessionKey: string };
  if (app === APP) user = probe ??= await loginUser(APP);
  else user = probeB ??= await loginUser(APP_B);
  const reply = await checkSession(token, user.openid, hmac(user.sessionKey));
  expect(reply.status).toBe(200);
  return reply.body.errcode;
}

// ---- classic token -----------------------------------------------------------------------------

describe('/cgi-bin/token (classic)', () => {
  it('returns a new token with expires_in 7200 on every call', async () => {
    const tokens = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const reply = await classic();
      expect(reply.status).toBe(200);
      expect(Object.keys(reply.body).sort()).toEqual(['access_token', 'expires_in']);
      expect(reply.body.expires_in).toBe(7200);
      expect(reply.body.access_token.length).toBeGreaterThanOrEqual(100);
      expect(reply.body.access_token.length).toBeLessThanOrEqual(512);
      tokens.add(reply.body.access_token);
      clock.advance(10 * S);
    }
    expect(tokens.size).toBe(3);
  });

  it('keeps the previous token working for 5 minutes, then answers 40001', async () => {
    const old = await classicToken();
    clock.advance(10 * MIN);
    const current = await classicToken();
    expect(await tokenErrcode(old)).toBe(0);
    expect(await tokenErrcode(current)).toBe(0);
    clock.advance(5 * MIN - 1 * S);
    expect(await tokenErrcode(old)).toBe(0);
    clock.advance(2 * S);
    expect(await tokenErrcode(old)).toBe(40001);
    expect(await tokenErrcode(current)).toBe(0);
  });

  it('answers 40001 with the spec errmsg for a superseded token', async () => {
    const user = await loginUser();
    const old = await classicToken();
    await classicToken();
    clock.advance(TOKEN_GRACE_MS);
    const reply = await checkSession(old, user.openid, hmac(user.sessionKey));
    expectWeChatError(reply, 40001);
    expect(reply.body.errmsg).toMatch(/^invalid credential, access_token is invalid or not latest/);
  });

  it('keeps only one previous token: the token before it answers 40001 at once (§2.4)', async () => {
    const first = await classicToken();
    const second = await classicToken();
    const third = await classicToken();
    expect(await tokenErrcode(third)).toBe(0);
    expect(await tokenErrcode(second)).toBe(0);
    expect(await tokenErrcode(first)).toBe(40001);
  });

  it('answers 42001 for a token past its 7200 s', async () => {
    const token = await classicToken();
    clock.advance(TOKEN_TTL_MS - S);
    expect(await tokenErrcode(token)).toBe(0);
    clock.advance(2 * S);
    const user = probe!;
    const reply = await checkSession(token, user.openid, hmac(user.sessionKey));
    expectWeChatError(reply, 42001);
    expect(reply.body.errmsg).toMatch(/^access_token expired rid: /);
  });

  it('answers 40001 to a wrong secret, 40013 to an unknown appid, 40002 to a wrong grant_type', async () => {
    expectWeChatError(await classic({ appid: APP.appid, secret: 'wrong' }), 40001);
    expectWeChatError(await classic({ appid: 'wx0000000000000000', secret: APP.secret }), 40013);
    expectWeChatError(await classic(APP, 'authorization_code'), 40002);
    expectWeChatError(await request('GET', '/cgi-bin/token', { query: { grant_type: 'client_credential', secret: 's' } }), 41002);
    expectWeChatError(await request('GET', '/cgi-bin/token', { query: { grant_type: 'client_credential', appid: APP.appid } }), 41004);
  });

  it('enforces the daily quota with 45009 (classicDailyQuota: 3), and resets it the next day', async () => {
    const own = await startSandbox({ classicDailyQuota: 3 });
    base = own.url;
    for (let i = 0; i < 3; i++) expect((await classic()).body.expires_in).toBe(7200);
    const refused = await classic();
    expectWeChatError(refused, 45009);
    expect(refused.body.errmsg).toMatch(/^reach max api daily quota limit/);
    // the quota is per app
    expect((await classic(APP_B)).body.expires_in).toBe(7200);
    own.clock.advance(24 * 60 * MIN);
    expect((await classic()).body.expires_in).toBe(7200);
  });

  it('a refused (quota) call does not rotate the token', async () => {
    const own = await startSandbox({ classicDailyQuota: 1 });
    base = own.url;
    const token = await classicToken();
    expectWeChatError(await classic(), 45009);
    own.clock.advance(10 * MIN);
    expect(await tokenErrcode(token)).toBe(0);
  });
});

// ---- stable token ------------------------------------------------------------------------------

describe('/cgi-bin/stable_token', () => {
  it('answers 43002 to GET', async () => {
    expectWeChatError(
      await request('GET', '/cgi-bin/stable_token', { query: { grant_type: 'client_credential', ...APP } }),
      43002,
    );
  });

  it('answers 47001 to a form body, a non-JSON body, an empty body or a JSON non-object', async () => {
    const form = new URLSearchParams({ grant_type: 'client_credential', ...APP }).toString();
    expectWeChatError(
      await request('POST', '/cgi-bin/stable_token', { raw: form, contentType: 'application/x-www-form-urlencoded' }),
      47001,
    );
    expectWeChatError(await request('POST', '/cgi-bin/stable_token', { raw: 'not json', contentType: 'application/json' }), 47001);
    expectWeChatError(await request('POST', '/cgi-bin/stable_token'), 47001);
    expectWeChatError(await request('POST', '/cgi-bin/stable_token', { json: [APP] }), 47001);
  });

  it('answers parameter and credential errors', async () => {
    expectWeChatError(await request('POST', '/cgi-bin/stable_token', { json: { ...APP } }), 40002);
    expectWeChatError(await stable({ appid: '', secret: 's' }), 41002);
    expectWeChatError(await stable({ appid: APP.appid, secret: '' }), 41004);
    expectWeChatError(await stable({ appid: 'wx0000000000000000', secret: 's' }), 40013);
    expectWeChatError(await stable({ appid: APP.appid, secret: 'wrong' }), 40125);
  });

  it('normal mode returns the same token with a decreasing expires_in', async () => {
    const first = await stable();
    expect(first.status).toBe(200);
    expect(first.body.expires_in).toBe(7200);
    clock.advance(100 * S);
    const second = await stable();
    expect(second.body.access_token).toBe(first.body.access_token);
    expect(second.body.expires_in).toBe(7100);
    clock.advance(60 * MIN);
    const third = await stable(APP, false);
    expect(third.body.access_token).toBe(first.body.access_token);
    expect(third.body.expires_in).toBe(3500);
    // just before the last 5 minutes: still the same token, with at least 300 s left
    clock.advance(3500 * S - 301 * S);
    const fourth = await stable();
    expect(fourth.body.access_token).toBe(first.body.access_token);
    expect(fourth.body.expires_in).toBe(301);
    expect(await tokenErrcode(first.body.access_token)).toBe(0);
  });

  it('within the last 5 minutes returns a new token; the old one works until its own expiry, then 42001', async () => {
    const old = (await stable()).body.access_token as string;
    clock.advance(TOKEN_TTL_MS - 200 * S); // 200 s left
    const renewed = await stable();
    expect(renewed.body.access_token).not.toBe(old);
    expect(renewed.body.expires_in).toBe(7200);
    expect(await tokenErrcode(old)).toBe(0);
    expect(await tokenErrcode(renewed.body.access_token)).toBe(0);
    // later normal calls keep the new token
    clock.advance(100 * S);
    const again = await stable();
    expect(again.body.access_token).toBe(renewed.body.access_token);
    expect(again.body.expires_in).toBe(7100);
    clock.advance(99 * S); // 1 s before the old token's expiry
    expect(await tokenErrcode(old)).toBe(0);
    clock.advance(2 * S);
    expect(await tokenErrcode(old)).toBe(42001);
    expect(await tokenErrcode(renewed.body.access_token)).toBe(0);
  });

  it('expires_in is never below 300 in normal mode', async () => {
    let last = (await stable()).body.access_token as string;
    let rotations = 0;
    for (let t = 0; t < 3 * 7200; t += 97) {
      clock.advance(97 * S);
      const reply = await stable();
      expect(reply.body.expires_in, `at ${t + 97} s`).toBeGreaterThanOrEqual(300);
      expect(reply.body.expires_in).toBeLessThanOrEqual(7200);
      if (reply.body.access_token !== last) rotations++;
      last = reply.body.access_token;
    }
    expect(rotations).toBeGreaterThanOrEqual(2);
  }, 20_000);

  it('force_refresh returns a new token and the old one answers 40001 at once', async () => {
    const old = (await stable()).body.access_token as string;
    clock.advance(MIN);
    const forced = await stable(APP, true);
    expect(forced.body.access_token).not.toBe(old);
    expect(forced.body.expires_in).toBe(7200);
    expect(await tokenErrcode(old)).toBe(40001);
    expect(await tokenErrcode(forced.body.access_token)).toBe(0);
    // normal mode now hands out the forced token
    expect((await stable()).body.access_token).toBe(forced.body.access_token);
  });

  it('a second force within 30 s returns the current token unchanged; after 30 s it refreshes', async () => {
    const first = await stable(APP, true);
    clock.advance(29 * S);
    const tooSoon = await stable(APP, true);
    expect(tooSoon.body.access_token).toBe(first.body.access_token);
    expect(tooSoon.body.expires_in).toBe(7200 - 29);
    expect(await tokenErrcode(first.body.access_token)).toBe(0);
    clock.advance(1 * S);
    const later = await stable(APP, true);
    expect(later.body.access_token).not.toBe(first.body.access_token);
    expect(await tokenErrcode(first.body.access_token)).toBe(40001);
  });

  it('refuses more than 20 forces in a day by returning the current token unchanged', async () => {
    const seen = new Set<string>();
    let last = '';
    for (let i = 0; i < 20; i++) {
      const reply = await stable(APP, true);
      expect(seen.has(reply.body.access_token), `force ${i + 1}`).toBe(false);
      seen.add(reply.body.access_token);
      last = reply.body.access_token;
      clock.advance(31 * S);
    }
    const refused = await stable(APP, true);
    expect(refused.body.access_token).toBe(last);
    expect(await tokenErrcode(last)).toBe(0);
    clock.advance(MIN);
    expect((await stable(APP, true)).body.access_token).toBe(last);
    // other apps have their own count
    const other = await stable(APP_B, true);
    expect(other.body.expires_in).toBe(7200);
  });

  it('keeps the classic and stable families isolated', async () => {
    const stableToken = (await stable()).body.access_token as string;
    const classicOld = await classicToken();
    for (let i = 0; i < 3; i++) await classicToken();
    expect(await tokenErrcode(stableToken)).toBe(0);
    expect((await stable()).body.access_token).toBe(stableToken);
    // a forced stable refresh does not touch the classic tokens either
    const classicNow = await classicToken();
    clock.advance(MIN);
    const forced = (await stable(APP, true)).body.access_token as string;
    expect(await tokenErrcode(classicNow)).toBe(0);
    expect(classicOld).not.toBe(stableToken);
    // past the classic grace, the superseded classic token is gone while the stable one works
    clock.advance(TOKEN_GRACE_MS);
    expect(await tokenErrcode(classicOld)).toBe(40001);
    expect(await tokenErrcode(classicNow)).toBe(0);
    expect(await tokenErrcode(forced)).toBe(0);
    // and a classic call after that still leaves it alone
    await classicToken();
    expect(await tokenErrcode(forced)).toBe(0);
  });

  it("a token is only accepted for its own app's users", async () => {
    const userB = await loginUser(APP_B);
    const tokenA = (await stable()).body.access_token as string;
    expectWeChatError(await checkSession(tokenA, userB.openid, hmac(userB.sessionKey)), 40003);
    const tokenB = (await stable(APP_B)).body.access_token as string;
    expect(await tokenErrcode(tokenB, APP_B)).toBe(0);
  });
});

// ---- checksession / resetusersessionkey -------------------------------------------------------

describe('/wxa/checksession', () => {
  it('checks the token first: no token 41001, garbage 40001', async () => {
    const user = await loginUser();
    expectWeChatError(await checkSession(null, user.openid, hmac(user.sessionKey)), 41001);
    expectWeChatError(await checkSession('', user.openid, hmac(user.sessionKey)), 41001);
    expectWeChatError(await checkSession('garbage-token', user.openid, hmac(user.sessionKey)), 40001);
    // the token is judged before openid, sig_method and signature
    expectWeChatError(await checkSession(null, 'o-unknown', 'x', 'md5'), 41001);
    expectWeChatError(await checkSession('garbage-token', 'o-unknown', 'x', 'md5'), 40001);
  });

  it('accepts HMAC-SHA256 keyed with the session_key string over "" with {errcode: 0, errmsg: "ok"}', async () => {
    const user = await loginUser();
    const token = await classicToken();
    const reply = await checkSession(token, user.openid, hmac(user.sessionKey));
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ errcode: 0, errmsg: 'ok' });
    expect(sessionKeyHmac(user.sessionKey)).toBe(hmac(user.sessionKey));
  });

  it('answers 87009 to a wrong signature, including one keyed with the base64-decoded key', async () => {
    const user = await loginUser();
    const token = await classicToken();
    expectWeChatError(await checkSession(token, user.openid, 'f'.repeat(64)), 87009);
    expectWeChatError(await checkSession(token, user.openid, hmac(user.sessionKey).toUpperCase()), 87009);
    const decodedKey = createHmac('sha256', Buffer.from(user.sessionKey, 'base64')).update('').digest('hex');
    const reply = await checkSession(token, user.openid, decodedKey);
    expectWeChatError(reply, 87009);
    expect(reply.body.errmsg).toMatch(/^invalid signature rid: /);
    expectWeChatError(
      await request('GET', '/wxa/checksession', { query: { access_token: token, openid: user.openid, sig_method: 'hmac_sha256' } }),
      87009,
    );
  });

  it('answers 87008 to a sig_method other than hmac_sha256', async () => {
    const user = await loginUser();
    const token = await classicToken();
    for (const method of ['md5', 'HMAC_SHA256', 'sha256', '']) {
      const reply = await checkSession(token, user.openid, hmac(user.sessionKey), method);
      expectWeChatError(reply, 87008);
      expect(reply.body.errmsg).toMatch(/^invalid sig_method rid: /);
    }
  });

  it('answers 40003 to an unknown openid', async () => {
    const user = await loginUser();
    const token = await classicToken();
    const reply = await checkSession(token, 'o-never-logged-in', hmac(user.sessionKey));
    expectWeChatError(reply, 40003);
    expect(reply.body.errmsg).toMatch(/^invalid openid rid: /);
    expectWeChatError(
      await request('GET', '/wxa/checksession', { query: { access_token: token, signature: hmac(user.sessionKey), sig_method: 'hmac_sha256' } }),
      40003,
    );
  });

  it('follows the session_key: after rotateSessionKey the old signature gives 87009', async () => {
    const old = await loginUser(APP, { openid: 'o-check-rot' });
    const token = await classicToken();
    const fresh = await loginUser(APP, { openid: 'o-check-rot', rotateSessionKey: true });
    expectWeChatError(await checkSession(token, old.openid, hmac(old.sessionKey)), 87009);
    expect((await checkSession(token, old.openid, hmac(fresh.sessionKey))).body.errcode).toBe(0);
  });

  it('also takes openid/signature/sig_method from a JSON body (§3.1: accept either)', async () => {
    const user = await loginUser();
    const token = await classicToken();
    const reply = await request('POST', '/wxa/checksession', {
      query: { access_token: token },
      json: { openid: user.openid, signature: hmac(user.sessionKey), sig_method: 'hmac_sha256' },
    });
    expect(reply.body).toEqual({ errcode: 0, errmsg: 'ok' });
  });
});

describe('/wxa/resetusersessionkey', () => {
  it('rotates the key: returns the new session_key, and the old signature then fails with 87009', async () => {
    const user = await loginUser();
    const token = await classicToken();
    const reply = await request('GET', '/wxa/resetusersessionkey', {
      query: { access_token: token, openid: user.openid, signature: hmac(user.sessionKey), sig_method: 'hmac_sha256' },
    });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ errcode: 0, errmsg: 'ok', openid: user.openid });
    const newKey = reply.body.session_key as string;
    expect(newKey).not.toBe(user.sessionKey);
    expect(Buffer.from(newKey, 'base64')).toHaveLength(16);
    expectWeChatError(await checkSession(token, user.openid, hmac(user.sessionKey)), 87009);
    expect((await checkSession(token, user.openid, hmac(newKey))).body).toEqual({ errcode: 0, errmsg: 'ok' });
    // the next login hands out the new key
    expect((await loginUser(APP, { openid: user.openid })).sessionKey).toBe(newKey);
  });

  it('checks the token, openid, sig_method and signature like checksession', async () => {
    const user = await loginUser();
    const token = await classicToken();
    const reset = (query: Record<string, string>) => request('GET', '/wxa/resetusersessionkey', { query });
    const good = { access_token: token, openid: user.openid, signature: hmac(user.sessionKey), sig_method: 'hmac_sha256' };
    expectWeChatError(await reset({ ...good, access_token: '' }), 41001);
    expectWeChatError(await reset({ ...good, access_token: 'garbage' }), 40001);
    expectWeChatError(await reset({ ...good, openid: 'o-nobody' }), 40003);
    expectWeChatError(await reset({ ...good, sig_method: 'md5' }), 87008);
    expectWeChatError(await reset({ ...good, signature: 'bad' }), 87009);
    // none of those rotated the key
    expect((await checkSession(token, user.openid, hmac(user.sessionKey))).body.errcode).toBe(0);
  });
});

// ---- phone number ------------------------------------------------------------------------------

describe('/wxa/business/getuserphonenumber', () => {
  async function phoneCode(app: { appid: string }, openid: string, phoneNumber = '13800138000', countryCode?: string): Promise<string> {
    const reply = await request('POST', '/__sandbox/phone', {
      json: { appid: app.appid, openid, phoneNumber, ...(countryCode ? { countryCode } : {}) },
    });
    expect(reply.status, reply.text).toBe(200);
    return reply.body.code;
  }

  function getPhone(token: string, body: unknown): Promise<Reply> {
    return request('POST', '/wxa/business/getuserphonenumber', { query: { access_token: token }, json: body });
  }

  it('answers phone_info with phoneNumber, purePhoneNumber, countryCode as the number 86 and a watermark', async () => {
    const user = await loginUser();
    const token = await classicToken();
    const code = await phoneCode(APP, user.openid);
    clock.advance(7 * S);
    const reply = await getPhone(token, { code });
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({
      errcode: 0,
      errmsg: 'ok',
      phone_info: {
        phoneNumber: '13800138000',
        purePhoneNumber: '13800138000',
        countryCode: 86,
        watermark: { appid: APP.appid, timestamp: Math.floor((T0 + 7 * S) / 1000) },
      },
    });
    expect(typeof reply.body.phone_info.countryCode).toBe('number');
  });

  it('accepts a matching openid', async () => {
    const user = await loginUser();
    const token = (await stable()).body.access_token as string;
    const code = await phoneCode(APP, user.openid);
    expect((await getPhone(token, { code, openid: user.openid })).body.errcode).toBe(0);
  });

  it('puts the country code in phoneNumber for a non-mainland number', async () => {
    const user = await loginUser();
    const token = await classicToken();
    const code = await phoneCode(APP, user.openid, '2025550123', '1');
    const info = (await getPhone(token, { code })).body.phone_info;
    expect(info.purePhoneNumber).toBe('2025550123');
    expect(info.countryCode).toBe(1);
    expect(info.phoneNumber).toContain('2025550123');
    expect(info.phoneNumber).toMatch(/^\+1/);
  });

  it('strips exactly the country code from a number given with a leading +86', async () => {
    const user = await loginUser();
    const token = await classicToken();
    const code = await phoneCode(APP, user.openid, '+8613800138000');
    const info = (await getPhone(token, { code })).body.phone_info;
    expect(info.purePhoneNumber).toBe('13800138000');
    expect(info.phoneNumber).toBe('13800138000');
    expect(info.countryCode).toBe(86);
  });

  it('answers 40029 to a reused code', async () => {
    const user = await loginUser();
    const token = await classicToken();
    const code = await phoneCode(APP, user.openid);
    expect((await getPhone(token, { code })).body.errcode).toBe(0);
    const reused = await getPhone(token, { code });
    expectWeChatError(reused, 40029);
    expect(reused.body.errmsg).toMatch(/^invalid code rid: /);
  });

  it('answers 40029 to a code older than 5 minutes', async () => {
    const user = await loginUser();
    const code = await phoneCode(APP, user.openid);
    const fresh = await phoneCode(APP, user.openid);
    clock.advance(CODE_TTL_MS - S);
    const token = await classicToken();
    expect((await getPhone(token, { code: fresh })).body.errcode).toBe(0);
    clock.advance(2 * S);
    expectWeChatError(await getPhone(token, { code }), 40029);
  });

  it('answers 40003 when the openid does not match the code', async () => {
    const user = await loginUser();
    const other = await loginUser();
    const token = await classicToken();
    const code = await phoneCode(APP, user.openid);
    const reply = await getPhone(token, { code, openid: other.openid });
    expectWeChatError(reply, 40003);
  });

  it('answers 47001 to a form-encoded or non-JSON body', async () => {
    const user = await loginUser();
    const token = await classicToken();
    const code = await phoneCode(APP, user.openid);
    expectWeChatError(
      await request('POST', '/wxa/business/getuserphonenumber', {
        query: { access_token: token },
        raw: new URLSearchParams({ code }).toString(),
        contentType: 'application/x-www-form-urlencoded',
      }),
      47001,
    );
    expectWeChatError(await request('POST', '/wxa/business/getuserphonenumber', { query: { access_token: token } }), 47001);
    // the refused calls did not consume the code
    expect((await getPhone(token, { code })).body.errcode).toBe(0);
  });

  it('answers 40029 to a code issued for another app', async () => {
    const userB = await loginUser(APP_B);
    const tokenA = await classicToken(APP);
    const code = await phoneCode(APP_B, userB.openid);
    expectWeChatError(await getPhone(tokenA, { code }), 40029);
    const tokenB = await classicToken(APP_B);
    expect((await getPhone(tokenB, { code })).body.phone_info.watermark.appid).toBe(APP_B.appid);
  });

  it('checks the token first, and answers 40029 to a missing or unknown code', async () => {
    const user = await loginUser();
    const code = await phoneCode(APP, user.openid);
    expectWeChatError(await request('POST', '/wxa/business/getuserphonenumber', { json: { code } }), 41001);
    expectWeChatError(await getPhone('garbage', { code }), 40001);
    const token = await classicToken();
    expectWeChatError(await getPhone(token, {}), 40029);
    expectWeChatError(await getPhone(token, { code: 'unknown' }), 40029);
    // the code in the query string instead of the body → 40029 (§4.1)
    expectWeChatError(
      await request('POST', '/wxa/business/getuserphonenumber', { query: { access_token: token, code }, json: {} }),
      40029,
    );
  });

  it('rejects bad phone-code requests in the control API', async () => {
    const user = await loginUser();
    const unknownUser = await request('POST', '/__sandbox/phone', { json: { appid: APP.appid, openid: 'o-nobody', phoneNumber: '13800138000' } });
    expect(unknownUser.status).toBe(404);
    expect(unknownUser.body.error.code).toBe('USER_UNKNOWN');
    const badNumber = await request('POST', '/__sandbox/phone', { json: { appid: APP.appid, openid: user.openid, phoneNumber: '138-0013' } });
    expect(badNumber.status).toBe(400);
    expect(badNumber.body.error.code).toBe('BAD_REQUEST');
  });
});

// ---- SandboxModel directly ---------------------------------------------------------------------

describe('SandboxModel', () => {
  function model(options: { classicDailyQuota?: number } = {}) {
    const c = createSandboxClock(() => T0);
    const m = new SandboxModel({ clock: c, ...options });
    m.registerApp(APP);
    m.registerApp(APP_B);
    return { m, c };
  }

  it('createSandboxClock follows its base plus the advanced offset', () => {
    let now = 1_000;
    const c = createSandboxClock(() => now);
    expect(c.now()).toBe(1_000);
    c.advance(500);
    now = 2_000;
    expect(c.now()).toBe(2_500);
  });

  it('exchangeLoginCode follows the §1 decision order', () => {
    const { m, c } = model();
    const { code } = m.issueLoginCode({ appid: APP.appid });
    expect(m.exchangeLoginCode('wx0000000000000000', APP.secret, code)).toEqual({ errcode: 40013 });
    expect(m.exchangeLoginCode(APP.appid, 'bad', 'unknown')).toEqual({ errcode: 40125 });
    expect(m.exchangeLoginCode(APP.appid, APP.secret, 'unknown')).toEqual({ errcode: 40029 });
    expect(m.exchangeLoginCode(APP_B.appid, APP_B.secret, code)).toEqual({ errcode: 40029 });
    expect('user' in m.exchangeLoginCode(APP.appid, APP.secret, code)).toBe(true);
    // used beats expired
    c.advance(CODE_TTL_MS + S);
    expect(m.exchangeLoginCode(APP.appid, APP.secret, code)).toEqual({ errcode: 40163 });
    const late = m.issueLoginCode({ appid: APP.appid });
    c.advance(CODE_TTL_MS + 1);
    expect(m.exchangeLoginCode(APP.appid, APP.secret, late.code)).toEqual({ errcode: 40029 });
  });

  it('issueLoginCode throws SandboxInputError for an unknown app or a bad sessionKey', () => {
    const { m } = model();
    expect(() => m.issueLoginCode({ appid: 'wx0000000000000000' })).toThrow(SandboxInputError);
    expect(() => m.issueLoginCode({ appid: APP.appid, sessionKey: 'short' })).toThrow(SandboxInputError);
  });

  it('checkToken: classic grace, expiry and garbage', () => {
    const { m, c } = model();
    const first = m.classicToken(APP.appid);
    if ('errcode' in first) throw new Error('expected a token');
    expect(m.checkToken(null)).toEqual({ ok: false, errcode: 41001 });
    expect(m.checkToken('nope')).toEqual({ ok: false, errcode: 40001 });
    expect(m.checkToken(first.token)).toEqual({ ok: true, appid: APP.appid });
    c.advance(MIN);
    const second = m.classicToken(APP.appid);
    if ('errcode' in second) throw new Error('expected a token');
    c.advance(TOKEN_GRACE_MS - 1);
    expect(m.checkToken(first.token).ok).toBe(true);
    c.advance(1);
    expect(m.checkToken(first.token)).toEqual({ ok: false, errcode: 40001 });
    c.advance(TOKEN_TTL_MS);
    expect(m.checkToken(second.token)).toEqual({ ok: false, errcode: 42001 });
  });

  it('classicToken stops at the daily quota with 45009', () => {
    const { m, c } = model({ classicDailyQuota: 2 });
    expect('token' in m.classicToken(APP.appid)).toBe(true);
    expect('token' in m.classicToken(APP.appid)).toBe(true);
    expect(m.classicToken(APP.appid)).toEqual({ errcode: 45009 });
    c.advance(24 * 60 * MIN);
    expect('token' in m.classicToken(APP.appid)).toBe(true);
  });

  it('stableToken: normal, early rotation, force and its limits', () => {
    const { m, c } = model();
    const a = m.stableToken(APP.appid, false);
    expect(a.expiresIn).toBe(7200);
    c.advance(TOKEN_TTL_MS - 300 * S - 1);
    expect(m.stableToken(APP.appid, false).token).toBe(a.token);
    c.advance(1);
    const b = m.stableToken(APP.appid, false);
    expect(b.token).not.toBe(a.token);
    expect(m.checkToken(a.token).ok).toBe(true);
    c.advance(300 * S);
    expect(m.checkToken(a.token)).toEqual({ ok: false, errcode: 42001 });
    const forced = m.stableToken(APP.appid, true);
    expect(forced.token).not.toBe(b.token);
    expect(m.checkToken(b.token)).toEqual({ ok: false, errcode: 40001 });
    c.advance(10 * S);
    expect(m.stableToken(APP.appid, true).token).toBe(forced.token);
  });

  it('exchangePhoneCode: single use, 5 minutes, bound to its app and openid', () => {
    const { m, c } = model();
    const { openid } = m.issueLoginCode({ appid: APP.appid });
    const one = m.issuePhoneCode({ appid: APP.appid, openid, phoneNumber: '13800138000' }).code;
    expect(m.exchangePhoneCode(APP_B.appid, one, undefined)).toEqual({ errcode: 40029 });
    expect(m.exchangePhoneCode(APP.appid, one, 'o-other')).toEqual({ errcode: 40003 });
    expect(m.exchangePhoneCode(APP.appid, one, openid)).toEqual({ phoneNumber: '13800138000', countryCode: '86' });
    expect(m.exchangePhoneCode(APP.appid, one, openid)).toEqual({ errcode: 40029 });
    const two = m.issuePhoneCode({ appid: APP.appid, openid, phoneNumber: '13800138000' }).code;
    c.advance(CODE_TTL_MS + 1);
    expect(m.exchangePhoneCode(APP.appid, two, undefined)).toEqual({ errcode: 40029 });
  });

  it('faults are taken per path and app, and stats count per path and app', () => {
    const { m } = model();
    m.addFault({ path: '/p', appid: APP.appid, errcode: -1, times: 2 });
    expect(m.takeFault('/p', APP_B.appid)).toBeUndefined();
    expect(m.takeFault('/q', APP.appid)).toBeUndefined();
    expect(m.takeFault('/p', APP.appid)?.errcode).toBe(-1);
    expect(m.takeFault('/p', APP.appid)?.errcode).toBe(-1);
    expect(m.takeFault('/p', APP.appid)).toBeUndefined();
    m.count('/p', APP.appid);
    m.count('/p', undefined);
    expect(m.snapshotStats()).toEqual({ total: 2, paths: { '/p': 2 }, apps: { [APP.appid]: { '/p': 1 } } });
    m.resetStats();
    expect(m.snapshotStats().total).toBe(0);
  });
});
