/**
 * Message push, end to end: the sandbox pushes to a running minigate as WeChat would (URL check,
 * plaintext, compatible and safe mode, JSON and XML, repeats), and minigate delivers each message
 * once to a webhook served here, signed, retried when the webhook fails.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { encryptPush, toXml } from 'minigate-sandbox';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { webhookSignature } from '../src/index.js';
import { createTestDatabase } from './helpers/databases.js';
import { connect } from './helpers/ws-client.js';
import { startHarness, TEST_APPID, TEST_SECRET, OTHER_APPID, OTHER_SECRET, type Harness } from './helpers/harness.js';
import { RecordingWebhook } from './helpers/webhook.js';

const TOKEN = 'push-token-of-the-console';
const AES_KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';
const UPSTREAM_SECRET = 'upstream-secret-0123456789abcdef';
const NO_PUSH_APPID = 'wx1111111111111111';

/** A business webhook (helpers/webhook.ts) that also finds deliveries by a marker in their message. */
class Webhook extends RecordingWebhook {
  constructor() {
    super('/hooks/wechat');
  }
  /** Deliveries whose message has this debug_str / Content marker. */
  of(marker: string): { id: string; appid: string; format: string; message: Record<string, unknown>; raw: string; receivedAt: number }[] {
    return this.deliveries.map((d) => d.body).filter((d) => JSON.stringify(d.message).includes(marker));
  }
}

const webhook = new Webhook();
let h: Harness;
let pushUrl: string;

async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function eventually<T>(get: () => Promise<T>, ok: (value: T) => boolean, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await get();
    if (ok(value)) return value;
    if (Date.now() > end) throw new Error(`timed out; last value ${JSON.stringify(value)}`);
    await pause(20);
  }
}

async function push(body: Record<string, unknown>): Promise<{ status: number; body: string; error?: string }[]> {
  const answer = await h.control<{ attempts: { status: number; body: string }[] }>('push', { url: pushUrl, appid: TEST_APPID, token: TOKEN, ...body });
  return answer.attempts;
}

const sha1 = (parts: string[]) => createHash('sha1').update([...parts].sort().join('')).digest('hex');

/** A signed plaintext POST made by hand (for what the sandbox would never send). */
function signedQuery(token = TOKEN): string {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = '12345';
  return `signature=${sha1([token, timestamp, nonce])}&timestamp=${timestamp}&nonce=${nonce}`;
}

beforeAll(async () => {
  const hook = await webhook.start();
  h = await startHarness({
    apps: [
      { appid: TEST_APPID, secret: TEST_SECRET, push: { token: TOKEN, encodingAESKey: AES_KEY, webhook: hook, room: 'user:{openid}' } } as never,
      { appid: OTHER_APPID, secret: OTHER_SECRET, push: { token: TOKEN, room: 'ops:push' } } as never,
      { appid: NO_PUSH_APPID, secret: 'no-push-secret' },
    ],
    config: { upstreamSecret: UPSTREAM_SECRET, channel: { rooms: [{ match: 'ops:*', publish: 'server' }] } },
  });
  pushUrl = `${h.url}/wechat/push/${TEST_APPID}`;
});
afterAll(async () => {
  await h?.close();
  await webhook.close();
});
beforeEach(() => {
  webhook.statuses = [];
  webhook.hang = false;
});

describe('URL verification', () => {
  it('echoes echostr as plain text when the signature is right', async () => {
    const answer = await h.control<{ status: number; body: string; echostr: string }>('push-verify', { url: pushUrl, token: TOKEN });
    expect(answer.status).toBe(200);
    expect(answer.body).toBe(answer.echostr);
    expect(answer.body.length).toBeGreaterThan(5);
  });

  it('refuses a check signed with another token, and says so', async () => {
    const answer = await h.control<{ status: number; body: string }>('push-verify', { url: pushUrl, token: 'another-token' });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body).error.code).toBe('PUSH_SIGNATURE_MISMATCH');
  });
});

