/**
 * Prometheus metrics and request ids, against the running CLI as an operator would use them
 * (docs/metrics.md): after a small mixed load (logins through the sandbox, a refused login, an
 * authed proxied request, an access_token) `GET /metrics` on the internal listener shows each
 * family with values that moved, never an openid or a token; a wrong or missing bearer is 401
 * INTERNAL_AUTH_REQUIRED; with `workers: 2` one scrape counts the requests both workers served.
 * The request id of a proxied request is in the answer, at the upstream and in minigate's access
 * line; a trusted proxy's plain id is kept, a hostile one (unicode, 10 KB, spaces) and any id from
 * an untrusted peer are replaced.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli, type RunningCli } from './helpers/cli.js';
import { createTestDatabase } from './helpers/databases.js';
import { startHarness, TEST_APPID, type Harness } from './helpers/harness.js';
import { connect as connectSocket, type TestSocket } from './helpers/ws-client.js';

const APPID = 'wx7e57000000003e01';
const SECRET = 'metrics-app-secret-0123456789abcdef';
const INTERNAL = 'metrics-internal-token-0123456789abcdef';
const ADMIN_PASSWORD = 'correct horse battery staple';
const METRICS_TOKEN = 'metrics-only-scrape-token-0123456789abcdef';

let dir: string;
let sandbox: RunningCli;
let sandboxUrl: string;
let upstream: Server;
let upstreamUrl: string;
const seenIds: (string | undefined)[] = [];
const running: RunningCli[] = [];

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** One request on its own connection (so `workers` hands each to the next worker). */
function call(url: string, method = 'GET', headers: Record<string, string> = {}, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request(url, { method, agent: false, headers: { ...headers, ...(text ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let data = '';
      res.on('data', (d: Buffer) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: data }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** A request written byte for byte (header values node's client refuses to send). */
function raw(url: string, head: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => socket.write(`${head}\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
  });
}

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
      'upstreamSecret: metrics-upstream-secret-0123456789',
      'routes:',
      '  - path: /api',
      '    auth: required',
      `    proxy: ${upstreamUrl}`,
      'log:',
      '  level: info',
      '  format: json',
      ...extra,
      '',
    ].join('\n'),
  );
  return file;
}

async function startInstance(file: string) {
  const cli = startCli(['start', '-c', file]);
  running.push(cli);
  const url = /listening on (http:\S+)/.exec(await cli.waitForLine(/^minigate listening on/, 90_000))![1]!;
  const internal = /internal API on (http:\S+)/.exec(await cli.waitForLine(/^minigate internal API on/))![1]!;
  return { cli, url, internal };
}

async function login(url: string): Promise<{ token: string; openid: string }> {
  const { code } = JSON.parse((await call(`${sandboxUrl}/__sandbox/login`, 'POST', {}, { appid: APPID })).text) as { code: string };
  const answer = await call(`${url}/auth/login`, 'POST', {}, { code });
  expect(answer.status, answer.text).toBe(200);
  return JSON.parse(answer.text) as { token: string; openid: string };
}

/** The value of one sample (`name{labels} value`), labels given as a substring; 0 when absent. */
function sample(text: string, name: string, labels = ''): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels && !line.includes(labels)) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** The sum of every sample of a family. */
function sampleSum(text: string, name: string): number {
  return text.split('\n').filter((line) => line.startsWith(`${name}{`)).reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

const scrape = (internal: string, token = INTERNAL) => call(`${internal}/metrics`, 'GET', { authorization: `Bearer ${token}` });

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-metrics-'));
  sandbox = startCli(['sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`]);
  running.push(sandbox);
  sandboxUrl = /(http:\/\/\S+)/.exec(await sandbox.waitForLine(/^sandbox http/))![1]!;
  upstream = createServer((req, res) => {
    seenIds.push(req.headers['x-request-id'] as string | undefined);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: req.headers['x-request-id'] ?? null }));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
}, 30_000);

afterAll(async () => {
  await Promise.all(running.map((c) => c.stop().catch(() => undefined)));
  await new Promise<void>((resolve) => upstream?.close(() => resolve()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('one process', () => {
  let at: Awaited<ReturnType<typeof startInstance>>;
  let user: { token: string; openid: string };
  let accessToken: string;
  let refusedLoginId: string;

  beforeAll(async () => {
    at = await startInstance(configFile('one', ['trustedProxies: [127.0.0.1]', 'metrics:', `  token: ${METRICS_TOKEN}`, 'limits:', '  login: 3/m']));
    user = await login(at.url);
    await login(at.url);
    const refused = await call(`${at.url}/auth/login`, 'POST', {}, { code: 'never-issued-code' });
    expect(refused.status).toBe(400);
    refusedLoginId = refused.headers['x-request-id'] as string;
    // The fourth login from this address in a minute is over limits.login.
    expect((await call(`${at.url}/auth/login`, 'POST', {}, { code: 'over-the-limit' })).status).toBe(429);
    expect((await call(`${at.url}/api/hello`, 'GET', { authorization: `Bearer ${user.token}` })).status).toBe(200);
    const token = await call(`${at.internal}/v1/apps/${APPID}/access-token`, 'GET', { authorization: `Bearer ${INTERNAL}` });
    expect(token.status, token.text).toBe(200);
    accessToken = (JSON.parse(token.text) as { accessToken: string }).accessToken;
  }, 120_000);

  it('shows every family, with counters that moved and nothing secret', async () => {
    const answer = await scrape(at.internal);
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toContain('text/plain');
    const text = answer.text;
    expect(sample(text, 'minigate_http_requests_total', 'route="/auth",method="POST",status="200"')).toBe(2);
    expect(sample(text, 'minigate_http_requests_total', 'route="/api",method="GET",status="200"')).toBe(1);
    expect(sample(text, 'minigate_http_request_duration_seconds_count', 'route="/api",method="GET"')).toBe(1);
    expect(sample(text, 'minigate_proxy_upstream_duration_seconds_count', 'route="/api"')).toBe(1);
    expect(text).toContain('# TYPE minigate_proxy_upstream_errors_total counter');
    // The one keep-alive connection of the proxied request, unless it has already sat idle for 4 s.
    expect(text).toContain('# TYPE minigate_proxy_upstream_connections gauge');
    expect([0, 1]).toContain(sample(text, 'minigate_proxy_upstream_connections', 'route="/api"'));
    expect(sample(text, 'minigate_logins_total', 'outcome="ok"')).toBe(2);
    expect(sample(text, 'minigate_logins_total', 'outcome="refused",code="AUTH_CODE_INVALID"')).toBe(1);
    expect(sample(text, 'minigate_logins_total', 'outcome="refused",code="RATE_LIMITED"')).toBe(1);
    expect(sample(text, 'minigate_rate_limited_total', 'limit="limits.login"')).toBe(1);
    expect(sample(text, 'minigate_sessions_active', `appid="${APPID}"`)).toBe(2);
    expect(sample(text, 'minigate_wechat_calls_total', 'endpoint="/sns/jscode2session",errcode="0"')).toBe(2);
    expect(sample(text, 'minigate_wechat_calls_total', 'endpoint="/sns/jscode2session",errcode="40029"')).toBe(1);
    expect(sample(text, 'minigate_wechat_call_duration_seconds_count', 'endpoint="/sns/jscode2session"')).toBe(3);
    expect(sample(text, 'minigate_token_refreshes_total', `appid="${APPID}",outcome="ok"`)).toBe(1);
    const expiry = sample(text, 'minigate_token_expiry_seconds', `appid="${APPID}"`);
    expect(expiry).toBeGreaterThan(60);
    expect(expiry).toBeLessThanOrEqual(7200);
    expect(sample(text, 'minigate_process_resident_memory_bytes')).toBeGreaterThan(1 << 20);
    // Never a user, a token or a raw path.
    for (const secret of [user.openid, user.token, accessToken, SECRET, INTERNAL, '/api/hello']) expect(text).not.toContain(secret);
  });

  it('takes metrics.token too, and answers a wrong or missing bearer with 401 INTERNAL_AUTH_REQUIRED', async () => {
    expect((await scrape(at.internal, METRICS_TOKEN)).status).toBe(200);
    for (const headers of [{} as Record<string, string>, { authorization: `Bearer ${user.token}` }, { authorization: `Bearer ${METRICS_TOKEN}x` }, { authorization: 'Basic eDp5' }]) {
      const answer = await call(`${at.internal}/metrics`, 'GET', headers);
      expect(answer.status).toBe(401);
      expect(JSON.parse(answer.text).error.code).toBe('INTERNAL_AUTH_REQUIRED');
    }
    // metrics.token opens /metrics only, not the internal API.
    expect((await call(`${at.internal}/v1/apps/${APPID}/access-token`, 'GET', { authorization: `Bearer ${METRICS_TOKEN}` })).status).toBe(401);
  });

  it('carries a proxied request id to the answer, the upstream and the access line', async () => {
    const answer = await call(`${at.url}/api/traced`, 'GET', { authorization: `Bearer ${user.token}`, 'x-request-id': 'lb-7f3a.42:x_Y' });
    expect(answer.status).toBe(200);
    expect(answer.headers['x-request-id']).toBe('lb-7f3a.42:x_Y');
    expect(seenIds.at(-1)).toBe('lb-7f3a.42:x_Y');
    await at.cli.waitForStderr('"requestId":"lb-7f3a.42:x_Y"');
    const line = at.cli.stderr().split('\n').find((l) => l.includes('"requestId":"lb-7f3a.42:x_Y"'))!;
    const entry = JSON.parse(line) as Record<string, unknown>;
    expect(entry).toMatchObject({ method: 'GET', route: '/api', status: 200, client: '127.0.0.1', appid: APPID, openid: user.openid });
    expect(entry.upstreamMs).toBeTypeOf('number');
    expect(entry.bytes).toBeTypeOf('number');
    expect(line).not.toContain(user.token);

    // A generated id when none is given, the same one upstream and in the error body.
    const generated = await call(`${at.url}/api/plain`, 'GET', { authorization: `Bearer ${user.token}` });
    expect(generated.headers['x-request-id']).toMatch(/^[A-Za-z0-9._:-]{8,128}$/);
    expect(seenIds.at(-1)).toBe(generated.headers['x-request-id']);
    const refused = await call(`${at.url}/api/plain`, 'GET', { 'x-request-id': 'lb-refused-1' });
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.text).error.requestId).toBe('lb-refused-1');
  });

  it('writes the request id of the login that caused a WeChat call on that call’s log line', async () => {
    expect(refusedLoginId).toMatch(/^[A-Za-z0-9._:-]{8,128}$/);
    // WeChat refused the code (40029): logged at info, with the login's id beside the endpoint.
    await at.cli.waitForStderr(`"requestId":"${refusedLoginId}"`);
    const lines = at.cli.stderr().split('\n').filter((l) => l.includes(`"requestId":"${refusedLoginId}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.msg === 'wechat: error answer')).toMatchObject({ wechat: '/sns/jscode2session', errcode: 40029 });
  });

  it('replaces a hostile request id, even from a trusted proxy', async () => {
    const hostile = ['\u00e9\u00e8\u4e2d', 'a'.repeat(10 * 1024), 'has space', 'semi;colon', '"quoted"'];
    for (const value of hostile) {
      const before = seenIds.length;
      const head = raw(at.url, `GET /api/hostile HTTP/1.1\r\nAuthorization: Bearer ${user.token}\r\nX-Request-Id: ${value}`);
      const answer = await head;
      expect(answer).toMatch(/^HTTP\/1\.1 200/);
      const id = /\r\nx-request-id: ([^\r]*)\r\n/i.exec(answer)![1]!;
      expect(id).not.toBe(value);
      expect(id).toMatch(/^[A-Za-z0-9._:-]{8,128}$/);
      expect(seenIds.length).toBe(before + 1);
      expect(seenIds.at(-1)).toBe(id);
    }
    await new Promise((r) => setTimeout(r, 400));
    expect(at.cli.stderr()).not.toContain('a'.repeat(1024));
    expect(at.cli.stderr()).not.toContain('has space');
  });
});

describe('workers: 2', () => {
  it('one scrape counts the requests of both workers; an untrusted peer’s request id is ignored', { timeout: 150_000 }, async () => {
    const file = configFile('workers', ['workers: 2']);
    // An admin, for the console's charts below (the CLI on the same data directory).
    const passwordFile = path.join(dir, 'admin-password');
    writeFileSync(passwordFile, `${ADMIN_PASSWORD}\n`);
    expect((await runCli(['admin', 'add', 'ops', '-c', file, '--password-file', passwordFile], { timeoutMs: 30_000 })).stdout).toBe('added ops\n');
    const at = await startInstance(file);
    const user = await login(at.url);
    const N = 12;
    for (let i = 0; i < N; i++) {
      const answer = await call(`${at.url}/api/w${i}`, 'GET', { authorization: `Bearer ${user.token}`, 'x-request-id': `client-chosen-${i}` });
      expect(answer.status).toBe(200);
      expect(answer.headers['x-request-id']).not.toBe(`client-chosen-${i}`);
      expect(seenIds.at(-1)).toBe(answer.headers['x-request-id']);
    }
    // Each scrape may land on either worker; each answers for the group.
    for (let i = 0; i < 2; i++) {
      const answer = await scrape(at.internal);
      expect(answer.status).toBe(200);
      expect(sample(answer.text, 'minigate_http_requests_total', 'route="/api",method="GET",status="200"')).toBe(N);
      expect(sample(answer.text, 'minigate_logins_total', 'outcome="ok"')).toBe(1);
      // Sessions are read from the store by each worker: the group shows one count, not the sum.
      expect(sample(answer.text, 'minigate_sessions_active', `appid="${APPID}"`)).toBe(1);
    }
    // The primary hands connections to the workers in turn, so each served about half: the count
    // is N only when both workers' registries were added up.

    // The console's charts read the answering worker's own registry (the group's sums would cost
    // a scrape of every worker each 10 s): its share, and the page says so.
    const group = sampleSum((await scrape(at.internal)).text, 'minigate_http_requests_total');
    const consoleLogin = await call(`${at.internal}/admin/api/login`, 'POST', {}, { name: 'ops', password: ADMIN_PASSWORD });
    expect(consoleLogin.status, consoleLogin.text).toBe(200);
    const cookie = String(consoleLogin.headers['set-cookie']).split(';', 1)[0]!;
    const asked = Date.now();
    for (const _worker of [1, 2]) {
      let series: { metrics: string; points: { at: number; requests: number; logins: number }[] };
      for (;;) {
        series = JSON.parse((await call(`${at.internal}/admin/api/series`, 'GET', { cookie })).text);
        if (series.points.some((p) => p.at > asked) || Date.now() - asked > 25_000) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(series.metrics).toBe('worker');
      const requests = series.points.reduce((sum, p) => sum + p.requests, 0);
      expect(requests).toBeGreaterThan(0);
      expect(requests).toBeLessThanOrEqual(group + 20);
      expect(series.points.reduce((sum, p) => sum + p.logins, 0)).toBeLessThanOrEqual(1);
    }
    await at.cli.stop();
  });
});

describe('certificates', () => {
  it('minigate_certificate_expiry_seconds shows the dev certificate, named by its first name', { timeout: 60_000 }, async () => {
    const h = await startHarness({
      config: { listen: { https: '127.0.0.1:0', internal: '127.0.0.1:0' }, tls: { devCa: true }, internal: { token: INTERNAL } },
    });
    try {
      const answer = await h.internal('GET', '/metrics');
      expect(answer.status).toBe(200);
      const text = answer.raw.toString('utf8');
      const seconds = sample(text, 'minigate_certificate_expiry_seconds', 'name="localhost"');
      // The dev leaf lives for weeks to a few hundred days; 0 would mean the family is missing.
      expect(seconds).toBeGreaterThan(86_400);
      expect(seconds).toBeLessThan(400 * 86_400);
    } finally {
      await h.close();
    }
  });
});

describe('channel, files, push, outbox and store families', () => {
  const PUSH_TOKEN = 'metrics-push-token';
  const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01]), randomBytes(4_000)]);
  let h: Harness;
  let hook: Server;
  /** debug_str markers the webhook refuses (500), so their deliveries stay pending. */
  const refuse = new Set<string>();
  const delivered: string[] = [];
  const sockets: TestSocket[] = [];

  const scrapeHarness = async () => {
    const answer = await h.internal('GET', '/metrics');
    expect(answer.status).toBe(200);
    return answer.raw.toString('utf8');
  };
  const loggedIn = async () => {
    const { code } = await h.code();
    const answer = await h.login({ code });
    expect(answer.status).toBe(200);
    return answer.body as { token: string; openid: string };
  };
  async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) throw new Error('timed out waiting');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const push = (marker: string) =>
    h.control('push', {
      url: `${h.url}/wechat/push/${TEST_APPID}`,
      appid: TEST_APPID,
      token: PUSH_TOKEN,
      mode: 'plaintext',
      format: 'json',
      message: { ToUserName: 'gh_0123456789ab', FromUserName: 'o-metrics', CreateTime: 1714037059, MsgType: 'event', Event: 'debug_demo', debug_str: marker },
    });

  beforeAll(async () => {
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d));
      req.on('end', () => {
        const marker = [...refuse].find((m) => body.includes(m));
        if (!marker) delivered.push(body);
        res.writeHead(marker ? 500 : 200).end(marker ? 'not now' : 'ok');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    h = await startHarness({
      apps: [{ appid: TEST_APPID, secret: 'test-app-secret-0123456789abcdef', push: { token: PUSH_TOKEN, webhook: `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook` } } as never],
      config: {
        listen: { internal: '127.0.0.1:0' },
        internal: { token: INTERNAL },
        upstreamSecret: 'metrics-upstream-secret-0123456789',
        channel: { rooms: [{ match: 'chat:*' }], maxQueueBytes: 16 << 10 },
      },
    });
  }, 60_000);

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await h?.close();
    hook.closeAllConnections();
    await new Promise<void>((resolve) => hook.close(() => resolve()));
  });

  it('after a channel message, a file up and down, a refused download and pushes, each family moved', { timeout: 90_000 }, async () => {
    const before = await scrapeHarness();
    const wsUrl = `${h.url.replace(/^http/, 'ws')}/channel`;
    const alice = await loggedIn();
    const bob = await loggedIn();
    const a = await connectSocket(wsUrl, { token: alice.token });
    const b = await connectSocket(wsUrl, { token: bob.token });
    sockets.push(a, b);
    for (const socket of [a, b]) {
      const joined = socket.next((f) => f.type === 'joined' && f.room === 'chat:metrics');
      socket.send({ type: 'join', room: 'chat:metrics' });
      await joined;
    }
    const arrived = b.next((f) => f.type === 'message' && f.event === 'hello');
    a.send({ type: 'publish', room: 'chat:metrics', event: 'hello', data: { n: 1 }, id: 'p1' });
    await arrived;

    // A file up and down, and a download of a file that does not exist.
    const form = new FormData();
    form.append('file', new Blob([JPEG], { type: 'image/jpeg' }), 'p.jpg');
    const up = await fetch(`${h.url}/files`, { method: 'POST', headers: { authorization: `Bearer ${alice.token}` }, body: form });
    expect(up.status, await up.clone().text()).toBe(201);
    const { id } = (await up.json()) as { id: string };
    const down = await fetch(`${h.url}/files/${id}`, { headers: { authorization: `Bearer ${alice.token}` } });
    expect(Buffer.from(await down.arrayBuffer()).equals(JPEG)).toBe(true);
    expect((await h.get(`/files/${'0'.repeat(32)}`, alice.token)).status).toBe(404);

    // One push delivered; one the webhook keeps refusing (retried, and pending meanwhile).
    refuse.add('metrics-refused');
    await push('metrics-delivered');
    await push('metrics-refused');
    await until(() => delivered.some((d) => d.includes('metrics-delivered')));
    await until(async () => sample(await scrapeHarness(), 'minigate_outbox_deliveries_total', 'kind="push",outcome="retried"') >= 1);

    const text = await scrapeHarness();
    const moved = (name: string, labels = '') => sample(text, name, labels) - sample(before, name, labels);
    expect(sample(text, 'minigate_channel_connections')).toBe(2);
    // Two user rooms (each connection is put in its own) and chat:metrics.
    expect(sample(text, 'minigate_channel_rooms')).toBe(3);
    expect(moved('minigate_channel_messages_total', 'direction="in"')).toBe(3); // two joins, one publish
    // joined ×2, presence, the message to both, the ack.
    expect(moved('minigate_channel_messages_total', 'direction="out"')).toBeGreaterThanOrEqual(5);
    expect(text).toContain('# TYPE minigate_channel_slow_closes_total counter');
    expect(moved('minigate_files_bytes_total', 'direction="in",storage="local"')).toBe(JPEG.length);
    expect(moved('minigate_files_bytes_total', 'direction="out",storage="local"')).toBe(JPEG.length);
    expect(moved('minigate_files_refusals_total', 'reason="FILE_NOT_FOUND"')).toBe(1);
    expect(moved('minigate_outbox_deliveries_total', 'kind="push",outcome="delivered"')).toBe(1);
    // The depth is read from the store at most every 5 s: the scrape before the pushes may still be what it shows.
    await until(async () => sample(await scrapeHarness(), 'minigate_outbox_pending', 'kind="push"') === 1, 15_000);
    expect(moved('minigate_store_query_duration_seconds_count', 'statement="select"')).toBeGreaterThan(0);
    expect(moved('minigate_store_query_duration_seconds_count', 'statement="insert"')).toBeGreaterThan(0);
    expect(moved('minigate_store_query_duration_seconds_count', 'statement="update"')).toBeGreaterThan(0);
    // SQLite has no pool: no pool gauges rather than made-up figures.
    expect(text).not.toContain('minigate_store_pool_connections{');
    // Never SQL text, a file id, an openid or a token in a label.
    for (const secret of ['SELECT', 'select "', id, alice.openid, alice.token]) expect(text).not.toContain(secret);

    // Once the webhook takes it, the depth falls back to 0 (after the 5 s cache).
    refuse.clear();
    await until(async () => sample(await scrapeHarness(), 'minigate_outbox_pending', 'kind="push"') === 0, 60_000);
  });

  it('counts a client that stopped reading, closed with 4008', { timeout: 60_000 }, async () => {
    const reader = await connectSocket(`${h.url.replace(/^http/, 'ws')}/channel`, { token: (await loggedIn()).token });
    const stuck = await connectSocket(`${h.url.replace(/^http/, 'ws')}/channel`, { token: (await loggedIn()).token });
    sockets.push(reader, stuck);
    for (const socket of [reader, stuck]) {
      const joined = socket.next((f) => f.type === 'joined' && f.room === 'chat:firehose');
      socket.send({ type: 'join', room: 'chat:firehose' });
      await joined;
    }
    stuck.ws.pause(); // stops reading: the kernel's buffers fill, then minigate's queue
    const payload = 'z'.repeat(60_000);
    for (let i = 0; i < 3000 && !h.logs.lines.some((l) => l.includes('a client stopped reading')); i++) {
      await h.internal('POST', '/v1/channel/publish', { room: 'chat:firehose', event: 'bulk', data: { i, payload } });
    }
    expect(sample(await scrapeHarness(), 'minigate_channel_slow_closes_total')).toBe(1);
  });

  it('WeChat-call log lines carry the request id of the login and of the gateway route that caused them', async () => {
    const { code } = await h.code();
    const answer = await fetch(`${h.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
    expect(answer.status).toBe(200);
    const loginId = answer.headers.get('x-request-id')!;
    const entries = () => h.logs.entries();
    expect(entries().find((e) => e.msg === 'wechat: answered' && e.requestId === loginId)).toMatchObject({ wechat: '/sns/jscode2session', status: 200 });

    const link = await h.internal('POST', `/v1/apps/${TEST_APPID}/url-link`, { path: 'pages/index/index' });
    expect(link.status, JSON.stringify(link.body)).toBe(200);
    const linkId = link.headers.get('x-request-id')!;
    expect(entries().find((e) => e.msg === 'wechat: answered' && e.requestId === linkId)).toMatchObject({ wechat: '/wxa/generate_urllink' });
    // The token fetch that the call needed first is not the request's own call: only the link's line names it.
    for (const entry of entries().filter((e) => e.requestId === linkId && typeof e.wechat === 'string')) expect(entry.wechat).toBe('/wxa/generate_urllink');
  });
});

describe.each(['postgres', 'mysql'] as const)('store families on %s', (dialect) => {
  it('times queries by statement kind and shows the pool', { timeout: 60_000 }, async () => {
    const db = await createTestDatabase(dialect);
    const h = await startHarness({ store: db.url, config: { listen: { internal: '127.0.0.1:0' }, internal: { token: INTERNAL } } });
    try {
      const { code } = await h.code();
      expect((await h.login({ code })).status).toBe(200);
      const text = (await h.internal('GET', '/metrics')).raw.toString('utf8');
      expect(sample(text, 'minigate_store_query_duration_seconds_count', 'statement="select"')).toBeGreaterThan(0);
      expect(sample(text, 'minigate_store_query_duration_seconds_count', 'statement="insert"')).toBeGreaterThan(0);
      const open = sample(text, 'minigate_store_pool_connections', 'state="open"');
      expect(open).toBeGreaterThanOrEqual(1);
      expect(open).toBeLessThanOrEqual(10);
      expect(sample(text, 'minigate_store_pool_connections', 'state="idle"')).toBeLessThanOrEqual(open);
      expect(text).toMatch(/^minigate_store_pool_waiting \d+$/m);
    } finally {
      await h.close();
      await db.drop();
    }
  });
});
