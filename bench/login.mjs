// Logins/s and authenticated requests/s (GET /auth/session) of minigate against the sandbox on
// loopback, next to a bare hand-written node:http login server (bench/peers/bare-login.mjs)
// measured in the same run. Every server runs in its own process; wrk drives them (one
// thread), feeding each login a fresh single-use code and each session check a real token.
//
//   npm run bench              (builds first)
//   node bench/login.mjs --stores sqlite,mysql,postgres --duration 10 --warmup 2 --connections 32 [--json] [--smoke]
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createProcesses, LIMITS_RAISED_NOTE, LIMITS_RAISED_YAML, post, runBench, workDir } from './processes.mjs';
import { benchArgs, report, result, row } from './table.mjs';
import { requireWrk, wrk } from './wrk.mjs';
import mysql from 'mysql2/promise';
import pg from 'pg';

const values = benchArgs({
  stores: { type: 'string', default: 'sqlite,mysql,postgres' },
  duration: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '2' },
  connections: { type: 'string', default: '32' },
  // info: an access log line per request, as in production
  'log-level': { type: 'string', default: 'info' },
});
const SMOKE = values.smoke;
const DURATION = SMOKE ? 1 : Number(values.duration);
const WARMUP = SMOKE ? 1 : Number(values.warmup);
const CONNECTIONS = SMOKE ? 8 : Number(values.connections);
const APPID = 'wx0b0e0c0d0a0f0e0d';
const SECRET = 'bench-secret-0123456789abcdef0123';
const MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CLI = new URL('../packages/server/bin/minigate.js', import.meta.url).pathname;
const work = workDir('minigate-bench-');
const { start, stop } = createProcesses();

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
  const loginLua = `request = function()\n  return wrk.format("POST", "/auth/login", { ["content-type"] = "application/json" }, '{"code":"' .. nextItem() .. '"}')\nend\n`;
  // A short warm-up (JIT, pools, prepared statements) on codes of its own: codes are single use.
  const codesFor = async (seconds) => (await post(`${sandboxUrl}/__sandbox/codes`, { appid: APPID, count: MAX_LOGINS_PER_SECOND * seconds })).codes.map((c) => c.code);
  await wrk({ url, duration: WARMUP, connections: CONNECTIONS, work, lines: await codesFor(WARMUP), lua: loginLua });
  const login = await wrk({ url, duration: DURATION, connections: CONNECTIONS, work, lines: await codesFor(DURATION), lua: loginLua });
  const tokens = [];
  for (const { code } of (await post(`${sandboxUrl}/__sandbox/codes`, { appid: APPID, count: 200 })).codes) {
    tokens.push((await post(`${url}/auth/login`, { code })).token);
  }
  const checkLua = `request = function()\n  return wrk.format("GET", "/auth/session", { ["authorization"] = "Bearer " .. nextItem() })\nend\n`;
  await wrk({ url, duration: WARMUP, connections: CONNECTIONS, work, lines: tokens, lua: checkLua });
  const check = await wrk({ url, duration: DURATION, connections: CONNECTIONS, work, lines: tokens, lua: checkLua });
  for (const [what, r] of [['login', login], ['GET /auth/session', check]]) {
    if (!(r.total > 0)) throw new Error(`${label} ${what}: no request answered\n${r.raw}`);
    if (r.non2xx + r.socketErrors > 0.01 * r.total) throw new Error(`${label} ${what}: ${r.non2xx} non-2xx answers and ${r.socketErrors} socket errors of ${r.total} requests`);
  }
  return { login, check };
}

async function main() {
  const wrkVersion = await requireWrk();
  const sandbox = await start([CLI, 'sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`], /sandbox (http:\/\/\S+)/);
  const sandboxUrl = sandbox.match[1];
  const measured = {};

  const peer = await start([new URL('./peers/bare-login.mjs', import.meta.url).pathname, sandboxUrl, APPID, SECRET], /peer (http:\/\/\S+)/);
  measured.bare = await measure('bare node:http (peer)', peer.match[1], sandboxUrl);
  await stop(peer.child);

  for (const store of values.stores.split(',')) {
    const db = store === 'sqlite' ? { url: `sqlite:${path.join(work, 'bench.db')}`, drop: async () => {} } : await freshDatabase(store);
    const config = path.join(work, `minigate-${store}.yaml`);
    writeFileSync(
      config,
      `dataDir: ${work}/data-${store}\nlisten:\n  http: 127.0.0.1:0\nwechat:\n  apiBase: ${sandboxUrl}\napps:\n  - appid: ${APPID}\n    secret: ${SECRET}\nstore: ${db.url}\nlog:\n  level: ${values['log-level']}\n${LIMITS_RAISED_YAML}`,
    );
    const server = await start([CLI, 'start', '-c', config], /listening on (http:\S+)/, path.join(work, `minigate-${store}.log`));
    try {
      measured[store] = await measure(`minigate (${store})`, server.match[1], sandboxUrl);
    } finally {
      await stop(server.child);
      await db.drop();
    }
  }

  const rows = [];
  const bare = measured.bare;
  for (const store of Object.keys(measured).filter((k) => k !== 'bare')) {
    const { login } = measured[store];
    // Login: SQLite against the bare peer, the networked stores against SQLite (same run).
    const loginPeer = store === 'sqlite' || !measured.sqlite ? ['bare node:http', bare.login] : ['minigate login (sqlite)', measured.sqlite.login];
    rows.push(row({ name: `login (${store})`, unit: 'logins/s', value: login.rps, p99: login.p99, peer: loginPeer[0], peerValue: loginPeer[1].rps, peerP99: loginPeer[1].p99, target: { ratio: 0.8, p99: 2 } }));
  }
  for (const store of Object.keys(measured).filter((k) => k !== 'bare')) {
    const { check } = measured[store];
    rows.push(row({ name: `GET /auth/session (${store})`, unit: 'req/s', value: check.rps, p99: check.p99, peer: 'bare node:http', peerValue: bare.check.rps, peerP99: bare.check.p99, target: { ratio: 0.7, p99: 2 } }));
  }
  const notes = [
    `plain HTTP, ${DURATION}s per scenario after ${WARMUP}s warm-up, ${CONNECTIONS} connections, log level ${values['log-level']}`,
    LIMITS_RAISED_NOTE,
    wrkVersion,
    ...(SMOKE ? ['SMOKE RUN: figures mean nothing'] : []),
  ];
  report(result('login', notes, { stores: values.stores, duration: DURATION, warmup: WARMUP, connections: CONNECTIONS, logLevel: values['log-level'], smoke: SMOKE }, rows), values.json);
}

runBench(main);
