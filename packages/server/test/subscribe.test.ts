/**
 * Subscribe messages with grants, content checks by session, and the session-key tools, against
 * the sandbox playing WeChat and the user: a tap in the subscribe popup (or the settings) is
 * pushed to minigate as WeChat would, and a send is refused by minigate before WeChat when the
 * user has no grant (the sandbox counts the calls). Grants are taken atomically: concurrent sends
 * with one grant give exactly one message, on SQLite and on PostgreSQL.
 */
import { createHash } from 'node:crypto';
import { createClient, MinigateError } from 'minigate-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from './helpers/databases.js';
import { startHarness, TEST_APPID, TEST_SECRET, OTHER_APPID, OTHER_SECRET, type Harness } from './helpers/harness.js';
import { RecordingWebhook } from './helpers/webhook.js';
import { createWx } from './helpers/wx-shim.js';

const TOKEN = 'subscribe-push-token';
const INTERNAL_TOKEN = 'subscribe-internal-token-0123456789abcdef';
const UPSTREAM_SECRET = 'subscribe-upstream-secret-0123456789abcdef';
const ONCE = 'TPL_ONCE_ORDER';
const LONG = 'TPL_LONG_NEWS';
const SEND_PATH = '/cgi-bin/message/subscribe/send';

const webhook = new RecordingWebhook('/hook');
let h: Harness;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stats(path: string): Promise<number> {
  const body = (await (await fetch(`${h.sandbox.url}/__sandbox/stats`)).json()) as { paths: Record<string, number> };
  return body.paths[path] ?? 0;
}

/** Where the sandbox sends this app's event pushes: minigate's receiver (of harness `at`). */
async function pushTarget(at: Harness, format: 'json' | 'xml' = 'json', extra: Record<string, unknown> = {}): Promise<void> {
  await at.control('push-target', { appid: TEST_APPID, url: `${at.url}/wechat/push/${TEST_APPID}`, token: TOKEN, format, ...extra });
}

async function tap(openid: string, choices: Record<string, 'accept' | 'reject'>, where: 'popup' | 'change' = 'popup', at: Harness = h) {
  // A second apart: two identical pushes in one second are one push to minigate (WeChat's repeat).
  at.clock.advance(1_000);
  const answer = await at.control<{ applied: string[]; attempts: { status: number; body: string }[] }>('subscribe-tap', { appid: TEST_APPID, openid, choices, where });
  expect(answer.attempts.map((a) => a.body)).toEqual(['success']);
  return answer;
}

const message = (openid: string, templateId = ONCE) => ({
  touser: openid,
  templateId,
  data: templateId === ONCE ? { thing1: { value: '拿铁 coffee' }, time2: { value: '2026-11-22 10:00' } } : { thing1: { value: 'weekly news' } },
  page: 'pages/order?id=7',
});
const send = (openid: string, templateId = ONCE, at: Harness = h) => at.internal('POST', `/v1/apps/${TEST_APPID}/subscribe-messages`, message(openid, templateId));
const grants = async (openid: string) => (await h.internal('GET', `/v1/apps/${TEST_APPID}/users/${openid}/subscriptions`)).body.grants as { templateId: string; kind: string; count: number; source: string }[];

async function session(openid?: string, appid = TEST_APPID): Promise<{ token: string; openid: string }> {
  const code = await h.code({ appid, ...(openid ? { openid } : {}) });
  const login = await h.login({ code: code.code, appid });
  expect(login.status).toBe(200);
  return { token: login.body.token, openid: code.openid };
}

