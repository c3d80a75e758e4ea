/**
 * The relay across two instances (docs/relay.md#several-instances): two `minigate start`
 * processes sharing PostgreSQL and Redis, each with its own HTTPS port; the tunnel client dials
 * instance A, and the phone's requests and WebSockets sent to B reach the laptop (B finds A in
 * Redis and hands them over). A second client at B is refused, `--replace` at B cuts A's link,
 * and without a client both instances answer 502 TUNNEL_OFFLINE.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { runCli, startCli, type RunningCli } from './helpers/cli.js';
import { createTestDatabase, type TestDatabase } from './helpers/databases.js';
import { freePort } from './helpers/pebble.js';
import { makeCa, makeLeaf } from './helpers/pki.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const APPID = 'wx5e1a700000000017';
// A name of this run's own: the owner records live in the Redis every test shares.
const NAME = `alice-${randomBytes(4).toString('hex')}`;
const LAPTOP_SCRIPT = fileURLToPath(new URL('./helpers/relay-laptop.mjs', import.meta.url));

let dir: string;
let database: TestDatabase;
let caFile: string;
let laptop: RunningCli;
let laptopUrl: string;
let phone: Agent;
let token: string;
const configs: string[] = [];
const ports: number[] = [];
const instances: RunningCli[] = [];
const clients: RunningCli[] = [];

function writeConfig(port: number, index: number, leaf: { fullchain: string; key: string }): string {
  const file = path.join(dir, `minigate-${index}.yaml`);
  writeFileSync(
    file,
    [
      `dataDir: ./data-${index}`,
      'listen:',
      `  https: 127.0.0.1:${port}`,
      'tls:',
      '  checkDomains: false',
      '  certificates:',
      `    - cert: ${leaf.fullchain}`,
      `      key: ${leaf.key}`,
      'apps:',
      `  - appid: ${APPID}`,
      '    secret: relay-cluster-app-secret-0123456789',
      `redis: ${REDIS_URL}`,
      // The same secret key on every instance: the hand-off key derives from it.
      `secretKey: ${'ab'.repeat(32)}`,
      'relay:',
      '  pingInterval: 2s',
      '  handoffAddress: 127.0.0.1',
      'routes:',
      '  - path: /dev',
      `    tunnel: ${NAME}`,
      '',
    ].join('\n'),
  );
  return file;
}

function tunnel(instance: number, extra: string[] = []): RunningCli {
  const client = startCli(['tunnel', '--server', `https://127.0.0.1:${ports[instance]}`, '--name', NAME, '--to', laptopUrl, '--ca', caFile, ...extra], {
    env: { MINIGATE_TUNNEL_TOKEN: token },
  });
  clients.push(client);
  return client;
}

async function waitOutput(client: RunningCli, pattern: RegExp, from = 0, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = client.stdout().slice(from).split('\n').find((l) => pattern.test(l));
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no line matching ${pattern}\nstdout: ${client.stdout()}\nstderr: ${client.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function call(instance: number, pathname: string, body?: string) {
  const answer = await request(`https://127.0.0.1:${ports[instance]}${pathname}`, { dispatcher: phone, method: body === undefined ? 'GET' : 'POST', body });
  return { status: answer.statusCode, body: (await answer.body.json()) as any };
}

async function chat(instance: number, text: string): Promise<{ hello: unknown; reply: string }> {
  const ws = new WebSocket(`wss://127.0.0.1:${ports[instance]}/dev/chat`, { ca: readFileSync(caFile) });
  const first = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
  await new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
  const hello = JSON.parse(await first) as unknown;
  const reply = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
  ws.send(text);
  const answer = await reply;
  ws.close();
  return { hello, reply: answer };
}

/** Asks until the answer is 502 (a request racing a link's end may still be answered). */
async function untilOffline(instance: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await call(instance, '/dev/gone');
    if (answer.status === 502 || Date.now() > deadline) return answer;
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-relay-cluster-'));
  database = await createTestDatabase('postgres');
  const ca = makeCa('Relay Cluster Test');
  const leaf = makeLeaf(ca, ['localhost', '127.0.0.1']);
  caFile = path.join(dir, 'ca.pem');
  writeFileSync(caFile, readFileSync(ca.rootPem));
  for (let i = 0; i < 2; i++) {
    ports.push(await freePort());
    configs.push(writeConfig(ports[i]!, i, leaf));
  }
  const env = { MINIGATE_STORE: database.url };
  const added = await runCli(['relay', 'add', NAME, '-c', configs[0]!], { env });
  expect(added.code, added.stderr).toBe(0);
  token = added.stdout.trim().split('\n').at(-1)!;
  laptop = startCli([], { script: LAPTOP_SCRIPT });
  const facts = JSON.parse(await laptop.waitForLine(/^\{"port"/)) as { port: number };
  laptopUrl = `http://127.0.0.1:${facts.port}`;
  for (const file of configs) instances.push(startCli(['start', '-c', file], { env }));
  await Promise.all(instances.map((instance) => instance.waitForLine(/^minigate listening on https/)));
  phone = new Agent({ connect: { ca: readFileSync(caFile) } });
}, 30_000);

