// Memory of idle channel connections: the server's RSS before and after N authenticated
// sockets each join one room and then sit idle, for minigate (ws and wss) next to a bare `ws`
// room server (bench/peers/bare-ws-fanout.mjs) measured in the same run. Each row gets a fresh
// server process, so one row's freed-but-kept heap does not flatter the next one's baseline.
//
//   npm run bench:channel      (builds first)
//   node bench/channel-memory.mjs [--connections 10000] [--per-user 100] [--settle 5] [--json] [--smoke]
//
// RSS is what the operator pays for; it includes garbage the server has not collected yet
// (an idle server may not collect soon), so the figure is honest rather than flattering.
// Sessions are made (logins) before the baseline: they exist whether or not a socket is open.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createProcesses, freePort, LIMITS_RAISED_NOTE, LIMITS_RAISED_YAML, pool, post, selfSignedCertificate, stopTracked, workDir } from './processes.mjs';
import { benchArgs, report, result, row } from './table.mjs';

// ws is minigate's own dependency; taking it from there keeps client, peer and server on one version.
const { WebSocket } = createRequire(new URL('../packages/server/package.json', import.meta.url))('ws');

const values = benchArgs({
    connections: { type: 'string', default: '10000' },
    // Connections per logged-in user (channel.maxConnectionsPerUser is set to match). The
    // default, 1, is the mini program case: each user also costs its own user room. --per-user
    // 100 makes the setup shorter (100 logins instead of 10,000) and the figure a little lower.
    'per-user': { type: 'string', default: '1' },
    // Seconds to wait after warm-up and after connecting before reading RSS.
    settle: { type: 'string', default: '5' },
    'log-level': { type: 'string', default: 'info' },
});
const SMOKE = values.smoke;
const CONNECTIONS = SMOKE ? 200 : Number(values.connections);
const PER_USER = SMOKE ? 10 : Number(values['per-user']);
const SETTLE = SMOKE ? 1 : Number(values.settle);
const APPID = 'wx0b0e0c0d0a0f0e0d';
const SECRET = 'bench-secret-0123456789abcdef0123';
const ROOM = 'bench:idle';
const WARM_UP_SOCKETS = 50;
const CLI = new URL('../packages/server/bin/minigate.js', import.meta.url).pathname;
const PEER = new URL('./peers/bare-ws-fanout.mjs', import.meta.url).pathname;
const work = workDir('minigate-bench-channel-memory-');
const { start, stopAll } = createProcesses();
const clientSockets = new Set();

/** This process holds every client socket, the server every server socket; both need the file descriptors. */
function checkOpenFiles() {
  const soft = Number(execFileSync('sh', ['-c', 'ulimit -Sn'], { encoding: 'utf8' }).trim());
  const hard = execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  const needed = CONNECTIONS + 1000;
  if (!(soft >= needed)) {
    throw new Error(
      `${CONNECTIONS} connections need at least ${needed} open files (here and in the server, which inherits the limit); ` +
        `ulimit -n is ${soft} (hard limit ${hard}). Raise it in this shell first — ulimit -n ${needed} — or pass a smaller --connections.`,
    );
  }
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL'); // nothing to drain: the sockets are the client's to clean up
  await exited;
  await stopTracked(child); // and nothing else of its process group is left
}


const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));

/** VmRSS of a process, in KiB. */
function rssKiB(pid) {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

/** Opens a socket and joins the room; resolves once `joined` arrives. */
function connect(url, token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
      rejectUnauthorized: false, // the bench's self-signed certificate
    });
    clientSockets.add(ws);
    ws.on('error', reject);
    ws.on('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
    ws.on('open', () => ws.send(JSON.stringify({ type: 'join', room: ROOM })));
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'joined') resolve(ws);
      else if (frame.type === 'error') reject(new Error(`${frame.code}: ${frame.message}`));
    });
    ws.on('close', (code) => {
      clientSockets.delete(ws);
      if (ws.counted) closedEarly.push(code);
    });
  });
}
/** Close codes of counted sockets the server closed before the measurement ended. */
const closedEarly = [];

