/**
 * The admin console end to end: admins added with the real CLI, the console driven in headless
 * Chromium against a real server (SQLite) and the WeChat sandbox. A user logs in through the
 * sandbox; the console finds them, revokes their session (their next request gets 401, their
 * channel socket closes with 4001), forces an access_token refresh (the sandbox counts it) and
 * retries a push whose webhook failed. CSRF, the login delay, the audit log and hostile inputs
 * are checked over plain HTTP. Screenshots of every page, at desktop and phone sizes, go to
 * test-results/admin/.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from 'otplib';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANNEL_CLOSE } from 'minigate-protocol';
import { runCli } from './helpers/cli.js';
import { startHarness, TEST_APPID, TEST_SECRET, type Harness } from './helpers/harness.js';
import { connect } from './helpers/ws-client.js';

const CHROMIUM = '/usr/bin/chromium';
const RESULTS = fileURLToPath(new URL('../../../test-results/admin/', import.meta.url));
const STEP = 15_000;
const INTERNAL_TOKEN = 'internal-token-for-admin-tests-0123456789';
const PUSH_TOKEN = 'push-token-admin';
const PASSWORD = 'correct horse battery staple';
const HOSTILE_OPENID = 'o<img src=x onerror=alert(1)>"x';
const HOSTILE_UA = 'Mozilla/5.0 <script>window.__xss=1</script> MicroMessenger/8.0';
const SIZES = { desktop: { width: 1280, height: 820 }, phone: { width: 390, height: 844 } } as const;

/** A webhook that refuses its first `failures` deliveries with a 500 and a reason. */
class Webhook {
  failures = 0;
  received: { at: number; ok: boolean }[] = [];
  readonly server: Server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const ok = this.failures <= 0;
      this.failures--;
      this.received.push({ at: Date.now(), ok });
      if (ok) res.writeHead(200).end('ok');
      else res.writeHead(500, { 'content-type': 'text/plain' }).end('order service busy: database locked');
    });
  });
  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }
}

const webhook = new Webhook();
let dir: string;
let configFile: string;
let h: Harness;
let admin: string;
let browser: Browser;
let totpSecret: string;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function eventually<T>(get: () => Promise<T> | T, ok: (value: T) => boolean, ms = 8_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await get();
    if (ok(value)) return value;
    if (Date.now() > end) throw new Error(`timed out; last value ${JSON.stringify(value)}`);
    await pause(50);
  }
}

