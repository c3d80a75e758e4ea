/**
 * `minigate validate` says "ok" only to what `start` then runs: each config here used to pass
 * validate and fail (or misbehave) at start. Certificates are made with openssl as an operator
 * makes them; every command runs the real CLI.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from 'minigate-sandbox';
import { runCli, startCli } from './helpers/cli.js';
import { freePort } from './helpers/pebble.js';
import { makeCa, makeJks, makeLeaf, makePfx, type TestCa, type TestLeaf } from './helpers/pki.js';
import { createTestDatabase } from './helpers/databases.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import { createServer as createNetServer } from 'node:net';

const APPID = 'wx0123456789abcdef';
const HOST = 'api.minigate.test';
const POSTGRES = process.env.TEST_POSTGRES_URL;
let dir: string;
let ca: TestCa;
let leaf: TestLeaf;
let other: TestLeaf;
let sandbox: Sandbox;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-truth-'));
  ca = makeCa();
  leaf = makeLeaf(ca, [HOST]);
  other = makeLeaf(ca, ['other.minigate.test']);
  sandbox = createSandbox({ apps: [{ appid: APPID, secret: 'secret' }] });
  await sandbox.start();
});
afterAll(async () => {
  await sandbox?.close();
  rmSync(dir, { recursive: true, force: true });
});

let count = 0;
/** A config file with the given lines after the app; returns its path. */
function config(lines: string[], name = `c${++count}`): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, [`dataDir: ./${name}-data`, 'wechat:', `  apiBase: ${sandbox.url}`, 'apps:', `  - appid: ${APPID}`, '    secret: secret', ...lines, ''].join('\n'));
  return file;
}

/** HTTPS with one certificate entry (its lines indented under `- `). */
function withCertificate(entry: string[], listen = ['  http: 127.0.0.1:0', '  https: 127.0.0.1:0']): string {
  return config(['listen:', ...listen, 'tls:', '  checkDomains: false', '  certificates:', `    - ${entry[0]}`, ...entry.slice(1).map((l) => `      ${l}`)]);
}

/** `minigate validate` fails with a problem at `file:line:col  path: …` matching `message`. */
async function refuses(file: string, line: number, key: string, message: RegExp): Promise<string> {
  const result = await runCli(['validate', '-c', file]);
  expect(result.code, result.stderr).toBe(1);
  const problem = result.stderr.split('\n').find((l) => l.startsWith(`${file}:${line}:`));
  expect(problem, result.stderr).toBeDefined();
  expect(problem).toContain(`  ${key}: `);
  expect(problem).toMatch(message);
  return problem!;
}

