/**
 * The WeChat client against a real sandbox over HTTP (docs/wechat-api.md §0, §1;
 * docs/reliability.md#login-and-wechat-calls): errcode mapping, retry only on -1, time limits, and
 * no secret in the log.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { ERRORS, type ErrorCode } from 'minigate-protocol';
import { createSandbox, type Sandbox } from 'minigate-sandbox';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { captureLogs } from '../../test/helpers/capture-logger.js';
import { AppError } from '../core/errors.js';
import { createWechatClient, WechatApiError, type WechatClientOptions } from './client.js';

const APP = { appid: 'wx0123456789abcdef', secret: 'sandbox-app-secret-0123456789abcdef' };
const UNION_APP = { appid: 'wx1111222233334444', secret: 'union-app-secret-fedcba9876543210' };
const WRONG_SECRET = 'not-the-app-secret-5a5a5a5a5a5a';
const LOGIN_PATH = '/sns/jscode2session';

const logs = captureLogs();
/** Everything that must never reach the log: AppSecrets, js_codes, session_keys. */
const secrets = new Set<string>([APP.secret, UNION_APP.secret, WRONG_SECRET]);

let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = createSandbox({ apps: [APP, { ...UNION_APP, unionBound: true }] });
  await sandbox.start();
});

afterAll(async () => {
  await sandbox?.close();
});

beforeEach(async () => {
  await control('DELETE', '/__sandbox/faults');
  await control('DELETE', '/__sandbox/stats');
});

// ---- helpers ---------------------------------------------------------------------------------

