/**
 * examples/chatroom, run as it is: minigate from the example's minigate.yaml (with its listen
 * port, WeChat API base and data dir overridden by MINIGATE_* as an operator would), and the mini
 * program's own app.js, miniprogram_npm/minigate-client (the SDK) and pages/chat/chat.js on "phones" (helpers/miniprogram.ts:
 * a `wx` shim in a vm context). Users see each other come and go, talk, get the history, and
 * survive their session ending (4001) and a stale token (401 at the upgrade).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox, type Sandbox } from 'minigate-sandbox';
import { loadConfig, type Config } from '../src/config/index.js';
import { createServer, type MinigateServer } from '../src/server.js';
import { captureLogs, type CapturedLogs } from './helpers/capture-logger.js';
import { startPhone, type Phone } from './helpers/miniprogram.js';
import { connect } from './helpers/ws-client.js';

const EXAMPLE = fileURLToPath(new URL('../../../examples/chatroom/', import.meta.url));
const MINIPROGRAM = path.join(EXAMPLE, 'miniprogram');
const CHAT = 'pages/chat/chat';

let sandbox: Sandbox;
let server: MinigateServer;
let config: Config;
let logs: CapturedLogs;
let dataDir: string;
let baseUrl: string;
const phones: Phone[] = [];

beforeAll(async () => {
  sandbox = createSandbox();
  const sandboxUrl = await sandbox.start();
  dataDir = mkdtempSync(path.join(tmpdir(), 'minigate-chatroom-'));
  config = loadConfig({
    file: path.join(EXAMPLE, 'minigate.yaml'),
    env: { MINIGATE_LISTEN_HTTP: '127.0.0.1:0', MINIGATE_WECHAT_API_BASE: sandboxUrl, MINIGATE_DATA_DIR: dataDir },
  });
  // The sandbox knows the example's app, as `minigate sandbox --app APPID:SECRET` would.
  const { appid, secret } = config.apps[0]!;
  const registered = await fetch(`${sandboxUrl}/__sandbox/apps`, { method: 'POST', body: JSON.stringify({ appid, secret }) });
  expect(registered.status).toBe(200);
  logs = captureLogs();
  server = createServer(config, { logger: logs.logger });
  await server.start();
  baseUrl = server.urls.http!;
});

afterEach(() => {
  for (const phone of phones.splice(0)) phone.close();
});

afterAll(async () => {
  await server?.close();
  await sandbox?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** A phone with the example on it, pointed at this minigate; its user logs in with wx.login (or the sandbox, as app.js does locally). */
function phone(options: { via?: 'wx.login' | 'sandbox'; token?: string } = {}): Phone {
  let openid: string | undefined; // WeChat gives the same user the next time
  const p = startPhone({
    root: MINIPROGRAM,
    async login() {
      const response = await fetch(`${sandbox.url}/__sandbox/login`, {
        method: 'POST',
        body: JSON.stringify({ appid: config.apps[0]!.appid, ...(openid ? { openid } : {}) }),
      });
      const body = (await response.json()) as { code: string; openid: string };
      openid = body.openid;
      return body.code;
    },
    beforeLaunch(app) {
      app.globalData.baseUrl = baseUrl;
      app.globalData.sandbox = options.via === 'sandbox' ? { ...app.globalData.sandbox, url: sandbox.url } : null;
    },
  });
  if (options.token) p.storage.set('minigate.session', JSON.stringify({ token: options.token, openid: 'ostale' }));
  phones.push(p);
  return p;
}

const session = (p: Phone): { token: string; openid: string } => JSON.parse(p.storage.get('minigate.session') as string);