beforeAll(async () => {
  const hook = await webhook.start();
  h = await startHarness({
    apps: [
      { appid: TEST_APPID, secret: TEST_SECRET, push: { token: TOKEN, webhook: hook } } as never,
      { appid: OTHER_APPID, secret: OTHER_SECRET },
    ],
    config: { listen: { internal: '127.0.0.1:0' }, internal: { token: INTERNAL_TOKEN }, upstreamSecret: UPSTREAM_SECRET },
  });
  await h.control('templates', { appid: TEST_APPID, templateId: ONCE, keywords: ['thing1', 'time2'] });
  await h.control('templates', { appid: TEST_APPID, templateId: LONG, keywords: ['thing1'], kind: 'long-term' });
  await pushTarget(h);
});
afterAll(async () => {
  await h?.close();
  await webhook.close();
});

describe('subscribe grants', () => {
  it('a one-time grant from the popup push allows one send; the second is refused before WeChat is called', async () => {
    const { openid } = await h.code();
    await tap(openid, { [ONCE]: 'accept' });
    expect(await grants(openid)).toEqual([expect.objectContaining({ templateId: ONCE, kind: 'one-time', count: 1, source: 'push' })]);
    const first = await send(openid);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ msgid: expect.stringMatching(/^\d{19}$/), grant: 'one-time' });
    expect(BigInt(first.body.msgid) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    const before = await stats(SEND_PATH);
    const second = await send(openid);
    expect(second).toMatchObject({ status: 409, body: { error: { code: 'SUBSCRIBE_NOT_GRANTED' } } });
    expect(await stats(SEND_PATH)).toBe(before);
    expect((await grants(openid))[0]).toMatchObject({ count: 0 });
  });

  it('counts each popup acceptance, in XML pushes too', async () => {
    const { openid } = await h.code();
    await pushTarget(h, 'xml');
    try {
      await tap(openid, { [ONCE]: 'accept' });
      await tap(openid, { [ONCE]: 'accept', [LONG]: 'reject' });
    } finally {
      await pushTarget(h);
    }
    // A reject in the popup only declines this time: no row for LONG.
    expect(await grants(openid)).toEqual([expect.objectContaining({ templateId: ONCE, count: 2 })]);
    expect((await send(openid)).status).toBe(200);
    expect((await send(openid)).status).toBe(200);
    expect((await send(openid)).body.error.code).toBe('SUBSCRIBE_NOT_GRANTED');
  });

  it("records each send with its outcome, and WeChat's sent event updates it by msgid", async () => {
    const { openid } = await h.code();
    await tap(openid, { [ONCE]: 'accept' });
    const sent = await send(openid);
    await send(openid);
    const sends = () => h.server.store.db.selectFrom('subscribe_sends').select(['outcome', 'msgid', 'errcode']).where('openid', '=', openid).orderBy('created_at').execute();
    expect((await sends()).map((r) => r.outcome).sort()).toEqual(['not_granted', 'sent']);
    const report = { ToUserName: 'gh_sandbox00000', FromUserName: openid, CreateTime: 1700000002, MsgType: 'event', Event: 'subscribe_msg_sent_event', SubscribeMsgSentEvent: { List: { TemplateId: ONCE, MsgID: sent.body.msgid, ErrorCode: 0, ErrorStatus: 'success' } } };
    await h.control('push', { url: `${h.url}/wechat/push/${TEST_APPID}`, appid: TEST_APPID, token: TOKEN, format: 'xml', message: report });
    expect(await sends()).toContainEqual({ outcome: 'delivered', msgid: sent.body.msgid, errcode: 0 });
  });

  it('a long-term grant is not used up by sends', async () => {
    const { openid } = await h.code();
    await tap(openid, { [LONG]: 'accept' });
    for (let i = 0; i < 3; i++) expect((await send(openid, LONG)).body).toMatchObject({ grant: 'long-term' });
    expect(await grants(openid)).toEqual([expect.objectContaining({ templateId: LONG, kind: 'long-term' })]);
  });

  it('honours a change event that turns the template off, for long-term and one-time grants', async () => {
    const { openid } = await h.code();
    await tap(openid, { [LONG]: 'accept' });
    await tap(openid, { [ONCE]: 'accept' });
    await tap(openid, { [LONG]: 'reject', [ONCE]: 'reject' }, 'change');
    const before = await stats(SEND_PATH);
    expect((await send(openid, LONG)).body.error.code).toBe('SUBSCRIBE_NOT_GRANTED');
    expect((await send(openid, ONCE)).body.error.code).toBe('SUBSCRIBE_NOT_GRANTED');
    expect(await stats(SEND_PATH)).toBe(before);
  });

  it('zeroes the grant when WeChat answers 43101 (the user cancelled where minigate did not see it)', async () => {
    const { openid } = await h.code();
    await tap(openid, { [ONCE]: 'accept' });
    await tap(openid, { [ONCE]: 'accept' });
    // WeChat's side loses the subscriptions (the sandbox's credits) without a push.
    await h.control('faults', { path: SEND_PATH, errcode: 43101, times: 1 });
    expect((await send(openid)).body.error.code).toBe('SUBSCRIBE_REFUSED');
    expect((await grants(openid))[0]).toMatchObject({ count: 0 });
    expect((await send(openid)).body.error.code).toBe('SUBSCRIBE_NOT_GRANTED');
  });

  it('never retries a send whose outcome is unknown, and keeps the grant used', async () => {
    const { openid } = await h.code();
    await tap(openid, { [ONCE]: 'accept' });
    await tap(openid, { [ONCE]: 'accept' });
    const before = await stats(SEND_PATH);
    await h.control('faults', { path: SEND_PATH, errcode: -1, times: 1 });
    expect((await send(openid)).body.error.code).toBe('WECHAT_OUTCOME_UNKNOWN');
    expect(await stats(SEND_PATH)).toBe(before + 1);
    expect((await grants(openid))[0]).toMatchObject({ count: 1 });
  });

  it('checks the data against the template before WeChat: missing, unknown, too long, wrong type', async () => {
    const { openid } = await h.code();
    await tap(openid, { [ONCE]: 'accept' });
    const before = await stats(SEND_PATH);
    const bad = async (data: unknown) => (await h.internal('POST', `/v1/apps/${TEST_APPID}/subscribe-messages`, { touser: openid, templateId: ONCE, data })).body.error;
    expect(await bad({ thing1: { value: 'x' } })).toMatchObject({ code: 'SUBSCRIBE_DATA_INVALID', message: expect.stringContaining('time2') });
    expect(await bad({ thing1: { value: 'x' }, time2: { value: 't' }, thing3: { value: 'y' } })).toMatchObject({ code: 'SUBSCRIBE_DATA_INVALID', message: expect.stringContaining('thing3') });
    expect(await bad({ thing1: { value: '一'.repeat(21) }, time2: { value: 't' } })).toMatchObject({ code: 'SUBSCRIBE_DATA_INVALID', message: expect.stringContaining('20') });
    expect(await bad({ thing1: { value: '' }, time2: { value: 't' } })).toMatchObject({ code: 'SUBSCRIBE_DATA_INVALID' });
    expect(await bad({ thing1: 'plain', time2: { value: 't' } })).toMatchObject({ code: 'SUBSCRIBE_DATA_INVALID' });
    expect(await bad(['thing1'])).toMatchObject({ code: 'SUBSCRIBE_DATA_INVALID' });
    expect(await stats(SEND_PATH)).toBe(before);
    // The grant was not touched by the refusals.
    expect((await grants(openid))[0]).toMatchObject({ count: 1 });
  });

  it('refuses an unknown template and a bad openid', async () => {
    const { openid } = await h.code();
    expect((await send(openid, 'TPL_NOT_OURS')).body.error.code).toBe('SUBSCRIBE_TEMPLATE_UNKNOWN');
    expect((await h.internal('POST', `/v1/apps/${TEST_APPID}/subscribe-messages`, { ...message(openid), touser: '../x' })).body.error.code).toBe('BAD_REQUEST');
    expect((await h.internal('GET', `/v1/apps/${TEST_APPID}/users/bad%20id/subscriptions`)).body.error.code).toBe('BAD_REQUEST');
    expect((await h.internal('GET', '/v1/apps/wx9999999999999999/users/o1/subscriptions')).body.error.code).toBe('APP_UNKNOWN');
  });

  it('a forged push (bad signature) changes nothing', async () => {
    const { openid } = await h.code();
    const forged = JSON.stringify({ ToUserName: 'gh_x', FromUserName: openid, CreateTime: 1, MsgType: 'event', Event: 'subscribe_msg_popup_event', SubscribeMsgPopupEvent: [{ TemplateId: ONCE, SubscribeStatusString: 'accept' }] });
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = createHash('sha1').update(['wrong-token', timestamp, '1'].sort().join('')).digest('hex');
    const answer = await fetch(`${h.url}/wechat/push/${TEST_APPID}?signature=${signature}&timestamp=${timestamp}&nonce=1`, { method: 'POST', body: forged });
    expect(answer.status).toBe(403);
    expect(await grants(openid)).toEqual([]);
    expect((await send(openid)).body.error.code).toBe('SUBSCRIBE_NOT_GRANTED');
  });

  for (const dialect of ['sqlite', 'postgres'] as const) {
    it(`concurrent sends with one grant: exactly one succeeds (${dialect})`, async () => {
      const db = dialect === 'sqlite' ? undefined : await createTestDatabase(dialect);
      const at = db
        ? await startHarness({
            sandbox: h.sandbox,
            clock: h.clock,
            store: db.url,
            apps: [{ appid: TEST_APPID, secret: TEST_SECRET, push: { token: TOKEN } } as never],
            config: { listen: { internal: '127.0.0.1:0' }, internal: { token: INTERNAL_TOKEN } },
          })
        : h;
      try {
        await pushTarget(at);
        const { openid } = await at.code();
        // WeChat would take many (the sandbox holds 5): minigate must let one through.
        await tap(openid, { [ONCE]: 'accept' }, 'popup', at);
        await at.control('subscribe', { appid: TEST_APPID, openid, templateId: ONCE, count: 4 });
        const before = await stats(SEND_PATH);
        const answers = await Promise.all(Array.from({ length: 12 }, () => send(openid, ONCE, at)));
        expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
        expect(answers.filter((a) => a.body.error?.code === 'SUBSCRIBE_NOT_GRANTED')).toHaveLength(11);
        expect(await stats(SEND_PATH)).toBe(before + 1);
      } finally {
        await pushTarget(h);
        if (db) {
          await at.close();
          await db.drop();
        }
      }
    });
  }
});