async function control<T = Record<string, unknown>>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${sandbox.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const json = (await response.json()) as T;
  if (!response.ok) throw new Error(`sandbox ${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/** A fresh login code (what wx.login gives the mini program). */
async function loginCode(
  options: { appid?: string; blocked?: boolean; openid?: string } = {},
): Promise<{ code: string; openid: string; unionid?: string }> {
  const result = await control<{ code: string; openid: string; unionid?: string }>('POST', '/__sandbox/login', {
    appid: options.appid ?? APP.appid,
    ...(options.openid ? { openid: options.openid } : {}),
    ...(options.blocked !== undefined ? { blocked: options.blocked } : {}),
  });
  secrets.add(result.code);
  return result;
}

async function fault(spec: { errcode?: number; httpStatus?: number; delayMs?: number; drop?: boolean; times: number }) {
  await control('POST', '/__sandbox/faults', { path: LOGIN_PATH, ...spec });
}

async function loginCalls(): Promise<number> {
  const stats = await control<{ paths: Record<string, number> }>('GET', '/__sandbox/stats');
  return stats.paths[LOGIN_PATH] ?? 0;
}

function client(overrides: Partial<WechatClientOptions> = {}) {
  return createWechatClient({
    apiBase: sandbox.url,
    timeoutMs: 3_000,
    logger: logs.logger,
    busyRetryDelaysMs: [10, 20],
    ...overrides,
  });
}

/** The AppError a promise rejects with; fails the test on success or on any other error type. */
async function rejection(promise: Promise<unknown>): Promise<AppError> {
  let result: unknown;
  try {
    result = await promise;
  } catch (error) {
    expect(error, `rejected with ${String(error)}`).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error(`expected a rejection, got ${JSON.stringify(result)}`);
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<AppError> {
  const error = await rejection(promise);
  expect(error.code).toBe(code);
  expect(error.status).toBe(ERRORS[code].status);
  expect(error.message).toBe(ERRORS[code].message);
  return error;
}

function remember<T extends { sessionKey: string }>(result: T): T {
  secrets.add(result.sessionKey);
  return result;
}

// ---- code2Session ----------------------------------------------------------------------------

describe('code2Session: success', () => {
  it('returns {openid, sessionKey} (no unionid when the app is not bound)', async () => {
    const { code, openid } = await loginCode();
    const result = remember(await client().code2Session(APP, code));
    expect(result).toStrictEqual({ openid, sessionKey: sandbox.model.user(APP.appid, openid)!.sessionKey });
    expect(Buffer.from(result.sessionKey, 'base64')).toHaveLength(16);
    expect(await loginCalls()).toBe(1);
  });

  it('returns the unionid when the app is bound to an Open Platform account', async () => {
    const { code, openid, unionid } = await loginCode({ appid: UNION_APP.appid });
    expect(unionid).toBeTruthy();
    const result = remember(await client().code2Session(UNION_APP, code));
    expect(result).toStrictEqual({ openid, sessionKey: sandbox.model.user(UNION_APP.appid, openid)!.sessionKey, unionid });
  });

  it('accepts an apiBase with a trailing slash', async () => {
    const { code, openid } = await loginCode();
    const result = remember(await client({ apiBase: `${sandbox.url}/` }).code2Session(APP, code));
    expect(result.openid).toBe(openid);
  });
});

describe('code2Session: errcode mapping', () => {
  it('40029 (unknown code) → AUTH_CODE_INVALID, with the WeChat answer kept as the cause', async () => {
    const bogus = 'bogus-code-0123456789abcdefABCDEF';
    secrets.add(bogus);
    const error = await expectCode(client().code2Session(APP, bogus), 'AUTH_CODE_INVALID');
    expect(error.details).toMatchObject({ errcode: 40029 });
    expect(error.cause).toBeInstanceOf(WechatApiError);
    expect((error.cause as WechatApiError).errcode).toBe(40029);
    expect(await loginCalls()).toBe(1);
  });

  it('40163 (code used twice) → AUTH_CODE_USED, not retried', async () => {
    const { code } = await loginCode();
    remember(await client().code2Session(APP, code));
    const error = await expectCode(client().code2Session(APP, code), 'AUTH_CODE_USED');
    expect(error.details).toMatchObject({ errcode: 40163 });
    expect(await loginCalls()).toBe(2);
  });

  it('40226 (user blocked by risk control) → AUTH_USER_BLOCKED', async () => {
    const { code } = await loginCode({ blocked: true });
    const error = await expectCode(client().code2Session(APP, code), 'AUTH_USER_BLOCKED');
    expect(error.details).toMatchObject({ errcode: 40226 });
  });

  it('45011 (minute quota) → WECHAT_RATE_LIMITED, not retried', async () => {
    const { code } = await loginCode();
    await fault({ errcode: 45011, times: 1 });
    const error = await expectCode(client().code2Session(APP, code), 'WECHAT_RATE_LIMITED');
    expect(error.details).toMatchObject({ errcode: 45011 });
    expect(await loginCalls()).toBe(1);
  });

  it('40125 (wrong AppSecret) → WECHAT_CREDENTIALS_INVALID', async () => {
    const { code } = await loginCode();
    const error = await expectCode(client().code2Session({ appid: APP.appid, secret: WRONG_SECRET }, code), 'WECHAT_CREDENTIALS_INVALID');
    expect(error.details).toMatchObject({ errcode: 40125 });
    expect(await loginCalls()).toBe(1);
  });

  it('40013 (unknown appid) → WECHAT_CREDENTIALS_INVALID', async () => {
    const { code } = await loginCode();
    await expectCode(client().code2Session({ appid: 'wx9999999999999999', secret: APP.secret }, code), 'WECHAT_CREDENTIALS_INVALID');
  });

  it('an unmapped errcode (48001) → WECHAT_ERROR', async () => {
    const { code } = await loginCode();
    await fault({ errcode: 48001, times: 1 });
    const error = await expectCode(client().code2Session(APP, code), 'WECHAT_ERROR');
    expect(error.details).toMatchObject({ errcode: 48001 });
    expect(await loginCalls()).toBe(1);
  });

  it('the code survives answers that did not act on it: after the 45011 the same code still works', async () => {
    const { code, openid } = await loginCode();
    await fault({ errcode: 45011, times: 1 });
    await expectCode(client().code2Session(APP, code), 'WECHAT_RATE_LIMITED');
    expect(remember(await client().code2Session(APP, code)).openid).toBe(openid);
  });
});

describe('code2Session: -1 retry (F2)', () => {
  it('-1 twice then success: succeeds after exactly 3 calls, waiting the configured back-off', async () => {
    const { code, openid } = await loginCode();
    await fault({ errcode: -1, times: 2 });
    const slept: number[] = [];
    const sleep = (ms: number) => {
      slept.push(ms);
      return new Promise<void>((resolve) => setTimeout(resolve, ms));
    };
    const result = remember(await client({ sleep }).code2Session(APP, code));
    expect(result.openid).toBe(openid);
    expect(await loginCalls()).toBe(3);
    expect(slept).toStrictEqual([10, 20]);
  });

  it('-1 three times: WECHAT_UNAVAILABLE after exactly 3 calls', async () => {
    const { code } = await loginCode();
    await fault({ errcode: -1, times: 3 });
    const error = await expectCode(client().code2Session(APP, code), 'WECHAT_UNAVAILABLE');
    expect(error.details).toMatchObject({ errcode: -1 });
    expect(await loginCalls()).toBe(3);
    // The fault is used up: nothing of it is left for a 4th call.
    await new Promise((r) => setTimeout(r, 100));
    expect(await loginCalls()).toBe(3);
  });

  it('-1 many times: still only 3 calls (at most two retries)', async () => {
    const { code } = await loginCode();
    await fault({ errcode: -1, times: 10 });
    await expectCode(client().code2Session(APP, code), 'WECHAT_UNAVAILABLE');
    expect(await loginCalls()).toBe(3);
  });
});

describe('code2Session: transport failures (F1)', () => {
  it('a slow answer (2 s) with timeoutMs 300 rejects with WECHAT_UNAVAILABLE well under 2 s, after ONE call', async () => {
    const { code } = await loginCode();
    await fault({ delayMs: 2_000, times: 1 });
    const started = performance.now();
    const error = await expectCode(client({ timeoutMs: 300 }).code2Session(APP, code), 'WECHAT_UNAVAILABLE');
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1_000);
    expect(error.details).toMatchObject({ path: LOGIN_PATH });
    expect(await loginCalls()).toBe(1);
    // No retry shows up later either (the code may have been consumed by the slow call).
    await new Promise((r) => setTimeout(r, 300));
    expect(await loginCalls()).toBe(1);
    const timeoutLine = logs.entries().find((e) => e.msg === 'wechat: no answer in time');
    expect(timeoutLine).toMatchObject({ wechat: LOGIN_PATH, cause: 'timeout' });
  });

  it('HTTP 502 with an HTML body → WECHAT_UNAVAILABLE, not retried (1 call)', async () => {
    const { code } = await loginCode();
    await fault({ httpStatus: 502, times: 1 });
    const error = await expectCode(client().code2Session(APP, code), 'WECHAT_UNAVAILABLE');
    expect(error.details).toMatchObject({ path: LOGIN_PATH, status: 502 });
    expect(await loginCalls()).toBe(1);
  });

  it('a dropped connection → WECHAT_UNAVAILABLE, not retried (1 call)', async () => {
    const { code } = await loginCode();
    await fault({ drop: true, times: 1 });
    await expectCode(client().code2Session(APP, code), 'WECHAT_UNAVAILABLE');
    expect(await loginCalls()).toBe(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(await loginCalls()).toBe(1);
  });

  it('an apiBase on a closed port → WECHAT_UNAVAILABLE', async () => {
    const port = await closedPort();
    const started = performance.now();
    await expectCode(client({ apiBase: `http://127.0.0.1:${port}` }).code2Session(APP, 'code-for-a-closed-port-0123456789'), 'WECHAT_UNAVAILABLE');
    secrets.add('code-for-a-closed-port-0123456789');
    expect(performance.now() - started).toBeLessThan(3_000);
  });
});

