// New TLS handshakes per second on minigate's HTTPS listener next to nginx (1 worker), for an
// ECDSA P-256 and an RSA 2048 leaf, full and resumed, measured in one run. The client is
// `openssl s_time` (-new: a full handshake per connection; -reuse: the first one full, the rest
// resume its session), --clients of them in parallel; each connection is a handshake and a close,
// no request. The rate is connections / the wall time of the s_time runs (s_time's own "real
// seconds" is whole seconds only). Resumed rows check that s_time did resume.
//
// Full handshakes are TLS 1.3. Resumed ones are TLS 1.2 (session tickets): a TLS 1.3 ticket comes
// after the handshake, and s_time without a request closes before reading it — from Node it has
// not arrived yet (from nginx it has), so a TLS 1.3 "resumed" row would compare a resumption with
// full handshakes. Clients that make a request (every mini program) do get and use it.
//
//   node bench/handshake.mjs [--duration 10] [--clients 2] [--json] [--smoke]
//
// The clients share the machine's cores with the server under test, and a full handshake costs
// the client about what it costs the server: on a 2-core box the figures are the pair's, and the
// ratio is what to read.

import { freePort, LIMITS_RAISED_NOTE, nginxVersion, runBench, runTracked, startNginx, stopTracked, workDir } from './processes.mjs';
import { certificateChain, startMinigate, startSandbox } from './setup.mjs';
import { benchArgs, report, result, row } from './table.mjs';

const args = benchArgs({
  duration: { type: 'string', default: '10' },
  clients: { type: 'string', default: '2' },
});
const SMOKE = args.smoke;
const DURATION = SMOKE ? 1 : Number(args.duration);
const CLIENTS = SMOKE ? 1 : Number(args.clients);
const work = workDir('minigate-bench-handshake-');

function nginxConf(port, tls) {
  return `worker_processes 1;
daemon off;
master_process on;
pid ${work}/nginx.pid;
error_log ${work}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${work}/nginx-body;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    location / { return 200 "ok\\n"; }
  }
}
`;
}

const sTime = (hostPort, mode, seconds) => ['s_time', '-connect', hostPort, `-${mode}`, '-time', String(seconds), mode === 'reuse' ? '-tls1_2' : '-tls1_3'];

/** Handshakes/s against host:port: CLIENTS s_time processes for DURATION seconds. */
async function handshakes(hostPort, mode, name) {
  const started = performance.now();
  const outs = await Promise.all(
    Array.from({ length: CLIENTS }, () => runTracked('openssl', sTime(hostPort, mode, DURATION), { timeoutMs: (DURATION + 30) * 1000 })),
  );
  const seconds = (performance.now() - started) / 1000;
  let connections = 0;
  let resumed = 0;
  let full = 0;
  for (const { stdout } of outs) {
    const m = /(\d+) connections in [\d.]+ real seconds/.exec(stdout);
    if (!m) throw new Error(`openssl s_time against ${hostPort}: no count in its output\n${stdout.slice(-500)}`);
    connections += Number(m[1]);
    // One mark per connection, on lines of their own: r = resumed, * = a full handshake.
    const marks = stdout.split('\n').filter((l) => /^[r*]+$/.test(l)).join('');
    resumed += (marks.match(/r/g) ?? []).length;
    full += (marks.match(/\*/g) ?? []).length;
  }
  if (connections === 0) throw new Error(`openssl s_time against ${hostPort}: no connection made`);
  if (mode === 'reuse' ? resumed < 0.9 * (resumed + full) : resumed > 0) throw new Error(`${name} (${hostPort}) resumed ${resumed} of ${resumed + full} sessions in -${mode} mode: not the figure this row is`);
  return connections / seconds;
}

async function main() {
  const nginx = nginxVersion();
  const openssl = (await runTracked('openssl', ['version'])).stdout.trim().replace(/ \(Library.*/, '');
  // minigate needs a WeChat API to start; the sandbox is idle during the measurement.
  const sandbox = await startSandbox();
  const rows = [];
  for (const [keyType, label] of [['ec', 'ECDSA P-256'], ['rsa', 'RSA 2048']]) {
    const tls = certificateChain(work, keyType);
    const nginxPort = await freePort();
    const nginxChild = await startNginx(work, nginxConf(nginxPort, tls), nginxPort, `nginx-${keyType}`);
    const minigate = await startMinigate(work, `minigate-${keyType}`, sandbox, `listen:\n  http: 127.0.0.1:0\n  https: 127.0.0.1:0\n  httpRedirect: false\ntls:\n  certificates:\n    - cert: ${tls.cert}\n      key: ${tls.key}\n`);
    const minigateHostPort = new URL(minigate.url).host;
    for (const mode of ['new', 'reuse']) {
      // A short warm-up for each (JIT, session caches), then the measured run.
      await Promise.all([runTracked('openssl', sTime(minigateHostPort, mode, 1)), runTracked('openssl', sTime(`127.0.0.1:${nginxPort}`, mode, 1))]);
      const peer = await handshakes(`127.0.0.1:${nginxPort}`, mode, "nginx");
      const value = await handshakes(minigateHostPort, mode, "minigate");
      const kind = mode === 'new' ? 'full (TLS 1.3)' : 'resumed (TLS 1.2 ticket)';
      rows.push(row({ name: `${label}, ${kind}`, unit: 'handshakes/s', value, peer: 'nginx 1 worker', peerValue: peer, target: keyType === 'ec' && mode === 'new' ? { ratio: 0.6 } : undefined }));
    }
    await stopTracked(minigate.child);
    await stopTracked(nginxChild);
  }
  const notes = [
    `TLS handshakes (connect + handshake + close, no request), ${CLIENTS} openssl s_time client(s) in parallel, ${DURATION}s per row after 1s warm-up`,
    LIMITS_RAISED_NOTE,
    nginx,
    openssl,
    ...(SMOKE ? ['SMOKE RUN: figures mean nothing'] : []),
  ];
  report(result('handshake', notes, { duration: DURATION, clients: CLIENTS, smoke: SMOKE }, rows), args.json);
}

runBench(main);
