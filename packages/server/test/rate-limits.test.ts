/**
 * Rate limits (docs/limits.md) against the running CLI over real sockets: a login flood from one
 * address reaches WeChat (the sandbox) fewer than 100 times and is answered 429 with Retry-After
 * while a real user elsewhere logs in; the counts are shared by two instances on Redis and by
 * `workers: 2` without it; a refused channel upgrade is a 429 HTTP answer before the handshake;
 * internal token failures, /auth/phone and routes[].rateLimit are limited too. Client addresses
 * come from X-Forwarded-For through `trustedProxies: [127.0.0.1]`, as behind a load balancer.
 */
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type RunningCli } from './helpers/cli.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const APPID = 'wx7e57000000001a01';
const SECRET = 'rate-limits-app-secret-0123456789';
const INTERNAL = 'rate-limits-internal-token-0123456789';

let dir: string;
let sandbox: RunningCli;
let sandboxUrl: string;
let upstream: Server;
let upstreamUrl: string;
const running: RunningCli[] = [];

interface Instance {
  cli: RunningCli;
  url: string;
  internal: string;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/** A request on its own connection (so `workers` hands each to the next worker). */
function call(url: string, method: string, headers: Record<string, string> = {}, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request(url, { method, agent: false, headers: { ...headers, ...(text ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let data = '';
      res.on('data', (d: Buffer) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: data ? JSON.parse(data) : null }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

const from = (address: string) => ({ 'x-forwarded-for': address });
/** A documentation-range address of its own for each run (Redis keeps counts between runs). */
const someAddress = () => `198.18.${randomInt(256)}.${randomInt(1, 255)}`;

async function realCode(): Promise<{ code: string; openid: string }> {
  return (await call(`${sandboxUrl}/__sandbox/login`, 'POST', {}, { appid: APPID })).body;
}

async function code2SessionCalls(): Promise<number> {
  const stats = (await call(`${sandboxUrl}/__sandbox/stats?appid=${APPID}`, 'GET')).body;
  return stats.paths['/sns/jscode2session'] ?? 0;
}

function login(at: Instance, code: string, headers: Record<string, string> = {}): Promise<Answer> {
  return call(`${at.url}/auth/login`, 'POST', headers, { code });
}

function expectLimited(answer: Answer, limit: string): void {
  expect(answer.status).toBe(429);
  expect(answer.body.error).toMatchObject({ code: 'RATE_LIMITED' });
  expect(answer.body.error.message).toContain(limit);
  expect(String(answer.headers['retry-after'])).toMatch(/^[1-9]\d*$/);
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
      'upstreamSecret: rate-limits-upstream-secret',
      'log:',
      '  level: warn',
      ...extra,
      '',
    ].join('\n'),
  );
  return file;
}

async function startInstance(file: string): Promise<Instance> {
  const cli = startCli(['start', '-c', file]);
  running.push(cli);
  const url = /listening on (http:\S+)/.exec(await cli.waitForLine(/^minigate listening on/))![1]!;
  const internal = /internal API on (http:\S+)/.exec(await cli.waitForLine(/^minigate internal API on/))![1]!;
  return { cli, url, internal };
}

/** A raw WebSocket upgrade: what the server wrote before closing (or the 101 head). */
function rawUpgrade(at: Instance, headers: Record<string, string>): Promise<string> {
  const { hostname, port } = new URL(at.url);
  return new Promise((resolve) => {
    const socket = tcpConnect(Number(port), hostname, () => {
      const lines = [
        'GET /channel HTTP/1.1',
        `Host: ${hostname}:${port}`,
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      ];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.startsWith('HTTP/1.1 101') && text.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-rate-limits-'));
  sandbox = startCli(['sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`]);
  running.push(sandbox);
  sandboxUrl = /(http:\/\/\S+)/.exec(await sandbox.waitForLine(/^sandbox http/))![1]!;
  upstream = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ openid: req.headers['x-minigate-openid'] ?? null }));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
}, 30_000);

afterAll(async () => {
  await Promise.all(running.map((cli) => cli.stop()));
  upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('one instance behind a trusted proxy (default limits, a few lowered)', () => {
  let at: Instance;
  beforeAll(async () => {
    at = await startInstance(
      configFile('single', [
        'trustedProxies: [127.0.0.1]',
        'limits:',
        '  channelUpgrades: 3/m',
        '  phone: 2/h',
        'routes:',
        '  - path: /api',
        `    proxy: ${upstreamUrl}`,
        '    auth: required',
        '    rateLimit: { rate: 3/m, burst: 2 }',
        '  - path: /open',
        `    proxy: ${upstreamUrl}`,
        '    rateLimit: { rate: 3/m }',
      ]),
    );
  }, 30_000);

  it('a flood of 1,000 bogus login codes from one address reaches WeChat fewer than 100 times, while a real user elsewhere logs in', { timeout: 60_000 }, async () => {
    await call(`${sandboxUrl}/__sandbox/stats`, 'DELETE');
    const attacker = from('203.0.113.7');
    const answers: Answer[] = [];
    let next = 0;
    // Bounded rate: ten requests in flight at a time.
    const flood = Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < 1000) answers[next] = await login(at, `bogus-${next++}`, attacker);
      }),
    );
    // A real user on another address logs in five times meanwhile (and afterwards).
    const real: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { code } = await realCode();
      real.push((await login(at, code, from('198.51.100.20'))).status);
      await new Promise((r) => setTimeout(r, 100));
    }
    await flood;
    expect(real).toEqual([200, 200, 200, 200, 200]);

    const calls = await code2SessionCalls();
    expect(calls).toBeGreaterThanOrEqual(5);
    expect(calls).toBeLessThan(100);
    const limited = answers.filter((a) => a.status === 429);
    expect(limited.length).toBeGreaterThan(900);
    expectLimited(limited.at(-1)!, 'limits.loginFailures');
    // The others were WeChat's own answer to a bogus code.
    expect(answers.filter((a) => a.status !== 429).every((a) => a.body.error.code === 'AUTH_CODE_INVALID')).toBe(true);

    // Wafer2's login route shares the limit and its answer shape keeps the Retry-After.
    const wafer = await call(`${at.url}/weapp/login`, 'GET', { ...attacker, 'x-wx-code': 'bogus-wafer' });
    expect(wafer.status).toBe(429);
    expect(wafer.body).toMatchObject({ code: -1, error: 'RATE_LIMITED' });
    expect(String(wafer.headers['retry-after'])).toMatch(/^[1-9]\d*$/);
  });

  it('refuses a channel upgrade past the limit with a 429 JSON answer before the WebSocket handshake', { timeout: 20_000 }, async () => {
    const address = from('203.0.113.30');
    for (let i = 0; i < 3; i++) expect(await rawUpgrade(at, address)).toMatch(/^HTTP\/1\.1 401 /);
    const refused = await rawUpgrade(at, address);
    expect(refused).toMatch(/^HTTP\/1\.1 429 Too Many Requests\r\n/);
    expect(refused).toMatch(/\r\nretry-after: [1-9]\d*\r\n/i);
    expect(refused).not.toMatch(/sec-websocket-accept/i);
    const body = JSON.parse(refused.slice(refused.indexOf('\r\n\r\n') + 4));
    expect(body.error).toMatchObject({ code: 'RATE_LIMITED' });

    // Another address with a session connects.
    const { code } = await realCode();
    const { token } = (await login(at, code, from('198.51.100.30'))).body;
    expect(await rawUpgrade(at, { ...from('198.51.100.30'), authorization: `Bearer ${token}` })).toMatch(/^HTTP\/1\.1 101 /);
  });

  it('counts an IPv6 client by its /64: picking a new address in it per request does not help', { timeout: 20_000 }, async () => {
    for (let i = 1; i <= 3; i++) expect(await rawUpgrade(at, from(`2001:db8:7:7::${i}`))).toMatch(/^HTTP\/1\.1 401 /);
    expect(await rawUpgrade(at, from('2001:db8:7:7:ffff:1:2:3'))).toMatch(/^HTTP\/1\.1 429 /);
    expect(await rawUpgrade(at, from('2001:db8:7:8::1'))).toMatch(/^HTTP\/1\.1 401 /);
  });

  it('refuses an address after 10 wrong internal tokens, even with the right one, and not other addresses', { timeout: 20_000 }, async () => {
    const guesser = from('203.0.113.40');
    for (let i = 0; i < 10; i++) {
      expect((await call(`${at.internal}/v1/apps/${APPID}/access-token`, 'GET', { ...guesser, authorization: `Bearer guess-${i}` })).status).toBe(401);
    }
    expectLimited(await call(`${at.internal}/v1/apps/${APPID}/access-token`, 'GET', { ...guesser, authorization: 'Bearer guess-10' }), 'limits.internalAuthFailures');
    expectLimited(await call(`${at.internal}/v1/apps/${APPID}/access-token`, 'GET', { ...guesser, authorization: `Bearer ${INTERNAL}` }), 'limits.internalAuthFailures');
    const service = await call(`${at.internal}/v1/apps/${APPID}/access-token`, 'GET', { ...from('10.1.2.3'), authorization: `Bearer ${INTERNAL}` });
    expect(service.status).toBe(200);
  });

  it('limits /auth/phone per user before WeChat is called', { timeout: 20_000 }, async () => {
    const { code, openid } = await realCode();
    const { token } = (await login(at, code, from('198.51.100.50'))).body;
    const phoneCode = async () => (await call(`${sandboxUrl}/__sandbox/phone`, 'POST', {}, { appid: APPID, openid, phoneNumber: '13800138000' })).body.code;
    const phone = async () => call(`${at.url}/auth/phone`, 'POST', { ...from('198.51.100.50'), authorization: `Bearer ${token}` }, { code: await phoneCode() });
    expect((await phone()).status).toBe(200);
    expect((await phone()).status).toBe(200);
    const before = (await call(`${sandboxUrl}/__sandbox/stats?appid=${APPID}`, 'GET')).body.paths['/wxa/business/getuserphonenumber'];
    expectLimited(await phone(), 'limits.phone');
    const after = (await call(`${sandboxUrl}/__sandbox/stats?appid=${APPID}`, 'GET')).body.paths['/wxa/business/getuserphonenumber'];
    expect(after).toBe(before);
  });

  it('routes[].rateLimit counts per user on an authed route (rate and burst) and per address on an open one', { timeout: 20_000 }, async () => {
    const users = [];
    for (let i = 0; i < 2; i++) {
      const { code } = await realCode();
      // Both users behind one address: the route counts them apart.
      users.push((await login(at, code, from('198.51.100.60'))).body.token as string);
    }
    for (const token of users) {
      const statuses = [];
      for (let i = 0; i < 6; i++) statuses.push((await call(`${at.url}/api/x`, 'GET', { ...from('198.51.100.60'), authorization: `Bearer ${token}` })).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]); // 3 a minute and a burst of 2
    }
    const open = [];
    for (let i = 0; i < 4; i++) open.push(await call(`${at.url}/open/x`, 'GET', from('198.51.100.61')));
    expect(open.map((a) => a.status)).toEqual([200, 200, 200, 429]);
    expectLimited(open[3]!, 'rateLimit');
    expect((await call(`${at.url}/open/x`, 'GET', from('198.51.100.62'))).status).toBe(200);
  });
});

describe('two instances sharing Redis', () => {
  let redisProxy: TcpProxy;
  let a: Instance;
  let b: Instance;
  beforeAll(async () => {
    const redis = new URL(REDIS_URL);
    redisProxy = await startTcpProxy(redis.hostname, Number(redis.port || 6379));
    const extra = [`redis: redis://127.0.0.1:${redisProxy.port}`, 'trustedProxies: [127.0.0.1]', 'limits:', '  login: 10/m'];
    [a, b] = await Promise.all([startInstance(configFile('redis-a', extra)), startInstance(configFile('redis-b', extra))]);
  }, 30_000);
  afterAll(async () => {
    await redisProxy?.close();
  });

  it('share one login count per address', { timeout: 30_000 }, async () => {
    const address = from(someAddress());
    const statuses: { at: string; status: number }[] = [];
    for (let i = 0; i < 16; i++) {
      const at = i % 2 === 0 ? a : b;
      const { code } = await realCode();
      statuses.push({ at: at === a ? 'a' : 'b', status: (await login(at, code, address)).status });
    }
    expect(statuses.filter((s) => s.status === 200)).toHaveLength(10);
    expect(statuses.slice(10).every((s) => s.status === 429)).toBe(true);
    expectLimited(await login(b, 'any-code', address), 'limits.login');
  });

  it('keep serving when Redis is cut, counting per process, and say so once', { timeout: 30_000 }, async () => {
    await redisProxy.cut('refuse');
    try {
      const address = from(someAddress());
      const statuses = [];
      for (let i = 0; i < 12; i++) {
        const { code } = await realCode();
        statuses.push((await login(a, code, address)).status);
      }
      // Instance a alone still counts: ten, then refused; b has a count of its own meanwhile.
      expect(statuses.slice(0, 10)).toEqual(Array(10).fill(200));
      expect(statuses.slice(10)).toEqual([429, 429]);
      expect((await login(b, (await realCode()).code, address)).status).toBe(200);
      await a.cli.waitForStderr('limits: the shared count failed');
      await new Promise((r) => setTimeout(r, 500)); // log lines are flushed every 250 ms
      expect(a.cli.stderr().split('\n').filter((l) => l.includes('limits: the shared count failed'))).toHaveLength(1);
      expect((await call(`${a.url}/healthz`, 'GET')).status).toBe(200);
    } finally {
      await redisProxy.restore();
    }
  });
});

describe('workers: 2 without Redis', () => {
  it('share one login count per address through the primary, and ignore X-Forwarded-For from an untrusted peer', { timeout: 60_000 }, async () => {
    const at = await startInstance(configFile('workers', ['workers: 2', 'limits:', '  login: 10/m']));
    const statuses: number[] = [];
    // Each request on a new connection: the primary hands them to the workers in turn, so with
    // a count per worker twenty would pass. The forged addresses must change nothing.
    for (let i = 0; i < 30; i++) {
      const { code } = await realCode();
      statuses.push((await login(at, code, from(`192.0.2.${i + 1}`))).status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20);
    await at.cli.stop();
  });
});