describe('call', () => {
  it('retryOnBusy:false: -1 once gives WECHAT_UNAVAILABLE after 1 call', async () => {
    const { code } = await loginCode();
    await fault({ errcode: -1, times: 1 });
    const error = await expectCode(
      client().call({
        path: LOGIN_PATH,
        query: { appid: APP.appid, secret: APP.secret, js_code: code, grant_type: 'authorization_code' },
        retryOnBusy: false,
      }),
      'WECHAT_UNAVAILABLE',
    );
    expect(error.details).toMatchObject({ errcode: -1 });
    expect(await loginCalls()).toBe(1);
  });

  it('per-call errors are consulted before the common table', async () => {
    const { code } = await loginCode();
    await fault({ errcode: 45011, times: 1 });
    await expectCode(
      client().call({
        path: LOGIN_PATH,
        query: { appid: APP.appid, secret: APP.secret, js_code: code, grant_type: 'authorization_code' },
        errors: { 45011: 'AUTH_CODE_INVALID' },
      }),
      'AUTH_CODE_INVALID',
    );
  });

  it('a success without errcode returns the body as is', async () => {
    const { code, openid } = await loginCode();
    const body = await client().call<{ openid: string; session_key: string }>({
      path: LOGIN_PATH,
      query: { appid: APP.appid, secret: APP.secret, js_code: code, grant_type: 'authorization_code' },
    });
    secrets.add(body.session_key);
    expect(body.openid).toBe(openid);
    expect(body).not.toHaveProperty('errcode');
  });
});

