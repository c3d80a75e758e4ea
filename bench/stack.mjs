// The whole stack a team replaces, measured in one run, both over HTTPS keep-alive with a real
// session token per request (wrk, tokens taken in turn):
//   nginx (TLS, 1 worker) → Koa app that looks the session up in MariaDB (mysql2) on every request
//   minigate (TLS, auth: required, MariaDB store) → the same Koa app checking minigate's signed
//       identity headers instead (bench/peers/koa-app.mjs)
//
//   node bench/stack.mjs [--duration 10] [--connections 32] [--json] [--smoke]
//
// MariaDB: TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306/test). The Koa app's session table
// is in that database under a prefix of its own (mgbench_stack_<random>_sessions); minigate's
// store, whose table names are not configurable, gets a fresh database (mg_bench_stack_<random>).
// Both are dropped at the end.
import { randomBytes } from 'node:crypto';

import mysql from 'mysql2/promise';
import { cpuSeconds, createProcesses, freePort, LIMITS_RAISED_NOTE, nginxVersion, pidsNamed, post, runBench, startNginx, workDir } from './processes.mjs';
import { APPID, certificateChain, send, startMinigate, startSandbox } from './setup.mjs';
import { benchArgs, report, result, row } from './table.mjs';
import { bearerLua, requireWrk, wrk } from './wrk.mjs';

const args = benchArgs({
  duration: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '2' },
  connections: { type: 'string', default: '32' },
  sessions: { type: 'string', default: '1000' },
});
const SMOKE = args.smoke;
const DURATION = SMOKE ? 1 : Number(args.duration);
const WARMUP = SMOKE ? 1 : Number(args.warmup);
const CONNECTIONS = SMOKE ? 8 : Number(args.connections);
const SESSIONS = SMOKE ? 50 : Number(args.sessions);
const MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const UPSTREAM_SECRET = 'bench-upstream-secret-0123456789';
const KOA = new URL('./peers/koa-app.mjs', import.meta.url).pathname;
const work = workDir('minigate-bench-stack-');
const suffix = randomBytes(4).toString('hex');
const TABLE = `mgbench_stack_${suffix}_sessions`;
const STORE_DB = `mg_bench_stack_${suffix}`;
const cleanups = [];

function nginxConf(port, koa, tls) {
  return `worker_processes 1;
daemon off;
master_process on;
pid ${work}/nginx.pid;
error_log ${work}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log ${work}/nginx-access.log;
  client_body_temp_path ${work}/nginx-body;
  proxy_temp_path ${work}/nginx-proxy;
  upstream app { server ${koa.replace('http://', '')}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    keepalive_requests 100000;
    location /api {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`;
}

/** The Koa app's own sessions: SESSIONS random tokens, each an openid, valid for a day. */
async function koaSessions() {
  const db = await mysql.createConnection(MYSQL_URL);
  try {
    await db.query(`CREATE TABLE ${TABLE} (token VARCHAR(64) PRIMARY KEY, openid VARCHAR(64) NOT NULL, expires_at BIGINT NOT NULL)`);
    cleanups.push(async () => {
      const c = await mysql.createConnection(MYSQL_URL);
      await c.query(`DROP TABLE IF EXISTS ${TABLE}`);
      await c.end();
    });
    const tokens = Array.from({ length: SESSIONS }, () => randomBytes(32).toString('base64url'));
    await db.query(`INSERT INTO ${TABLE} (token, openid, expires_at) VALUES ?`, [tokens.map((t, i) => [t, `o_bench_${i}`, Date.now() + 86_400_000])]);
    return tokens;
  } finally {
    await db.end();
  }
}

async function storeDatabase() {
  const db = await mysql.createConnection(MYSQL_URL);
  await db.query(`CREATE DATABASE ${STORE_DB}`);
  await db.end();
  cleanups.push(async () => {
    const c = await mysql.createConnection(MYSQL_URL);
    await c.query(`DROP DATABASE IF EXISTS ${STORE_DB}`);
    await c.end();
  });
  const u = new URL(MYSQL_URL);
  u.pathname = `/${STORE_DB}`;
  return u.toString();
}

