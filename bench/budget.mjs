// How much work per request a target ratio leaves, on this machine: the bare node:http login
// server of login.mjs (bench/peers/bare-login.mjs) answering GET /auth/session with N µs of busy
// work added to each request, for several N, next to minigate's own GET /auth/session (SQLite, log
// level info) in the same run. Each row gives req/s, the ratio to the bare server without added
// work, and the server's CPU per request (user + system, from /proc). A ratio target such as
// login.mjs's "GET /auth/session ≥ 0.7× bare node:http" is met only by a server whose extra work
// per request stays under the busy time at which the bare server's own curve crosses it; the
// header line says where that is, and the minigate row shows how far it is.
//
//   node bench/budget.mjs [--busy 0,2,5,10,20,40] [--duration 10] [--connections 32] [--json] [--smoke]
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { cpuSeconds, createProcesses, LIMITS_RAISED_NOTE, PINNED_NOTE, LIMITS_RAISED_YAML, post, runBench, workDir } from './processes.mjs';
import { APPID, CLI, SECRET, startSandbox } from './setup.mjs';
import { benchArgs, report, result, row } from './table.mjs';
import { bearerLua, requireWrk, wrk } from './wrk.mjs';

const args = benchArgs({
  busy: { type: 'string', default: '0,2,5,10,20,40' },
  duration: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '2' },
  connections: { type: 'string', default: '32' },
});
const SMOKE = args.smoke;
const DURATION = SMOKE ? 1 : Number(args.duration);
const WARMUP = SMOKE ? 1 : Number(args.warmup);
const CONNECTIONS = SMOKE ? 8 : Number(args.connections);
const BUSY = (SMOKE ? '0,10' : args.busy).split(',').map(Number);
if (BUSY[0] !== 0 || BUSY.some((b) => !(b >= 0))) throw new Error(`--busy: a list of microseconds starting with 0, got ${args.busy}`);
const TARGET = 0.7;
const PEER = new URL('./peers/bare-login.mjs', import.meta.url).pathname;
const work = workDir('minigate-bench-budget-');
const processes = createProcesses();

/** Session checks with 200 tokens from real logins: req/s, p99 and the server's CPU per request. */
async function measure(url, pid, sandbox) {
  const tokens = [];
  for (const { code } of (await post(`${sandbox}/__sandbox/codes`, { appid: APPID, count: 200 })).codes) tokens.push((await post(`${url}/auth/login`, { code })).token);
  const lua = bearerLua('/auth/session');
  await wrk({ url, duration: WARMUP, connections: CONNECTIONS, work, cpu: 1, lines: tokens, lua });
  const before = cpuSeconds(pid);
  const r = await wrk({ url, duration: DURATION, connections: CONNECTIONS, work, cpu: 1, lines: tokens, lua });
  const cpuUs = ((cpuSeconds(pid) - before) * 1e6) / r.total;
  if (!(r.total > 0) || r.non2xx + r.socketErrors > 0.01 * r.total) throw new Error(`${url}: ${r.non2xx} non-2xx and ${r.socketErrors} socket errors of ${r.total}\n${r.raw}`);
  return { rps: r.rps, p99: r.p99, cpuUs };
}

async function main() {
  const wrkVersion = await requireWrk();
  const sandbox = await startSandbox(1);
  const bare = [];
  for (const busy of BUSY) {
    const peer = await processes.start([PEER, sandbox, APPID, SECRET, String(busy)], /peer (http:\/\/\S+)/, undefined, undefined, 0);
    bare.push({ busy, ...(await measure(peer.match[1], peer.child.pid, sandbox)) });
    await processes.stop(peer.child);
  }
  const config = path.join(work, 'minigate.yaml');
  writeFileSync(config, `dataDir: ${work}/data\nlisten:\n  http: 127.0.0.1:0\nwechat:\n  apiBase: ${sandbox}\napps:\n  - appid: ${APPID}\n    secret: ${SECRET}\nstore: sqlite:${work}/budget.db\nlog:\n  level: info\n${LIMITS_RAISED_YAML}`);
  const server = await processes.start([CLI, 'start', '-c', config], /listening on (http:\S+)/, path.join(work, 'minigate.log'), undefined, 0);
  const mine = await measure(server.match[1], server.child.pid, sandbox);
  await processes.stop(server.child);

  const base = bare[0];
  const us = (x) => `${x.toFixed(1)} µs`;
  const rows = bare.map((b) => ({ ...row({ name: `bare node:http + ${b.busy} µs busy`, unit: 'req/s', value: b.rps, p99: b.p99, peer: 'bare node:http', peerValue: base.rps, peerP99: base.p99 }), cpuUsPerRequest: b.cpuUs }));
  rows.push({ ...row({ name: 'minigate GET /auth/session (sqlite)', unit: 'req/s', value: mine.rps, p99: mine.p99, peer: 'bare node:http', peerValue: base.rps, peerP99: base.p99, target: { ratio: TARGET, p99: 2 } }), cpuUsPerRequest: mine.cpuUs });
  // Where the bare curve crosses the target: linear between the two measured points around it.
  let crossing = null;
  for (let i = 1; i < bare.length; i++) {
    const [a, b] = [bare[i - 1], bare[i]];
    const [ra, rb] = [a.rps / base.rps, b.rps / base.rps];
    if (ra >= TARGET && rb < TARGET) crossing = a.busy + ((ra - TARGET) / (ra - rb)) * (b.busy - a.busy);
  }
  const notes = [
    `GET /auth/session, plain HTTP, ${DURATION}s per row after ${WARMUP}s warm-up, ${CONNECTIONS} connections; bare server with N µs of busy work per request, then minigate (SQLite, log level info)`,
    `server CPU per request (user + system): ${bare.map((b) => `bare+${b.busy} ${us(b.cpuUs)}`).join(', ')}; minigate ${us(mine.cpuUs)}`,
    crossing === null
      ? `the bare curve does not cross ${TARGET}× within the busy times measured`
      : `${TARGET}× the bare server leaves about ${crossing.toFixed(1)} µs of work per request on this machine; minigate uses ${us(mine.cpuUs - base.cpuUs)} more CPU per request than the bare server`,
    LIMITS_RAISED_NOTE,
    PINNED_NOTE,
    wrkVersion,
    ...(SMOKE ? ['SMOKE RUN: figures mean nothing'] : []),
  ];
  report(result('budget', notes, { busy: BUSY, duration: DURATION, warmup: WARMUP, connections: CONNECTIONS, smoke: SMOKE }, rows), args.json);
}

runBench(main);
