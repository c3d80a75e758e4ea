// Logins/s and authenticated requests/s (GET /auth/session) of minigate against the sandbox on
// loopback, next to a bare hand-written node:http login server (bench/peers/bare-login.mjs)
// measured in the same run. Every server runs in its own process; wrk drives them (one
// thread), feeding each login a fresh single-use code and each session check a real token.
//
//   npm run bench              (builds first)
//   node bench/login.mjs --stores sqlite,mysql,postgres --duration 10 --connections 32
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createProcesses, LIMITS_RAISED_NOTE, LIMITS_RAISED_YAML, post } from './processes.mjs';
import { printTable } from './table.mjs';
import { requireWrk, wrk } from './wrk.mjs';
import mysql from 'mysql2/promise';
import pg from 'pg';

const { values } = parseArgs({
  options: {
    stores: { type: 'string', default: 'sqlite,mysql,postgres' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    // info: an access log line per request, as in production
    'log-level': { type: 'string', default: 'info' },
  },
});
const DURATION = Number(values.duration);
const CONNECTIONS = Number(values.connections);
const APPID = 'wx0b0e0c0d0a0f0e0d';
const SECRET = 'bench-secret-0123456789abcdef0123';
const MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CLI = new URL('../packages/server/bin/minigate.js', import.meta.url).pathname;
const work = mkdtempSync(path.join(tmpdir(), 'minigate-bench-'));
const { start, killAll } = createProcesses();

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

/** The most logins a run can make: codes are single use, so a run must never run out. */
const MAX_LOGINS_PER_SECOND = 5000;

/** Logins with fresh codes, then session checks with tokens those logins made. */
async function measure(label, url, sandboxUrl) {
  const { codes } = await post(`${sandboxUrl}/__sandbox/codes`, { appid: APPID, count: MAX_LOGINS_PER_SECOND * DURATION });
  const login = await wrk({
    url,
    duration: DURATION,
    connections: CONNECTIONS,
    work,
    lines: codes.map((c) => c.code),
    lua: `request = function()\n  return wrk.format("POST", "/auth/login", { ["content-type"] = "application/json" }, '{"code":"' .. nextItem() .. '"}')\nend\n`,
  });
  const tokens = [];
  for (const { code } of (await post(`${sandboxUrl}/__sandbox/codes`, { appid: APPID, count: 200 })).codes) {
    tokens.push((await post(`${url}/auth/login`, { code })).token);
  }
  const check = await wrk({
    url,
    duration: DURATION,
    connections: CONNECTIONS,
    work,
    lines: tokens,
    lua: `request = function()\n  return wrk.format("GET", "/auth/session", { ["authorization"] = "Bearer " .. nextItem() })\nend\n`,
  });
  const row = (scenario, r) => ({
    scenario,
    server: label,
    rps: Math.round(r.rps),
    p50: r.p50,
    p99: r.p99,
    errors: r.non2xx + r.socketErrors,
  });
  return [row('login', login), row('GET /auth/session', check)];
}

async function main() {
  const wrkVersion = await requireWrk();
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
      `dataDir: ${work}/data-${store}\nlisten:\n  http: 127.0.0.1:0\nwechat:\n  apiBase: ${sandboxUrl}\napps:\n  - appid: ${APPID}\n    secret: ${SECRET}\nstore: ${db.url}\nlog:\n  level: ${values['log-level']}\n${LIMITS_RAISED_YAML}`,
    );
    const server = await start([CLI, 'start', '-c', config], /listening on (http:\S+)/, path.join(work, `minigate-${store}.log`));
    rows.push(...(await measure(`minigate (${store})`, server.match[1], sandboxUrl)));
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    await db.drop();
  }

  sandbox.child.kill();
  print(rows, wrkVersion);
}

function print(rows, wrkVersion) {
  const header = ['scenario', 'server', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'vs peer'];
  const peerOf = (scenario) => rows.find((r) => r.scenario === scenario && r.server.includes('peer'));
  const lines = rows.map((r) => [r.scenario, r.server, String(r.rps), r.p50.toFixed(1), r.p99.toFixed(1), String(r.errors), r.server.includes('peer') ? '1.00' : (r.rps / peerOf(r.scenario).rps).toFixed(2)]);
  const title = `login bench: ${DURATION}s per scenario, ${CONNECTIONS} connections, log level ${values['log-level']}, ${LIMITS_RAISED_NOTE}, node ${process.version}, ${cpus().length} cores, ${wrkVersion}`;
  printTable(title, header, lines, 2);
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => {
    killAll();
    rmSync(work, { recursive: true, force: true });
  });