describe('answers the sandbox cannot produce (a stub server)', () => {
  let stub: HttpServer;
  let stubUrl = '';
  let next: { status: number; body: string } = { status: 200, body: '{}' };
  let hits = 0;

  beforeAll(async () => {
    stub = createHttpServer((_req, res) => {
      hits++;
      res.writeHead(next.status, { 'content-type': 'application/json' });
      res.end(next.body);
    });
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    stubUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    stub.closeAllConnections();
    await new Promise<void>((resolve) => stub.close(() => resolve()));
  });
  beforeEach(() => {
    hits = 0;
  });

  it.each([
    ['HTTP 500 with a JSON object', 500, '{"errcode":0,"openid":"o","session_key":"AAAAAAAAAAAAAAAAAAAAAA=="}'],
    ['HTTP 503 with a -1 JSON body', 503, '{"errcode":-1,"errmsg":"system error"}'],
    ['HTTP 200 with text', 200, 'not json'],
    ['HTTP 200 with a JSON array', 200, '[]'],
    ['HTTP 200 with JSON null', 200, 'null'],
    ['HTTP 200 with an empty body', 200, ''],
  ])('%s → WECHAT_UNAVAILABLE after 1 call', async (_name, status, body) => {
    next = { status, body };
    await expectCode(client({ apiBase: stubUrl }).call({ path: '/wxa/anything' }), 'WECHAT_UNAVAILABLE');
    expect(hits).toBe(1);
  });

  it('errcode 0 with data is a success', async () => {
    next = { status: 200, body: '{"errcode":0,"errmsg":"ok","value":42}' };
    expect(await client({ apiBase: stubUrl }).call({ path: '/wxa/anything' })).toStrictEqual({ errcode: 0, errmsg: 'ok', value: 42 });
  });

  it('a code2Session "success" without session_key → WECHAT_ERROR', async () => {
    next = { status: 200, body: '{"openid":"o-only"}' };
    await expectCode(client({ apiBase: stubUrl }).code2Session(APP, 'stub-code-0123456789abcdef'), 'WECHAT_ERROR');
    secrets.add('stub-code-0123456789abcdef');
  });
});

// ---- last: the log -----------------------------------------------------------------------------

describe('log hygiene (L5)', () => {
  it('the log holds no AppSecret, js_code or session_key from any of the calls above', () => {
    const text = logs.text();
    // The tests above did log (errors, retries, timeouts), so the check is not vacuous.
    expect(logs.lines.length).toBeGreaterThan(10);
    expect(text).toContain('wechat: busy (-1), retrying');
    expect(secrets.size).toBeGreaterThan(20);
    for (const secret of secrets) {
      expect(text, `log contains ${secret}`).not.toContain(secret);
    }
    // No URL with its query, and no session_key field (the message text may name it).
    expect(text).not.toMatch(/js_code=|secret=|"session_key":|"sessionKey":/);
  });
});

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