/**
 * A reconnect storm and a shutdown (docs/reliability.md#channels) on the sockets already open:
 * every client drops and reconnects at once (no back-off: the worst case), then SIGTERM with them
 * all connected.
 */
async function stormAndShutdown(server, url, sockets, tokenOf) {
  for (const ws of sockets) ws.terminate();
  await sleep(1);
  let failed = 0;
  const t0 = performance.now();
  const again = await pool(sockets.length, sockets.length, (i) =>
    connect(url, tokenOf(i)).catch(() => {
      failed++;
      return null;
    }),
  );
  const reconnectS = (performance.now() - t0) / 1000;
  const codes = new Map();
  const closed = again.filter(Boolean).map((ws) => new Promise((r) => ws.once('close', (code) => r(codes.set(code, (codes.get(code) ?? 0) + 1)))));
  const exited = new Promise((r) => server.child.once('exit', (code) => r(code)));
  const t1 = performance.now();
  server.child.kill('SIGTERM');
  const exitCode = await exited;
  const exitS = (performance.now() - t1) / 1000;
  await Promise.race([Promise.all(closed), sleep(5)]);
  return { reconnected: sockets.length - failed, failed, reconnectS, exitCode, exitS, codes };
}

async function measure(label, server, url, userTokens, extras = false) {
  const tokenOf = (i) => userTokens[Math.floor(i / PER_USER) % userTokens.length];
  const pid = server.child.pid;
  // Warm-up: the upgrade, session check and join paths run (and are compiled) before the baseline.
  const warm = await pool(WARM_UP_SOCKETS, 50, (i) => connect(url, tokenOf(i)));
  for (const ws of warm) ws.close();
  await sleep(SETTLE);
  const before = rssKiB(pid);
  // Lower concurrency for TLS: handshakes are the expensive part, and a queue of them only adds timeouts.
  const sockets = await pool(CONNECTIONS, url.startsWith('wss') ? 50 : 200, (i) => connect(url, tokenOf(i)));
  for (const ws of sockets) ws.counted = true;
  await sleep(SETTLE);
  const after = rssKiB(pid);
  const open = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  for (const ws of sockets) ws.counted = false;
  if (open !== CONNECTIONS) throw new Error(`${label}: only ${open} of ${CONNECTIONS} sockets were still open (close codes: ${[...new Set(closedEarly)].join(', ')})`);
  const storm = extras ? await stormAndShutdown(server, url, sockets, tokenOf) : undefined;
  await stop(server.child);
  for (const ws of clientSockets) ws.terminate();
  return { target: label, connections: CONNECTIONS, before, after, perConnection: (after - before) / CONNECTIONS, storm };
}

