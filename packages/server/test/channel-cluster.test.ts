/**
 * Channels across processes, run as a deployment runs them: two `minigate start` instances sharing
 * PostgreSQL and Redis (Redis reached through a proxy the test can cut), and one `workers: 2`
 * instance without Redis whose workers meet in the primary. Rooms, presence, server publish and
 * revocation cross instances; with Redis cut each instance keeps serving its own clients and
 * says so, and cross-instance delivery comes back with Redis; SIGTERM closes sockets with 1001.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANNEL_CLOSE } from 'minigate-protocol';
import { startCli, type RunningCli } from './helpers/cli.js';
import { createTestDatabase, type TestDatabase } from './helpers/databases.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import { connect, type TestSocket } from './helpers/ws-client.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const APPID = 'wx7e5700000000c501';
const SECRET = 'channel-cluster-app-secret-0123456789';
const INTERNAL = 'channel-cluster-internal-token-0123456789';

let dir: string;
let database: TestDatabase;
let redisProxy: TcpProxy;
let sandbox: RunningCli;
let sandboxUrl: string;
interface Instance {
  cli: RunningCli;
  url: string;
  internal: string;
}
const instances: Instance[] = [];
const sockets: TestSocket[] = [];

function configFile(name: string, extra: string[]): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `dataDir: ./${name}-data`,
      'listen:',
      '  http: 127.0.0.1:0',
      '  internal: 127.0.0.1:0',
      'wechat:',
      `  apiBase: ${sandboxUrl}`,
      'apps:',
      `  - appid: ${APPID}`,
      `    secret: ${SECRET}`,
      'internal:',
      `  token: ${INTERNAL}`,
      'secretKey: ' + 'cd'.repeat(32),
      'channel:',
      '  rooms:',
      "    - match: 'chat:*'",
      '      presence: true',
      ...extra,
      '',
    ].join('\n'),
  );
  return file;
}

async function startInstance(file: string, env: NodeJS.ProcessEnv = {}): Promise<Instance> {
  const cli = startCli(['start', '-c', file], { env });
  const url = /listening on (http:\S+)/.exec(await cli.waitForLine(/^minigate listening on/))![1]!;
  const internal = /internal API on (http:\S+)/.exec(await cli.waitForLine(/^minigate internal API on/))![1]!;
  return { cli, url, internal };
}

async function user(at: Instance): Promise<{ token: string; openid: string }> {
  const code = (await (await fetch(`${sandboxUrl}/__sandbox/login`, { method: 'POST', body: JSON.stringify({ appid: APPID }) })).json()) as any;
  const response = await fetch(`${at.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ appid: APPID, code: code.code }) });
  const body = (await response.json()) as any;
  expect(response.status).toBe(200);
  return { token: body.token, openid: code.openid };
}

async function open(at: Instance, token: string): Promise<TestSocket> {
  const socket = await connect(`${at.url.replace(/^http/, 'ws')}/channel`, { token });
  sockets.push(socket);
  return socket;
}

async function join(socket: TestSocket, room: string): Promise<any> {
  const frame = socket.next((f) => f.type === 'joined' && f.room === room);
  socket.send({ type: 'join', room });
  return frame;
}

function internal(at: Instance, method: string, pathname: string, body?: unknown) {
  return fetch(`${at.internal}${pathname}`, {
    method,
    headers: { authorization: `Bearer ${INTERNAL}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
}

const message = (event: string) => (f: any) => f.type === 'message' && f.event === event;

/** A Wafer2 user's tunnel URL from `at` (login and GET /weapp/tunnel, as wafer2-client-sdk does). */
async function tunnelUrl(at: Instance): Promise<string> {
  const code = (await (await fetch(`${sandboxUrl}/__sandbox/login`, { method: 'POST', body: JSON.stringify({ appid: APPID }) })).json()) as any;
  const login = (await (await fetch(`${at.url}/weapp/login`, { headers: { 'x-wx-code': code.code, 'x-wx-appid': APPID } })).json()) as any;
  const tunnel = (await (await fetch(`${at.url}/weapp/tunnel`, { headers: { 'x-wx-skey': login.data.skey } })).json()) as any;
  return tunnel.data.connectUrl;
}

/** The same tunnel URL, pointed at another instance. */
function onInstance(url: string, at: Instance): string {
  const moved = new URL(url);
  moved.host = new URL(at.url).host;
  return moved.toString();
}

/** Opens a tunnel URL; the socket, or the refusal's status and code. */
async function tryTunnel(url: string): Promise<TestSocket | { status: number; code: string }> {
  return connect(url).then(
    (socket) => {
      sockets.push(socket);
      return socket;
    },
    (e) => ({ status: e.status, code: e.body ? JSON.parse(e.body).error.code : String(e.message) }),
  );
}

