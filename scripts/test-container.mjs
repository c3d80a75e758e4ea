#!/usr/bin/env node
/**
 * npm run test:container — builds deploy/Dockerfile with podman and runs the image as a user
 * would, against this machine's MariaDB and Redis and a WeChat sandbox on the host:
 *
 *   1. the image: non-root user 10001, tini as PID 1, no compilers, /data 0700, binds a port
 *      below 1024 as that user (host networking needs it);
 *   2. MariaDB + Redis: /healthz, the image's HEALTHCHECK, the HTTP→HTTPS redirect with
 *      listen.publicHttpsPort, a login through the sandbox (the user row lands in MariaDB),
 *      SIGTERM (podman stop) → exit code 0;
 *   3. SQLite on the /data volume: a login, the container removed, a new one on the same volume:
 *      the session token still works.
 *
 * Not part of `npm test` (it takes minutes). Without podman it prints "skipped: …" and exits 0;
 * a podman that is installed but broken fails. As root it sets podman up the way machines without
 * a Docker daemon need (runc, cgroupfs, no default ulimits) unless containers.conf exists, and
 * builds a stand-in base image (scripts/container/base-image.sh) when node:20-bookworm-slim can
 * be neither found nor pulled. Environment: TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306/test),
 * TEST_REDIS_URL (default redis://127.0.0.1:6379).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(path.join(root, 'packages/server/package.json'));
const started = Date.now();
const BASE = 'docker.io/library/node:20-bookworm-slim';
const IMAGE = 'localhost/minigate:container-test';
const APPID = 'wx00c0a1a1e7e57000';
const APP_SECRET = 'container-test-app-secret';
const PORTS = { http: 18080, https: 18443, internal: 19090, sandbox: 19191, lowPort: 981 };
const MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = `mgct${process.pid}`;
const DATABASE = `minigate_${run}`;

const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
const log = (text) => console.log(`[test:container ${seconds()}s] ${text}`);
const cleanups = [];

function fail(text) {
  throw new Error(text);
}

/** Runs a command; its output is returned, or it fails with its stderr. */
function sh(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  if (result.error) fail(`${cmd} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0 && !options.allowFail) {
    fail(`${cmd} ${args.join(' ')} exited ${result.status}:\n${(result.stderr || result.stdout || '').trim().slice(-4000)}`);
  }
  return result;
}

const podman = (...args) => sh('podman', args);
const podmanOk = (...args) => sh('podman', args, { allowFail: true }).status === 0;

/** Streams a long command's output (builds), failing on a non-zero exit. */
function stream(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (chunk) => {
      tail = (tail + chunk).slice(-6000);
      if (process.env.VERBOSE) process.stdout.write(chunk);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${tail}`))));
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(what, seconds, probe) {
  const deadline = Date.now() + seconds * 1000;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await sleep(500);
  }
  fail(`timed out after ${seconds} s waiting for ${what}${last ? ` (${last.message})` : ''}`);
}

// ---------------------------------------------------------------------------------------------
// podman: present, set up, working

function podmanUsable() {
  const which = spawnSync('podman', ['--version'], { encoding: 'utf8' });
  if (which.error) return `podman is not installed (${which.error.code})`;
  return undefined;
}

function setUpPodman() {
  if (process.getuid?.() !== 0) return;
  const conf = '/etc/containers/containers.conf';
  if (existsSync(conf)) return;
  // crun cannot set RLIMIT_NOFILE in these sandboxes and the systemd cgroup manager is absent;
  // runc with cgroupfs and no default ulimits works.
  if (spawnSync('runc', ['--version']).error) fail('runc is not installed: apt-get install -y runc (podman is set up to use it)');
  mkdirSync('/etc/containers', { recursive: true });
  writeFileSync(conf, '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n');
  log(`wrote ${conf} (runc, cgroupfs, no default ulimits)`);
}

