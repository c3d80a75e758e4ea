// Authenticated proxied requests over HTTPS (keep-alive), one process each, measured in one run:
//   wrk → minigate (TLS, session check, signed identity headers) → upstream
//   wrk → a minimal hand-written Node proxy (bench/peers/node-proxy.mjs: no auth, no logs) → upstream
//   wrk → nginx (TLS, proxy_pass with keep-alive, 1 worker) → upstream
// With --workers N (N > 1) also minigate `workers: N` against nginx `worker_processes N`.
//
//   node bench/proxy.mjs [--duration 10] [--rounds 3] [--connections 32] [--workers 2] [--json] [--smoke]

import { cpuSeconds, createProcesses, freePort, LIMITS_RAISED_NOTE, PINNED_NOTE, nginxVersion, runBench, startNginx, stopTracked, workDir } from './processes.mjs';
import { certificateChain, login, startMinigate, startSandbox, startUpstream } from './setup.mjs';
import { benchArgs, median, report, result, row } from './table.mjs';
import { requireWrk, wrk } from './wrk.mjs';

const args = benchArgs({
  duration: { type: 'string', default: '10' },
  // --duration is split into this many runs per target, taken in turn (see measureAll).
  rounds: { type: 'string', default: '3' },
  warmup: { type: 'string', default: '2' },
  connections: { type: 'string', default: '32' },
  workers: { type: 'string', default: '1' },
});
const SMOKE = args.smoke;
const DURATION = SMOKE ? 1 : Number(args.duration);
const ROUNDS = SMOKE ? 1 : Number(args.rounds);
const ROUND_SECONDS = Math.max(1, Math.round(DURATION / ROUNDS));
const WARMUP = SMOKE ? 1 : Number(args.warmup);
const CONNECTIONS = SMOKE ? 8 : Number(args.connections);
const WORKERS = Number(args.workers);
const PEER = new URL('./peers/node-proxy.mjs', import.meta.url).pathname;
const work = workDir('minigate-bench-proxy-');