describe('receiving pushes', () => {
  it('delivers a plaintext JSON event to the webhook once, though WeChat sends it three times', async () => {
    const message = { ToUserName: 'gh_97417a04a28d', FromUserName: 'o9AgO5Kd5ggOC', CreateTime: 1714037059, MsgType: 'event', Event: 'debug_demo', debug_str: 'plain-1' };
    const attempts = await push({ mode: 'plaintext', format: 'json', message, attempts: 3 });
    expect(attempts.map((a) => [a.status, a.body])).toEqual([
      [200, 'success'],
      [200, 'success'],
      [200, 'success'],
    ]);
    await until(() => webhook.of('plain-1').length > 0);
    await pause(1_500); // a second delivery would come by the next poll
    const [delivery, ...more] = webhook.of('plain-1');
    expect(more).toEqual([]);
    expect(delivery).toMatchObject({ appid: TEST_APPID, format: 'json', message });
    expect(JSON.parse(delivery!.raw)).toEqual(message);
  });

  it('signs deliveries with upstreamSecret over the timestamp and body', async () => {
    await push({ mode: 'plaintext', format: 'json', message: { FromUserName: 'o1', CreateTime: 1714037100, MsgType: 'event', Event: 'x', debug_str: 'signed-1' } });
    await until(() => webhook.of('signed-1').length > 0);
    const delivery = webhook.deliveries.find((d) => d.raw.includes('signed-1'))!;
    expect(delivery.headers['content-type']).toBe('application/json');
    expect(delivery.headers['x-minigate-appid']).toBe(TEST_APPID);
    expect(delivery.headers['x-minigate-push-id']).toBe(delivery.body.id);
    const timestamp = String(delivery.headers['x-minigate-timestamp']);
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(60);
    expect(delivery.headers['x-minigate-signature']).toBe(webhookSignature(UPSTREAM_SECRET, timestamp, delivery.raw));
    expect(delivery.headers['x-minigate-signature']).not.toBe(webhookSignature('another secret', timestamp, delivery.raw));
  });

  it('delivers a safe-mode XML event whose padding is more than 16 bytes, once across three sends', async () => {
    // Pick the text so that the 32-byte PKCS#7 pad the sandbox adds is above 16.
    let message: Record<string, unknown> = {};
    for (let n = 0; n < 32; n++) {
      message = { ToUserName: 'gh_97417a04a28d', FromUserName: 'oSafe', CreateTime: 1714037200, MsgType: 'event', Event: 'debug_demo', debug_str: `safe-1${'z'.repeat(n)}` };
      const length = 16 + 4 + Buffer.byteLength(toXml(message)) + TEST_APPID.length;
      if (32 - (length % 32) > 16) break;
    }
    const length = 16 + 4 + Buffer.byteLength(toXml(message)) + TEST_APPID.length;
    expect(32 - (length % 32)).toBeGreaterThan(16);
    const attempts = await push({ mode: 'safe', format: 'xml', encodingAESKey: AES_KEY, message, attempts: 3 });
    expect(attempts.every((a) => a.status === 200 && a.body === 'success')).toBe(true);
    await until(() => webhook.of('safe-1').length > 0);
    await pause(1_500);
    const deliveries = webhook.of('safe-1');
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ format: 'xml', message });
    expect(deliveries[0]!.raw).toBe(toXml(message));
  });

  it('takes compatible mode (plaintext and ciphertext side by side) from the ciphertext', async () => {
    const message = { ToUserName: 'gh_1', FromUserName: 'oCompat', CreateTime: 1714037300, MsgType: 'text', Content: 'compat-1 你好', MsgId: 23456789012345678 };
    const attempts = await push({ mode: 'compatible', format: 'json', encodingAESKey: AES_KEY, message });
    expect(attempts[0]).toMatchObject({ status: 200, body: 'success' });
    await until(() => webhook.of('compat-1').length > 0);
    const [delivery] = webhook.of('compat-1');
    expect(delivery!.message.Content).toBe('compat-1 你好');
    expect(delivery!.message.Encrypt).toBeUndefined();
  });

  it('tells two messages apart by MsgId even past 2^53, and drops a repeat of either', async () => {
    // JSON numbers this big round to the same double; minigate keeps the digits.
    const first = `{"ToUserName":"gh_1","FromUserName":"oBig","CreateTime":1714037400,"MsgType":"text","Content":"bigid-a","MsgId":24000000000000001}`;
    const second = first.replace('bigid-a', 'bigid-b').replace('24000000000000001', '24000000000000002');
    expect(JSON.parse(first).MsgId).toBe(JSON.parse(second).MsgId);
    for (const body of [first, second, first]) {
      const response = await fetch(`${pushUrl}?${signedQuery()}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      expect(await response.text()).toBe('success');
    }
    await until(() => webhook.of('bigid-a').length + webhook.of('bigid-b').length === 2);
    await pause(1_200);
    expect(webhook.of('bigid-a')).toHaveLength(1);
    expect(webhook.of('bigid-b')).toHaveLength(1);
    expect(webhook.of('bigid-b')[0]!.message.MsgId).toBe('24000000000000002');
  });

  it('keeps two different events of one user in the same second apart', async () => {
    const base = { FromUserName: 'oSame', CreateTime: 1714037450, MsgType: 'event', Event: 'subscribe_msg_popup_event' };
    await push({ mode: 'plaintext', message: { ...base, debug_str: 'same-second-a' } });
    await push({ mode: 'plaintext', format: 'xml', message: { ...base, debug_str: 'same-second-b' } });
    await until(() => webhook.of('same-second-a').length === 1 && webhook.of('same-second-b').length === 1);
  });

  it('answers success in well under WeChat’s 5 s while the webhook hangs', async () => {
    webhook.hang = true;
    const started = Date.now();
    const attempts = await push({ mode: 'plaintext', format: 'xml', message: { FromUserName: 'oHang', CreateTime: 1714037500, MsgType: 'event', Event: 'x', debug_str: 'hang-1' } });
    expect(attempts[0]).toMatchObject({ status: 200, body: 'success' });
    expect(Date.now() - started).toBeLessThan(1_000);
    await until(() => webhook.deliveries.some((d) => d.raw.includes('hang-1')));
  });
});

describe('to a channel room', () => {
  it('sends each push once to the user it is about (user:{openid}), and an app’s pushes to an ops room', async () => {
    const { code, openid } = await h.code();
    const { token } = (await h.login({ code, appid: TEST_APPID })).body;
    const socket = await connect(`${h.url.replace(/^http/, 'ws')}/channel`, { token });
    const joined = socket.next((f) => f.type === 'joined' && f.room === 'ops:push');
    socket.send({ type: 'join', room: 'ops:push' });
    await joined;

    const message = { ToUserName: 'gh_97417a04a28d', FromUserName: openid, CreateTime: 1714037100, MsgType: 'event', Event: 'subscribe_msg_popup_event', debug_str: 'room-1' };
    await push({ mode: 'safe', format: 'xml', encodingAESKey: AES_KEY, message, attempts: 3 });
    const frame = await socket.next((f) => f.type === 'message' && f.room === `user:${openid}`);
    expect(frame).toMatchObject({ event: 'push.subscribe_msg_popup_event', data: { appid: TEST_APPID, message: { debug_str: 'room-1', FromUserName: openid } } });
    expect(frame.data.id).toBe((await eventually(async () => webhook.of('room-1'), (d) => d.length > 0))[0]!.id);
    expect(frame.data.raw).toBeUndefined();

    const other = { ToUserName: 'gh_97417a04a28d', FromUserName: 'o_somebody_else', CreateTime: 1714037101, MsgType: 'text', Content: 'room-2', MsgId: 99001 };
    await h.control('push', { url: `${h.url}/wechat/push/${OTHER_APPID}`, appid: OTHER_APPID, token: TOKEN, mode: 'plaintext', format: 'json', message: other, attempts: 2 });
    const ops = await socket.next((f) => f.type === 'message' && f.room === 'ops:push');
    expect(ops).toMatchObject({ event: 'push.text', data: { appid: OTHER_APPID, message: { Content: 'room-2' } } });
    await pause(200);
    expect(socket.frames.filter((f) => f.type === 'message')).toHaveLength(2); // repeats were not published again
    socket.close();
  });
});

describe('refusals', () => {
  it('refuses a plaintext push with a bad signature, and delivers nothing', async () => {
    const before = webhook.deliveries.length;
    const attempts = await h.control<{ attempts: { status: number; body: string }[] }>('push', {
      url: pushUrl,
      appid: TEST_APPID,
      token: 'wrong-token',
      mode: 'plaintext',
      message: { FromUserName: 'oBad', CreateTime: 1, MsgType: 'event', Event: 'x', debug_str: 'bad-sig' },
    });
    expect(attempts.attempts[0]!.status).toBe(403);
    expect(JSON.parse(attempts.attempts[0]!.body).error.code).toBe('PUSH_SIGNATURE_MISMATCH');
    await pause(1_200);
    expect(webhook.deliveries.slice(before).some((d) => d.raw.includes('bad-sig'))).toBe(false);
  });

  it('refuses a safe-mode push sealed for another appid or signed wrongly', async () => {
    const wrongApp = await h.control<{ attempts: { status: number; body: string }[] }>('push', {
      url: pushUrl,
      appid: OTHER_APPID,
      token: TOKEN,
      encodingAESKey: AES_KEY,
      mode: 'safe',
      message: { FromUserName: 'oOther', CreateTime: 2, MsgType: 'event', Event: 'x' },
    });
    expect(wrongApp.attempts[0]!.status).toBe(400);
    expect(JSON.parse(wrongApp.attempts[0]!.body).error.code).toBe('PUSH_APPID_MISMATCH');

    const encrypt = encryptPush(AES_KEY, TEST_APPID, '{"a":1}');
    const response = await fetch(`${pushUrl}?${signedQuery()}&encrypt_type=aes&msg_signature=${'0'.repeat(40)}`, {
      method: 'POST',
      body: JSON.stringify({ ToUserName: 'gh_1', Encrypt: encrypt }),
    });
    expect(response.status).toBe(403);
    expect(((await response.json()) as any).error.code).toBe('PUSH_SIGNATURE_MISMATCH');
  });

  it('refuses a safe-mode push to an app without an EncodingAESKey', async () => {
    const answer = await h.control<{ attempts: { status: number; body: string }[] }>('push', {
      url: `${h.url}/wechat/push/${OTHER_APPID}`,
      appid: OTHER_APPID,
      token: TOKEN,
      encodingAESKey: AES_KEY,
      mode: 'safe',
      message: { FromUserName: 'o', CreateTime: 3, MsgType: 'event', Event: 'x' },
    });
    expect(answer.attempts[0]!.status).toBe(400);
    expect(JSON.parse(answer.attempts[0]!.body).error.code).toBe('PUSH_DECRYPT_FAILED');
  });

  it('says APP_UNKNOWN or PUSH_NOT_CONFIGURED for the wrong app', async () => {
    const unknown = await fetch(`${h.url}/wechat/push/wx9999999999999999?${signedQuery()}`, { method: 'POST', body: '{}' });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as any).error.code).toBe('APP_UNKNOWN');
    const off = await fetch(`${h.url}/wechat/push/${NO_PUSH_APPID}?${signedQuery()}`, { method: 'POST', body: '{}' });
    expect(off.status).toBe(404);
    expect(((await off.json()) as any).error.code).toBe('PUSH_NOT_CONFIGURED');
  });

  it('refuses XML with a DOCTYPE (no entity expansion), bodies that are neither JSON nor XML, and oversize bodies', async () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Content>&e;</Content></xml>`;
    for (const body of [xxe, 'hello', '[1,2]', '<xml><a></b></xml>', '<other/>']) {
      const response = await fetch(`${pushUrl}?${signedQuery()}`, { method: 'POST', body });
      expect(response.status, body).toBe(400);
      expect(((await response.json()) as any).error.code).toBe('BAD_REQUEST');
    }
    const big = await fetch(`${pushUrl}?${signedQuery()}`, { method: 'POST', body: `{"a":"${'x'.repeat(300_000)}"}` });
    expect(big.status).toBe(413);
    const put = await fetch(pushUrl, { method: 'PUT', body: '{}' });
    expect(put.status).toBe(405);
    expect(((await put.json()) as any).error.code).toBe('METHOD_NOT_ALLOWED');
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
  });
});

