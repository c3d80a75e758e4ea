// Logins/s and authenticated requests/s (GET /auth/session) of minigate against the sandbox on
// loopback, next to a bare hand-written node:http login server (bench/peers/bare-login.mjs)
// measured in the same run. Every server runs in its own process; autocannon drives them.
//
//   npm run bench              (builds first)
//   node bench/login.mjs --stores sqlite,mysql,postgres --logins 3000 --duration 10
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import mysql from 'mysql2/promise';
import pg from 'pg';

const { values } = parseArgs({
  options: {
    stores: { type: 'string', default: 'sqlite,mysql,postgres' },
    logins: { type: 'string', default: '3000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
  },
});
const LOGINS = Number(values.logins);
const DURATION = Number(values.duration);
const CONNECTIONS = Number(values.connections);
const APPID = 'wx0b0e0c0d0a0f0e0d';
const SECRET = 'bench-secret-0123456789abcdef0123';
const MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CLI = new URL('../packages/server/bin/minigate.js', import.meta.url).pathname;
const work = mkdtempSync(path.join(tmpdir(), 'minigate-bench-'));
const children = [];

function start(args, readyPattern, stream = 'stdout') {
  const child = spawn(process.execPath, args, { env: { ...process.env, MINIGATE_STORE: undefined } });
  children.push(child);
  let text = '';
  return new Promise((resolve, reject) => {
    const onData = (d) => {
      text += d;
      const m = readyPattern.exec(text);
      if (m) resolve({ child, match: m });
    };
    child.stdout.on('data', stream === 'stdout' ? onData : () => {});
    child.stderr.on('data', stream === 'stderr' ? onData : (d) => (text += d));
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}\n${text}`)));
  });
}

async function post(url, body) {
  const r = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  if (!r.ok) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  return r.json();
}

async function freshDatabase(kind) {
  const name = `mg_bench_${Date.now().toString(36)}`;
  if (kind === 'mysql') {
    const c = await mysql.createConnection(MYSQL_URL);
    await c.query(`CREATE DATABASE ${name}`);
    await c.end();
    const u = new URL(MYSQL_URL);
    u.pathname = `/${name}`;
    return { url: u.toString(), drop: async () => { const d = await mysql.createConnection(MYSQL_URL); await d.query(`DROP DATABASE ${name}`); await d.end(); } };
  }
  const c = new pg.Client({ connectionString: POSTGRES_URL });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(POSTGRES_URL);
  u.pathname = `/${name}`;
  return { url: u.toString(), drop: async () => { const d = new pg.Client({ connectionString: POSTGRES_URL }); await d.connect(); await d.query(`DROP DATABASE ${name} WITH (FORCE)`); await d.end(); } };
}

function run(options) {
  return new Promise((resolve, reject) => {
    const instance = autocannon({ connections: CONNECTIONS, pipelining: 1, ...options }, (error, result) => (error ? reject(error) : resolve(result)));
    autocannon.track(instance, { renderProgressBar: false, renderResultsTable: false, renderLatencyTable: false });
  });
}

/** Logins with fresh codes (each code is single use), then session checks with the tokens made. */
async function measure(label, url, sandboxUrl) {
  const { codes } = await post(`${sandboxUrl}/__sandbox/codes`, { appid: APPID, count: LOGINS });
  let next = 0;
  const tokens = [];
  const login = await run({
    url,
    amount: LOGINS,
    requests: [
      {
        method: 'POST',
        path: '/auth/login',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => ({ ...req, body: JSON.stringify({ code: codes[next++ % codes.length].code }) }),
        onResponse: (status, body) => {
          if (status === 200 && tokens.length < 1000) tokens.push(JSON.parse(body).token);
        },
      },
    ],
  });
  let t = 0;
  const check = await run({
    url,
    duration: DURATION,
    requests: [
      {
        method: 'GET',
        path: '/auth/session',
        setupRequest: (req) => ({ ...req, headers: { authorization: `Bearer ${tokens[t++ % tokens.length]}` } }),
      },
    ],
  });
  const row = (scenario, r) => ({
    scenario,
    server: label,
    rps: Math.round(r.requests.average),
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts + (r.non2xx ?? 0),
    total: r.requests.total ?? r.requests.sent,
  });
  return [row('login', login), row('GET /auth/session', check)];
}

async function main() {
  const sandbox = await start([CLI, 'sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`], /sandbox (http:\/\/\S+)/);
  const sandboxUrl = sandbox.match[1];
  const rows = [];

  const peer = await start([new URL('./peers/bare-login.mjs', import.meta.url).pathname, sandboxUrl, APPID, SECRET], /peer (http:\/\/\S+)/);
  rows.push(...(await measure('bare node:http (peer)', peer.match[1], sandboxUrl)));
  peer.child.kill();

  for (const store of values.stores.split(',')) {
    const db = store === 'sqlite' ? { url: `sqlite:${path.join(work, 'bench.db')}`, drop: async () => {} } : await freshDatabase(store);
    const config = path.join(work, `minigate-${store}.yaml`);
    writeFileSync(
      config,
      `dataDir: ${work}/data-${store}\nlisten:\n  http: 127.0.0.1:0\nwechat:\n  apiBase: ${sandboxUrl}\napps:\n  - appid: ${APPID}\n    secret: ${SECRET}\nstore: ${db.url}\nlog:\n  level: warn\n`,
    );
    // At level warn the "started" line is not printed; run at info just for the URL, then measure.
    writeFileSync(config, `${(await import('node:fs')).readFileSync(config, 'utf8').replace('level: warn', 'level: info')}`);
    const server = await start([CLI, 'start', '-c', config], /"url":"(http:[^"]+)"/, 'stderr');
    rows.push(...(await measure(`minigate (${store})`, server.match[1], sandboxUrl)));
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    await db.drop();
  }

  sandbox.child.kill();
  print(rows);
}

function print(rows) {
  const header = ['scenario', 'server', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'vs peer'];
  const peerOf = (scenario) => rows.find((r) => r.scenario === scenario && r.server.includes('peer'));
  const lines = rows.map((r) => [r.scenario, r.server, String(r.rps), String(r.p50), String(r.p99), String(r.errors), r.server.includes('peer') ? '1.00' : (r.rps / peerOf(r.scenario).rps).toFixed(2)]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(`\nlogin bench: ${LOGINS} logins, ${DURATION}s of session checks, ${CONNECTIONS} connections, node ${process.version}`);
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(fmt(l));
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });
