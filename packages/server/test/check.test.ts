/**
 * `minigate check` as a developer runs it, against TLS servers made with `openssl s_server` on
 * loopback (certificates made by the tests): a correct chain passes; each classic mistake fails
 * on its own line with its fix; URL mistakes fail without a network call; --json is stable; the
 * table fits 100 columns; `-c` checks what a config serves (here a running minigate).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { connect as netConnect, createServer as createNetServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECK_IDS } from '../src/doctor/types.js';
import { runCli, startCli } from './helpers/cli.js';
import { makeCa, makeLeaf, type TestCa, type TestLeaf } from './helpers/pki.js';

const HOST = 'api.check.test';
const servers: ChildProcess[] = [];
let ca: TestCa;
let good: TestLeaf;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNetServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** `openssl s_server -www` with these options, once it accepts connections. */
async function sServer(cert: string, key: string, extra: string[] = []): Promise<number> {
  const port = await freePort();
  const child = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', cert, '-key', key, '-www', '-quiet', ...extra], { stdio: ['pipe', 'pipe', 'pipe'] });
  servers.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const deadline = Date.now() + 5_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = netConnect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return port;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`openssl s_server did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function check(args: string[]) {
  const answer = await runCli(['check', '--resolve', `${HOST}:127.0.0.1`, '--json', ...args], { timeoutMs: 60_000 });
  return { code: answer.code, report: JSON.parse(answer.stdout), stderr: answer.stderr };
}

const verdicts = (result: any) => Object.fromEntries(result.checks.map((c: any) => [c.id, c.verdict]));
const find = (result: any, id: string) => result.checks.find((c: any) => c.id === id);

beforeAll(() => {
  ca = makeCa('Check Test');
  good = makeLeaf(ca, [HOST]);
});
afterAll(() => {
  for (const child of servers) child.kill('SIGKILL');
});

describe('minigate check against local TLS servers', () => {
  it('passes a correct chain (with --ca for the test root), exit 0', { timeout: 60_000 }, async () => {
    const port = await sServer(good.cert, good.key, ['-cert_chain', good.chain]);
    const { code, report } = await check(['--ca', ca.rootPem, `https://${HOST}:${port}/`]);
    const result = report.results[0];
    expect(verdicts(result)).toEqual({
      url: 'warn', // a port in the URL: fine only when the console lists it
      dns: 'info',
      tcp: 'pass',
      'tls-versions': 'pass',
      chain: 'pass',
      hostname: 'pass',
      validity: 'pass',
      ats: 'pass',
      trust: 'pass',
      http: 'pass',
      console: 'info',
    });
    expect(code).toBe(0);
    expect(find(result, 'trust').detail).toContain('--ca');
    expect(find(result, 'console').detail).toContain(`request合法域名: https://${HOST}:${port}`);
  });

  it('fails a leaf served without its intermediate, on the chain, with the fix', { timeout: 60_000 }, async () => {
    const port = await sServer(good.cert, good.key);
    const { code, report } = await check(['--ca', ca.rootPem, `https://${HOST}:${port}/`]);
    const chain = find(report.results[0], 'chain');
    expect(chain.verdict).toBe('fail');
    expect(chain.fix).toContain('serve the full chain, e.g. fullchain.pem / the _bundle.crt file');
    expect(code).toBe(1);
  });

  const mistakes: [string, () => TestLeaf, string[], string, RegExp][] = [
    ['wrong hostname', () => makeLeaf(ca, ['other.check.test']), [], 'hostname', /names api\.check\.test|SAN/],
    ['expired', () => makeLeaf(ca, [HOST], { dates: { start: '20200101000000Z', end: '20200201000000Z' } }), [], 'validity', /renew/],
    ['not yet valid', () => makeLeaf(ca, [HOST], { dates: { start: '20991201000000Z', end: '20991231000000Z' } }), [], 'validity', /clock|reissue/],
    ['RSA 1024', () => makeLeaf(ca, [HOST], { key: 'rsa:1024' }), ['-cipher', 'DEFAULT@SECLEVEL=0'], 'ats', /2048/],
    ['SHA-1 signature', () => makeLeaf(ca, [HOST], { md: 'sha1' }), ['-cipher', 'DEFAULT@SECLEVEL=0'], 'ats', /SHA-256/],
    ['TLS 1.0 only', () => good, ['-tls1', '-cipher', 'DEFAULT@SECLEVEL=0'], 'tls-versions', /TLS 1\.2/],
    ['only non-ECDHE ciphers', () => good, ['-no_tls1_3', '-cipher', 'AES128-GCM-SHA256:AES256-GCM-SHA384'], 'ats', /ECDHE/],
  ];
  for (const [what, leaf, extra, id, fix] of mistakes) {
    it(`fails ${what} on ${id}, with a fitting fix`, { timeout: 60_000 }, async () => {
      const cert = leaf();
      const port = await sServer(cert.cert, cert.key, ['-cert_chain', cert.chain, ...extra]);
      const { code, report } = await check(['--ca', ca.rootPem, `https://${HOST}:${port}/`]);
      const result = report.results[0];
      const failed = result.checks.filter((c: any) => c.verdict === 'fail').map((c: any) => c.id);
      expect(failed).toEqual([id]);
      expect(find(result, id).fix).toMatch(fix);
      expect(code).toBe(1);
    });
  }

  it('fails a self-signed certificate on trust (iOS rejects it)', { timeout: 60_000 }, async () => {
    const dir = ca.dir;
    const { execFileSync } = await import('node:child_process');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'self.key', '-out', 'self.pem', '-days', '30', '-subj', `/CN=${HOST}`, '-addext', `subjectAltName=DNS:${HOST}`], { cwd: dir, stdio: 'pipe' });
    const port = await sServer(path.join(dir, 'self.pem'), path.join(dir, 'self.key'));
    const { code, report } = await check([`https://${HOST}:${port}/`]);
    const trust = find(report.results[0], 'trust');
    expect([trust.verdict, trust.detail]).toEqual(['fail', expect.stringContaining('iOS')]);
    expect(report.results[0].checks.filter((c: any) => c.verdict === 'fail').map((c: any) => c.id)).toEqual(['trust']);
    expect(code).toBe(1);
  });

  it('fails an https → http redirect on HTTP', { timeout: 30_000 }, async () => {
    const server: Server = createHttpsServer({ cert: readFileSync(good.fullchain), key: readFileSync(good.key) }, (_req, res) => {
      res.writeHead(301, { location: `http://${HOST}/` }).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { code, report } = await check(['--ca', ca.rootPem, `https://${HOST}:${(server.address() as AddressInfo).port}/login`]);
      const http = find(report.results[0], 'http');
      expect([http.verdict, http.detail]).toEqual(['fail', `301 redirect to http://${HOST}/`]);
      expect(code).toBe(1);
    } finally {
      server.close();
    }
  });

  it('fails URL mistakes without a network call, and says "unreachable" (exit 2) for a closed port', { timeout: 30_000 }, async () => {
    const started = Date.now();
    const { code, report } = await check(['https://1.2.3.4/', 'https://localhost/', 'https://example.com:443/', 'http://example.com/', 'https://api.weixin.qq.com/', 'wss://example.com/ws']);
    expect(report.results.map((r: any) => [r.url, r.checks.map((c: any) => `${c.id}:${c.verdict}`)])).toEqual([
      ['https://1.2.3.4/', ['url:fail']],
      ['https://localhost/', ['url:fail']],
      ['https://example.com:443/', ['url:fail']],
      ['http://example.com/', ['url:fail']],
      ['https://api.weixin.qq.com/', ['url:fail']],
      ['wss://example.com/ws', ['url:fail']], // a request URL must be https
    ]);
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(5_000);

    const closed = await freePort();
    const unreachable = await check([`https://${HOST}:${closed}/`]);
    expect(find(unreachable.report.results[0], 'tcp').verdict).toBe('fail');
    expect(unreachable.code).toBe(2);
    const usage = await runCli(['check', '--type', 'carrier-pigeon', 'https://example.com/']);
    expect(usage.code).toBe(2);
  });

  it('keeps --json stable (documented shape) and the table within 100 columns', { timeout: 60_000 }, async () => {
    const port = await sServer(good.cert, good.key);
    const { report } = await check(['--ca', ca.rootPem, `https://${HOST}:${port}/`]);
    expect(Object.keys(report)).toEqual(['version', 'results', 'exitCode']);
    expect(report.version).toBe(1);
    const result = report.results[0];
    expect(Object.keys(result)).toEqual(['url', 'type', 'verdict', 'unreachable', 'checks']);
    expect(result.checks.map((c: any) => c.id)).toEqual([...CHECK_IDS]);
    for (const c of result.checks) {
      expect(Object.keys(c).filter((k) => k !== 'fix')).toEqual(['id', 'title', 'verdict', 'detail']);
      expect(['pass', 'warn', 'fail', 'info', 'skip']).toContain(c.verdict);
    }

    const human = await runCli(['check', '--resolve', `${HOST}:127.0.0.1`, '--ca', ca.rootPem, `https://${HOST}:${port}/`, 'https://example.com:443/'], { timeoutMs: 60_000 });
    expect(human.stdout).not.toContain('\x1b['); // no colour without a TTY
    const cellsOf = (line: string) => [...line].reduce((n, ch) => n + (/[\u2e80-\ua4cf\uac00-\ud7a3\uff00-\uff60]/.test(ch) ? 2 : 1), 0);
    for (const line of human.stdout.split('\n')) expect([line, cellsOf(line) <= 100]).toEqual([line, true]);
    expect(human.stdout).toContain('✗ Certificate chain');
  });
});