describe('client-reported grants', () => {
  const report = (token: string, result: unknown) => h.post('/auth/subscriptions', { result }, { authorization: `Bearer ${token}` });

  it('the SDK reports wx.requestSubscribeMessage through the session: one grant per template, marked client', async () => {
    const { openid } = await h.code();
    const wx = createWx({ login: async () => (await h.code({ openid })).code, dev: true });
    Object.assign(wx, {
      requestSubscribeMessage: (options: { tmplIds: string[]; success?: (r: Record<string, string>) => void }) =>
        setTimeout(() => options.success?.({ errMsg: 'requestSubscribeMessage:ok', ...Object.fromEntries(options.tmplIds.map((id) => [id, 'accept'])) }), 1),
    });
    try {
      const client = createClient({ baseUrl: h.url, wx, appid: TEST_APPID });
      expect(await client.requestSubscribeMessage([ONCE])).toMatchObject({ [ONCE]: 'accept' });
      expect(await grants(openid)).toEqual([expect.objectContaining({ templateId: ONCE, count: 1, source: 'client' })]);
      // Reported again (a replayed request): still one — a client can claim one tap, never more.
      await client.requestSubscribeMessage([ONCE]);
      expect((await grants(openid))[0]).toMatchObject({ count: 1 });
      // WeChat's push for the same tap confirms it rather than adding one.
      await tap(openid, { [ONCE]: 'accept' });
      expect((await grants(openid))[0]).toMatchObject({ count: 1, source: 'push' });
    } finally {
      wx.close();
    }
  });

  it('refuses more than three templates, unknown ones, no session, and more than ten reports a minute', async () => {
    const { token, openid } = await session();
    const four = Object.fromEntries(['A1', 'A2', 'A3', 'A4'].map((id) => [id, 'accept']));
    expect((await report(token, four)).body.error.code).toBe('BAD_REQUEST');
    expect((await report(token, { TPL_NOT_OURS: 'accept' })).body.error.code).toBe('SUBSCRIBE_TEMPLATE_UNKNOWN');
    expect((await report(token, 'accept')).body.error.code).toBe('BAD_REQUEST');
    expect((await h.post('/auth/subscriptions', { result: { [ONCE]: 'accept' } })).status).toBe(401);
    expect((await report(token, { [ONCE]: 'reject', [LONG]: 'ban' })).body).toEqual({ recorded: [] });
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push((await report(token, { [ONCE]: 'accept' })).status);
    expect(answers.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(answers).toContain(429);
    expect((await grants(openid))[0]).toMatchObject({ count: 1 });
  });
});

describe('content checks by session', () => {
  it('checks text by session token, and refuses a session of another app', async () => {
    const { token } = await session();
    const pass = await h.internal('POST', `/v1/apps/${TEST_APPID}/msg-sec-check`, { session: token, scene: 2, content: 'hello' });
    expect(pass).toMatchObject({ status: 200, body: { suggest: 'pass', label: 100 } });
    const risky = await h.internal('POST', `/v1/apps/${TEST_APPID}/msg-sec-check`, { session: token, scene: 2, content: 'a risky-word here' });
    expect(risky.body).toMatchObject({ suggest: 'risky' });
    const other = await session(undefined, OTHER_APPID);
    expect((await h.internal('POST', `/v1/apps/${TEST_APPID}/msg-sec-check`, { session: other.token, scene: 2, content: 'hello' })).body.error.code).toBe('SESSION_INVALID');
    expect((await h.internal('POST', `/v1/apps/${TEST_APPID}/msg-sec-check`, { session: 'not-a-token', scene: 2, content: 'hello' })).status).toBe(401);
    expect((await h.internal('POST', `/v1/apps/${TEST_APPID}/msg-sec-check`, { scene: 2, content: 'hello' })).body.error.code).toBe('BAD_REQUEST');
  });

  it('a media check: the verdict arrives by push and reaches the webhook once, with the request', async () => {
    const { token, openid } = await session();
    const asked = await h.internal('POST', `/v1/apps/${TEST_APPID}/media-check`, {
      session: token,
      scene: 3,
      mediaType: 'image',
      mediaUrl: 'https://cdn.example.com/risky-picture.png',
      meta: { postId: '77' },
    });
    expect(asked).toMatchObject({ status: 202, body: { traceId: expect.any(String) } });
    const { traceId } = asked.body as { traceId: string };
    const ofTrace = () => webhook.deliveries.filter((d) => d.body.type === 'media_check' && d.body.traceId === traceId);
    for (let i = 0; i < 250 && ofTrace().length === 0; i++) await pause(20);
    expect(ofTrace()).toHaveLength(1);
    expect(ofTrace()[0]!.body).toMatchObject({ appid: TEST_APPID, openid, suggest: 'risky', label: 20002, mediaType: 'image', meta: { postId: '77' } });
    expect(ofTrace()[0]!.headers['x-minigate-signature']).toBeTruthy();
    // WeChat sends the same verdict again (its retry): still one delivery.
    const again = { ToUserName: 'gh_sandbox00000', FromUserName: openid, CreateTime: 1700000001, MsgType: 'event', Event: 'wxa_media_check', appid: TEST_APPID, trace_id: traceId, version: 2, result: { suggest: 'pass', label: '100' } };
    await h.control('push', { url: `${h.url}/wechat/push/${TEST_APPID}`, appid: TEST_APPID, token: TOKEN, message: again });
    await pause(300);
    expect(ofTrace()).toHaveLength(1);
  });

  it('refuses bad media-check input before WeChat', async () => {
    const { token } = await session();
    const ask = (body: Record<string, unknown>) => h.internal('POST', `/v1/apps/${TEST_APPID}/media-check`, { session: token, scene: 1, mediaType: 'image', mediaUrl: 'https://x.example/a.png', ...body });
    expect((await ask({ mediaType: 'video' })).body.error.code).toBe('BAD_REQUEST');
    expect((await ask({ mediaUrl: 'file:///etc/passwd' })).body.error.code).toBe('BAD_REQUEST');
    expect((await ask({ meta: { a: { nested: 1 } } })).body.error.code).toBe('BAD_REQUEST');
    expect((await ask({ scene: 0 })).body.error.code).toBe('BAD_REQUEST');
  });
});

describe('session-key tools', () => {
  it('checks and resets the session_key by session; a wx.login elsewhere makes it stale', async () => {
    const { token, openid } = await session();
    const check = async () => (await h.internal('POST', `/v1/apps/${TEST_APPID}/session-key/check`, { session: token })).body;
    expect(await check()).toEqual({ valid: true });
    expect((await h.internal('POST', `/v1/apps/${TEST_APPID}/session-key/reset`, { session: token })).body).toEqual({ reset: true });
    // The session holds the new key: still valid at WeChat.
    expect(await check()).toEqual({ valid: true });
    await h.code({ openid, rotateSessionKey: true } as never);
    expect(await check()).toEqual({ valid: false });
    expect((await h.internal('POST', `/v1/apps/${TEST_APPID}/session-key/reset`, { session: token })).body.error.code).toBe('SESSION_KEY_STALE');
    const other = await session(undefined, OTHER_APPID);
    expect((await h.internal('POST', `/v1/apps/${TEST_APPID}/session-key/check`, { session: other.token })).body.error.code).toBe('SESSION_INVALID');
    expect(JSON.stringify(h.logs.text())).not.toContain(token);
  });

  it('a stale session_key decrypt: the SDK logs in once more, gets the data again and succeeds', async () => {
    const { openid } = await h.code();
    const wx = createWx({ login: async () => (await h.code({ openid })).code, dev: true });
    try {
      const client = createClient({ baseUrl: h.url, wx, appid: TEST_APPID });
      await client.login();
      // The user's wx.login elsewhere (another page, a plugin) replaced the key at WeChat.
      await h.code({ openid, rotateSessionKey: true } as never);
      let fetched = 0;
      const data = await client.decrypt<{ nickName: string; watermark: { appid: string } }>(async () => {
        fetched++;
        return h.control<{ encryptedData: string; iv: string }>('userinfo', { appid: TEST_APPID, openid, userInfo: { nickName: 'Mei' } });
      });
      expect(data).toMatchObject({ nickName: 'Mei', watermark: { appid: TEST_APPID } });
      expect(fetched).toBe(2);
      expect(wx.stats.logins).toBe(2);
      expect(wx.stats.count('/auth/decrypt')).toBe(2);
      // Garbage is not a stale key: no re-login, a plain error.
      const error = await client.decrypt(async () => ({ encryptedData: Buffer.alloc(32).toString('base64'), iv: Buffer.alloc(16).toString('base64') })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MinigateError);
      expect((error as MinigateError).code).toBe('AUTH_DECRYPT_FAILED');
      expect(wx.stats.logins).toBe(2);
    } finally {
      wx.close();
    }
  });
});
