/**
 * minigate-client (the mini program SDK) against a real minigate, on a `wx` shim that keeps
 * WeChat's networking rules (helpers/wx-shim.ts): login and one transparent re-login after a
 * revocation, concurrent calls sharing one login, uploads and downloads, error shapes in both
 * call styles, abort, channels between two users, a reconnect (with the rooms re-joined) after
 * the server restarts on the same port, a back-off that does not spin, WeChat's 10-request and
 * 5-socket limits, and the bundles a mini program loads (ES2017, no require, only `wx`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import * as acorn from 'acorn';
import { createClient, MinigateError, type Channel, type ChannelEvents, type MinigateClient, type Response, type Task } from 'minigate-client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startHarness, TEST_APPID, type Harness } from './helpers/harness.js';
import { createWx, type WxShim } from './helpers/wx-shim.js';

const INTERNAL_TOKEN = 'client-test-internal-token-0123456789abcdef';
const UPSTREAM_SECRET = 'client-test-upstream-secret-0123456789abcdef';
const CLIENT_DIR = fileURLToPath(new URL('../../client/', import.meta.url));

/** A slow and an echoing upstream, behind minigate's /up route. */
interface Upstream {
  url: string;
  /** Requests to /up/slow that arrived, and whether each was cut by the client. */
  slow: { closed: boolean }[];
  /** Headers of the last /echo request. */
  echoed: IncomingHttpHeaders | undefined;
  server: Server;
}

async function startUpstream(): Promise<Upstream> {
  const upstream: Upstream = { url: '', slow: [], echoed: undefined, server: undefined as unknown as Server };
  upstream.server = createHttpServer((req, res) => {
    if (req.url === '/hook') {
      res.writeHead(500).end();
      return;
    }
    if (req.url?.endsWith('/revoked')) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'SESSION_REVOKED', message: 'The session was revoked.', requestId: 'up-1' } }));
      return;
    }
    if (req.url?.endsWith('/slow')) {
      // Never answers: the caller aborts (or times out).
      const entry = { closed: false };
      upstream.slow.push(entry);
      res.on('close', () => (entry.closed = true));
      return;
    }
    upstream.echoed = req.headers;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url, headers: req.headers }));
  });
  await new Promise<void>((resolve) => upstream.server.listen(0, '127.0.0.1', resolve));
  upstream.url = `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`;
  return upstream;
}

/** minigate's config for these tests: the internal API (to revoke), channel rooms, the /up proxy. */
const testConfig = (upstreamUrl?: string, http?: string) => ({
  listen: { internal: '127.0.0.1:0', ...(http ? { http } : {}) },
  internal: { token: INTERNAL_TOKEN },
  channel: {
    rooms: [{ match: 'chat:*', presence: true }, ...(upstreamUrl ? [{ match: 'ask:*', join: 'ask' }] : [])],
    // The webhook fails: joins of ask:* rooms get CHANNEL_UNAVAILABLE.
    ...(upstreamUrl ? { webhook: { url: `${upstreamUrl}/hook`, timeout: '1s' } } : {}),
  },
  ...(upstreamUrl ? { upstreamSecret: UPSTREAM_SECRET, routes: [{ path: '/up', proxy: upstreamUrl, auth: 'none' }] } : {}),
});

interface Phone {
  shim: WxShim;
  client: MinigateClient;
  /** The user's openid (known after the first login). */
  openid(): string;
  /** A channel, closed after the test. */
  channel(options?: Parameters<MinigateClient['channel']>[0]): Channel;
}

const phones: Phone[] = [];
const channels: Channel[] = [];

/** A phone with one user: wx.login gives a code for the same sandbox user every time. */
function phone(harness: () => Harness, options: { beforeLogin?: () => Promise<void> } = {}): Phone {
  let openid: string | undefined;
  const shim = createWx({
    dev: true,
    login: async () => {
      await options.beforeLogin?.();
      const code = await harness().code(openid ? { openid } : {});
      openid = code.openid;
      return code.code;
    },
  });
  const client = createClient({ baseUrl: harness().url, wx: shim });
  const made: Phone = {
    shim,
    client,
    openid: () => openid ?? '',
    channel(channelOptions) {
      const channel = client.channel(channelOptions);
      channels.push(channel);
      return channel;
    },
  };
  phones.push(made);
  return made;
}