const USED = { status: 401, code: 'CHANNEL_TICKET_USED' };

/** A tunnel URL opens one socket across the two instances: in turn, and raced on both at once. */
async function expectSingleUseAcross(a: Instance, b: Instance): Promise<void> {
  const url = await tunnelUrl(a);
  const first = await tryTunnel(url);
  expect(first).toHaveProperty('ws');
  expect(await tryTunnel(onInstance(url, b))).toEqual(USED);
  expect(await tryTunnel(url)).toEqual(USED);
  for (let round = 0; round < 5; round++) {
    const raced = await tunnelUrl(round % 2 ? a : b);
    const tries = await Promise.all([tryTunnel(onInstance(raced, a)), tryTunnel(onInstance(raced, b)), tryTunnel(onInstance(raced, a)), tryTunnel(onInstance(raced, b))]);
    expect(tries.filter((t) => 'ws' in t)).toHaveLength(1);
    expect(tries.filter((t) => !('ws' in t))).toEqual([USED, USED, USED]);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-channel-cluster-'));
  database = await createTestDatabase('postgres');
  const redis = new URL(REDIS_URL);
  redisProxy = await startTcpProxy(redis.hostname, Number(redis.port || 6379));
  sandbox = startCli(['sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`]);
  sandboxUrl = /(http:\/\/\S+)/.exec(await sandbox.waitForLine(/^sandbox http/))![1]!;
  const file = configFile('shared', [`redis: redis://127.0.0.1:${redisProxy.port}`]);
  for (let i = 0; i < 2; i++) instances.push(await startInstance(file, { MINIGATE_STORE: database.url }));
}, 60_000);

afterAll(async () => {
  for (const socket of sockets) socket.ws.terminate();
  await Promise.all(instances.map((i) => i.cli.stop()));
  await sandbox?.stop();
  await redisProxy?.close();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('two instances sharing Redis', () => {
  it('share rooms, presence and server publish', { timeout: 20_000 }, async () => {
    const [a, b] = instances as [Instance, Instance];
    const alice = await user(a);
    const bob = await user(b);
    const atA = await open(a, alice.token);
    const atB = await open(b, bob.token);

    await join(atA, 'chat:lobby');
    const bobArrives = atA.next((f) => f.type === 'presence' && f.joins.includes(bob.openid));
    const joinedB = await join(atB, 'chat:lobby');
    expect(joinedB.presence.sort()).toEqual([alice.openid, bob.openid].sort());
    await bobArrives;

    const received = atB.next(message('hello'));
    atA.send({ type: 'publish', room: 'chat:lobby', event: 'hello', data: { n: 1 }, id: 'p1' });
    expect(await received).toMatchObject({ room: 'chat:lobby', data: { n: 1 }, from: { openid: alice.openid } });

    // The room as a business service sees it, from either instance.
    const room = await internal(b, 'GET', '/v1/channel/rooms/chat:lobby');
    expect(room.status).toBe(200);
    expect(room.body.members.sort()).toEqual([alice.openid, bob.openid].sort());

    // Server publish on B to Alice's private room reaches her socket on A.
    const pushed = atA.next(message('order.paid'));
    const published = await internal(b, 'POST', '/v1/channel/publish', { room: `user:${alice.openid}`, event: 'order.paid', data: { order: 'A1' } });
    expect(published.status).toBe(200);
    expect(await pushed).toMatchObject({ room: `user:${alice.openid}`, data: { order: 'A1' } });

    // Bob goes: Alice on the other instance sees him leave.
    const bobLeaves = atA.next((f) => f.type === 'presence' && f.leaves.includes(bob.openid));
    atB.close();
    await bobLeaves;
  });

  it('a session revoked on one instance closes its socket on the other within two seconds', { timeout: 15_000 }, async () => {
    const [a, b] = instances as [Instance, Instance];
    const carol = await user(a);
    const socket = await open(b, carol.token);
    await join(socket, 'chat:lobby');
    const started = Date.now();
    const revoked = await internal(a, 'DELETE', `/v1/apps/${APPID}/users/${carol.openid}/sessions`);
    expect(revoked.body.revoked).toBe(1);
    const closed = await socket.closed;
    expect(closed.code).toBe(CHANNEL_CLOSE.SESSION_ENDED);
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it('a Wafer tunnel URL used on one instance is refused on the other; raced on both, it opens one socket', { timeout: 20_000 }, async () => {
    const [a, b] = instances as [Instance, Instance];
    await expectSingleUseAcross(a, b);
  });

  it('with Redis cut, each instance serves its own clients; cross-instance delivery returns with Redis', { timeout: 40_000 }, async () => {
    const [a, b] = instances as [Instance, Instance];
    const dave = await user(a);
    const erin = await user(a);
    const fay = await user(b);
    const d = await open(a, dave.token);
    const e = await open(a, erin.token);
    const f = await open(b, fay.token);
    for (const s of [d, e, f]) await join(s, 'chat:cut');

    await redisProxy.cut('refuse');
    try {
      await a.cli.waitForStderr('redis', 10_000);
      // Local delivery keeps working while Redis is away (joins included: they need no Redis to succeed here).
      for (let i = 0; i < 3; i++) {
        const local = e.next(message(`during-${i}`));
        d.send({ type: 'publish', room: 'chat:cut', event: `during-${i}`, data: i });
        await local;
      }
      // "bus: redis is down" when the client saw the cut first, "bus: publish failed" when a publish
      // was already on its way: both say the same to an operator.
      await a.cli.waitForStderr("messages reach this instance's clients only", 5_000);
      // What was published in the gap did not reach the other instance (documented loss).
      expect(f.frames.some(message('during-0'))).toBe(false);
      // Tunnel URLs stay single use: the store decides while Redis is away.
      await expectSingleUseAcross(a, b);
      await a.cli.waitForStderr('the store records used tunnel tickets', 1_000);
    } finally {
      await redisProxy.restore();
    }

    // Back: publish until Fay on B hears one (the subscriber reconnects with back-off).
    const deadline = Date.now() + 20_000;
    let heard = false;
    for (let i = 0; !heard && Date.now() < deadline; i++) {
      d.send({ type: 'publish', room: 'chat:cut', event: 'after', data: i });
      heard = await f.next(message('after'), 500).then(
        () => true,
        () => false,
      );
    }
    expect(heard).toBe(true);
    await a.cli.waitForStderr('bus: redis is back', 5_000);
    // And the other way round.
    const back = d.next(message('from-b'));
    f.send({ type: 'publish', room: 'chat:cut', event: 'from-b', data: null });
    await back;
    expect(a.cli.stderr()).not.toMatch(/uncaught|unhandled/i);
  });

  it('SIGTERM closes sockets with 1001 (going away)', { timeout: 30_000 }, async () => {
    const b = instances[1]!;
    const gina = await user(b);
    const socket = await open(b, gina.token);
    await join(socket, 'chat:lobby');
    const code = await b.cli.stop('SIGTERM');
    expect(code).toBe(0);
    expect((await socket.closed).code).toBe(CHANNEL_CLOSE.GOING_AWAY);
  });
});

describe('two instances sharing PostgreSQL, no Redis', () => {
  it('a Wafer tunnel URL used on one instance is refused on the other; raced on both, it opens one socket', { timeout: 40_000 }, async () => {
    const file = configFile('no-redis', []);
    const pair = [await startInstance(file, { MINIGATE_STORE: database.url }), await startInstance(file, { MINIGATE_STORE: database.url })];
    try {
      await expectSingleUseAcross(pair[0]!, pair[1]!);
    } finally {
      await Promise.all(pair.map((i) => i.cli.stop()));
    }
  });
});

describe('workers on one machine without Redis', () => {
  it('clients on different workers share a room', { timeout: 40_000 }, async () => {
    const instance = await startInstance(configFile('workers', ['workers: 2']));
    try {
      const users = await Promise.all([0, 1, 2, 3].map(() => user(instance)));
      // New connections are handed to the workers in turn, so four sockets land on both.
      const clients: TestSocket[] = [];
      for (const u of users) clients.push(await open(instance, u.token));
      for (const c of clients) await join(c, 'chat:workers');
      // Everyone sees all four, whichever worker they are on.
      const last = clients[0]!;
      await expect
        .poll(async () => (await internal(instance, 'GET', '/v1/channel/rooms/chat:workers')).body.members.length, { timeout: 5_000 })
        .toBe(4);
      const heard = clients.map((c) => c.next(message('everyone')));
      last.send({ type: 'publish', room: 'chat:workers', event: 'everyone', data: 1 });
      const frames = await Promise.all(heard);
      expect(new Set(frames.map((f) => f.id)).size).toBe(1);
      // Workers share the store, so a tunnel URL opens one socket whichever worker takes it.
      await expectSingleUseAcross(instance, instance);
      const closes = clients.map((c) => c.closed);
      expect(await instance.cli.stop('SIGTERM')).toBe(0);
      for (const closed of await Promise.all(closes)) expect(closed.code).toBe(CHANNEL_CLOSE.GOING_AWAY);
    } finally {
      if (instance.cli.child.exitCode === null) await instance.cli.stop('SIGKILL');
    }
  });
});
