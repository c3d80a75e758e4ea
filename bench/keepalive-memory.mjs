// Memory of idle keep-alive HTTPS client connections: the server's RSS before and after N TLS
// connections each make one authenticated request (GET /auth/session) and then sit idle, for
// minigate next to a bare node:https server (bench/peers/bare-https.mjs) measured in the same run,
// each in a fresh process. Both keep an idle connection 30 s; RSS is read well before that.
//
//   node bench/keepalive-memory.mjs [--connections 2000] [--settle 3] [--json] [--smoke]
//
// RSS includes garbage not yet collected, as in channel-memory.mjs: what the operator pays.
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { createProcesses, LIMITS_RAISED_NOTE, pool, runBench, stopTracked, workDir } from './processes.mjs';
import { certificateChain, login, startMinigate, startSandbox } from './setup.mjs';
import { benchArgs, report, result, row } from './table.mjs';

const args = benchArgs({
  connections: { type: 'string', default: '2000' },
  settle: { type: 'string', default: '3' },
});
const SMOKE = args.smoke;
const CONNECTIONS = SMOKE ? 100 : Number(args.connections);
const SETTLE = SMOKE ? 1 : Number(args.settle);
const WARM_UP = 50;
const PEER = new URL('./peers/bare-https.mjs', import.meta.url).pathname;
const work = workDir('minigate-bench-keepalive-');
const sockets = new Set();
const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));
const rssKiB = (pid) => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

/** A TLS connection that has had one 200 answer to GET /auth/session and stays open. */
function idleConnection(url, token) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), rejectUnauthorized: false, servername: 'localhost' });
    sockets.add(socket);
    let text = '';
    socket.setEncoding('latin1');
    socket.on('error', reject);
    socket.on('close', () => sockets.delete(socket));
    socket.once('secureConnect', () => socket.write(`GET /auth/session HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n\r\n`));
    socket.on('data', (d) => {
      text += d;
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? NaN);
      if (text.length - end - 4 < length) return;
      if (!text.startsWith('HTTP/1.1 200')) reject(new Error(`${url}: ${text.split('\r\n')[0]}`));
      else resolve(socket);
    });
  });
}

async function measure(url, pid, token) {
  const warm = await pool(WARM_UP, 25, () => idleConnection(url, token));
  for (const s of warm) s.destroy();
  await sleep(SETTLE);
  const before = rssKiB(pid);
  const open = await pool(CONNECTIONS, 50, () => idleConnection(url, token));
  await sleep(SETTLE);
  const after = rssKiB(pid);
  const still = open.filter((s) => !s.destroyed).length;
  if (still !== CONNECTIONS) throw new Error(`${url}: only ${still} of ${CONNECTIONS} connections were still open`);
  for (const s of open) s.destroy();
  return { before, after, perConnection: (after - before) / CONNECTIONS };
}

async function main() {
  const tls = certificateChain(work, 'ec');
  const sandbox = await startSandbox();
  const minigate = await startMinigate(work, 'minigate', sandbox, `listen:\n  http: 127.0.0.1:0\n  https: 127.0.0.1:0\n  httpRedirect: false\ntls:\n  certificates:\n    - cert: ${tls.cert}\n      key: ${tls.key}\n`);
  const token = await login(minigate.url, sandbox);
  const mine = await measure(minigate.url, minigate.child.pid, token);
  await stopTracked(minigate.child);

  const peer = await createProcesses().start([PEER, tls.cert, tls.key], /peer (https:\S+)/);
  const bare = await measure(peer.match[1], peer.child.pid, token);

  const mib = (kib) => (kib / 1024).toFixed(1);
  const notes = [
    `${CONNECTIONS} HTTPS keep-alive connections (ECDSA P-256, TLS 1.3), one GET /auth/session each, then idle; RSS read ${SETTLE}s after the last, ${WARM_UP} connections' warm-up before the baseline`,
    LIMITS_RAISED_NOTE,
    `RSS before → after (MiB): minigate ${mib(mine.before)} → ${mib(mine.after)}; bare node:https ${mib(bare.before)} → ${mib(bare.after)}`,
    ...(SMOKE ? ['SMOKE RUN: figures mean nothing'] : []),
  ];
  const rows = [row({ name: 'idle keep-alive HTTPS connection', unit: 'KiB/connection', value: mine.perConnection, peer: 'bare node:https', peerValue: bare.perConnection, target: { maxRatio: 1.3 } })];
  report(result('keepalive-memory', notes, { connections: CONNECTIONS, settle: SETTLE, smoke: SMOKE }, rows), args.json);
}

runBench(main, {
  beforeStop: () => {
    for (const s of sockets) s.destroy();
  },
});
