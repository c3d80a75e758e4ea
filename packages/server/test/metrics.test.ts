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
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli, type RunningCli } from './helpers/cli.js';
import { startHarness } from './helpers/harness.js';

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

  beforeAll(async () => {
    at = await startInstance(configFile('one', ['trustedProxies: [127.0.0.1]', 'metrics:', `  token: ${METRICS_TOKEN}`, 'limits:', '  login: 3/m']));
    user = await login(at.url);
    await login(at.url);
    expect((await call(`${at.url}/auth/login`, 'POST', {}, { code: 'never-issued-code' })).status).toBe(400);
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