/** SESSIONS tokens from minigate's logins (codes from the sandbox), 20 logins in flight. */
async function minigateSessions(base, sandbox) {
  const { codes } = await post(`${sandbox}/__sandbox/codes`, { appid: APPID, count: SESSIONS });
  const tokens = [];
  for (let i = 0; i < codes.length; i += 20) {
    const batch = codes.slice(i, i + 20).map(async ({ code }) => {
      const r = await send(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
      if (r.status !== 200) throw new Error(`login: ${r.status} ${r.body}`);
      return JSON.parse(r.body).token;
    });
    tokens.push(...(await Promise.all(batch)));
  }
  return tokens;
}

/**
 * wrk on `url` with the tokens in turn; `processes` ({ name: [pid…] }) are the stack's servers,
 * whose CPU per request (user + system, µs, their child processes included) is read over the run.
 */
async function measure(url, tokens, processes) {
  const lua = bearerLua();
  await wrk({ url, duration: WARMUP, connections: CONNECTIONS, work, lua, lines: tokens });
  const before = Object.fromEntries(Object.entries(processes).map(([name, pids]) => [name, cpuSeconds(...pids)]));
  const r = await wrk({ url, duration: DURATION, connections: CONNECTIONS, work, lua, lines: tokens });
  if (!(r.total > 0)) throw new Error(`${url}: no request answered\n${r.raw}`);
  if (r.non2xx + r.socketErrors > 0.01 * r.total) throw new Error(`${url}: ${r.non2xx} non-2xx answers and ${r.socketErrors} socket errors of ${r.total} requests`);
  r.cpuUs = Object.fromEntries(Object.entries(processes).map(([name, pids]) => [name, ((cpuSeconds(...pids) - before[name]) * 1e6) / r.total]));
  return r;
}

/** "nginx 31 + Koa 80 = 111 µs": where a stack's CPU goes per request. */
function cpuLine(label, cpuUs) {
  const parts = Object.entries(cpuUs).map(([name, us]) => `${name} ${Math.round(us)}`);
  return `${label} CPU per request (µs, user + system): ${parts.join(' + ')} = ${Math.round(Object.values(cpuUs).reduce((a, b) => a + b, 0))}`;
}

async function main() {
  const wrkVersion = await requireWrk();
  const nginx = nginxVersion();
  const processes = createProcesses();
  const tls = certificateChain(work, 'ec');
  const sandbox = await startSandbox();

  const koaLookupProcess = await processes.start([KOA, 'lookup', MYSQL_URL, TABLE], /koa (http:\S+)/);
  const koaLookup = koaLookupProcess.match[1];
  const koaTrustProcess = await processes.start([KOA, 'trust', UPSTREAM_SECRET], /koa (http:\S+)/);
  const koaTrust = koaTrustProcess.match[1];
  const nginxPort = await freePort();
  const nginxProcess = await startNginx(work, nginxConf(nginxPort, koaLookup, tls), nginxPort);
  const store = await storeDatabase();
  const minigate = await startMinigate(
    work,
    'minigate',
    sandbox,
    `listen:\n  http: 127.0.0.1:0\n  https: 127.0.0.1:0\n  httpRedirect: false\ntls:\n  certificates:\n    - cert: ${tls.cert}\n      key: ${tls.key}\nstore: ${store}\nupstreamSecret: ${UPSTREAM_SECRET}\nroutes:\n  - path: /api\n    proxy: ${koaTrust}\n    auth: required\n`,
  );
  const nginxTokens = await koaSessions();
  const minigateTokens = await minigateSessions(minigate.url, sandbox);

  // Each stack must refuse a request without a session (a bench of 401s would be meaningless).
  for (const url of [`https://127.0.0.1:${nginxPort}/api/items`, `${minigate.url}/api/items`]) {
    const r = await send(url);
    if (r.status !== 401) throw new Error(`${url} without a token answered ${r.status}, not 401`);
  }

  // MariaDB serves the Koa app's lookups in the first stack and minigate's store in the second.
  const mariadb = [...pidsNamed('mariadbd'), ...pidsNamed('mysqld')];
  const peer = await measure(`https://127.0.0.1:${nginxPort}/api/items`, nginxTokens, { nginx: [nginxProcess.pid], Koa: [koaLookupProcess.child.pid], MariaDB: mariadb });
  const mine = await measure(`${minigate.url}/api/items`, minigateTokens, { minigate: [minigate.child.pid], Koa: [koaTrustProcess.child.pid], MariaDB: mariadb });
  const rows = [row({ name: 'minigate → Koa (identity headers)', unit: 'req/s', value: mine.rps, p99: mine.p99, peer: 'nginx → Koa + MariaDB lookup', peerValue: peer.rps, peerP99: peer.p99, target: { ratio: 2, p99: 1 } })];
  const notes = [
    `GET /api/items over HTTPS keep-alive with ${SESSIONS} sessions taken in turn, ${DURATION}s after ${WARMUP}s warm-up, ${CONNECTIONS} connections, MariaDB ${new URL(MYSQL_URL).host}`,
    cpuLine('nginx stack', peer.cpuUs),
    cpuLine('minigate stack', mine.cpuUs),
    LIMITS_RAISED_NOTE,
    nginx,
    wrkVersion,
    ...(SMOKE ? ['SMOKE RUN: figures mean nothing'] : []),
  ];
  report(result('stack', notes, { duration: DURATION, warmup: WARMUP, connections: CONNECTIONS, sessions: SESSIONS, smoke: SMOKE }, rows), args.json);
}

runBench(main, {
  afterStop: async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => console.error(`cleanup: ${error.message}`));
  },
});