describe('webhook delivery', () => {
  it('retries a failing webhook with back-off and records the attempts', async () => {
    webhook.statuses = [500, 503];
    await push({ mode: 'plaintext', message: { FromUserName: 'oRetry', CreateTime: 1714037600, MsgType: 'event', Event: 'x', debug_str: 'retry-1' } });
    await until(() => webhook.of('retry-1').length === 1);
    const id = webhook.of('retry-1')[0]!.id;
    const entry = () => h.server.store.outboxGet(id);
    expect(await eventually(entry, (e) => e?.attempts === 1)).toMatchObject({ status: 'pending', lastError: 'HTTP 500: ok' });
    // The second attempt comes 1 s later; the third 5 s after that (the clock is moved on here).
    await until(() => webhook.of('retry-1').length === 2, 4_000);
    expect(await eventually(entry, (e) => e?.attempts === 2)).toMatchObject({ status: 'pending', lastError: 'HTTP 503: ok' });
    await pause(1_200);
    expect(webhook.of('retry-1')).toHaveLength(2);
    h.clock.advance(5_000);
    await until(() => webhook.of('retry-1').length === 3, 4_000);
    expect(await eventually(entry, (e) => e?.status === 'delivered')).toMatchObject({ attempts: 2, lastError: null });
    expect(new Set(webhook.of('retry-1').map((d) => d.id)).size).toBe(1);
    expect(h.logs.text()).toContain('push: webhook delivery failed; will retry');
    expect(h.logs.text()).not.toContain(UPSTREAM_SECRET);
    expect(h.logs.text()).not.toContain(TOKEN);
    expect(h.logs.text()).not.toContain(AES_KEY);
  });
});