afterAll(async () => {
  await Promise.all([...clients, ...instances, laptop].filter(Boolean).map((c) => c.stop('SIGKILL')));
  await phone?.close();
  await database?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('relay: two instances sharing the database and Redis', () => {
  let alice: RunningCli;

  it('the client holds the name on A; requests and a WebSocket sent to B reach the laptop', { timeout: 8000 }, async () => {
    alice = tunnel(0);
    await waitOutput(alice, new RegExp(`link up: ${NAME}`));
    // The owner's record reaches Redis just after the link is up.
    let answer = await call(1, '/dev/via-b', 'from b');
    for (let i = 0; answer.status !== 200 && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await call(1, '/dev/via-b', 'from b');
    }
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ method: 'POST', url: '/dev/via-b', bytes: 'from b'.length });
    await waitOutput(alice, /POST \/dev\/via-b 200/);
    expect((await call(0, '/dev/via-a')).status).toBe(200);
    const talk = await chat(1, 'hi from b');
    expect(talk.hello).toMatchObject({ hello: '/dev/chat' });
    expect(talk.reply).toBe('echo:hi from b');
  });

  it('the hand-off listener refuses what comes without the deployment\'s key', async () => {
    await waitOutput(alice, /GET \/dev\/via-a 200/);
    const mark = alice.stdout().length;
    const line = instances[0]!.stderr().split('\n').find((l) => l.includes('hand-off listener'));
    const address = /127\.0\.0\.1:(\d+)/.exec(line ?? '')?.[0];
    expect(address, instances[0]!.stderr()).toBeDefined();
    for (const headers of [{}, { 'x-minigate-relay-handoff': 'f'.repeat(64), 'x-minigate-relay-name': NAME }] as Record<string, string>[]) {
      const answer = await fetch(`http://${address}/dev/forged`, { headers: { ...headers, 'x-minigate-openid': 'forged' } });
      expect(answer.status).toBe(403);
    }
    // A WebSocket upgrade with a forged key: the connection is closed, no 101.
    const [host, port] = address!.split(':');
    const answer = await new Promise<string>((resolve) => {
      let got = '';
      const socket = tcpConnect({ host, port: Number(port) }, () =>
        socket.write(`GET /dev/chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nx-minigate-relay-handoff: ${'0'.repeat(64)}\r\nx-minigate-relay-name: ${NAME}\r\n\r\n`),
      );
      socket.on('data', (d) => (got += d));
      socket.on('close', () => resolve(got));
      socket.on('error', () => undefined);
    });
    expect(answer).not.toContain('101');
    await waitOutput(alice, /GET \/dev\/via-a 200/);
    await new Promise((r) => setTimeout(r, 200));
    expect(alice.stdout().slice(mark)).not.toMatch(/\/dev\/forged|\/dev\/chat/);
  });

  it('a second client at B is refused; --replace at B cuts the link on A', async () => {
    const second = tunnel(1);
    await waitOutput(second, /RELAY_NAME_TAKEN/);
    await second.stop('SIGKILL');
    expect(second.stdout()).not.toMatch(/link up/);
    const mark = alice.stdout().length;
    const replacing = tunnel(1, ['--replace']);
    await waitOutput(replacing, new RegExp(`link up: ${NAME}`));
    // Told on the bus: A closes its link at once (not at the record's expiry).
    await waitOutput(alice, /link down/, mark, 1_500);
    await alice.stop('SIGKILL');
    alice = replacing;
    expect((await call(0, '/dev/now-via-a', 'x')).status).toBe(200);
    await waitOutput(alice, /POST \/dev\/now-via-a 200/);
  });

  it('killing the client: both instances answer 502 TUNNEL_OFFLINE', async () => {
    await alice.stop('SIGKILL');
    for (const instance of [1, 0]) {
      const answer = await untilOffline(instance, 5_000);
      expect(answer.status).toBe(502);
      expect(answer.body.error).toMatchObject({ code: 'TUNNEL_OFFLINE' });
      expect(answer.body.error.message).toContain(`"${NAME}"`);
    }
  });

  it('an instance that dies holding a link: the other answers 502 TUNNEL_OFFLINE at once (its record is not trusted past a refused hand-off)', async () => {
    alice = tunnel(0);
    await waitOutput(alice, new RegExp(`link up: ${NAME}`));
    let answer = await call(1, '/dev/before-crash');
    for (let i = 0; answer.status !== 200 && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await call(1, '/dev/before-crash');
    }
    expect(answer.status).toBe(200);
    await instances[0]!.stop('SIGKILL');
    const after = await call(1, '/dev/after-crash');
    expect(after.status).toBe(502);
    expect(after.body.error).toMatchObject({ code: 'TUNNEL_OFFLINE' });
  });

  it('after the crash the client gets in at B at once; shutting B down, WebSockets on it and handed to it get a 1001 close frame', async () => {
    // The dead A's record lingers (15 s), but nothing listens where it points: it holds nothing.
    alice = tunnel(1);
    await waitOutput(alice, new RegExp(`link up: ${NAME}`), 0, 5_000);
    instances[0] = startCli(['start', '-c', configs[0]!], { env: { MINIGATE_STORE: database.url } });
    await instances[0].waitForLine(/^minigate listening on https/);
    const open = async (instance: number) => {
      const ws = new WebSocket(`wss://127.0.0.1:${ports[instance]}/dev/chat`, { ca: readFileSync(caFile) });
      const first = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      ws.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
      await first;
      return { closed };
    };
    // The owner's record reaches Redis just after the link is up.
    let handed: { closed: Promise<number> } | undefined;
    for (let i = 0; !handed && i < 20; i++) handed = await open(0).catch(() => new Promise((r) => setTimeout(r, 100)).then(() => undefined));
    expect(handed).toBeDefined();
    const local = await open(1);
    expect(await instances[1]!.stop('SIGTERM')).toBe(0);
    expect(await local.closed).toBe(1001);
    expect(await handed!.closed).toBe(1001);
  });
});
