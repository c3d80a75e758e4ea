// Logins/s and authenticated requests/s (GET /auth/session) of minigate against the sandbox on
// loopback, next to a bare hand-written node:http login server (bench/peers/bare-login.mjs)
// measured in the same run. Every server runs in its own process; wrk drives them (one
// thread), feeding each login a fresh single-use code and each session check a real token.
//
//   npm run bench              (builds first)
//   node bench/login.mjs --stores sqlite,mysql,postgres --duration 10 --rounds 3 --warmup 2 --connections 32 [--json] [--smoke]
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { cpuSeconds, createProcesses, LIMITS_RAISED_NOTE, PINNED_NOTE, LIMITS_RAISED_YAML, post, runBench, workDir } from './processes.mjs';
import { benchArgs, median, report, result, row } from './table.mjs';
import { bearerLua, requireWrk, wrk } from './wrk.mjs';
import mysql from 'mysql2/promise';
import pg from 'pg';

const values = benchArgs({
  stores: { type: 'string', default: 'sqlite,mysql,postgres' },
  duration: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '2' },
  connections: { type: 'string', default: '32' },
  // --duration is split into this many runs per server, taken in turn (see measureAll).
  rounds: { type: 'string', default: '3' },
  // info: an access log line per request, as in production
  'log-level': { type: 'string', default: 'info' },
});
const SMOKE = values.smoke;
const DURATION = SMOKE ? 1 : Number(values.duration);
const ROUNDS = SMOKE ? 1 : Number(values.rounds);
const ROUND_SECONDS = Math.max(1, Math.round(DURATION / ROUNDS));
const WARMUP = SMOKE ? 1 : Number(values.warmup);
const CONNECTIONS = SMOKE ? 8 : Number(values.connections);
const APPID = 'wx0b0e0c0d0a0f0e0d';
const SECRET = 'bench-secret-0123456789abcdef0123';
const MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CLI = new URL('../packages/server/bin/minigate.js', import.meta.url).pathname;
const work = workDir('minigate-bench-');
const { start, stopAll } = createProcesses();

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

const loginLua = `request = function()\n  return wrk.format("POST", "/auth/login", { ["content-type"] = "application/json" }, '{"code":"' .. nextItem() .. '"}')\nend\n`;
const checkLua = bearerLua('/auth/session');

/**
 * Every server is measured in ROUNDS short runs taken in turn (bare, sqlite, mysql, postgres,
 * bare, sqlite, …), and a row takes the median run: on this kind of shared virtual machine the
 * speed of the machine itself drifts over tens of seconds, and one long run per server put a
 * server and its peer in different weather (ratios of one row moved by 3× between runs).
 */