describe('certificates: validate refuses what start would', () => {
  // Lines: 1 dataDir, 2-3 wechat, 4-6 apps, 7 listen, 8 http, 9 https, 10 tls, 11 checkDomains, 12 certificates, 13 first key of the entry.
  it('accepts a good PEM pair, and lists the listeners start binds', async () => {
    const file = withCertificate([`cert: ${leaf.fullchain}`, `key: ${leaf.key}`]);
    const result = await runCli(['validate', '-c', file]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('http 127.0.0.1:0, https 127.0.0.1:0');
  });

  it('a certificate file that does not exist', async () => {
    const missing = path.join(dir, 'missing.pem');
    await refuses(withCertificate([`cert: ${missing}`, `key: ${leaf.key}`]), 13, 'tls.certificates[0].cert', new RegExp(`${missing}: no such file .*WeChat`));
  });

  it('a key file that cannot be read (a directory)', async () => {
    await refuses(withCertificate([`cert: ${leaf.fullchain}`, `key: ${dir}`]), 14, 'tls.certificates[0].key', /: EISDIR/);
  });

  it('a key that does not match the certificate', async () => {
    await refuses(withCertificate([`cert: ${leaf.cert}`, `key: ${other.key}`]), 14, 'tls.certificates[0].key', /the private key does not match the certificate/);
  });

  it('a "certificate" file with no certificate in it (the key given twice)', async () => {
    await refuses(withCertificate([`cert: ${leaf.key}`, `key: ${leaf.key}`]), 13, 'tls.certificates[0].cert', /no PEM certificate in it/);
  });

  it("the intermediate's key given as the site key: start would serve the CA certificate", async () => {
    const problem = await refuses(withCertificate([`cert: ${leaf.fullchain}`, `key: ${ca.intermediateKey}`]), 13, 'tls.certificates[0]', /belongs to a CA certificate/);
    expect(problem).toMatch(/WeChat: the certificate must be issued to the domain/);
    // start refuses it too, before binding anything (nothing announced).
    const started = await runCli(['start', '-c', problem.split(':')[0]!]);
    expect(started.code).toBe(1);
    expect(started.stdout).toBe('');
    expect(started.stderr).toContain('belongs to a CA certificate');
  });

  it('a chain out of order (the root before the intermediate)', async () => {
    const chain = path.join(dir, 'wrong-order.pem');
    writeFileSync(chain, readFileSync(ca.rootPem, 'utf8') + readFileSync(ca.intermediatePem, 'utf8'));
    await refuses(withCertificate([`cert: ${leaf.cert}`, `key: ${leaf.key}`, `chain: ${chain}`]), 13, 'tls.certificates[0]', /certificate 2 of the chain did not issue certificate 1 .*WeChat/);
  });

  it('an expired certificate', async () => {
    const expired = makeLeaf(ca, [HOST], { days: -1 });
    await refuses(withCertificate([`cert: ${expired.fullchain}`, `key: ${expired.key}`]), 13, 'tls.certificates[0]', /expired on .*WeChat/);
  });

  it('a PFX with the wrong passphrase, and one that is not PKCS#12', async () => {
    const pfx = makePfx(leaf, 'right');
    await refuses(withCertificate([`pfx: ${pfx}`, 'passphrase: wrong']), 13, 'tls.certificates[0].pfx', /wrong passphrase/);
    await refuses(withCertificate([`pfx: ${leaf.cert}`, 'passphrase: right']), 13, 'tls.certificates[0].pfx', /not a PKCS#12\/PFX file/);
    const good = await runCli(['validate', '-c', withCertificate([`pfx: ${pfx}`, 'passphrase: right'])]);
    expect(good.code, good.stderr).toBe(0);
  });

  it('a JKS keystore with the wrong password, and a missing one', async () => {
    const jks = makeJks(leaf, 'changeit');
    await refuses(withCertificate([`jks: ${jks}`, 'password: wrong']), 13, 'tls.certificates[0].jks', /password/i);
    await refuses(withCertificate([`jks: ${jks}.gone`, 'password: changeit']), 13, 'tls.certificates[0].jks', /no such file/);
    const good = await runCli(['validate', '-c', withCertificate([`jks: ${jks}`, 'password: changeit'])]);
    expect(good.code, good.stderr).toBe(0);
  });

  it('certificates are not read without listen.https (start does not load them)', async () => {
    const file = config(['tls:', '  certificates:', `    - cert: ${path.join(dir, 'missing.pem')}`, `      key: ${leaf.key}`]);
    const result = await runCli(['validate', '-c', file]);
    expect(result.code, result.stderr).toBe(0);
  });
});

describe('listen.http beside listen.https', () => {
  it('is not bound unless given', async () => {
    const file = withCertificate([`cert: ${leaf.fullchain}`, `key: ${leaf.key}`], ['  https: 127.0.0.1:0']);
    const result = await runCli(['validate', '-c', file]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/: ok — .*https 127\.0\.0\.1:0\n$/);
    expect(result.stdout).not.toContain('http 127.0.0.1:8080');
    const cli = startCli(['start', '-c', file]);
    try {
      await cli.waitForLine(/^minigate listening on https:/);
      expect(cli.stderr()).not.toContain('8080');
      expect(cli.stderr()).not.toMatch(/"listener":"http"/);
    } finally {
      await cli.stop();
    }
  });

  it('stays 127.0.0.1:8080 when it is the only listener', async () => {
    const result = await runCli(['validate', '-c', config([])]);
    expect(result.stdout).toContain('http 127.0.0.1:8080');
  });

  it('is required by tls.acme (HTTP-01 is answered on it)', async () => {
    const file = config(['listen:', '  https: 127.0.0.1:0', 'tls:', '  acme:', '    email: ops@minigate.test', `    domains: [${HOST}]`]);
    await refuses(file, 7, 'listen', /tls\.acme proves the domains with HTTP-01 on port 80: set listen\.http/);
  });
});

describe('store: sqlite:PATH', () => {
  it('is resolved against the config file, not the working directory of start', async () => {
    const home = path.join(dir, 'home');
    const elsewhere = path.join(dir, 'elsewhere');
    mkdirSync(home);
    mkdirSync(elsewhere);
    const file = path.join(home, 'minigate.yaml');
    writeFileSync(file, ['dataDir: ./data', 'listen:', '  http: 127.0.0.1:0', 'wechat:', `  apiBase: ${sandbox.url}`, 'apps:', `  - appid: ${APPID}`, '    secret: secret', 'store: sqlite:./db/x.db', ''].join('\n'));
    const validated = await runCli(['validate', '-c', file], { cwd: elsewhere });
    expect(validated.stdout).toContain(`store sqlite:${path.join(home, 'db', 'x.db')}`);
    const cli = startCli(['start', '-c', file], { cwd: elsewhere });
    try {
      await cli.waitForLine(/^minigate listening on http:/);
      expect(existsSync(path.join(home, 'db', 'x.db'))).toBe(true);
      expect(existsSync(path.join(elsewhere, 'db'))).toBe(false);
    } finally {
      await cli.stop();
    }
  });
});

describe('typo suggestions', () => {
  it('cover the File form of a secret', async () => {
    const file = path.join(dir, 'typo.yaml');
    writeFileSync(file, ['apps:', `  - appid: ${APPID}`, '    secretFlie: ./secret.txt', ''].join('\n'));
    const result = await runCli(['validate', '-c', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}:3:5  apps[0].secretFlie: unknown key (did you mean "secretFile"?)`);
  });
});

describe('minigate check', () => {
  it('-c takes the names from the certificate when names: is absent', async () => {
    const file = withCertificate([`cert: ${leaf.fullchain}`, `key: ${leaf.key}`], ['  https: 127.0.0.1:1']);
    const result = await runCli(['check', '-c', file, '--json', '--timeout', '1', '--resolve', `${HOST}:127.0.0.1`], { timeoutMs: 30_000 });
    expect(result.stderr).not.toContain('no domain to check');
    const report = JSON.parse(result.stdout) as { results: { url: string }[] };
    expect(report.results.map((r) => r.url)).toContain(`https://${HOST}:1/`);
  });

  it('a name without a scheme means https://', async () => {
    const result = await runCli(['check', '127.0.0.1:1', '--json', '--timeout', '1'], { timeoutMs: 30_000 });
    const report = JSON.parse(result.stdout) as { results: { url: string }[] };
    expect(report.results.map((r) => r.url)).toEqual(['https://127.0.0.1:1']);
  });
});

describe('a database that is not up yet', () => {
  it('start listens, answers /readyz 503 with the reason, and serves once the database comes up 10 s late', { timeout: 60_000 }, async () => {
    // A database of its own: the shared one may hold another test's secret-key fingerprint.
    const database = await createTestDatabase('postgres');
    const target = new URL(database.url);
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.cut('refuse');
    const httpPort = await freePort();
    const store = `postgres://${target.username}${target.password ? `:${target.password}` : ''}@127.0.0.1:${proxy.port}${target.pathname}`;
    const file = config(['listen:', `  http: 127.0.0.1:${httpPort}`, `store: ${store}`]);
    const began = Date.now();
    const cli = startCli(['start', '-c', file]);
    try {
      // The listener is up at once, and says why it is not ready.
      let ready: Response | undefined;
      for (let i = 0; i < 100 && !ready; i++) {
        ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined);
        if (!ready) await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 1_000));
      ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
      expect(ready.status).toBe(503);
      const body = (await ready.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('NOT_READY');
      expect(body.error.message).toContain('store: waiting for the database');
      expect(body.error.message).toContain('ECONNREFUSED');
      await new Promise((r) => setTimeout(r, Math.max(0, began + 10_000 - Date.now())));
      await proxy.restore();
      const line = await cli.waitForLine(/^minigate listening on http:/, 20_000);
      expect(line).toContain(String(httpPort));
      expect((await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status).toBe(200);
      // Several failed attempts, logged once (the reason did not change), with the fix hint.
      const waits = cli.stderr().split('\n').filter((l) => l.includes('the database is not reachable yet'));
      expect(waits).toHaveLength(1);
      expect(waits[0]).toContain('startup.storeTimeout');
      // The log is written asynchronously: it may trail the "listening" line a little.
      for (let i = 0; i < 50 && !/the database is up/.test(cli.stderr()); i++) await new Promise((r) => setTimeout(r, 100));
      expect(cli.stderr()).toMatch(/"attempts":\d+.*the database is up/);
    } finally {
      await cli.stop();
      await proxy.close();
      await database.drop();
    }
  });

  it('start still exits 1 by itself once startup.storeTimeout has passed', { timeout: 30_000 }, async () => {
    const file = config(['listen:', '  http: 127.0.0.1:0', 'store: postgres://postgres@127.0.0.1:1/test', 'startup:', '  storeTimeout: 2s']);
    const began = Date.now();
    const result = await runCli(['start', '-c', file]);
    expect(result.code).toBe(1);
    expect(Date.now() - began).toBeGreaterThan(1_500);
    expect(result.stderr).toMatch(/^minigate: cannot use the store postgres:\/\/postgres@127\.0\.0\.1:1\/test: .*ECONNREFUSED.*\(tried \d+ times over \d+ s; startup\.storeTimeout is 2 s\)/m);
  });

  it('a wrong database name is not waited for', async () => {
    if (!POSTGRES) return;
    const url = new URL(POSTGRES);
    url.pathname = '/no_such_database_here';
    const file = config(['listen:', '  http: 127.0.0.1:0', `store: ${url.toString()}`]);
    const began = Date.now();
    const result = await runCli(['start', '-c', file]);
    expect(result.code).toBe(1);
    expect(Date.now() - began).toBeLessThan(10_000);
    expect(result.stderr).not.toContain('tried');
  });
});

describe('minigate dev --port N', () => {
  it('moves HTTPS to N+1, and a taken HTTPS port names --https-port', { timeout: 60_000 }, async () => {
    const port = await freePort();
    // Something else holds N+1: the error says which flag moves it.
    const holder = createNetServer();
    await new Promise<void>((resolve) => holder.listen(port + 1, '127.0.0.1', resolve));
    try {
      const taken = await runCli(['dev', '--port', String(port), '--data', path.join(dir, 'dev-taken')]);
      expect(taken.code).toBe(1);
      expect(taken.stderr).toContain(`127.0.0.1:${port + 1} is already in use`);
      expect(taken.stderr).toContain('choose another port with --https-port N');
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
    const dev = startCli(['dev', '--json', '--port', String(port), '--data', path.join(dir, 'dev-moved')]);
    try {
      const facts = JSON.parse(await dev.waitForLine(/^\{/)) as { url: string; httpsUrl: string };
      expect(facts.url).toBe(`http://127.0.0.1:${port}`);
      expect(facts.httpsUrl).toBe(`https://127.0.0.1:${port + 1}`);
    } finally {
      await dev.stop();
    }
  });
});