/** A call to the console's API from outside the browser. */
async function call(method: string, route: string, options: { cookie?: string; csrf?: string; body?: unknown; type?: string; raw?: string } = {}) {
  const headers: Record<string, string> = {};
  if (options.cookie) headers.cookie = options.cookie;
  if (options.csrf) headers['x-csrf-token'] = options.csrf;
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  if (body !== undefined) headers['content-type'] = options.type ?? 'application/json';
  const response = await fetch(`${admin}api/${route}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await response.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

async function apiLogin(name: string, password = PASSWORD, totp?: string) {
  const answer = await call('POST', 'login', { body: { name, password, ...(totp ? { totp } : {}) } });
  const cookie = (answer.headers.get('set-cookie') ?? '').split(';', 1)[0]!;
  return { ...answer, cookie, csrf: answer.body?.csrf as string };
}

/** A raw request with the path exactly as given (fetch would resolve the dot-segments first). */
function rawGet(pathAsIs: string): Promise<{ status: number; body: string }> {
  const url = new URL(h.server.urls.internal!);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: pathAsIs, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.waitForLoadState('networkidle');
  await page.screenshot({ path: path.join(RESULTS, `${name}.png`), fullPage: true });
}

async function openConsole(name: string, size: keyof typeof SIZES = 'desktop', totp?: () => Promise<string>): Promise<Page> {
  const context = await browser.newContext({ viewport: SIZES[size], locale: 'en-US' });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('dialog', (dialog) => void dialog.accept());
  (page as Page & { problems?: string[] }).problems = problems;
  await page.goto(admin, { timeout: STEP });
  await page.fill('input[name=name]', name);
  await page.fill('input[name=password]', PASSWORD);
  if (totp) await page.fill('input[name=totp]', await totp());
  await page.click('button[type=submit]');
  await page.waitForSelector('nav', { timeout: STEP });
  return page;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-admin-'));
  mkdirSync(RESULTS, { recursive: true });
  const hook = await webhook.start();
  const dataDir = path.join(dir, 'data');
  h = await startHarness({
    dataDir,
    apps: [{ appid: TEST_APPID, secret: TEST_SECRET, push: { token: PUSH_TOKEN, webhook: hook } } as never],
    config: {
      listen: { internal: '127.0.0.1:0' },
      internal: { token: INTERNAL_TOKEN },
      upstreamSecret: 'upstream-secret-for-admin-tests-0123456789',
      channel: { rooms: [{ match: 'chat:*', presence: true, history: 5 }] },
    },
  });
  admin = `${h.server.urls.internal}/admin/`;
  // The CLI works on the same data directory (SQLite file and secret key) as the running server.
  configFile = path.join(dir, 'minigate.yaml');
  writeFileSync(
    configFile,
    `dataDir: ${dataDir}\nwechat:\n  apiBase: ${h.sandbox.url}\napps:\n  - appid: ${TEST_APPID}\n    secret: ${TEST_SECRET}\n`,
  );
  const passwordFile = path.join(dir, 'password');
  writeFileSync(passwordFile, `${PASSWORD}\n`);
  const alice = await runCli(['admin', 'add', 'alice', '-c', configFile, '--password-file', passwordFile], { timeoutMs: 30_000 });
  expect(alice.stderr).toBe('');
  expect(alice.stdout).toBe('added alice\n');
  const bob = await runCli(['admin', 'add', 'bob', '--totp', '-c', configFile, '--password-file', passwordFile], { timeoutMs: 30_000 });
  const uri = /otpauth:\/\/totp\/[^\s]+/.exec(bob.stdout)?.[0] ?? '';
  totpSecret = new URL(uri).searchParams.get('secret') ?? '';
  expect(totpSecret).toMatch(/^[A-Z2-7]{16,}$/);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: STEP });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await h?.close();
  webhook.server.closeAllConnections();
  webhook.server.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the admin CLI', () => {
  it('lists admins without secrets, refuses short passwords, bad names and duplicates, removes', async () => {
    const list = await runCli(['admin', 'list', '-c', configFile], { timeoutMs: 30_000 });
    expect(list.stdout).toMatch(/^alice\tpassword only\tcreated /m);
    expect(list.stdout).toMatch(/^bob\ttotp\tcreated /m);
    expect(list.stdout).not.toContain(totpSecret);
    const short = path.join(dir, 'short');
    writeFileSync(short, 'tiny\n');
    const refused = await runCli(['admin', 'add', 'carol', '-c', configFile, '--password-file', short], { timeoutMs: 30_000 });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('at least 10 characters');
    expect((await runCli(['admin', 'add', 'x/../y', '-c', configFile], { timeoutMs: 30_000 })).code).toBe(2);
    const again = await runCli(['admin', 'add', 'alice', '-c', configFile, '--password-file', path.join(dir, 'password')], { timeoutMs: 30_000 });
    expect(again.stderr).toContain('already exists');
    expect((await runCli(['admin', 'remove', 'nobody', '-c', configFile], { timeoutMs: 30_000 })).code).toBe(1);
  }, 120_000);
});

describe('the console in Chromium', () => {
  it('finds a user who logged in, revokes the session: 401 on the next request, the socket closes with 4001; audited', async () => {
    const { code } = await h.code({ openid: HOSTILE_OPENID });
    const login = await fetch(`${h.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': HOSTILE_UA }, body: JSON.stringify({ code }) });
    const token = ((await login.json()) as { token: string }).token;
    expect((await h.get('/auth/session', token)).status).toBe(200);
    const socket = await connect(`${h.url.replace(/^http/, 'ws')}/channel`, { token });

    const page = await openConsole('alice');
    await screenshot(page, 'overview-desktop');
    await page.click('#nav-users');
    await page.fill('#user-search', 'onerror');
    await page.click('form.search button');
    await page.click(`a.openid:text-is(${JSON.stringify(HOSTILE_OPENID)})`, { timeout: STEP });
    await page.waitForSelector('#session-table td .ua');
    // Markup from outsiders is text: no element made from it, no script run.
    expect(await page.locator('#session-table td .ua').first().textContent()).toBe(HOSTILE_UA);
    expect(await page.locator('#users img, #session-table script').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.locator('#session-table').textContent()).toContain('127.0.0.1');
    await screenshot(page, 'user-sessions-desktop');

    await page.click('#session-table button:text-is("Revoke")');
    await page.waitForSelector('#session-table .pill.revoked', { timeout: STEP });
    expect((await h.get('/auth/session', token)).body.error.code).toBe('SESSION_REVOKED');
    expect((await h.get('/auth/session', token)).status).toBe(401);
    expect((await socket.closed).code).toBe(CHANNEL_CLOSE.SESSION_ENDED);

    await page.click('#nav-audit');
    await page.waitForSelector('#audit td:text-is("session.revoke")', { timeout: STEP });
    expect(await page.locator('#audit').textContent()).toContain('alice');
    await screenshot(page, 'audit-after-revoke-desktop');
    expect((page as Page & { problems?: string[] }).problems).toEqual([]);
    await page.context().close();
  }, 60_000);

  it('forces an access_token refresh, which the sandbox counts; the token itself is never shown', async () => {
    const stats = async () => {
      const answer = (await (await fetch(`${h.sandbox.url}/__sandbox/stats?appid=${TEST_APPID}`)).json()) as { paths?: Record<string, number> } & Record<string, unknown>;
      return JSON.stringify(answer);
    };
    const count = async () => {
      const text = await stats();
      const match = /"\/cgi-bin\/stable_token":(\d+)/.exec(text);
      return match ? Number(match[1]) : 0;
    };
    const before = await count();
    const page = await openConsole('alice');
    await page.click('#nav-tokens');
    await page.click(`#refresh-${TEST_APPID}`);
    await page.waitForSelector(`#tokens td:text-is("1")`, { timeout: STEP });
    expect(await count()).toBe(before + 1);
    const shown = await page.content();
    const { accessToken } = await h.server.tokens.get(TEST_APPID);
    expect(shown).not.toContain(accessToken);
    await screenshot(page, 'tokens-refreshed-desktop');
    await page.context().close();
  }, 60_000);

  it('retries a failed push at once and shows the webhook\'s answer', async () => {
    // Three failures: at once, 1 s and 6 s later; the next attempt would come 30 s after that.
    webhook.failures = 3;
    const page = await openConsole('alice');
    const sent = await h.control<{ attempts: { status: number }[] }>('push', {
      url: `${h.url}/wechat/push/${TEST_APPID}`,
      appid: TEST_APPID,
      token: PUSH_TOKEN,
      mode: 'plaintext',
      format: 'json',
      message: { FromUserName: 'oPush', CreateTime: 1714037600, MsgType: 'event', Event: 'x', debug_str: 'admin-retry' },
    });
    expect(sent.attempts.at(-1)!.status).toBe(200);
    await eventually(() => webhook.received.length, (n) => n === 3, 20_000);
    await page.click('#nav-outbox');
    await page.waitForSelector('#outbox td:has-text("3")', { timeout: STEP });
    await page.waitForSelector('#outbox code:has-text("order service busy")', { timeout: STEP });
    expect(await page.locator('#outbox').textContent()).toContain('HTTP 500: order service busy: database locked');
    await screenshot(page, 'outbox-failed-desktop');
    await page.click('#outbox button:text-is("Retry")');
    await eventually(() => webhook.received.length, (n) => n === 4, 20_000);
    expect(webhook.received[3]!.ok).toBe(true);
    // Long before the 30 s back-off would have sent it.
    expect(webhook.received[3]!.at - webhook.received[2]!.at).toBeLessThan(25_000);
    await page.waitForSelector('#outbox .pill.delivered', { timeout: STEP });
    await page.context().close();
  }, 60_000);

  it('logs in with TOTP (otplib computes the code); a wrong code is refused', async () => {
    const wrong = await apiLogin('bob', PASSWORD, '000000');
    expect(wrong.body.error.code).toBe('ADMIN_LOGIN_FAILED');
    const page = await openConsole('bob', 'desktop', () => generate({ secret: totpSecret }));
    expect(await page.locator('nav .who').textContent()).toContain('bob');
    await page.context().close();
  }, 60_000);

  it('renders every page on a desktop and on a phone (screenshots in test-results/admin/)', async () => {
    for (const size of ['desktop', 'phone'] as const) {
      const page = await openConsole('alice', size);
      for (const name of ['overview', 'users', 'tokens', 'channels', 'files', 'outbox', 'certificates', 'audit']) {
        await page.goto(`${admin}#/${name}`);
        await page.waitForSelector(`#nav-${name}.on`, { timeout: STEP });
        await page.waitForSelector('main .table, main .cards', { timeout: STEP });
        await screenshot(page, `${name}-${size}`);
      }
      // Nothing wider than the screen on a phone: tables scroll inside their box.
      if (size === 'phone') expect(await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth)).toBeLessThanOrEqual(SIZES.phone.width);
      expect((page as Page & { problems?: string[] }).problems).toEqual([]);
      await page.context().close();
    }
  }, 120_000);

  it('shows Chinese labels to a Chinese browser', async () => {
    const context = await browser.newContext({ viewport: SIZES.desktop, locale: 'zh-CN' });
    const page = await context.newPage();
    await page.goto(admin);
    await page.waitForSelector('form.login');
    expect(await page.locator('form.login button').textContent()).toBe('登录');
    await screenshot(page, 'login-zh');
    await context.close();
  }, 30_000);
});

