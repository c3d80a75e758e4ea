/**
 * The relay (the dev tunnel), run as people run it: `minigate start` with a test CA's certificate,
 * `minigate relay add` for the names, `minigate tunnel` on the "laptop" side pointing at local
 * services (an echo that returns the identity headers, a 20 MB download, a multipart upload, a
 * WebSocket echo), and a "phone" that reaches them over HTTPS and WSS through minigate.
 *
 * With network namespaces (helpers/netns.ts; the test runs as root in CI): minigate in a "server"
 * namespace, the laptop's client and services in a "laptop" namespace that only reaches the server
 * (its services listen on its own loopback: nothing can connect in), and this process as the phone,
 * which reaches only the server. Where namespaces cannot be made, the same test runs over loopback
 * and says so.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { decodeRelayFrame, RELAY_ALPN } from 'minigate-protocol';
import { runCli, startCli, type RunningCli } from './helpers/cli.js';
import { freePort } from './helpers/pebble.js';
import { makeNamespaces, type Namespaces } from './helpers/netns.js';
import { makeCa, makeLeaf } from './helpers/pki.js';

const APPID = 'wx5e1a700000000016';
const SECRET = 'relay-test-app-secret-0123456789abcd';
const UPSTREAM_SECRET = 'relay-test-upstream-secret-0123456789';
const INTERNAL = 'relay-test-internal-token-0123456789';
const ADMIN_PASSWORD = 'relay-admin-password-1';
const LAPTOP_SCRIPT = fileURLToPath(new URL('./helpers/relay-laptop.mjs', import.meta.url));

let dir: string;
let configPath: string;
let caFile: string;
let port: number;
let internalPort: number;
let server: RunningCli;
let sandbox: RunningCli;
let sandboxUrl: string;
let laptop: RunningCli;
let laptopUrl: string;
let downloadSha: string;
let phone: Agent;
const tokens: Record<string, string> = {};
const clients: RunningCli[] = [];
/** The network: namespaces, or loopback (all three on 127.0.0.1). */
let netns: Namespaces | undefined;
let serverForPhone = '127.0.0.1';
let serverForLaptop = '127.0.0.1';
const inServer = () => (netns ? { prefix: netns.serverExec } : {});
const inLaptop = () => (netns ? { prefix: netns.laptopExec } : {});

