/**
 * `minigate init` as a new user runs it: flags and --yes write a config that `validate` accepts
 * and `start` serves (a login against the sandbox, over HTTPS with the certificate init was
 * given, the AppSecret read from the .env init wrote); --force; hostile answers write nothing.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSandbox, type Sandbox } from 'minigate-sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { renderConfig, renderEnv, type InitAnswers } from '../src/cli/init.js';
import { runCli, startCli } from './helpers/cli.js';
import { get } from './helpers/https.js';
import { makeCa, makeLeaf, type TestCa, type TestLeaf } from './helpers/pki.js';

const APPID = 'wx1234567890abcdef';
const SECRET = '0123456789abcdef0123456789abcdef';
const DOMAIN = 'api.example.com';
let ca: TestCa;
let leaf: TestLeaf;
let sandbox: Sandbox;
let sandboxUrl: string;
const dirs: string[] = [];
const SECRET_FILE = path.join(tmpdir(), `mg-init-secret-${process.pid}`);

function newDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'mg-init-'));
  dirs.push(dir);
  return dir;
}

const baseFlags = () => ['init', '--yes', '--domain', DOMAIN, '--appid', APPID, '--cert', leaf.fullchain, '--key', leaf.key];

beforeAll(async () => {
  ca = makeCa();
  leaf = makeLeaf(ca, [DOMAIN]);
  writeFileSync(SECRET_FILE, `${SECRET}\n`, { mode: 0o600 });
  sandbox = createSandbox({ apps: [{ appid: APPID, secret: SECRET }] });
  sandboxUrl = await sandbox.start();
});
afterAll(async () => {
  await sandbox?.close();
  rmSync(SECRET_FILE, { force: true });
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  if (ca) rmSync(ca.dir, { recursive: true, force: true });
});

describe('minigate init', () => {
  it('--yes with flags writes minigate.yaml and a 0600 .env; validate passes; start serves a login through the sandbox', async () => {
    const dir = newDir();
    const made = await runCli([...baseFlags(), '--upstream', 'http://127.0.0.1:3000'], { cwd: dir, env: { WX_APP_SECRET: SECRET } });
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
    expect(made.stdout).toContain(`request合法域名     https://${DOMAIN}`);
    expect(made.stdout).toContain(`socket合法域名      wss://${DOMAIN}`);
    expect(made.stdout).toMatch(/uploadFile合法域名 +https:\/\/api\.example\.com/);
    expect(made.stdout).toMatch(/downloadFile合法域名 +https:\/\/api\.example\.com/);
    expect(made.stdout).toContain('minigate validate -c minigate.yaml');

    const yaml = readFileSync(path.join(dir, 'minigate.yaml'), 'utf8');
    expect(yaml).not.toContain(SECRET); // the secret is in .env only
    expect(yaml).toMatch(/^# /); // commented
    const env = path.join(dir, '.env');
    expect(statSync(env).mode & 0o777).toBe(0o600);
    expect(readFileSync(env, 'utf8')).toContain(`WX_APP_SECRET=${SECRET}`);
    expect(readFileSync(env, 'utf8')).toMatch(/^UPSTREAM_SECRET=[0-9a-f]{64}$/m);

    // validate from the config's directory: the .env beside it supplies the secrets.
    const valid = await runCli(['validate'], { cwd: dir });
    expect(valid.stderr).toBe('');
    expect(valid.stdout).toContain('ok — 1 app (wx1234567890abcdef)');

    // start from elsewhere, on free ports, against the sandbox (as a deployment would point at WeChat).
    const cli = startCli(['start', '-c', path.join(dir, 'minigate.yaml')], {
      cwd: tmpdir(),
      env: {
        MINIGATE_LISTEN_HTTP: '127.0.0.1:0',
        MINIGATE_LISTEN_HTTPS: '127.0.0.1:0',
        MINIGATE_WECHAT_APIBASE: sandboxUrl,
        MINIGATE_TLS_CHECKDOMAINS: 'false',
      },
    });
    try {
      const url = /listening on (\S+)/.exec(await cli.waitForLine(/^minigate listening on/))![1]!;
      expect(url).toMatch(/^https:/);
      const code = (await (await fetch(`${sandboxUrl}/__sandbox/login`, { method: 'POST', body: JSON.stringify({ appid: APPID }) })).json()) as { code: string };
      const ca_ = readFileSync(ca.rootPem);
      const login = await get(`${url}/auth/login`, {
        ca: ca_,
        servername: DOMAIN,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code: code.code }),
      });
      expect(login.status).toBe(200);
      const token = login.json().token as string;
      const session = await get(`${url}/auth/session`, { ca: ca_, servername: DOMAIN, headers: { authorization: `Bearer ${token}` } });
      expect(session.status).toBe(200);
      expect(session.json().appid ?? APPID).toBe(APPID);
      // The SQLite database landed in the config's directory, not the working directory.
      expect(existsSync(path.join(dir, 'data'))).toBe(true);
    } finally {
      expect(await cli.stop()).toBe(0);
    }
  }, 60_000);

  it('start and validate read the .env beside the config; a variable already set wins; a MINIGATE_* typo in it is named', async () => {
    const dir = newDir();
    const made = await runCli([...baseFlags(), '-c', path.join(dir, 'site.yaml')], { cwd: tmpdir(), env: { WX_APP_SECRET: SECRET } });
    expect(made.code).toBe(0);
    expect(existsSync(path.join(dir, '.env'))).toBe(true); // beside the config, not in the working directory
    // Without the .env the secret is missing: proof that validate read it.
    const withEnv = await runCli(['validate', '-c', path.join(dir, 'site.yaml')], { cwd: tmpdir() });
    expect(withEnv.code).toBe(0);
    const overridden = await runCli(['validate', '-c', path.join(dir, 'site.yaml')], { cwd: tmpdir(), env: { MINIGATE_STORE: 'postgres://u@db.internal/x' } });
    expect(overridden.stdout).toContain('store postgres://u@db.internal/x');
    writeFileSync(path.join(dir, '.env'), `WX_APP_SECRET=${SECRET}\nMINIGATE_STOER=x\n`);
    const typo = await runCli(['validate', '-c', path.join(dir, 'site.yaml')], { cwd: tmpdir() });
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain('MINIGATE_STOER');
    rmSync(path.join(dir, '.env'));
    const without = await runCli(['validate', '-c', path.join(dir, 'site.yaml')], { cwd: tmpdir() });
    expect(without.code).toBe(1);
    expect(without.stderr).toContain('WX_APP_SECRET is not set');
  });

  it('never overwrites without --force, and names the file; --force rewrites both (the .env 0600 again)', async () => {
    const dir = newDir();
    writeFileSync(path.join(dir, 'minigate.yaml'), 'mine\n');
    const refused = await runCli(baseFlags(), { cwd: dir, env: { WX_APP_SECRET: SECRET } });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${path.join(dir, 'minigate.yaml')} exists`);
    expect(refused.stderr).toContain('--force');
    expect(readFileSync(path.join(dir, 'minigate.yaml'), 'utf8')).toBe('mine\n');
    expect(existsSync(path.join(dir, '.env'))).toBe(false);

    // A .env alone is protected too (it may hold another deployment's secrets).
    const dir2 = newDir();
    writeFileSync(path.join(dir2, '.env'), 'KEEP=1\n', { mode: 0o644 });
    const refused2 = await runCli(baseFlags(), { cwd: dir2, env: { WX_APP_SECRET: SECRET } });
    expect(refused2.code).toBe(2);
    expect(refused2.stderr).toContain(`${path.join(dir2, '.env')} exists`);

    const forced = await runCli([...baseFlags(), '--force'], { cwd: dir2, env: { WX_APP_SECRET: SECRET } });
    expect(forced.code).toBe(0);
    expect(readFileSync(path.join(dir2, '.env'), 'utf8')).not.toContain('KEEP=1');
    expect(statSync(path.join(dir2, '.env')).mode & 0o777).toBe(0o600);
  });

  const hostile: [string, string[], NodeJS.ProcessEnv, RegExp][] = [
    ['an AppID that is not one', ['--appid', 'wx123'], {}, /--appid: "wx123" is not valid/],
    ['an AppID with YAML in it', ['--appid', 'wx1234567890abcdef\n  secret: x'], {}, /--appid/],
    ['a domain with a scheme', ['--domain', 'https://api.example.com'], {}, /--domain: give the bare name/],
    ['a domain with a path', ['--domain', 'api.example.com/api'], {}, /--domain: give the bare name/],
    ['a domain with a port', ['--domain', 'api.example.com:443'], {}, /--domain: give the bare name/],
    ['an IP address as the domain', ['--domain', '1.2.3.4'], {}, /--domain: "1.2.3.4" is not valid/],
    ['an upstream that is not a URL', ['--upstream', 'localhost:3000/x y'], {}, /--upstream: .* is not valid; expected an http\(s\) URL/],
    ['an upstream with another scheme', ['--upstream', 'file:///etc/passwd'], {}, /--upstream/],
    ['a store that is not a database URL', ['--store', 'redis://127.0.0.1'], {}, /--store: "redis:\/\/127\.0\.0\.1" is not valid/],
    ['no AppSecret anywhere', [], { WX_APP_SECRET: undefined }, /the AppSecret: set WX_APP_SECRET/],
    ['an AppSecret with a newline (would break .env)', [], { WX_APP_SECRET: `${SECRET}\nMINIGATE_STORE=x` }, /the AppSecret/],
    ['a secret variable name that is not one', ['--secret-env', 'A B'], {}, /--secret-env/],
    ['two kinds of certificate', ['--acme-email', 'ops@example.com'], {}, /one of --acme-email, --cert/],
  ];
  it.each(hostile)('refuses %s with a clear error and writes nothing', async (_label, flags, env, message) => {
    const dir = newDir();
    // Later flags win in parseArgs, so each case replaces one good answer.
    const result = await runCli([...baseFlags(), ...flags], { cwd: dir, env: { WX_APP_SECRET: SECRET, ...env } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toContain(SECRET);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('asks for nothing off a terminal without --yes: the error says so', async () => {
    const dir = newDir();
    const result = await runCli(['init'], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('give --yes');
    expect(readdirSync(dir)).toEqual([]);
  });

  // Every kind of answer renders a config the schema accepts (files need not exist to load).
  const variants: [string, Partial<InitAnswers>][] = [
    ['ACME and SQLite', { tls: { acmeEmail: 'ops@example.com' } }],
    ['PFX and MySQL', { tls: { pfx: '/etc/ssl/site.pfx', password: 'pw' }, store: 'mysql://u:p@127.0.0.1:3306/db' }],
    ['JKS and PostgreSQL, secret in a file', { tls: { jks: '/etc/ssl/site.jks', password: 'pw' }, store: 'postgres://u:p@db/x', secret: { file: SECRET_FILE } }],
  ];
  it.each(variants)('renders a config the schema accepts: %s', (_label, change) => {
    const answers: InitAnswers = { domain: DOMAIN, appid: APPID, secret: { env: 'WX_APP_SECRET', value: SECRET }, store: 'sqlite', tls: { acmeEmail: 'a@b.cn' }, upstream: 'http://127.0.0.1:3000', ...change };
    const env = Object.fromEntries(
      renderEnv(answers)
        .split('\n')
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const config = loadConfig({ text: renderConfig(answers), env, cwd: '/srv/minigate' });
    expect(config.apps[0]!.appid).toBe(APPID);
    expect(config.routes[0]!.proxy).toBe('http://127.0.0.1:3000');
    if (answers.store !== 'sqlite') expect(config.store).toBe(answers.store);
  });
});