describe('two instances sharing MariaDB, behind one push URL', () => {
  it('deliver each message once when WeChat’s repeats land on different instances', async () => {
    const database = await createTestDatabase('mysql');
    const hook = new Webhook();
    const hookUrl = await hook.start();
    const apps = [{ appid: TEST_APPID, secret: TEST_SECRET, push: { token: TOKEN, webhook: hookUrl } } as never];
    const shared = { upstreamSecret: UPSTREAM_SECRET, secretKey: 'cd'.repeat(32) };
    const a = await startHarness({ apps, store: database.url, config: shared });
    const b = await startHarness({ apps, store: database.url, sandbox: a.sandbox, clock: a.clock, config: shared });
    try {
      for (let i = 0; i < 20; i++) {
        const body = JSON.stringify({ FromUserName: `oTwo${i}`, CreateTime: 1714038000 + i, MsgType: 'event', Event: 'x', debug_str: `two-${i}` });
        // WeChat's first send goes to one instance, its repeats to the other.
        for (const url of i % 2 ? [a.url, b.url, b.url] : [b.url, a.url, b.url]) {
          const response = await fetch(`${url}/wechat/push/${TEST_APPID}?${signedQuery()}`, { method: 'POST', body });
          expect(await response.text()).toBe('success');
        }
      }
      await until(() => hook.deliveries.length >= 20);
      await pause(1_500);
      const ids = hook.deliveries.map((d) => d.body.message.debug_str as string);
      expect(ids).toHaveLength(20);
      expect(new Set(ids).size).toBe(20);
    } finally {
      await b.close();
      await a.close();
      await hook.close();
      await database.drop();
    }
  });
});