/** Waits for the page's data to satisfy `test` (it is plain data after setData). */
async function until(page: any, test: (data: any) => boolean, what: string, timeoutMs = 5_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const data = JSON.parse(JSON.stringify(page.data));
    if (test(data)) return data;
    if (Date.now() > deadline) throw new Error(`page never showed ${what}: ${JSON.stringify(data).slice(0, 1500)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const speech = (data: any) => data.messages.filter((m: any) => m.kind === 'message').map((m: any) => ({ text: m.text, mine: m.mine, openid: m.openid }));
const systemLines = (data: any) => data.messages.filter((m: any) => m.kind === 'system').map((m: any) => m.text as string);

async function say(page: any, text: string): Promise<void> {
  page.onInput({ detail: { value: text } });
  expect(page.data.draft).toBe(text);
  await page.onSend();
  expect(page.data.draft).toBe('');
}

describe('the example’s files', () => {
  it('carries the SDK as built (miniprogram_npm/minigate-client is packages/client/miniprogram_dist)', () => {
    const built = readFileSync(new URL('../../client/miniprogram_dist/index.js', import.meta.url), 'utf8');
    const carried = readFileSync(path.join(MINIPROGRAM, 'miniprogram_npm', 'minigate-client', 'index.js'), 'utf8');
    // After an SDK change: cp packages/client/miniprogram_dist/index.js examples/chatroom/miniprogram/miniprogram_npm/minigate-client/
    expect(carried === built).toBe(true);
  });

  it('minigate.yaml is the room the page uses, for the app in app.js and project.config.json', () => {
    expect(config.channel.rooms).toEqual([expect.objectContaining({ match: 'chat:*', presence: true, history: 20 })]);
    const project = JSON.parse(readFileSync(path.join(MINIPROGRAM, 'project.config.json'), 'utf8'));
    expect(project).toMatchObject({ compileType: 'miniprogram', appid: config.apps[0]!.appid, setting: { urlCheck: false } });
    const p = phone({ via: 'sandbox' });
    expect(p.app.globalData.sandbox.appid).toBe(config.apps[0]!.appid);
    expect(JSON.parse(readFileSync(path.join(MINIPROGRAM, 'app.json'), 'utf8')).pages).toEqual([CHAT]);
  });
});

describe('the chat room', () => {
  it('two phones see each other, talk, and see the other leave; a latecomer gets the history', async () => {
    const alicePhone = phone();
    const alice = alicePhone.open(CHAT);
    await until(alice, (d) => d.status === 'open' && d.online === 1 && systemLines(d).includes('你已进入聊天室'), 'Alice in the room');
    const aliceId = session(alicePhone).openid;
    expect(alice.data.members).toEqual([{ openid: aliceId, name: '我', me: true }]);

    const bobPhone = phone();
    const bob = bobPhone.open(CHAT);
    await until(bob, (d) => d.status === 'open' && d.online === 2, 'two online at Bob');
    const bobId = session(bobPhone).openid;
    expect(bobId).not.toBe(aliceId);
    const atAlice = await until(alice, (d) => d.online === 2, 'Bob arriving at Alice');
    expect(atAlice.members.map((m: any) => m.openid)).toEqual([aliceId, bobId]);
    expect(systemLines(atAlice)).toContain(`用户${bobId.slice(-4)} 加入了聊天室`);

    await say(alice, '你好，Bob');
    const heard = await until(bob, (d) => speech(d).length === 1, 'Alice’s message at Bob');
    expect(speech(heard)).toEqual([{ text: '你好，Bob', mine: false, openid: aliceId }]);
    expect(heard.messages.find((m: any) => m.kind === 'message').name).toBe(`用户${aliceId.slice(-4)}`);
    // The sender's own message comes back from the room, on the right.
    expect(speech(await until(alice, (d) => speech(d).length === 1, 'Alice’s own message'))).toEqual([{ text: '你好，Bob', mine: true, openid: aliceId }]);
    await say(bob, 'hi Alice');
    await until(alice, (d) => speech(d).length === 2, 'Bob’s answer at Alice');
    await until(bob, (d) => speech(d).length === 2 && speech(d)[1].mine, 'Bob’s own answer');

    // A latecomer (logging in as app.js does locally: a code from the sandbox) gets the history.
    const carolPhone = phone({ via: 'sandbox' });
    const carol = carolPhone.open(CHAT);
    const atCarol = await until(carol, (d) => d.online === 3 && speech(d).length === 2, 'the history at Carol');
    expect(speech(atCarol).map((m: any) => m.text)).toEqual(['你好，Bob', 'hi Alice']);
    expect(systemLines(atCarol)).toEqual(['以上是最近的 2 条消息', '你已进入聊天室']);
    await until(alice, (d) => d.online === 3, 'Carol arriving at Alice');

    // Bob leaves the page: the socket closes, and the others see him go.
    bobPhone.unload(bob);
    const afterBob = await until(alice, (d) => d.online === 2, 'Bob gone at Alice');
    expect(afterBob.members.map((m: any) => m.openid)).not.toContain(bobId);
    expect(systemLines(afterBob)).toContain(`用户${bobId.slice(-4)} 离开了聊天室`);
    await until(carol, (d) => d.online === 2, 'Bob gone at Carol');
    await waitFor(() => bobPhone.openSockets() === 0, 'Bob’s socket to close');
    for (const p of [alicePhone, bobPhone, carolPhone]) expect(p.errors).toEqual([]);
  });

  it('shows {word} messages, as Wafer2 clients send them', async () => {
    const ginaPhone = phone();
    const gina = ginaPhone.open(CHAT);
    await until(gina, (d) => d.status === 'open', 'Gina connected');
    const { code } = (await (await fetch(`${sandbox.url}/__sandbox/login`, { method: 'POST', body: JSON.stringify({ appid: config.apps[0]!.appid }) })).json()) as { code: string };
    const login = await fetch(`${baseUrl}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
    const { token } = (await login.json()) as { token: string };
    const other = await connect(`${baseUrl.replace(/^http/, 'ws')}/channel`, { token });
    other.send({ type: 'join', room: 'chat:lobby' });
    await other.next((f) => f.type === 'joined');
    other.send({ type: 'publish', room: 'chat:lobby', event: 'speak', data: { word: '老朋友' } });
    await until(gina, (d) => speech(d).some((m: any) => m.text === '老朋友' && !m.mine), 'the {word} message');
    other.close();
  });

  it('logs in again and rejoins when the session ends (4001), and when the stored token is stale (401)', async () => {
    const davePhone = phone();
    const dave = davePhone.open(CHAT);
    await until(dave, (d) => d.status === 'open' && d.online === 1, 'Dave in the room');
    const first = session(davePhone);
    const closes: number[] = [];
    dave.channel.on('close', (event: { code: number }) => closes.push(event.code));

    // Logged out elsewhere: the server closes the socket with 4001; a new login, the same user.
    const logout = await fetch(`${baseUrl}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${first.token}` } });
    expect(logout.status).toBeLessThan(300);
    await until(dave, (d) => systemLines(d).includes('已重新连接') && d.status === 'open', 'Dave back after 4001');
    expect(closes).toEqual([4001]);
    const second = session(davePhone);
    expect(second.token).not.toBe(first.token);
    expect(second.openid).toBe(first.openid);
    expect(dave.data.members.map((m: any) => m.openid)).toEqual([first.openid]);
    await say(dave, 'still here');
    await until(dave, (d) => speech(d).some((m: any) => m.text === 'still here' && m.mine), 'Dave’s message after the new login');

    // A phone whose stored token no longer works: the upgrade is refused, the session checked, a new login.
    const erinPhone = phone({ token: 'x'.repeat(43) });
    const erin = erinPhone.open(CHAT);
    await until(erin, (d) => d.status === 'open' && d.online === 2, 'Erin in after a new login', 10_000);
    expect(session(erinPhone).token).not.toBe('x'.repeat(43));
    for (const p of [davePhone, erinPhone]) expect(p.errors).toEqual([]);
  });

  it('keeps a quiet connection with pings, and redials one that went silent', async () => {
    const p = phone();
    // Beats of 250 ms: a link with nothing heard for 625 ms is taken for dead.
    const channel = p.app.minigate.channel({ heartbeatMs: 250, deadAfterMs: 625, backoffMs: { min: 50, max: 200 }, autoConnect: false });
    const events: string[] = [];
    channel.on('state', (state: string) => events.push(state));
    channel.on('close', (event: { code: number; reason: string }) => events.push(`close ${event.code} ${event.reason}`));
    channel.connect();
    await waitFor(() => channel.state === 'open', 'the channel to open');
    await new Promise((r) => setTimeout(r, 1_500)); // pongs keep it
    expect(events).toEqual(['connecting', 'open']);

    p.silence();
    await waitFor(() => events.length >= 6, 'a redial', 5_000);
    expect(events.slice(2)).toEqual(['close 1006 no answer to heartbeat', 'waiting', 'connecting', 'open']);
    channel.close();
    expect(channel.state).toBe('closed');
    expect(p.errors).toEqual([]);
  });

  it('tries again when a login fails', async () => {
    // WeChat refuses the next code exchange (40029, invalid code): /auth/login answers an error.
    const fault = await fetch(`${sandbox.url}/__sandbox/faults`, {
      method: 'POST',
      body: JSON.stringify({ path: '/sns/jscode2session', errcode: 40029, times: 1 }),
    });
    expect(fault.status).toBe(200);
    const p = phone();
    const page = p.open(CHAT);
    const errors: string[] = [];
    page.channel.on('error', (error: { code: string }) => errors.push(error.code));
    await until(page, (d) => d.status === 'open' && systemLines(d).includes('你已进入聊天室'), 'in after a second login');
    expect(errors).toHaveLength(1);
    expect(p.errors).toEqual([]);
  });

  it('a message that cannot be sent goes back into the input', async () => {
    const frankPhone = phone();
    const frank = frankPhone.open(CHAT);
    await until(frank, (d) => d.status === 'open', 'Frank connected');
    frank.channel.close(); // offline: publish fails at once
    frank.onInput({ detail: { value: 'lost' } });
    await frank.onSend();
    expect(frank.data.draft).toBe('lost');
    expect(frankPhone.toasts.map((t) => t.title)).toEqual(['没有发出去：the channel is closed']);
  });
});

async function waitFor(test: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