/** The next `type` event on a channel that matches (subscribe before it can happen). */
function next<K extends keyof ChannelEvents>(channel: Channel, type: K, match: (payload: ChannelEvents[K]) => boolean = () => true, ms = 5_000): Promise<ChannelEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching ${type} event within ${ms} ms`));
    }, ms);
    const off = channel.on(type, (payload) => {
      if (!match(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/** Everything a channel hears. */
function record(channel: Channel) {
  const heard = { messages: [] as ChannelEvents['message'][], presence: [] as ChannelEvents['presence'][], opens: [] as ChannelEvents['open'][], closes: [] as ChannelEvents['close'][], errors: [] as ChannelEvents['error'][] };
  channel.on('message', (m) => heard.messages.push(m));
  channel.on('presence', (p) => heard.presence.push(p));
  channel.on('open', (o) => heard.opens.push(o));
  channel.on('close', (c) => heard.closes.push(c));
  channel.on('error', (e) => heard.errors.push(e));
  return heard;
}

const jpeg = (size = 3000) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(size - 4)]);
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

afterEach(() => {
  for (const channel of channels.splice(0)) channel.close();
  for (const { shim } of phones.splice(0)) {
    expect(shim.errors).toEqual([]);
    shim.close();
  }
});

describe('minigate-client against minigate', () => {
  let h: Harness;
  let upstream: Upstream;
  const current = () => h;

  beforeAll(async () => {
    upstream = await startUpstream();
    h = await startHarness({ config: testConfig(upstream.url) });
  });
  afterAll(async () => {
    await h?.close();
    upstream?.server.closeAllConnections();
    await new Promise((resolve) => upstream?.server.close(resolve));
  });

  describe('login and sessions', () => {
    it('logs in, sends the session, and after a revocation logs in once more by itself', async () => {
      const { shim, client, openid } = phone(current);
      const session = await client.login();
      expect(session).toMatchObject({ token: expect.any(String), openid: expect.stringMatching(/^o/) });
      expect(session.expiresAt).toBeGreaterThan(Date.now());
      expect(session.openid).toBe(openid());
      // Kept in storage (as JSON), so the next launch needs no login.
      expect(JSON.parse(shim.storage.get('minigate.session')!)).toMatchObject({ token: session.token });

      const me = await client.request({ url: '/auth/session' });
      expect(me).toMatchObject({ statusCode: 200, data: { appid: TEST_APPID, openid: session.openid } });
      expect(shim.stats.count('/auth/login')).toBe(1);

      const revoked = await h.internal('DELETE', `/v1/apps/${TEST_APPID}/users/${session.openid}/sessions`);
      expect(revoked).toMatchObject({ status: 200, body: { revoked: 1 } });

      const again = await client.request({ url: '/auth/session' });
      expect(again).toMatchObject({ statusCode: 200, data: { openid: session.openid } });
      // One 401, one new login, one retry.
      expect(shim.stats.count('/auth/login')).toBe(2);
      expect(shim.stats.count('/auth/session')).toBe(3);
      expect(shim.stats.logins).toBe(2);
      expect(client.session!.token).not.toBe(session.token);
      expect(client.session!.openid).toBe(session.openid);
      expect(JSON.parse(shim.storage.get('minigate.session')!).token).toBe(client.session!.token);

      // A new launch (a new client on the same storage) reuses the stored session.
      const relaunched = createClient({ baseUrl: h.url, wx: shim });
      expect(relaunched.session?.token).toBe(client.session!.token);
      expect((await relaunched.request({ url: '/auth/session' })).statusCode).toBe(200);
      expect(shim.stats.count('/auth/login')).toBe(2);
    });

    it('the profile and the phone number (sandbox codes), and logout', async () => {
      const { shim, client, channel } = phone(current);
      const first = await client.login();
      const detail = await h.control<{ encryptedData: string; iv: string; rawData: string; signature: string }>('userinfo', {
        appid: TEST_APPID,
        openid: first.openid,
        userInfo: { nickName: 'Alice', city: 'Hangzhou' },
      });
      const withProfile = await client.loginWithUserInfo(detail);
      expect(withProfile.openid).toBe(first.openid);
      expect(withProfile.user).toMatchObject({ profile: { nickName: 'Alice', city: 'Hangzhou' } });
      expect(shim.stats.count('/auth/login')).toBe(2);

      const { code } = await h.control<{ code: string }>('phone', { appid: TEST_APPID, openid: first.openid, phoneNumber: '13800138000' });
      expect(await client.getPhoneNumber(code)).toMatchObject({ phoneNumber: '13800138000', purePhoneNumber: '13800138000', countryCode: '86' });

      const c = channel();
      await next(c, 'open');
      const token = client.session!.token;
      await client.logout();
      expect(client.session).toBeNull();
      expect(shim.storage.has('minigate.session')).toBe(false);
      expect(c.state).toBe('closed');
      expect((await h.get('/auth/session', token)).body.error.code).toBe('SESSION_REVOKED');
    });

    it('a session refused again after the new login is an error, not a loop', async () => {
      const { shim, client } = phone(current);
      await client.login();
      // The upstream answers every call 401 SESSION_REVOKED: one new login, one retry, then the error.
      const error = await client.request({ url: '/up/revoked' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MinigateError);
      expect(error).toMatchObject({ code: 'SESSION_REVOKED', statusCode: 401 });
      expect(shim.stats.count('/up/revoked')).toBe(2);
      expect(shim.stats.count('/auth/login')).toBe(2);
    });

    it('ten concurrent requests before any login share one /auth/login, and all succeed', async () => {
      const { shim, client } = phone(current);
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => client.request({ url: `/auth/session?n=${i}` })));
      expect(answers.map((a) => a.statusCode)).toEqual(Array(10).fill(200));
      expect(new Set(answers.map((a) => (a.data as { openid: string }).openid)).size).toBe(1);
      expect(shim.stats.count('/auth/login')).toBe(1);
      expect(shim.stats.logins).toBe(1);
      expect(shim.stats.count('/auth/session')).toBe(10);
    });

    it('ten concurrent requests on a revoked session share one new login', async () => {
      const { shim, client } = phone(current);
      const first = await client.login();
      await h.internal('DELETE', `/v1/apps/${TEST_APPID}/users/${first.openid}/sessions`);
      const answers = await Promise.all(Array.from({ length: 10 }, () => client.request({ url: '/auth/session' })));
      expect(answers.map((a) => a.statusCode)).toEqual(Array(10).fill(200));
      expect(shim.stats.count('/auth/login')).toBe(2);
    });
  });

  describe('files', () => {
    it('uploads a JPEG from a local path and downloads it back byte for byte', async () => {
      const { shim, client } = phone(current);
      const bytes = jpeg();
      const filePath = shim.files.write(bytes, 'jpg');
      const progress: number[] = [];
      const file = await client.uploadFile({ filePath, formData: { album: 'summer' }, onProgress: (p) => progress.push(p.progress) });
      expect(file).toMatchObject({
        id: expect.stringMatching(/^[a-f0-9]{32}$/),
        url: `${h.url}/files/${file.id}`,
        size: bytes.length,
        sha256: sha256(bytes),
        contentType: 'image/jpeg',
        access: 'private',
        meta: { album: 'summer' },
      });
      expect(progress.at(-1)).toBe(100);
      expect(shim.stats.calls.find((c) => c.api === 'uploadFile')).toMatchObject({ method: 'POST', path: '/files' });

      const byUrl = await client.downloadFile({ url: file.url });
      expect(byUrl.statusCode).toBe(200);
      expect(byUrl.tempFilePath).toMatch(/^wxfile:\/\/tmp_.*\.jpg$/);
      expect(shim.files.read(byUrl.tempFilePath).equals(bytes)).toBe(true);
      // By id too.
      const byId = await client.downloadFile({ url: file.id });
      expect(shim.files.read(byId.tempFilePath).equals(bytes)).toBe(true);
      // To a path of the user's (wx.env.USER_DATA_PATH).
      const kept = await client.downloadFile({ url: file.id, filePath: `${shim.env.USER_DATA_PATH}/photo.jpg` });
      expect(kept.tempFilePath).toBe('wxfile://usr/photo.jpg');
      expect(shim.files.read(kept.tempFilePath).equals(bytes)).toBe(true);

      // Another user gets minigate's error, read back from the file downloadFile saved.
      const other = phone(current);
      const refused = await other.client.downloadFile({ url: file.url }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(MinigateError);
      expect(refused).toMatchObject({ code: 'FILE_FORBIDDEN', statusCode: 403, requestId: expect.any(String) });
    });

    it("an upload minigate refuses is a MinigateError (from uploadFile's text answer)", async () => {
      const { shim, client } = phone(current);
      const filePath = shim.files.write(Buffer.from('<?php echo "hi";'), 'jpg');
      const error = await client.uploadFile({ filePath }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MinigateError);
      expect(error).toMatchObject({ code: 'FILE_TYPE_NOT_ALLOWED', statusCode: 415 });
      // A path that is not there fails in wx, before the network.
      const missing = await client.uploadFile({ filePath: 'wxfile://tmp_nothing.jpg' }).catch((e: unknown) => e);
      expect(missing).toMatchObject({ code: 'NETWORK', message: expect.stringContaining('uploadFile:fail file not found') });
    });
  });

  describe('errors and abort', () => {
    it('a route that does not exist: MinigateError NOT_FOUND with status and requestId, in both styles', async () => {
      const { client } = phone(current);
      const error = await client.request({ url: '/no/such/route' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MinigateError);
      expect(error).toBeInstanceOf(Error);
      expect(error).toMatchObject({ name: 'MinigateError', code: 'NOT_FOUND', statusCode: 404, requestId: expect.stringMatching(/./) });

      const seen: string[] = [];
      const failed = await new Promise<MinigateError>((resolve) => {
        const handle = client.request({
          url: '/no/such/route',
          success: () => seen.push('success'),
          fail: (e) => {
            seen.push('fail');
            resolve(e);
          },
          complete: () => seen.push('complete'),
        });
        // Callback style gives the abort handle, not a Promise.
        expect(typeof (handle as Partial<Task<unknown>>).then).toBe('undefined');
        expect(typeof handle.abort).toBe('function');
      });
      expect(failed).toMatchObject({ code: 'NOT_FOUND', statusCode: 404 });
      await vi.waitFor(() => expect(seen).toEqual(['fail', 'complete']));

      const ok = await new Promise<Response<{ openid: string }>>((resolve, reject) => {
        client.request<{ openid: string }>({ url: '/auth/session', success: resolve, fail: reject });
      });
      expect(ok).toMatchObject({ statusCode: 200, data: { openid: client.session!.openid } });
      expect(ok.header['content-type']).toMatch(/application\/json/);
    });

    it('runs complete even when the app\'s success throws, and reports the throw as uncaught', async () => {
      const { client } = phone(current);
      const uncaught: unknown[] = [];
      const onUncaught = (error: unknown) => uncaught.push(error);
      process.on('uncaughtException', onUncaught);
      try {
        const done = new Promise<void>((resolve) => {
          client.request({
            url: '/auth/session',
            success: () => {
              throw new Error('a bug in the page');
            },
            complete: () => resolve(),
          });
        });
        await done;
        await vi.waitFor(() => expect(uncaught.map((e) => (e as Error).message)).toEqual(['a bug in the page']));
      } finally {
        process.off('uncaughtException', onUncaught);
      }
    });

    it('abort() of a slow request: ABORTED, in Promise and callback style, and the request is cut', async () => {
      const { shim, client } = phone(current);
      await client.login();
      const before = upstream.slow.length;

      const task = client.request({ url: '/up/slow' });
      await vi.waitFor(() => expect(upstream.slow.length).toBe(before + 1));
      task.abort();
      const error = await task.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MinigateError);
      expect(error).toMatchObject({ code: 'ABORTED', statusCode: 0 });
      await vi.waitFor(() => expect(upstream.slow[before]!.closed).toBe(true));

      const seen: string[] = [];
      const failed = await new Promise<MinigateError>((resolve) => {
        const handle = client.request({ url: '/up/slow', fail: resolve, success: () => seen.push('success'), complete: () => seen.push('complete') });
        void vi.waitFor(() => expect(upstream.slow.length).toBe(before + 2)).then(() => handle.abort());
      });
      expect(failed.code).toBe('ABORTED');
      await vi.waitFor(() => expect(seen).toEqual(['complete']));
      await vi.waitFor(() => expect(shim.stats.active).toBe(0));
    });

    it('abort() right after the call, before the login finished: ABORTED and nothing sent', async () => {
      const { shim, client } = phone(current);
      const task = client.request({ url: '/auth/session' });
      task.abort();
      await expect(task).rejects.toMatchObject({ code: 'ABORTED' });
      await new Promise((r) => setTimeout(r, 100));
      expect(shim.stats.count('/auth/session')).toBe(0);
      // The client still works afterwards.
      expect((await client.request({ url: '/auth/session' })).statusCode).toBe(200);
    });

    it('abort() while the login is under way: the request is never handed to wx', async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const { shim, client } = phone(current, { beforeLogin: () => gate });
      const task = client.request({ url: '/up/echo', method: 'POST', data: { order: 7 } });
      await vi.waitFor(() => expect(shim.stats.logins).toBe(1));
      task.abort();
      release();
      await expect(task).rejects.toMatchObject({ code: 'ABORTED' });
      await vi.waitFor(() => expect(client.session).not.toBeNull());
      await new Promise((r) => setTimeout(r, 50));
      // The login went out (others may share it); the aborted POST did not.
      expect(shim.stats.requested).toBe(1);
      expect(shim.stats.calls.map((c) => c.path)).toEqual(['/auth/login']);
    });

    it('a request past its timeout: TIMEOUT', async () => {
      const { client } = phone(current);
      await client.login();
      const error = await client.request({ url: '/up/slow', timeout: 300 }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'TIMEOUT', message: 'request:fail timeout' });
    });

    it('the session goes only to minigate: a full URL elsewhere gets no Authorization', async () => {
      const { client } = phone(current);
      await client.login();
      const away = await client.request<{ headers: IncomingHttpHeaders }>({ url: `${upstream.url}/echo` });
      expect(away.statusCode).toBe(200);
      expect(away.data.headers.authorization).toBeUndefined();
      expect(away.data.headers.referer).toBeUndefined();
      // Through minigate (same origin as baseUrl, full URL) it is sent.
      await client.request({ url: `${h.url}/up/echo` });
      expect(upstream.echoed?.authorization).toBe(`Bearer ${client.session!.token}`);
    });
  });

  describe('channels', () => {
    it('two users in chat:lobby: presence, a publish acknowledged and received', async () => {
      const alice = phone(current);
      const bob = phone(current);
      await Promise.all([alice.client.login(), bob.client.login()]);
      const a = alice.channel({ rooms: ['chat:lobby'] });
      const aJoined = next(a, 'joined', (j) => j.room === 'chat:lobby');
      const aHeard = record(a);
      expect((await aJoined).presence).toContain(alice.openid());

      const b = bob.channel();
      const bobSeen = next(a, 'presence', (p) => p.room === 'chat:lobby' && p.joins.includes(bob.openid()));
      const bJoined = await b.join('chat:lobby');
      expect(bJoined.presence).toEqual(expect.arrayContaining([alice.openid(), bob.openid()]));
      await bobSeen;
      const bHeard = record(b);

      await b.publish('chat:lobby', 'speak', { text: 'hello from bob' });
      await vi.waitFor(() => expect(aHeard.messages).toHaveLength(1));
      expect(aHeard.messages[0]).toMatchObject({ room: 'chat:lobby', event: 'speak', data: { text: 'hello from bob' }, from: { openid: bob.openid() }, id: expect.any(String) });
      // The sender hears its own message too.
      await vi.waitFor(() => expect(bHeard.messages).toHaveLength(1));

      await a.publish('chat:lobby', 'speak', 'hi bob');
      await vi.waitFor(() => expect(bHeard.messages.map((m) => m.data)).toContain('hi bob'));

      // A publish the server refuses rejects with its code.
      await expect(b.publish('chat:other', 'speak', 1)).rejects.toMatchObject({ code: 'CHANNEL_NOT_JOINED' });

      const bobLeft = next(a, 'presence', (p) => p.leaves.includes(bob.openid()));
      b.close();
      expect(b.state).toBe('closed');
      await bobLeft;
      expect(aHeard.errors).toEqual([]);
    });

    it('a join the server refuses rejects (whatever the code), and the room is not joined again on reconnect', async () => {
      const { shim, client, channel } = phone(current);
      await client.login();
      const c = channel({ backoffMs: { min: 50, max: 200 } });
      const heard = record(c);
      const joined: string[] = [];
      c.on('joined', (j) => joined.push(j.room));
      await expect(c.join('nope:room')).rejects.toMatchObject({ code: 'CHANNEL_ROOM_FORBIDDEN' });
      // The webhook does not answer well: CHANNEL_UNAVAILABLE.
      await expect(c.join('ask:room')).rejects.toMatchObject({ code: 'CHANNEL_UNAVAILABLE' });
      // Not a room name at all.
      await expect(c.join('not a room!')).rejects.toMatchObject({ code: 'CHANNEL_BAD_FRAME' });
      expect(c.rooms).toEqual([]);
      expect((await c.join('chat:fine')).room).toBe('chat:fine');
      expect(c.rooms).toEqual(['chat:fine']);

      // The link drops: only chat:fine is joined again.
      const back = next(c, 'joined', () => true);
      [...shim.sockets][0]!.cut();
      expect(await back).toMatchObject({ room: 'chat:fine' });
      await new Promise((r) => setTimeout(r, 200));
      expect(joined).toEqual(['chat:fine', 'chat:fine']);
      expect(heard.opens.map((o) => o.reconnect)).toEqual([false, true]);
      expect(heard.errors).toEqual([]);
    }, 15_000);

    it('after a revocation the channel (closed 4001) logs in again and rejoins', async () => {
      const { shim, client, channel } = phone(current);
      await client.login();
      const c = channel({ rooms: ['chat:revoked'], backoffMs: { min: 50, max: 500 } });
      const heard = record(c);
      await next(c, 'joined');
      const rejoined = next(c, 'joined', () => true, 10_000);
      await h.internal('DELETE', `/v1/apps/${TEST_APPID}/users/${client.session!.openid}/sessions`);
      await rejoined;
      expect(heard.closes[0]).toMatchObject({ code: 4001, willReconnect: true });
      expect(heard.opens.map((o) => o.reconnect)).toEqual([false, true]);
      expect(shim.stats.count('/auth/login')).toBe(2);
    });
  });

  describe("WeChat's limits on the shim", () => {
    it('15 concurrent requests: at most 10 on the network at once, the rest queued, all succeed', async () => {
      const { shim, client } = phone(current);
      await client.login();
      const answers = await Promise.all(Array.from({ length: 15 }, () => client.request({ url: '/auth/session' })));
      expect(answers.every((a) => a.statusCode === 200)).toBe(true);
      expect(shim.stats.peak).toBe(10);
      expect(shim.stats.peakQueued).toBe(5);
      expect(shim.stats.active).toBe(0);
    });

    it('a queued request can be aborted before it is sent', async () => {
      const { shim, client } = phone(current);
      await client.login();
      const before = upstream.slow.length;
      const slow = Array.from({ length: 10 }, () => client.request({ url: '/up/slow' }));
      await vi.waitFor(() => expect(upstream.slow.length).toBe(before + 10));
      const queued = client.request({ url: '/auth/session' });
      await new Promise((r) => setTimeout(r, 50));
      expect(shim.stats.count('/auth/session')).toBe(0);
      queued.abort();
      await expect(queued).rejects.toMatchObject({ code: 'ABORTED' });
      for (const task of slow) task.abort();
      await Promise.allSettled(slow);
      expect(shim.stats.count('/auth/session')).toBe(0);
      expect(shim.stats.peak).toBe(10);
    });

    it('a sixth socket fails; the channel that got it waits and connects once a socket is free', async () => {
      const { shim, client, channel } = phone(current);
      await client.login();
      const five = Array.from({ length: 5 }, (_, i) => channel({ rooms: [`chat:five-${i}`] }));
      await Promise.all(five.map((c) => (c.state === 'open' ? Promise.resolve() : next(c, 'open'))));
      expect(shim.sockets.size).toBe(5);

      const sixth = channel({ rooms: ['chat:sixth'], backoffMs: { min: 100, max: 400 } });
      const closed = next(sixth, 'close');
      expect(await closed).toMatchObject({ code: 1006, willReconnect: true });
      await new Promise((r) => setTimeout(r, 500));
      expect(sixth.state).not.toBe('open');
      expect(shim.sockets.size).toBe(5);
      expect(shim.stats.peakSockets).toBe(5);

      const joined = next(sixth, 'joined', (j) => j.room === 'chat:sixth', 5_000);
      five[0]!.close();
      await joined;
      expect(sixth.state).toBe('open');
      expect(shim.stats.peakSockets).toBe(5);
    });
  });

  describe('the shim keeps WeChat rules', () => {
    it('https/wss only without dev: http is refused with a fail errMsg, before the network', async () => {
      const shim = createWx({ login: async () => (await h.code()).code });
      const results: string[] = [];
      try {
        await new Promise<void>((resolve) =>
          shim.request({ url: `${h.url}/auth/session`, fail: (e) => results.push(e.errMsg), complete: () => resolve() }),
        );
        await new Promise<void>((resolve) =>
          shim.downloadFile({ url: `${h.url}/files/x`, fail: (e) => results.push(e.errMsg), complete: () => resolve() }),
        );
        const socket = shim.connectSocket({ url: `${h.url.replace('http', 'ws')}/channel`, fail: (e) => results.push(e.errMsg) });
        await new Promise<void>((resolve) => socket.onError((e) => (results.push(`onError ${e.errMsg}`), resolve())));
        expect(results).toEqual([
          'request:fail url not in domain list',
          'downloadFile:fail url not in domain list',
          'connectSocket:fail url not in domain list',
          'onError connectSocket:fail url not in domain list',
        ]);
        expect(shim.stats.calls).toEqual([]);
        expect(shim.sockets.size).toBe(0);

        // The SDK on it: a NETWORK error with WeChat's message.
        const client = createClient({ baseUrl: h.url, wx: shim });
        await expect(client.request({ url: '/auth/session' })).rejects.toMatchObject({ code: 'NETWORK', message: 'request:fail url not in domain list' });
      } finally {
        shim.close();
      }
    });

    it('no Referer: setting one fails the call; none is sent', async () => {
      const shim = createWx({ dev: true, login: async () => (await h.code()).code });
      try {
        const errMsg = await new Promise<string>((resolve) =>
          shim.request({ url: `${upstream.url}/echo`, header: { Referer: 'https://servicewechat.com/x/0/page-frame.html' }, fail: (e) => resolve(e.errMsg) }),
        );
        expect(errMsg).toMatch(/^request:fail .*Referer/);
        const res = await new Promise<{ statusCode: number; data: any }>((resolve, reject) =>
          shim.request({ url: `${upstream.url}/echo`, success: resolve, fail: reject }),
        );
        expect(res.statusCode).toBe(200);
        expect(res.data.headers.referer).toBeUndefined();
        expect(res.data.headers['content-type']).toBe('application/json');
      } finally {
        shim.close();
      }
    });

    it('success for any status; uploadFile data is text; downloadFile saves any body; a refused upgrade hides its status', async () => {
      const shim = createWx({ dev: true, login: async () => (await h.code()).code });
      try {
        const missing = await new Promise<any>((resolve, reject) => shim.request({ url: `${h.url}/nothing`, success: resolve, fail: reject }));
        expect(missing).toMatchObject({ statusCode: 404, data: { error: { code: 'NOT_FOUND' } }, errMsg: 'request:ok' });

        const upload = await new Promise<any>((resolve, reject) =>
          shim.uploadFile({ url: `${h.url}/files`, filePath: shim.files.write(jpeg(), 'jpg'), name: 'file', success: resolve, fail: reject }),
        );
        expect(upload.statusCode).toBe(401);
        expect(typeof upload.data).toBe('string');
        expect(JSON.parse(upload.data).error.code).toBe('SESSION_MISSING');

        const download = await new Promise<any>((resolve, reject) => shim.downloadFile({ url: `${h.url}/files/${'0'.repeat(32)}`, success: resolve, fail: reject }));
        expect(download.statusCode).toBe(404);
        expect(JSON.parse(shim.getFileSystemManager!().readFileSync(download.tempFilePath, 'utf8') as string).error.code).toBe('FILE_NOT_FOUND');
        expect(shim.getStorageSync('nothing here')).toBe('');

        const events: string[] = [];
        const socket = shim.connectSocket({ url: `${h.url.replace('http', 'ws')}/channel` });
        socket.onOpen(() => events.push('open'));
        socket.onError((e) => events.push(`error ${e.errMsg}`));
        const closed = new Promise<{ code: number }>((resolve) => socket.onClose(resolve));
        expect((await closed).code).toBe(1006);
        expect(events).toHaveLength(1);
        expect(events[0]).toMatch(/^error /);
        expect(events[0]).not.toMatch(/401/);
      } finally {
        shim.close();
      }
    });
  });
});

describe('a reconnect after minigate restarts on the same port', () => {
  it('both channels come back by themselves, rejoin their rooms and hear a message published after the restart; the back-off does not spin', async () => {
    const first = await startHarness({ config: testConfig() });
    let h = first;
    const current = () => h;
    let second: Harness | undefined;
    try {
      const alice = phone(current);
      const bob = phone(current);
      await Promise.all([alice.client.login(), bob.client.login()]);
      // The default back-off (0.5 s to 30 s, jittered).
      const a = alice.channel({ rooms: ['chat:lobby'] });
      const b = bob.channel({ rooms: ['chat:lobby'] });
      const aHeard = record(a);
      const bHeard = record(b);
      await Promise.all([next(a, 'joined'), next(b, 'joined')]);

      const port = new URL(first.url).port;
      const aClosed = next(a, 'close');
      const bClosed = next(b, 'close');
      await first.stop();
      expect(await aClosed).toMatchObject({ willReconnect: true });
      expect(await bClosed).toMatchObject({ willReconnect: true });

      // Down for about 2 s: a handful of attempts each (0.25–0.5 s, then 0.5–1 s, 1–2 s…), not hundreds.
      const attemptsBefore = alice.shim.stats.socketAttempts;
      const callsBefore = alice.shim.stats.calls.length;
      await new Promise((r) => setTimeout(r, 2_000));
      const attempts = alice.shim.stats.socketAttempts - attemptsBefore;
      expect(attempts).toBeGreaterThanOrEqual(1);
      expect(attempts).toBeLessThanOrEqual(5);
      // Each failed connect asks GET /auth/session once (a refused upgrade hides its status).
      expect(alice.shim.stats.calls.length - callsBefore).toBeLessThanOrEqual(attempts);
      expect(a.state).not.toBe('open');
      // Said while down: kept, and sent after the rooms are joined again.
      const queued = b.publish('chat:lobby', 'speak', { text: 'said while down' });

      // The next attempt may be up to 4 s away.
      const aBack = next(a, 'joined', (j) => j.room === 'chat:lobby', 12_000);
      const bBack = next(b, 'joined', (j) => j.room === 'chat:lobby', 12_000);
      second = await startHarness({ sandbox: first.sandbox, clock: first.clock, dataDir: first.config.dataDir, config: testConfig(undefined, `127.0.0.1:${port}`) });
      h = second;
      expect(second.url).toBe(first.url);
      await Promise.all([aBack, bBack]);
      expect(aHeard.opens.map((o) => o.reconnect)).toEqual([false, true]);
      expect(bHeard.opens.map((o) => o.reconnect)).toEqual([false, true]);
      expect(a.rooms).toEqual(['chat:lobby']);

      await queued;
      await a.publish('chat:lobby', 'speak', { text: 'after the restart' });
      await vi.waitFor(() => {
        // Sent after b's rooms were joined again (else CHANNEL_NOT_JOINED); a may not be back yet then.
        expect(bHeard.messages.map((m) => m.data)).toContainEqual({ text: 'said while down' });
        expect(aHeard.messages.map((m) => m.data)).toContainEqual({ text: 'after the restart' });
        expect(bHeard.messages.map((m) => m.data)).toContainEqual({ text: 'after the restart' });
      });
      // The sessions survived the restart: no new login.
      expect(alice.shim.stats.count('/auth/login')).toBe(1);
      expect(bob.shim.stats.count('/auth/login')).toBe(1);
    } finally {
      for (const channel of channels.splice(0)) channel.close();
      await second?.close();
      await first.close();
    }
  }, 30_000);
});

describe('the bundles a mini program loads', () => {
  const bundles = ['miniprogram_dist/index.js', 'dist/minigate-client.cjs'];

  it.each(bundles)('%s is built from the current sources', (bundle) => {
    const built = statSync(path.join(CLIENT_DIR, bundle)).mtimeMs;
    for (const file of ['client.ts', 'channel.ts', 'errors.ts', 'wx.ts', 'index.ts']) {
      const source = statSync(path.join(CLIENT_DIR, 'src', file)).mtimeMs;
      expect(source, `src/${file} is newer than ${bundle}: run node packages/client/build.mjs`).toBeLessThanOrEqual(built);
    }
    // minigate-protocol is bundled in: its sources are the SDK's too.
    for (const file of ['index.ts', 'errors.ts', 'channel.ts', 'auth.ts']) {
      const source = statSync(path.join(CLIENT_DIR, '..', 'protocol', 'src', file)).mtimeMs;
      expect(source, `protocol/src/${file} is newer than ${bundle}: run node packages/client/build.mjs`).toBeLessThanOrEqual(built);
    }
  });

  it('the ES module bundle imports nothing (minigate-protocol is bundled in)', () => {
    const source = readFileSync(path.join(CLIENT_DIR, 'dist/minigate-client.mjs'), 'utf8');
    expect(() => acorn.parse(source, { ecmaVersion: 2017, sourceType: 'module' })).not.toThrow();
    expect(source).not.toMatch(/^\s*import\b|\bimport\s*\(|minigate-protocol/m);
    expect(source).toContain('4001'); // the session-ended close code, from the protocol
  });

  it.each(bundles)('%s parses as ES2017 and requires nothing', (bundle) => {
    const source = readFileSync(path.join(CLIENT_DIR, bundle), 'utf8');
    expect(() => acorn.parse(source, { ecmaVersion: 2017, sourceType: 'script' })).not.toThrow();
    expect(source).not.toMatch(/\brequire\s*\(/);
    expect(source).not.toMatch(/\bprocess\./);
    // Syntax is not all: built-ins newer than ES2017, or Web/Node APIs a mini program lacks.
    expect(source).not.toMatch(/\b(globalThis|fromEntries|replaceAll|allSettled|structuredClone|queueMicrotask|AbortController|TextDecoder|TextEncoder|URLSearchParams|Buffer)\b|new URL\(|\.at\(|\.flat(Map)?\(|\.matchAll\(/);
  });

  it.each(bundles)('%s loads in a context with only `wx`, and logs in and requests through it', async (bundle) => {
    const h = await startHarness({ config: testConfig() });
    const shim = createWx({ dev: true, login: async () => (await h.code()).code });
    try {
      const source = readFileSync(path.join(CLIENT_DIR, bundle), 'utf8');
      const context = vm.createContext({ wx: shim });
      expect(vm.runInContext('typeof require + typeof process + typeof module', context)).toBe('undefinedundefinedundefined');
      const module = { exports: {} as Record<string, unknown> };
      const load = vm.runInContext(`(function (module, exports) {${source}\n})`, context, { filename: bundle }) as (m: unknown, e: unknown) => void;
      load(module, module.exports);
      expect(Object.keys(module.exports).sort()).toEqual(['MinigateError', 'createChannel', 'createClient']);
      const sdk = module.exports as { createClient: typeof createClient; MinigateError: typeof MinigateError };
      // No options.wx: the global one.
      const client = sdk.createClient({ baseUrl: h.url });
      const res = await client.request<{ openid: string }>({ url: '/auth/session' });
      expect(res.statusCode).toBe(200);
      expect(shim.stats.count('/auth/login')).toBe(1);
      const error = await client.request({ url: '/missing' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(sdk.MinigateError);
      expect(error).toMatchObject({ code: 'NOT_FOUND', statusCode: 404 });

      // Without a wx anywhere, createClient says so.
      const bare = vm.createContext({});
      const alone = { exports: {} as Record<string, unknown> };
      (vm.runInContext(`(function (module, exports) {${source}\n})`, bare) as (m: unknown, e: unknown) => void)(alone, alone.exports);
      expect(() => (alone.exports as { createClient: typeof createClient }).createClient({ baseUrl: h.url })).toThrow(/no wx/);
    } finally {
      shim.close();
      await h.close();
    }
  });
});