describe('the console API', () => {
  it('refuses a write without the CSRF token (403), and with another session\'s', async () => {
    const a = await apiLogin('alice');
    expect(a.status).toBe(200);
    expect(a.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
    expect(a.headers.get('set-cookie')).toContain('Path=/admin/');
    const none = await call('POST', `tokens/${TEST_APPID}/refresh`, { cookie: a.cookie, body: {} });
    expect(none.status).toBe(403);
    expect(none.body.error.code).toBe('ADMIN_CSRF');
    const b = await apiLogin('alice');
    const other = await call('POST', `users/${TEST_APPID}/someone/revoke`, { cookie: a.cookie, csrf: b.csrf, body: {} });
    expect(other.body.error.code).toBe('ADMIN_CSRF');
    // A form post (no preflight cross-site) is refused even with the token.
    const form = await call('POST', `users/${TEST_APPID}/someone/revoke`, { cookie: a.cookie, csrf: a.csrf, raw: 'a=1', type: 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(415);
    const ok = await call('POST', `users/${TEST_APPID}/someone/revoke`, { cookie: a.cookie, csrf: a.csrf, body: {} });
    expect(ok.body).toEqual({ revoked: 0 });
    const audit = await call('GET', 'audit', { cookie: a.cookie });
    expect(audit.body.entries[0]).toMatchObject({ actor: 'alice', action: 'user.revoke', target: `user ${TEST_APPID}/someone`, address: '127.0.0.1' });
    // Refused writes changed nothing and are not in the log as done.
    expect(audit.body.entries.filter((e: { action: string }) => e.action === 'user.revoke')).toHaveLength(1);
  });

  it('slows failed logins per (account, address), growing, and does not slow another account', async () => {
    const timed = async (name: string) => {
      const started = performance.now();
      const answer = await call('POST', 'login', { body: { name, password: 'not the password' } });
      expect(answer.body.error.code).toBe('ADMIN_LOGIN_FAILED');
      return performance.now() - started;
    };
    // Each failing attempt is paired with one for a name that has no failures (the same password
    // check, no delay), so the difference is the delay whatever the machine's load does to scrypt.
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const slowed = await timed('mallory');
      delays.push(slowed - (await timed(`control-${i}`)));
    }
    // Expected 0, 0.5, 1, 2, 4 s (login-delay.test.ts has the exact schedule).
    expect(delays[0]!).toBeLessThan(400);
    expect(delays[3]!).toBeGreaterThan(1_400);
    expect(delays[4]!).toBeGreaterThan(3_000);
    expect(delays[4]! - delays[2]!).toBeGreaterThan(2_000);
    // The real admin from the same address is not slowed.
    const started = performance.now();
    expect((await apiLogin('alice')).status).toBe(200);
    expect(performance.now() - started).toBeLessThan(delays[4]!);
  }, 60_000);

  it('refuses tampered cookies, paths climbing out of admin.path, oversize bodies and unknown files', async () => {
    const a = await apiLogin('alice');
    const token = a.cookie.split('=')[1]!;
    const flipped = `minigate_admin=${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    for (const cookie of [flipped, 'minigate_admin=', 'minigate_admin=../../etc', `minigate_admin=${token}x`, `other=${token}`]) {
      const answer = await call('GET', 'overview', { cookie });
      expect(answer.status, cookie).toBe(401);
      expect(answer.body.error.code).toBe('ADMIN_AUTH_REQUIRED');
    }
    // Dot-segments are resolved (or refused) before routing: nothing outside admin.path skips the bearer.
    for (const target of ['/admin/../v1/sessions/x', '/admin/%2e%2e/v1/sessions/x', '/admin/api/../../v1/sessions/x', '/admin/..%2fv1/sessions/x']) {
      const answer = await rawGet(target);
      // 429: the internal API's limit on failed bearer checks from one address, which these count toward.
      expect([400, 401, 429], target).toContain(answer.status);
      expect(answer.body, target).toMatch(/INTERNAL_AUTH_REQUIRED|REQUEST_TARGET_INVALID|RATE_LIMITED/);
    }
    expect((await rawGet('/admin/../../../../etc/passwd')).body).not.toContain('root:');
    expect((await rawGet('/admin/package.json')).status).toBe(404);
    expect((await rawGet('/admin/app.js')).status).toBe(200);
    const big = await call('POST', 'channels/chat:x/publish', { cookie: a.cookie, csrf: a.csrf, raw: JSON.stringify({ event: 'x', data: 'y'.repeat(100_000) }) });
    expect(big.status).toBe(413);
    const long = await call('POST', 'login', { body: { name: 'alice', password: 'p'.repeat(5_000) } });
    expect(long.status).toBe(400);
    const page = await fetch(admin);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
  }, 30_000);

  it('validates bodies, params and queries with the documented schemas: BAD_REQUEST naming the field, nothing done', async () => {
    const refused = async (answer: { status: number; body: any }, field: string) => {
      expect(answer.status, JSON.stringify(answer.body)).toBe(400);
      expect(answer.body.error.code).toBe('BAD_REQUEST');
      expect(answer.body.error.message).toMatch(new RegExp(`^${field}: `));
    };
    await refused(await call('POST', 'login', { body: { name: { $ne: '' }, password: 'x' } }), 'name');
    await refused(await call('POST', 'login', { body: { name: 'alice', password: ['a'] } }), 'password');
    await refused(await call('POST', 'login', { body: { name: 'alice', password: PASSWORD, totp: 123456 } }), 'totp');
    await refused(await call('POST', 'login', { body: { password: PASSWORD } }), 'name');
    const a = await apiLogin('alice');
    const before = (await call('GET', 'audit', { cookie: a.cookie })).body.entries.length;
    await refused(await call('POST', 'channels/chat:x/publish', { cookie: a.cookie, csrf: a.csrf, body: { event: ['x'] } }), 'event');
    await refused(await call('POST', 'channels/chat:x/publish', { cookie: a.cookie, csrf: a.csrf, body: { data: 1 } }), 'event');
    await refused(await call('POST', `channels/${'r'.repeat(300)}/publish`, { cookie: a.cookie, csrf: a.csrf, body: { event: 'x' } }), 'room');
    await refused(await call('POST', 'sessions/not-hex/revoke', { cookie: a.cookie, csrf: a.csrf, body: {} }), 'id');
    await refused(await call('GET', 'outbox?status=lost', { cookie: a.cookie }), 'status');
    await refused(await call('GET', `users?q=${'o'.repeat(200)}`, { cookie: a.cookie }), 'q');
    // A body that is no object is refused by the reader; the schema never sees it.
    expect((await call('POST', 'check', { cookie: a.cookie, csrf: a.csrf, raw: '[1]' })).status).toBe(400);
    // Nothing refused was done or audited; empty query values are "none"; the server still answers.
    expect((await call('GET', 'audit', { cookie: a.cookie })).body.entries.length).toBe(before);
    expect((await call('GET', 'outbox?status=', { cookie: a.cookie })).status).toBe(200);
    expect((await call('GET', 'overview', { cookie: a.cookie })).body.metrics).toBe('process');
  });

  it('publishes a server message to a room (members get it, it is in the history), runs a check, deletes nothing unknown; all audited', async () => {
    const a = await apiLogin('alice');
    const { code } = await h.code({ openid: 'oRoomMember' });
    const token = (await h.login({ code })).body.token as string;
    const socket = await connect(`${h.url.replace(/^http/, 'ws')}/channel`, { token });
    const joined = socket.next((f) => f.type === 'joined');
    socket.send({ type: 'join', room: 'chat:ops' });
    await joined;
    const message = socket.next((f) => f.type === 'message' && f.event === 'notice');
    const published = await call('POST', 'channels/chat:ops/publish', { cookie: a.cookie, csrf: a.csrf, body: { event: 'notice', data: { text: '<b>maintenance</b>' } } });
    expect(published.status).toBe(200);
    expect((await message).data).toEqual({ text: '<b>maintenance</b>' });
    const room = await call('GET', 'channels/chat:ops', { cookie: a.cookie });
    expect(room.body.members).toContain('oRoomMember');
    expect(room.body.history.at(-1)).toMatchObject({ event: 'notice', data: { text: '<b>maintenance</b>' } });
    expect((await call('GET', 'channels', { cookie: a.cookie })).body.rooms).toContainEqual({ room: 'chat:ops', users: 1 });
    const check = await call('POST', 'check', { cookie: a.cookie, csrf: a.csrf, body: {} });
    expect(check.body.report).toMatchObject({ version: 1, results: [] });
    expect((await call('GET', 'certificates', { cookie: a.cookie })).body.check.report.exitCode).toBe(0);
    const missing = await call('POST', 'files/nosuchfile/delete', { cookie: a.cookie, csrf: a.csrf, body: {} });
    expect(missing.body.error.code).toBe('FILE_NOT_FOUND');
    const actions = (await call('GET', 'audit', { cookie: a.cookie })).body.entries.map((e: { action: string }) => e.action);
    expect(actions.slice(0, 2)).toEqual(['check.run', 'channel.publish']);
    socket.close();
  }, 30_000);

  it('never answers with a secret: no access_token, password hash or TOTP secret in any page of the API', async () => {
    const a = await apiLogin('alice');
    const { accessToken } = await h.server.tokens.get(TEST_APPID);
    for (const route of ['overview', 'users', 'tokens', 'channels', 'files', 'outbox', 'certificates', 'audit', 'session', 'series']) {
      const answer = await call('GET', route, { cookie: a.cookie });
      expect(answer.status, route).toBe(200);
      const text = JSON.stringify(answer.body);
      expect(text).not.toContain(accessToken);
      expect(text).not.toContain(totpSecret);
      expect(text).not.toContain('scrypt$');
    }
  });
});