async function measureAll(servers, sandboxUrl) {
  // Codes are single use: each run gets fresh ones, enough that it never runs out.
  const codesFor = async (seconds) => (await post(`${sandboxUrl}/__sandbox/codes`, { appid: APPID, count: MAX_LOGINS_PER_SECOND * seconds })).codes.map((c) => c.code);
  const run = async (server, what, seconds, lines, lua) => {
    const before = cpuSeconds(server.pid);
    const r = await wrk({ url: server.url, duration: seconds, connections: CONNECTIONS, work, cpu: 1, lines, lua });
    if (!(r.total > 0)) throw new Error(`${server.label} ${what}: no request answered\n${r.raw}`);
    if (r.non2xx + r.socketErrors > 0.01 * r.total) throw new Error(`${server.label} ${what}: ${r.non2xx} non-2xx answers and ${r.socketErrors} socket errors of ${r.total} requests`);
    // The server process's own CPU per request (user + system; a database server's is not in it).
    return { ...r, cpuUs: ((cpuSeconds(server.pid) - before) * 1e6) / r.total };
  };
  const result = new Map(servers.map((s) => [s.key, { login: [], check: [] }]));
  // A short warm-up of each (JIT, pools, prepared statements).
  for (const server of servers) await run(server, 'login', WARMUP, await codesFor(WARMUP), loginLua);
  for (let round = 0; round < ROUNDS; round++) {
    for (const server of servers) result.get(server.key).login.push(await run(server, 'login', ROUND_SECONDS, await codesFor(ROUND_SECONDS), loginLua));
  }
  // Session checks with 200 tokens from real logins of each server.
  for (const server of servers) {
    server.tokens = [];
    for (const { code } of (await post(`${sandboxUrl}/__sandbox/codes`, { appid: APPID, count: 200 })).codes) {
      server.tokens.push((await post(`${server.url}/auth/login`, { code })).token);
    }
    await run(server, 'GET /auth/session', WARMUP, server.tokens, checkLua);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const server of servers) result.get(server.key).check.push(await run(server, 'GET /auth/session', ROUND_SECONDS, server.tokens, checkLua));
  }
  const summary = (runs) => ({ rps: median(runs.map((r) => r.rps)), p99: median(runs.map((r) => r.p99)), cpuUs: median(runs.map((r) => r.cpuUs)), runs: runs.map((r) => Math.round(r.rps)) });
  return Object.fromEntries([...result].map(([key, { login, check }]) => [key, { login: summary(login), check: summary(check) }]));
}