async function startLaptop(): Promise<void> {
  laptop = startCli([], { ...inLaptop(), script: LAPTOP_SCRIPT });
  const facts = JSON.parse(await laptop.waitForLine(/^\{"port"/)) as { port: number; downloadSha: string };
  laptopUrl = `http://127.0.0.1:${facts.port}`;
  downloadSha = facts.downloadSha;
}

function writeConfig(): void {
  configPath = path.join(dir, 'minigate.yaml');
  const ca = makeCa('Relay Test');
  const leaf = makeLeaf(ca, ['localhost', ...new Set(['127.0.0.1', serverForPhone, serverForLaptop])]);
  writeFileSync(
    configPath,
    [
      'dataDir: ./data',
      'listen:',
      `  https: ${netns ? '0.0.0.0' : '127.0.0.1'}:${port}`,
      `  internal: ${serverForPhone}:${internalPort}`,
      'tls:',
      '  checkDomains: false',
      '  certificates:',
      `    - cert: ${leaf.fullchain}`,
      `      key: ${leaf.key}`,
      'wechat:',
      `  apiBase: ${sandboxUrl}`,
      'apps:',
      `  - appid: ${APPID}`,
      `    secret: ${SECRET}`,
      'internal:',
      `  token: ${INTERNAL}`,
      `upstreamSecret: ${UPSTREAM_SECRET}`,
      'relay:',
      '  pingInterval: 2s',
      '  helloTimeout: 1s',
      'routes:',
      '  - path: /dev',
      '    tunnel: alice',
      '    auth: optional',
      '    maxBodyBytes: 8388608',
      '  - path: /bob',
      '    tunnel: bob',
      '',
    ].join('\n'),
  );
  caFile = path.join(dir, 'ca.pem');
  writeFileSync(caFile, readFileSync(ca.rootPem));
}

async function startServer(): Promise<void> {
  server = startCli(['start', '-c', configPath], inServer());
  await server.waitForLine(/^minigate listening on https/);
}

const serverUrlForLaptop = () => `https://${serverForLaptop}:${port}`;

function tunnel(name: string, extra: string[] = [], token = tokens[name]!): RunningCli {
  const client = startCli(['tunnel', '--server', serverUrlForLaptop(), '--name', name, '--to', laptopUrl, '--ca', caFile, ...extra], {
    env: { MINIGATE_TUNNEL_TOKEN: token },
    ...inLaptop(),
  });
  clients.push(client);
  return client;
}

/** Lines printed since `from` (a length of stdout earlier). */
async function waitOutput(client: RunningCli, pattern: RegExp, from = 0, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = client.stdout().slice(from).split('\n').find((l) => pattern.test(l));
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no line matching ${pattern}\nstdout: ${client.stdout()}\nstderr: ${client.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function call(pathname: string, options: { method?: string; headers?: Record<string, string>; body?: any } = {}) {
  const answer = await request(`https://${serverForPhone}:${port}${pathname}`, { dispatcher: phone, method: (options.method ?? 'GET') as 'GET', headers: options.headers, body: options.body });
  const body = Buffer.from(await answer.body.arrayBuffer());
  return { status: answer.statusCode, headers: answer.headers, body };
}

const json = (b: Buffer) => JSON.parse(b.toString('utf8'));

async function login(): Promise<{ token: string; openid: string }> {
  const code = (await (await fetch(`${sandboxUrl}/__sandbox/login`, { method: 'POST', body: JSON.stringify({ appid: APPID }) })).json()) as any;
  const answer = await call('/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ appid: APPID, code: code.code }) });
  expect(answer.status).toBe(200);
  return { token: json(answer.body).token, openid: code.openid };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-relay-'));
  try {
    netns = makeNamespaces();
    ({ serverForPhone, serverForLaptop } = netns);
    console.info(`relay.test: phone, server and laptop in network namespaces (server ${serverForPhone} / ${serverForLaptop})`);
  } catch (error) {
    console.info(`relay.test: over loopback: cannot make network namespaces (${(error as Error).message})`);
  }
  [port, internalPort] = [await freePort(), await freePort()];
  // The sandbox stands in for WeChat beside the server (the phone asks it for login codes too).
  sandbox = startCli(['sandbox', '--port', '0', '--host', serverForPhone, '--app', `${APPID}:${SECRET}`], inServer());
  sandboxUrl = /(http:\/\/\S+)/.exec(await sandbox.waitForLine(/^sandbox http/))![1]!;
  await startLaptop();
  writeConfig();
  phone = new Agent({ connect: { ca: readFileSync(caFile) } });
}, 30_000);

afterAll(async () => {
  // Processes first (namespaces outlive what runs in them), then the namespaces, even after a failure.
  await Promise.all([...clients, laptop, server, sandbox].filter(Boolean).map((c) => c.stop('SIGKILL')));
  netns?.remove();
  await phone?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('relay: names on the CLI', () => {
  it('relay add prints the token once as the last line; list shows the names; add twice is refused (and an admin for the console)', async () => {
    // The first one makes the database; then side by side (processes of their own; the store takes turns).
    const passwordFile = path.join(dir, 'admin-password');
    writeFileSync(passwordFile, `${ADMIN_PASSWORD}\n`);
    const alice = await runCli(['relay', 'add', 'alice', '-c', configPath]);
    const [bob, admin] = await Promise.all([
      runCli(['relay', 'add', 'bob', '-c', configPath]),
      runCli(['admin', 'add', 'ops', '--password-file', passwordFile, '-c', configPath]),
    ]);
    expect(admin.code, admin.stderr).toBe(0);
    for (const [name, added] of [['alice', alice], ['bob', bob]] as const) {
      expect(added.code, added.stderr).toBe(0);
      tokens[name] = added.stdout.trim().split('\n').at(-1)!;
      expect(tokens[name]).toMatch(/^mgr_[A-Za-z0-9_-]{43}$/);
    }
    expect(tokens.alice).not.toBe(tokens.bob);
    const [listed, again] = await Promise.all([runCli(['relay', 'list', '-c', configPath]), runCli(['relay', 'add', 'alice', '-c', configPath])]);
    expect(listed.stdout).toMatch(/^alice\t.*never connected$/m);
    expect(listed.stdout).toMatch(/^bob\t/m);
    expect(listed.stdout).not.toContain(tokens.alice);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists');
  });
});

describe('relay: a phone reaches the laptop', () => {
  let alice: RunningCli;
  beforeAll(async () => {
    await startServer();
    alice = tunnel('alice');
    await waitOutput(alice, /link up: alice/);
  }, 30_000);

  it('HTTPS with a session: the laptop gets the signed identity headers, never forged ones; its cookies and identity headers stay out', async () => {
    const user = await login();
    const answer = await call('/dev/echo?x=1', { headers: { authorization: `Bearer ${user.token}`, 'x-minigate-openid': 'o-forged-by-phone' } });
    expect(answer.status).toBe(200);
    expect(json(answer.body)).toMatchObject({ method: 'GET', url: '/dev/echo?x=1' });
    const lastSeen = json(answer.body).headers;
    expect(lastSeen['x-minigate-openid']).toBe(user.openid);
    expect(lastSeen['x-minigate-appid']).toBe(APPID);
    const payload = ['v1', lastSeen['x-minigate-timestamp'], APPID, user.openid, lastSeen['x-minigate-unionid'] ?? '', lastSeen['x-minigate-session']].join('\n');
    expect(lastSeen['x-minigate-signature']).toBe(`v1=${createHmac('sha256', UPSTREAM_SECRET).update(payload).digest('hex')}`);
    // The session token itself stays with minigate on an auth route.
    expect(lastSeen.authorization).toBeUndefined();
    expect(lastSeen['x-forwarded-proto']).toBe('https');
    expect(answer.headers['set-cookie']).toEqual('laptop=1; Path=/');
    expect(answer.headers['x-minigate-openid']).toBeUndefined();
    await waitOutput(alice, /GET \/dev\/echo\?x=1 200 \d+ms/);

    // Without a session (auth: optional), a forged identity header is dropped, not passed on.
    const anon = await call('/dev/anon', { headers: { 'x-minigate-openid': 'o-forged-by-phone' } });
    expect(json(anon.body).headers['x-minigate-openid']).toBeUndefined();
  });

  it('a multipart upload (as wx.uploadFile sends it) arrives whole, byte for byte', async () => {
    const file = randomBytes(3 * 1024 * 1024);
    const boundary = '----minigateRelayTest';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
      file,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const answer = await call('/dev/upload', { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body });
    expect(answer.status).toBe(200);
    const got = json(answer.body);
    expect(got.headers['content-type']).toBe(`multipart/form-data; boundary=${boundary}`);
    expect(got.bytes).toBe(body.length);
    expect(got.sha).toBe(createHash('sha256').update(body).digest('hex'));
    await waitOutput(alice, /POST \/dev\/upload 200/);
  });

  it('the phone cannot reach the laptop except through the relay (namespaces only)', async (ctx) => {
    if (!netns) return ctx.skip();
    const port = Number(new URL(laptopUrl).port);
    const reached = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect({ host: netns!.laptopAddress, port, timeout: 1000 });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
      socket.once('timeout', () => (socket.destroy(), resolve(false)));
    });
    expect(reached).toBe(false);
  });

  it('a body over the route limit is 413 BODY_TOO_LARGE', async () => {
    const answer = await call('/dev/upload', { method: 'POST', body: Buffer.alloc(9 * 1024 * 1024) });
    expect(answer.status).toBe(413);
    expect(json(answer.body).error.code).toBe('BODY_TOO_LARGE');
  });

  it('100 concurrent small requests all succeed during a 20 MB download', async () => {
    const download = call('/dev/download');
    const small = await Promise.all(Array.from({ length: 100 }, (_, i) => call(`/dev/small/${i}`)));
    for (const [i, answer] of small.entries()) {
      expect(answer.status).toBe(200);
      expect(json(answer.body).url).toBe(`/dev/small/${i}`);
    }
    const big = await download;
    expect(big.status).toBe(200);
    expect(big.body.length).toBe(20 * 1024 * 1024);
    expect(createHash('sha256').update(big.body).digest('hex')).toBe(downloadSha);
  });

  it('a WSS chat reaches the laptop (extended CONNECT over the link) with the identity headers', async () => {
    const user = await login();
    const ws = new WebSocket(`wss://${serverForPhone}:${port}/dev/chat`, { ca: readFileSync(caFile), headers: { authorization: `Bearer ${user.token}` } });
    const frames: string[] = [];
    const next = () => new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    frames.push(await next());
    expect(JSON.parse(frames[0]!)).toEqual({ hello: '/dev/chat', openid: user.openid });
    for (const text of ['hi', 'x'.repeat(100_000)]) {
      const reply = next();
      ws.send(text);
      expect(await reply).toBe(`echo:${text}`);
    }
    ws.close();
  });

  it('the admin console\'s overview shows the names online', async () => {
    const consoleApi = `http://${serverForPhone}:${internalPort}/admin/api`;
    const login = await fetch(`${consoleApi}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ops', password: ADMIN_PASSWORD }) });
    expect(login.status).toBe(200);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';', 1)[0]!;
    const overview = (await (await fetch(`${consoleApi}/overview`, { headers: { cookie } })).json()) as any;
    expect(overview.relay).toEqual({ online: ['alice'], streams: 0 });
  });

  it('the relay shows on /metrics (names online, streams, bytes)', async () => {
    const text = await (await fetch(`http://${serverForPhone}:${internalPort}/metrics`, { headers: { authorization: `Bearer ${INTERNAL}` } })).text();
    expect(text).toMatch(/^minigate_relay_names_online 1$/m);
    expect(text).toMatch(/^minigate_relay_bytes_total\{direction="out"\} \d{8,}$/m);
    expect(text).toMatch(/^minigate_relay_streams \d+$/m);
  });

  it('refuses a wrong token, and a token of another name', async () => {
    const wrong = await runCli(['tunnel', '--server', serverUrlForLaptop(), '--name', 'alice', '--to', laptopUrl, '--ca', caFile, '--token', 'mgr_wrong'], inLaptop());
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('RELAY_AUTH_FAILED');
    const other = await runCli(['tunnel', '--server', serverUrlForLaptop(), '--name', 'alice', '--to', laptopUrl, '--ca', caFile, '--token', tokens.bob!], inLaptop());
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('RELAY_AUTH_FAILED');
    // The link of alice is untouched.
    expect((await call('/dev/still')).status).toBe(200);
  });

  it('refuses a client that does not trust the certificate (no --ca)', async () => {
    const client = startCli(['tunnel', '--server', serverUrlForLaptop(), '--name', 'bob', '--to', laptopUrl, '--token', tokens.bob!], inLaptop());
    clients.push(client);
    await waitOutput(client, /link down: .*(UNABLE_TO_VERIFY|SELF_SIGNED|unable to get)/i);
    await client.stop('SIGKILL');
    expect((await call('/bob/x')).status).toBe(502);
  });

  it('hostile bytes on the relay protocol get RELAY_BAD_HELLO and a close; HTTPS goes on', async () => {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const socket = tlsConnect({ host: serverForPhone, port, ca: readFileSync(caFile), ALPNProtocols: [RELAY_ALPN] }, () => {
        socket.write(Buffer.from([0, 0, 0, 5, 0x7b, 0x7d, 0x7b, 0x7d, 0x7b]));
      });
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      socket.on('error', reject);
    });
    expect(decodeRelayFrame(reply)?.frame).toMatchObject({ type: 'refused', code: 'RELAY_BAD_HELLO' });
    // A huge length prefix is refused at once, without waiting for the bytes.
    const huge = await new Promise<Buffer>((resolve, reject) => {
      const socket = tlsConnect({ host: serverForPhone, port, ca: readFileSync(caFile), ALPNProtocols: [RELAY_ALPN] }, () => {
        socket.write(Buffer.from([0x7f, 0xff, 0xff, 0xff]));
      });
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      socket.on('error', reject);
    });
    expect(decodeRelayFrame(huge)?.frame).toMatchObject({ type: 'refused', code: 'RELAY_BAD_HELLO' });
    expect((await call('/dev/after')).status).toBe(200);
  });

  it('a client that dials the relay and says nothing is cut after relay.helloTimeout', async () => {
    const started = Date.now();
    await new Promise<void>((resolve, reject) => {
      const socket = tlsConnect({ host: serverForPhone, port, ca: readFileSync(caFile), ALPNProtocols: [RELAY_ALPN] });
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a second client for a name is refused; --replace takes over', async () => {
    const second = tunnel('alice');
    await waitOutput(second, /RELAY_NAME_TAKEN/);
    await second.stop('SIGKILL');
    const mark = alice.stdout().length;
    const replacing = tunnel('alice', ['--replace']);
    await waitOutput(replacing, /link up: alice/);
    await waitOutput(alice, /link down/, mark);
    const answer = await call('/dev/after-replace');
    expect(answer.status).toBe(200);
    await waitOutput(replacing, /GET \/dev\/after-replace 200/);
    // The old client keeps asking (without --replace it is refused) and never takes the name back.
    await waitOutput(alice, /RELAY_NAME_TAKEN/, mark);
    await alice.stop('SIGKILL');
    alice = replacing;
  });

  it('killing the client gives 502 TUNNEL_OFFLINE naming the relay; starting it again restores service', async () => {
    await alice.stop('SIGKILL');
    // A request racing the kill may still be answered (or cut) before minigate sees the link close.
    let answer = await call('/dev/gone');
    for (let i = 0; answer.status !== 502 && i < 40; i++) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await call('/dev/gone');
    }
    expect(answer.status).toBe(502);
    expect(json(answer.body).error).toMatchObject({ code: 'TUNNEL_OFFLINE' });
    expect(json(answer.body).error.message).toContain('"alice"');
    alice = tunnel('alice');
    await waitOutput(alice, /link up: alice/);
    expect((await call('/dev/back')).status).toBe(200);
  });

  it('restarting the server: the client is back within its back-off', async () => {
    const mark = alice.stdout().length;
    await server.stop('SIGTERM');
    await waitOutput(alice, /link down/, mark);
    await startServer();
    await waitOutput(alice, /link up: alice/, mark, 20_000);
    expect((await call('/dev/after-restart')).status).toBe(200);
  });
});

describe('relay: workers: 2 and tls.http2 (the link on one worker, requests on both)', () => {
  let alice: RunningCli;
  beforeAll(async () => {
    // The same store and port, now with two workers and HTTP/2 offered to phones (the relay's ALPN
    // then sits beside h2 and http/1.1); the clients still running reconnect by themselves.
    await server.stop('SIGTERM');
    writeFileSync(configPath, `${readFileSync(configPath, 'utf8').replace('tls:\n', 'tls:\n  http2: true\n')}workers: 2\n`);
    alice = clients.filter((c) => c.child.exitCode === null && c.child.signalCode === null).at(-1)!;
    const mark = alice.stdout().length;
    await startServer();
    await waitOutput(alice, /link up: alice/, mark, 20_000);
  }, 40_000);

  it('requests and WebSockets landing on either worker reach the laptop (handed to the worker holding the link)', async () => {
    // New connections are spread over the workers; about half land where the link is not.
    for (let i = 0; i < 12; i++) {
      const fresh = new Agent({ connect: { ca: readFileSync(caFile) }, pipelining: 0 });
      const answer = await request(`https://${serverForPhone}:${port}/dev/w/${i}`, { dispatcher: fresh, method: 'POST', body: `body ${i}` });
      const body = (await answer.body.json()) as any;
      await fresh.close();
      expect(answer.statusCode).toBe(200);
      expect(body).toMatchObject({ method: 'POST', url: `/dev/w/${i}`, bytes: `body ${i}`.length });
      expect(answer.headers['x-minigate-openid']).toBeUndefined();
    }
    for (let i = 0; i < 4; i++) {
      const ws = new WebSocket(`wss://${serverForPhone}:${port}/dev/chat`, { ca: readFileSync(caFile) });
      const first = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
      await new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
      expect(JSON.parse(await first)).toMatchObject({ hello: '/dev/chat' });
      const reply = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
      ws.send(`hi ${i}`);
      expect(await reply).toBe(`echo:hi ${i}`);
      ws.close();
    }
    // A phone speaking HTTP/2 to minigate.
    const h2phone = new Agent({ connect: { ca: readFileSync(caFile) }, allowH2: true });
    const viaH2 = await request(`https://${serverForPhone}:${port}/dev/h2`, { dispatcher: h2phone });
    expect(viaH2.statusCode).toBe(200);
    expect(((await viaH2.body.json()) as any).headers['x-forwarded-proto']).toBe('https');
    await h2phone.close();
    const text = await (await fetch(`http://${serverForPhone}:${internalPort}/metrics`, { headers: { authorization: `Bearer ${INTERNAL}` } })).text();
    expect(Number(/^minigate_relay_handoffs_total (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(text).toMatch(/^minigate_relay_names_online 1$/m);
  });

  it('a second client is refused whichever worker it lands on; without the client every worker answers TUNNEL_OFFLINE', async () => {
    const second = tunnel('alice');
    // Its first tries land on both workers (new connections are spread over them).
    const deadline = Date.now() + 10_000;
    while ((second.stdout().match(/RELAY_NAME_TAKEN/g)?.length ?? 0) < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await second.stop('SIGKILL');
    expect(second.stdout().match(/RELAY_NAME_TAKEN/g)?.length).toBeGreaterThanOrEqual(3);
    expect(second.stdout()).not.toMatch(/link up/);
    await alice.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 6; i++) {
      const fresh = new Agent({ connect: { ca: readFileSync(caFile) } });
      const answer = await request(`https://${serverForPhone}:${port}/dev/gone/${i}`, { dispatcher: fresh });
      const body = (await answer.body.json()) as any;
      await fresh.close();
      expect(answer.statusCode).toBe(502);
      expect(body.error.code).toBe('TUNNEL_OFFLINE');
    }
  });

  it('relay revoke cuts the name\'s link within pingInterval, and its client then stops (token refused)', async () => {
    const client = tunnel('alice');
    await waitOutput(client, /link up: alice/);
    const revoked = await runCli(['relay', 'revoke', 'alice', '-c', configPath]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(await client.exited()).toBe(1);
    expect(client.stdout()).toMatch(/link refused: RELAY_AUTH_FAILED/);
    const answer = await call('/dev/revoked');
    expect(answer.status).toBe(502);
    expect(json(answer.body).error.code).toBe('TUNNEL_OFFLINE');
  });
});