async function baseImage() {
  if (podmanOk('image', 'exists', BASE)) return log(`base image ${BASE} present`);
  const pulled = spawnSync('podman', ['pull', '-q', BASE], { encoding: 'utf8', timeout: 60_000 });
  if (pulled.status === 0) return log(`pulled ${BASE}`);
  log(`no registry answered (${(pulled.stderr || 'timeout').trim().split('\n').pop()}); building a stand-in from the Debian mirror`);
  await stream('bash', [path.join(root, 'scripts/container/base-image.sh')]);
  log('stand-in base image built');
}

// ---------------------------------------------------------------------------------------------
// the host side: sandbox, database, config

async function startSandbox() {
  const child = spawn(
    process.execPath,
    [path.join(root, 'packages/server/bin/minigate.js'), 'sandbox', '--host', '127.0.0.1', '--port', String(PORTS.sandbox), '--app', `${APPID}:${APP_SECRET}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  cleanups.push(() => child.kill('SIGTERM'));
  await until(`the sandbox on port ${PORTS.sandbox} (${stderr.trim()})`, 30, async () => (await fetch(`http://127.0.0.1:${PORTS.sandbox}/__sandbox`)).ok);
}

async function sandboxCode() {
  const response = await fetch(`http://127.0.0.1:${PORTS.sandbox}/__sandbox/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ appid: APPID }),
  });
  const body = await response.json();
  if (!body.code) fail(`the sandbox gave no code: ${JSON.stringify(body)}`);
  return body;
}

async function mysql(statements) {
  const { createConnection } = require('mysql2/promise');
  const connection = await createConnection({ uri: MYSQL_URL, connectTimeout: 5000 });
  try {
    const results = [];
    for (const [sql, params] of statements) results.push((await connection.query(sql, params))[0]);
    return results;
  } finally {
    await connection.end();
  }
}

/** A config directory mounted at /etc/minigate (readable by the container's user 10001). */
function configDir(name, store) {
  const dir = mkdtempSync(path.join(tmpdir(), `${run}-${name}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'secrets'));
  writeFileSync(path.join(dir, 'secrets', 'wx_app_secret'), `${APP_SECRET}\n`);
  writeFileSync(path.join(dir, 'secrets', 'internal_token'), `${'t'.repeat(40)}\n`);
  const yaml = [
    'dataDir: /data',
    'listen:',
    `  http: 127.0.0.1:${PORTS.http}`,
    `  https: 127.0.0.1:${PORTS.https}`,
    '  publicHttpsPort: 443',
    `  internal: 127.0.0.1:${PORTS.internal}`,
    'tls: { devCa: true, checkDomains: false }',
    `wechat: { apiBase: "http://127.0.0.1:${PORTS.sandbox}" }`,
    'apps:',
    `  - appid: ${APPID}`,
    '    secretFile: secrets/wx_app_secret',
    'internal: { tokenFile: secrets/internal_token }',
    ...(store ? [`store: "${store}"`, `redis: "${REDIS_URL}"`] : []),
    'log: { level: info }',
    '',
  ].join('\n');
  writeFileSync(path.join(dir, 'minigate.yaml'), yaml);
  // mkdtemp makes the directory 0700 for root; the container reads it as uid 10001.
  for (const p of [dir, path.join(dir, 'secrets')]) chmodSync(p, 0o755);
  for (const f of ['minigate.yaml', 'secrets/wx_app_secret', 'secrets/internal_token']) chmodSync(path.join(dir, f), 0o644);
  return dir;
}

// ---------------------------------------------------------------------------------------------
// the container

function runContainer(name, config, volume) {
  podman(
    'run', '-d', '--name', name, '--network', 'host',
    '-v', `${config}:/etc/minigate:ro`,
    '-v', `${volume}:/data`,
    '-e', `HEALTHCHECK_URL=http://127.0.0.1:${PORTS.http}/healthz`,
    IMAGE,
  );
  cleanups.push(() => sh('podman', ['rm', '-f', '-t', '0', name], { allowFail: true }));
}

async function healthy(name) {
  // /healthz answers as soon as the listeners are bound; /readyz once every feature has started
  // (a login before that is 503 NOT_READY).
  for (const probe of ['/healthz', '/readyz']) {
    await until(`${name} to answer ${probe}`, 90, async () => {
      if (podman('inspect', name, '--format', '{{.State.Running}}').stdout.trim() !== 'true') {
        fail(`${name} exited:\n${sh('podman', ['logs', name], { allowFail: true }).stderr.slice(-3000)}`);
      }
      return (await fetch(`http://127.0.0.1:${PORTS.http}${probe}`)).status === 200;
    });
  }
}

/** HTTPS to the container (its dev CA is not trusted here: this checks minigate, not the CA). */
function https(method, pathname, { body, token } = {}) {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: PORTS.https,
        path: pathname,
        method,
        servername: 'localhost',
        rejectUnauthorized: false,
        agent: false,
        headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c) => (text += c)).on('end', () => resolve({ status: res.statusCode, json: () => JSON.parse(text), text }));
      },
    );
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