async function main() {
  const wrkVersion = await requireWrk();
  // Pinned (processes.mjs): the server under test on CPU 0, wrk and the sandbox on CPU 1.
  const sandbox = await start([CLI, 'sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`], /sandbox (http:\/\/\S+)/, undefined, undefined, 1);
  const sandboxUrl = sandbox.match[1];

  // Every server runs from the start (an idle one costs nothing) so that their runs can alternate.
  const peer = await start([new URL('./peers/bare-login.mjs', import.meta.url).pathname, sandboxUrl, APPID, SECRET], /peer (http:\/\/\S+)/, undefined, undefined, 0);
  const servers = [{ key: 'bare', label: 'bare node:http (peer)', url: peer.match[1], pid: peer.child.pid }];
  const drops = [];
  let measured;
  try {
    for (const store of values.stores.split(',')) {
      const db = store === 'sqlite' ? { url: `sqlite:${path.join(work, 'bench.db')}`, drop: async () => {} } : await freshDatabase(store);
      drops.push(db.drop);
      const config = path.join(work, `minigate-${store}.yaml`);
      writeFileSync(
        config,
        `dataDir: ${work}/data-${store}\nlisten:\n  http: 127.0.0.1:0\nwechat:\n  apiBase: ${sandboxUrl}\napps:\n  - appid: ${APPID}\n    secret: ${SECRET}\nstore: ${db.url}\nlog:\n  level: ${values['log-level']}\n${LIMITS_RAISED_YAML}`,
      );
      const server = await start([CLI, 'start', '-c', config], /listening on (http:\S+)/, path.join(work, `minigate-${store}.log`), undefined, 0);
      servers.push({ key: store, label: `minigate (${store})`, url: server.match[1], pid: server.child.pid });
    }
    measured = await measureAll(servers, sandboxUrl);
  } finally {
    await stopAll();
    for (const drop of drops) await drop();
  }

  const rows = [];
  const bare = measured.bare;
  for (const store of Object.keys(measured).filter((k) => k !== 'bare')) {
    const { login } = measured[store];
    // Login: SQLite against the bare peer, the networked stores against SQLite (same run).
    const loginPeer = store === 'sqlite' || !measured.sqlite ? ['bare node:http', bare.login] : ['minigate login (sqlite)', measured.sqlite.login];
    rows.push({ ...row({ name: `login (${store})`, unit: 'logins/s', value: login.rps, p99: login.p99, peer: loginPeer[0], peerValue: loginPeer[1].rps, peerP99: loginPeer[1].p99, target: { ratio: 0.8, p99: 2 } }), runs: login.runs, peerRuns: loginPeer[1].runs, cpuUsPerRequest: login.cpuUs, peerCpuUsPerRequest: loginPeer[1].cpuUs });
  }
  for (const store of Object.keys(measured).filter((k) => k !== 'bare')) {
    const { check } = measured[store];
    rows.push({ ...row({ name: `GET /auth/session (${store})`, unit: 'req/s', value: check.rps, p99: check.p99, peer: 'bare node:http', peerValue: bare.check.rps, peerP99: bare.check.p99, target: { ratio: 0.7, p99: 2 } }), runs: check.runs, peerRuns: bare.check.runs, cpuUsPerRequest: check.cpuUs, peerCpuUsPerRequest: bare.check.cpuUs });
  }
  const us = (x) => `${Math.round(x)} µs`;
  const cpuLine = (what) => Object.entries(measured).map(([key, m]) => `${key} ${us(m[what].cpuUs)}`).join(', ');
  const alone = values.stores.split(',').includes('sqlite') ? await sqliteStoreAlone() : undefined;
  const notes = [
    `plain HTTP, ${ROUNDS} runs of ${ROUND_SECONDS}s per scenario and server taken in turn (median) after ${WARMUP}s warm-up, ${CONNECTIONS} connections, log level ${values['log-level']}`,
    `server process CPU per login (user + system, median; MariaDB's and PostgreSQL's own not counted): ${cpuLine('login')}`,
    `server process CPU per session check: ${cpuLine('check')}`,
    ...(alone ? [`the SQLite store alone (minigate's saveLogin in this process, no HTTP, no WeChat call; ${alone.logins} logins into a fresh database): ${us(alone.cpuUs)} CPU per login, of the bare server's whole login ${us(bare.login.cpuUs)}`] : []),
    LIMITS_RAISED_NOTE,
    PINNED_NOTE,
    wrkVersion,
    ...(SMOKE ? ['SMOKE RUN: figures mean nothing'] : []),
  ];
  report(result('login', notes, { stores: values.stores, duration: DURATION, rounds: ROUNDS, roundSeconds: ROUND_SECONDS, warmup: WARMUP, connections: CONNECTIONS, logLevel: values['log-level'], smoke: SMOKE }, rows), values.json);
}

/**
 * What a login's writes cost on SQLite alone: minigate's own store (its built dist), a fresh
 * database, logins of new users one after another, this process's CPU per login. The bare peer
 * keeps sessions in a Map; this is the part of minigate's login it has nothing against.
 */
async function sqliteStoreAlone() {
  const dist = new URL('../packages/server/dist/', import.meta.url);
  const { createStore } = await import(new URL('store/index.js', dist).href);
  const { silentLogger } = await import(new URL('core/logger.js', dist).href);
  const store = await createStore({ url: `sqlite:${path.join(work, 'alone.db')}`, logger: silentLogger() });
  await store.migrate();
  const login = () => {
    const now = Date.now();
    const openid = `o${randomBytes(21).toString('base64url')}`;
    const session = {
      tokenHash: randomBytes(32).toString('hex'), appid: APPID, openid, unionid: null, sessionKey: `v1.${randomBytes(48).toString('base64url')}`,
      createdAt: now, lastSeenAt: now, expiresAt: now + 7 * 86_400_000, revokedAt: null, revokedReason: null,
    };
    return store.saveLogin({ session, profile: null, maxPerUser: 5, idleMs: 86_400_000 });
  };
  const logins = SMOKE ? 200 : 20_000;
  for (let i = 0; i < logins / 4; i++) await login(); // warm-up: JIT, page cache, a WAL to append to
  const before = process.cpuUsage();
  for (let i = 0; i < logins; i++) await login();
  const used = process.cpuUsage(before);
  await store.close();
  return { logins, cpuUs: (used.user + used.system) / logins };
}

runBench(main);