async function main() {
  checkOpenFiles();
  const tls = selfSignedCertificate(work);
  const sandbox = (await start([CLI, 'sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`], /sandbox (http:\/\/\S+)/)).match[1];

  // One config for every minigate row: the same dataDir (secret key) and store, so the tokens
  // made in the first process are good in the next.
  const httpPort = await freePort();
  const httpsPort = await freePort();
  const config = (withTls) => {
    const file = path.join(work, withTls ? 'minigate-tls.yaml' : 'minigate.yaml');
    writeFileSync(
      file,
      `dataDir: ${work}/data
listen:
  http: 127.0.0.1:${httpPort}
${withTls ? `  https: 127.0.0.1:${httpsPort}\ntls:\n  certificates:\n    - cert: ${tls.cert}\n      key: ${tls.key}\n` : ''}wechat:
  apiBase: ${sandbox}
apps:
  - appid: ${APPID}
    secret: ${SECRET}
store: sqlite:${work}/bench.db
log:
  level: ${values['log-level']}
channel:
  rooms:
    - match: "bench:*"
  maxConnectionsPerUser: ${Math.max(PER_USER, 10)}
${LIMITS_RAISED_YAML}`,
    );
    return file;
  };
  const startMinigate = (withTls, name) => start([CLI, 'start', '-c', config(withTls)], /listening on (https?:\S+)/, path.join(work, `minigate-${name}.log`));

  // The logins get a process of their own: 10,000 of them (--per-user 1) grow the heap, and
  // that would hide the sockets' cost in a baseline taken after them.
  const login = await startMinigate(false, 'login');
  const { codes } = await post(`${sandbox}/__sandbox/codes`, { appid: APPID, count: Math.ceil(CONNECTIONS / PER_USER) });
  const userTokens = await pool(codes.length, 50, async (i) => (await post(`http://127.0.0.1:${httpPort}/auth/login`, { appid: APPID, code: codes[i].code })).token);
  await stop(login.child);

  const rows = [];
  let minigate = await startMinigate(false, 'ws');
  rows.push(await measure('minigate (ws)', minigate, `ws://127.0.0.1:${httpPort}/channel`, userTokens, true));

  const peer = await start([PEER], /peer (ws:\S+)/);
  rows.push(await measure('bare ws (peer)', peer, peer.match[1], userTokens));

  minigate = await startMinigate(true, 'wss');
  rows.push(await measure('minigate (wss)', minigate, `wss://127.0.0.1:${httpsPort}/channel`, userTokens));

  const peerTls = await start([PEER, '--cert', tls.cert, '--key', tls.key], /peer (wss:\S+)/);
  rows.push(await measure('bare ws (peer, wss)', peerTls, peerTls.match[1], userTokens));

  const mib = (kib) => (kib / 1024).toFixed(1);
  const storm = rows[0].storm;
  const closeCodes = [...storm.codes].map(([code, n]) => `${n}× ${code}`).join(', ') || 'none';
  const [ws, bare, wss, bareTls] = rows;
  const notes = [
    `idle sockets in one room, ${CONNECTIONS} connections (${PER_USER} per user), RSS read ${SETTLE}s after connecting`,
    LIMITS_RAISED_NOTE,
    `RSS before → after (MiB): ${rows.map((r) => `${r.target} ${mib(r.before)} → ${mib(r.after)}`).join('; ')}`,
    `minigate (ws), the same ${CONNECTIONS} sockets all dropped and reconnected at once (no back-off): ${storm.reconnected} back in ${storm.reconnectS.toFixed(1)} s, ${storm.failed} failed; then SIGTERM: exit code ${storm.exitCode} after ${storm.exitS.toFixed(1)} s, close codes ${closeCodes}`,
    ...(SMOKE ? ['SMOKE RUN: figures mean nothing'] : []),
  ];
  const out = [
    row({ name: 'idle channel socket, ws', unit: 'KiB/connection', value: ws.perConnection, peer: 'bare ws', peerValue: bare.perConnection, target: { max: 16 } }),
    row({ name: 'idle channel socket, wss', unit: 'KiB/connection', value: wss.perConnection, peer: 'bare ws (wss)', peerValue: bareTls.perConnection }),
  ];
  report(result('channel-memory', notes, { connections: CONNECTIONS, perUser: PER_USER, settle: SETTLE, smoke: SMOKE }, out), values.json);
  reportLogs();
}

/** Warnings and errors minigate logged (other than the self-signed certificate notice). */
function reportLogs() {
  for (const name of ['login', 'ws', 'wss']) {
    const lines = readFileSync(path.join(work, `minigate-${name}.log`), 'utf8')
      .split('\n')
      .filter((l) => /"level":(40|50|60)/.test(l) && !l.includes('self-signed'));
    if (lines.length === 0) continue;
    // On stderr: stdout is the result (one JSON object with --json).
    console.error(`\nminigate (${name}) logged ${lines.length} warning(s)/error(s); the first:`);
    for (const l of lines.slice(0, 5)) console.error(`  ${l}`);
  }
}

async function cleanUp() {
  for (const ws of clientSockets) ws.terminate();
  try {
    await stopAll();
  } catch (error) {
    console.error(error.message);
    process.exitCode = 1;
  }
  rmSync(work, { recursive: true, force: true });
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanUp();
    // Nothing should be left holding the loop open; make sure a stray handle cannot hang the bench.
    setTimeout(() => process.exit(), 2000).unref();
  });