describe('behind an HTTPS redirect', () => {
  it('still answers pushes on plain HTTP (WeChat allows http:// on port 80 and does not follow redirects)', async () => {
    const https = await startHarness({
      apps: [{ appid: TEST_APPID, secret: TEST_SECRET, push: { token: TOKEN } } as never],
      config: { listen: { https: '127.0.0.1:0', httpRedirect: true }, tls: { devCa: true } },
    });
    try {
      const plainUrl = `${https.server.urls.http}/wechat/push/${TEST_APPID}`;
      const verify = await https.control<{ status: number; body: string; echostr: string }>('push-verify', { url: plainUrl, token: TOKEN });
      expect(verify).toMatchObject({ status: 200, body: verify.echostr });
      const response = await fetch(`${plainUrl}?${signedQuery()}`, { method: 'POST', body: '{"FromUserName":"o","CreateTime":1,"MsgType":"event","Event":"x"}' });
      expect(await response.text()).toBe('success');
      const other = await fetch(`${https.server.urls.http}/auth/session`, { redirect: 'manual' });
      expect(other.status).toBe(308);
    } finally {
      await https.close();
    }
  });
});

describe('the webhook in docs/push.md', () => {
  it('takes minigate’s real deliveries, prints each event once, and refuses a forged one', async () => {
    const doc = readFileSync(new URL('../../../docs/push.md', import.meta.url), 'utf8');
    const dir = mkdtempSync(path.join(tmpdir(), 'mg-push-docs-'));
    writeFileSync(path.join(dir, 'webhook.mjs'), /```js\n([\s\S]*?)```/.exec(doc)![1]!);
    const port = await freePort();
    const child = spawn(process.execPath, ['webhook.mjs'], { cwd: dir, env: { ...process.env, UPSTREAM_SECRET, PORT: String(port) } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const docs = await startHarness({
      apps: [{ appid: TEST_APPID, secret: TEST_SECRET, push: { token: TOKEN, encodingAESKey: AES_KEY, webhook: `http://127.0.0.1:${port}/wechat-events` } } as never],
      config: { upstreamSecret: UPSTREAM_SECRET },
    });
    try {
      await until(() => out.includes('ready'));
      const url = `${docs.url}/wechat/push/${TEST_APPID}`;
      await docs.control('push', { url, appid: TEST_APPID, token: TOKEN, encodingAESKey: AES_KEY, mode: 'safe', attempts: 3, message: { FromUserName: 'oDoc', MsgType: 'event', Event: 'debug_demo' } });
      await docs.control('push', { url, appid: TEST_APPID, token: TOKEN, mode: 'plaintext', format: 'xml', message: { FromUserName: 'oDoc', MsgType: 'text', Content: 'hi', MsgId: 1 } });
      await until(() => out.split('\n').filter(Boolean).length >= 3);
      await pause(1_200);
      expect(out.trim().split('\n')).toEqual(['ready', `event ${TEST_APPID} event debug_demo`, `event ${TEST_APPID} text`]);
      const forged = await fetch(`http://127.0.0.1:${port}/wechat-events`, {
        method: 'POST',
        headers: { 'x-minigate-timestamp': String(Math.floor(Date.now() / 1000)), 'x-minigate-signature': `v1=${'0'.repeat(64)}` },
        body: '{"id":"x","appid":"wx","message":{"MsgType":"event"}}',
      });
      expect(forged.status).toBe(401);
      const outbox = await docs.server.store.outboxDue(Date.now() + 86_400_000, 10);
      expect(outbox).toEqual([]); // both delivered, nothing left to send
    } finally {
      await docs.close();
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