describe('minigate check -c', () => {
  it('checks the domains a running minigate serves, requests and sockets', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const dir = ca.dir;
    const file = path.join(dir, 'check-minigate.yaml');
    writeFileSync(
      file,
      [
        'dataDir: ./check-data',
        'listen:',
        '  http: 127.0.0.1:0',
        `  https: 127.0.0.1:${port}`,
        '  internal: 127.0.0.1:0',
        'internal:',
        '  token: check-internal-token-0123456789abcdef',
        'tls:',
        '  checkDomains: false # the test has no DNS for its name; it checks through --resolve',
        '  certificates:',
        `    - cert: ${good.fullchain}`,
        `      key: ${good.key}`,
        `      names: [${HOST}]`,
        'apps:',
        '  - appid: wx0123456789abcdef',
        '    secret: s',
        '',
      ].join('\n'),
    );
    const server = startCli(['start', '-c', file]);
    try {
      await server.waitForLine(/^minigate listening on/);
      const internal = /internal API on (http:\S+)/.exec(await server.waitForLine(/^minigate internal API on/))![1]!;
      const answer = await runCli(['check', '-c', file, '--resolve', `${HOST}:127.0.0.1`, '--ca', ca.rootPem, '--json'], { timeoutMs: 60_000 });
      const report = JSON.parse(answer.stdout);
      expect(report.results.map((r: any) => [r.url, r.type])).toEqual([
        [`https://${HOST}:${port}/`, 'request'],
        [`wss://${HOST}:${port}/channel`, 'socket'],
      ]);
      const socket = report.results[1];
      expect(find(socket, 'http').detail).toMatch(/WebSocket upgrade: 401/);
      expect(report.results.flatMap((r: any) => r.checks.filter((c: any) => c.verdict === 'fail'))).toEqual([]);
      expect(answer.code).toBe(0);

      // The same checks through the internal API (for the admin console).
      const viaApi = await fetch(`${internal}/v1/check`, {
        method: 'POST',
        headers: { authorization: 'Bearer check-internal-token-0123456789abcdef', 'content-type': 'application/json' },
        body: JSON.stringify({ urls: [{ url: `https://${HOST}:${port}/` }, { url: 'https://localhost/' }], resolve: { [HOST]: '127.0.0.1' } }),
      });
      const api = (await viaApi.json()) as any;
      expect(api.version).toBe(1);
      expect(find(api.results[0], 'chain').verdict).toBe('pass');
      expect(find(api.results[0], 'trust').verdict).toBe('fail'); // no --ca here: the test root is not trusted
      expect(api.results[1].checks.map((c: any) => c.verdict)).toEqual(['fail']);
    } finally {
      await server.stop();
    }
  });
});