async function login() {
  const { code, openid } = await sandboxCode();
  const answer = await https('POST', '/auth/login', { body: { code } });
  if (answer.status !== 200) fail(`login answered ${answer.status}: ${answer.text}`);
  return { token: answer.json().token, openid };
}

async function sessionStatus(token) {
  return (await https('GET', '/auth/session', { token })).status;
}

/** podman stop sends SIGTERM to tini, which hands it to minigate: it drains and exits 0. */
function stopWithSigterm(name) {
  const before = Date.now();
  podman('stop', '-t', '30', name);
  const code = podman('inspect', name, '--format', '{{.State.ExitCode}}').stdout.trim();
  const logs = sh('podman', ['logs', name], { allowFail: true });
  if (code !== '0') fail(`${name} exited ${code} on SIGTERM:\n${(logs.stdout + logs.stderr).slice(-3000)}`);
  return Date.now() - before;
}

// ---------------------------------------------------------------------------------------------

async function checkImage() {
  const inspect = JSON.parse(podman('image', 'inspect', IMAGE).stdout)[0];
  const cfg = inspect.Config;
  if (cfg.User !== 'minigate') fail(`image user is ${JSON.stringify(cfg.User)}, expected minigate`);
  // podman reports the health check beside Config, Docker inside it.
  const healthcheck = inspect.Healthcheck ?? cfg.Healthcheck;
  if (!healthcheck?.Test?.join(' ').includes('HEALTHCHECK_URL')) fail(`image has no health check: ${JSON.stringify(healthcheck)}`);
  if (!cfg.Entrypoint?.[0]?.endsWith('tini')) fail(`entrypoint is not tini: ${JSON.stringify(cfg.Entrypoint)}`);
  const facts = podman(
    'run', '--rm', '--network', 'host', IMAGE, 'sh', '-c',
    `id -u; stat -c '%a %U' /data; for c in g++ gcc make python3; do command -v $c || true; done; ` +
      `node -e "require('net').createServer().listen(${PORTS.lowPort},'127.0.0.1',function(){console.log('bound ${PORTS.lowPort}');this.close()})"`,
  ).stdout.trim().split('\n');
  const expected = ['10001', '700 minigate', `bound ${PORTS.lowPort}`];
  if (JSON.stringify(facts) !== JSON.stringify(expected)) fail(`image facts ${JSON.stringify(facts)}, expected ${JSON.stringify(expected)} (user, /data mode, no compilers, a port below 1024)`);
  const mb = (inspect.Size / 1e6).toFixed(0);
  log(`image: user 10001, tini entrypoint, /data 0700, no compilers, binds port ${PORTS.lowPort} as non-root; ${mb} MB`);
}