function nginxConf(workers, port, upstream, tls) {
  return `worker_processes ${workers};
daemon off;
master_process on;
pid ${work}/nginx-${workers}.pid;
error_log ${work}/nginx-${workers}-error.log warn;
events { worker_connections 4096; }
http {
  access_log ${work}/nginx-${workers}-access.log;
  client_body_temp_path ${work}/nginx-${workers}-body;
  proxy_temp_path ${work}/nginx-${workers}-proxy;
  upstream app { server ${upstream.replace('http://', '')}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
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

function minigateYaml(upstream, tls, workers) {
  return `listen:
  http: 127.0.0.1:0
  https: 127.0.0.1:0
  httpRedirect: false
tls:
  certificates:
    - cert: ${tls.cert}
      key: ${tls.key}
workers: ${workers}
upstreamSecret: bench-upstream-secret
routes:
  - path: /api
    proxy: ${upstream}
    auth: required
  - path: /open
    proxy: ${upstream}
`;
}


/**
 * One wrk run; `cpu`: wrk's CPU when pinning (the one-process rows: the proxy on CPU 0, wrk and
 * the upstream on 1). With the target's `pid`, also the server's CPU per request (user + system of
 * it and its children, from /proc): steadier than req/s on a shared machine, since it hardly moves
 * when the server waits for a slower neighbour.
 */
async function run({ url, token, pid }, seconds, cpu) {
  const lua = token ? `wrk.headers["Authorization"] = "Bearer ${token}"\n` : '';
  const before = pid ? cpuSeconds(pid) : 0;
  const r = await wrk({ url, duration: seconds, connections: CONNECTIONS, work, lua, cpu });
  const errors = r.non2xx + r.socketErrors;
  if (errors > 0 && r.total > 0 && errors / r.total > 0.01) throw new Error(`${url}: ${errors} of ${r.total} requests failed`);
  if (!(r.total > 0)) throw new Error(`${url}: no request answered\n${r.raw}`);
  return { ...r, cpuUs: pid ? ((cpuSeconds(pid) - before) * 1e6) / r.total : undefined };
}

/**
 * Each target warmed up, then measured in ROUNDS short runs taken in turn (nginx, node proxy,
 * minigate…, nginx, …); a row takes the median run. The speed of this kind of shared virtual
 * machine drifts over tens of seconds; one long run per target put a target and its peer in
 * different weather.
 */
async function measureAll(targets, cpu = 1) {
  for (const target of targets) await run(target, WARMUP, cpu);
  const runs = targets.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, target] of targets.entries()) runs[i].push(await run(target, ROUND_SECONDS, cpu));
  }
  return runs.map((list) => ({
    rps: median(list.map((r) => r.rps)),
    p99: median(list.map((r) => r.p99)),
    runs: list.map((r) => Math.round(r.rps)),
    cpuUs: list[0].cpuUs === undefined ? undefined : Math.round(median(list.map((r) => r.cpuUs)) * 10) / 10,
  }));
}

async function main() {
  const wrkVersion = await requireWrk();
  const nginx = nginxVersion();
  const tls = certificateChain(work, 'ec');
  const upstream = await startUpstream(work, 1);
  const sandbox = await startSandbox(1);
  const peerProcess = await createProcesses().start([PEER, upstream, tls.cert, tls.key], /peer (https:\S+)/, undefined, undefined, 0);
  const peerUrl = peerProcess.match[1];
  const nginxPort = await freePort();
  const nginxChild = await startNginx(work, nginxConf(1, nginxPort, upstream, tls), nginxPort, 'nginx-1', 0);
  const minigate = await startMinigate(work, 'minigate-1', sandbox, minigateYaml(upstream, tls, 1), 0);
  const token = await login(minigate.url, sandbox);

  const [nginx1, peer, authed, open] = await measureAll([
    { url: `https://127.0.0.1:${nginxPort}/api/items`, pid: nginxChild.pid },
    { url: `${peerUrl}/api/items`, pid: peerProcess.child.pid },
    { url: `${minigate.url}/api/items`, token, pid: minigate.child.pid },
    { url: `${minigate.url}/open/items`, pid: minigate.child.pid },
  ]);
  const m = { nginx: nginx1, peer, authed, open };
  const rows = [
    { ...row({ name: 'minigate authed proxy', unit: 'req/s', value: m.authed.rps, p99: m.authed.p99, peer: 'node proxy', peerValue: m.peer.rps, peerP99: m.peer.p99, target: { ratio: 0.9, p99: 2 } }), runs: m.authed.runs, peerRuns: m.peer.runs },
    // The same comparison in server CPU per request (lower is better: the ratio is minigate's CPU over the peer's).
    row({ name: 'minigate authed proxy, CPU per request', unit: 'CPU µs/req', value: m.authed.cpuUs, peer: 'node proxy', peerValue: m.peer.cpuUs }),
    { ...row({ name: 'minigate authed proxy', unit: 'req/s', value: m.authed.rps, p99: m.authed.p99, peer: 'nginx 1 worker', peerValue: m.nginx.rps, peerP99: m.nginx.p99 }), runs: m.authed.runs, peerRuns: m.nginx.runs },
    { ...row({ name: 'minigate auth: none', unit: 'req/s', value: m.open.rps, p99: m.open.p99, peer: 'node proxy', peerValue: m.peer.rps, peerP99: m.peer.p99 }), runs: m.open.runs, peerRuns: m.peer.runs },
    row({ name: 'node proxy', unit: 'req/s', value: m.peer.rps, p99: m.peer.p99, peer: 'nginx 1 worker', peerValue: m.nginx.rps, peerP99: m.nginx.p99 }),
  ];

  if (WORKERS > 1) {
    // The single-process minigate is idle from here on; stopped, so its timers leave the cores alone.
    await stopTracked(minigate.child);
    const nginxNPort = await freePort();
    await startNginx(work, nginxConf(WORKERS, nginxNPort, upstream, tls), nginxNPort, `nginx-${WORKERS}`);
    const minigateN = await startMinigate(work, `minigate-${WORKERS}`, sandbox, minigateYaml(upstream, tls, WORKERS));
    const tokenN = await login(minigateN.url, sandbox);
    // Not pinned: two workers need both CPUs (the upstream and wrk share them).
    const [nginxN, authedN] = await measureAll([{ url: `https://127.0.0.1:${nginxNPort}/api/items` }, { url: `${minigateN.url}/api/items`, token: tokenN }], undefined);
    rows.push(row({ name: `minigate authed proxy, ${WORKERS} workers`, unit: 'req/s', value: authedN.rps, p99: authedN.p99, peer: `nginx ${WORKERS} workers`, peerValue: nginxN.rps, peerP99: nginxN.p99 }));
  }

  const notes = [
    `GET /api/items over HTTPS keep-alive (ECDSA P-256 chain), ${ROUNDS} runs of ${ROUND_SECONDS}s per target taken in turn (median) after ${WARMUP}s warm-up, ${CONNECTIONS} connections`,
    `server CPU µs per request (median): nginx ${m.nginx.cpuUs}, node proxy ${m.peer.cpuUs}, minigate authed ${m.authed.cpuUs}, auth: none ${m.open.cpuUs}`,
    LIMITS_RAISED_NOTE,
    PINNED_NOTE,
    nginx,
    wrkVersion,
    ...(SMOKE ? ['SMOKE RUN: figures mean nothing'] : []),
  ];
  report(result('proxy', notes, { duration: DURATION, rounds: ROUNDS, roundSeconds: ROUND_SECONDS, warmup: WARMUP, connections: CONNECTIONS, workers: WORKERS, smoke: SMOKE }, rows), args.json);
}

runBench(main);