async function withMariaDb() {
  await mysql([[`CREATE DATABASE \`${DATABASE}\``]]);
  cleanups.push(() => mysql([[`DROP DATABASE IF EXISTS \`${DATABASE}\``]]).catch(() => {}));
  const store = MYSQL_URL.replace(/\/[^/]*$/, `/${DATABASE}`);
  const config = configDir('mariadb', store);
  const volume = `${run}-mariadb-data`;
  cleanups.push(() => sh('podman', ['volume', 'rm', '-f', volume], { allowFail: true }));
  const name = `${run}-mariadb`;
  runContainer(name, config, volume);
  await healthy(name);
  log('MariaDB + Redis: /healthz 200');

  podman('healthcheck', 'run', name);
  const pid1 = podman('exec', name, 'cat', '/proc/1/cmdline').stdout.split('\0')[0];
  if (!pid1.endsWith('tini')) fail(`PID 1 is ${pid1}, expected tini`);
  log('image HEALTHCHECK passes; PID 1 is tini');

  // fetch cannot set Host; node:http can.
  const redirect = await new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port: PORTS.http, path: '/auth/session?x=1', headers: { host: `api.example.test:${PORTS.http}` }, agent: false }, (res) => {
      res.resume();
      resolve(res);
    }).on('error', reject).end();
  });
  const location = redirect.headers.location;
  if (redirect.statusCode !== 308 || location !== 'https://api.example.test/auth/session?x=1') fail(`redirect: ${redirect.statusCode} ${location}`);
  log(`HTTP → ${location} (listen.publicHttpsPort 443, bound ${PORTS.https})`);

  const { token, openid } = await login();
  if ((await sessionStatus(token)) !== 200) fail('the new session is not valid');
  const [[row]] = await mysql([[`SELECT COUNT(*) AS n FROM \`${DATABASE}\`.users WHERE openid = ?`, [openid]]]);
  if (Number(row?.n) !== 1) fail(`no user row for ${openid} in MariaDB`);
  log('login through the sandbox over HTTPS; the user row is in MariaDB');

  const ms = stopWithSigterm(name);
  log(`SIGTERM (podman stop) → exit 0 in ${ms} ms`);
}

async function withSqliteVolume() {
  const config = configDir('sqlite');
  const volume = `${run}-sqlite-data`;
  cleanups.push(() => sh('podman', ['volume', 'rm', '-f', volume], { allowFail: true }));
  const first = `${run}-sqlite-1`;
  runContainer(first, config, volume);
  await healthy(first);
  const { token } = await login();
  if ((await sessionStatus(token)) !== 200) fail('the new session is not valid');
  stopWithSigterm(first);
  podman('rm', first);
  log('SQLite on /data: logged in, stopped (exit 0), container removed');

  const second = `${run}-sqlite-2`;
  runContainer(second, config, volume);
  await healthy(second);
  const status = await sessionStatus(token);
  if (status !== 200) fail(`after a restart on the same volume the session answers ${status}`);
  const listing = podman('exec', second, 'sh', '-c', "stat -c '%a %U %n' /data /data/minigate.db").stdout.trim().replace(/\n/g, '; ');
  log(`a new container on the same volume: the session is still valid (${listing})`);
  stopWithSigterm(second);
}

async function main() {
  const why = podmanUsable();
  if (why) {
    console.log(`test:container skipped: podman not usable (${why})`);
    return;
  }
  setUpPodman();
  const info = sh('podman', ['info', '--format', '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}'], { allowFail: true });
  if (info.status !== 0) fail(`podman is installed but does not work (podman info):\n${info.stderr.trim()}`);
  log(`podman ${sh('podman', ['--version']).stdout.trim().split(' ').pop()}, runtime ${info.stdout.trim()}`);

  await baseImage();
  const building = Date.now();
  await stream('podman', ['build', '--network', 'host', '--pull=never', '--format', 'docker', '-t', IMAGE, '-f', 'deploy/Dockerfile', '.']);
  log(`built ${IMAGE} in ${((Date.now() - building) / 1000).toFixed(0)} s`);
  await checkImage();

  await startSandbox();
  await withMariaDb();
  await withSqliteVolume();
  log('passed');
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  console.error(`[test:container ${seconds()}s] FAILED: ${error.message}`);
} finally {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch {
      // best effort: a leftover container or volume is named by the run id
    }
  }
}
process.exit(failed ? 1 : 0);
