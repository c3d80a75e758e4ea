// Channel fan-out: one publisher and N subscribers in one room, small messages. Deliveries/s
// (messages received across all subscribers) and publish → receipt latency, for minigate next
// to a bare `ws` room server (bench/peers/bare-ws-fanout.mjs) measured in the same run with the
// same client code. Servers run in their own processes; this process is the client.
//
//   npm run bench:channel      (builds first)
//   node bench/channel.mjs [--subscribers 1000] [--duration 10] [--window 4] [--tls] [--json] [--smoke]
//
// The client (this one process holding every socket) may itself be the bottleneck on a 2-core
// machine: it shares the cores with the server under test. It is kept cheap — a frame is
// read for its sequence number and send time straight from the Buffer, never JSON.parse'd —
// and both targets pay the same client cost, so the ratio stays fair even if the absolute
// figures are the client's.
//
// Flow control: the publisher keeps at most --window messages in flight (sent but not yet
// received by every subscriber). Neither the server nor the client is pushed into building
// queues, so no subscriber comes near minigate's slow-consumer limit (channel.maxQueueBytes,
// 1 MiB by default, close code 4008); the bench leaves that limit at its default. Latency
// is then the cost of one message through the server at this load, not time spent in a
// backlog the bench itself made.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { cpuSeconds, createProcesses, freePort, LIMITS_RAISED_NOTE, LIMITS_RAISED_YAML, pool, post, selfSignedCertificate, workDir } from './processes.mjs';
import { benchArgs, report, result, row } from './table.mjs';

// ws is minigate's own dependency; taking it from there keeps client, peer and server on one version.
const { WebSocket } = createRequire(new URL('../packages/server/package.json', import.meta.url))('ws');

const values = benchArgs({
    subscribers: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    // Messages in flight. Latency is about window × subscribers / deliveries per second (Little's
    // law); 1 leaves the server idle while the last receipt travels back, and past 4 the
    // throughput did not grow on 2 cores, only the latency.
    window: { type: 'string', default: '4' },
    // Bytes of the message's `data` (JSON), send time and sequence number included.
    size: { type: 'string', default: '100' },
    // Connections per logged-in user (channel.maxConnectionsPerUser is set to match): fewer logins to set up.
    'per-user': { type: 'string', default: '100' },
    // Also measure both over TLS (wss://).
    tls: { type: 'boolean', default: false },
    'log-level': { type: 'string', default: 'info' },
});
const SMOKE = values.smoke;
const SUBSCRIBERS = SMOKE ? 50 : Number(values.subscribers);
const DURATION = SMOKE ? 1 : Number(values.duration);
const WARMUP = SMOKE ? 1 : Number(values.warmup);
const WINDOW = Number(values.window);
const SIZE = Number(values.size);
const PER_USER = SMOKE ? 25 : Number(values['per-user']);
// A smoke run covers wss too, so that path cannot rot either.
const TLS = values.tls || SMOKE;
const APPID = 'wx0b0e0c0d0a0f0e0d';
const SECRET = 'bench-secret-0123456789abcdef0123';
const ROOM = 'bench:fanout';
const CLI = new URL('../packages/server/bin/minigate.js', import.meta.url).pathname;
const PEER = new URL('./peers/bare-ws-fanout.mjs', import.meta.url).pathname;
const work = workDir('minigate-bench-channel-');
const { start, stop, stopAll } = createProcesses();
const clientSockets = new Set();

if (!(WINDOW >= 1 && WINDOW <= 1024)) throw new Error('--window must be 1…1024');


/** Session tokens for `users` new sandbox users, logged in through minigate (50 logins in flight). */
async function tokens(minigate, sandbox, users) {
  const { codes } = await post(`${sandbox}/__sandbox/codes`, { appid: APPID, count: users });
  return pool(users, 50, async (i) => (await post(`${minigate}/auth/login`, { appid: APPID, code: codes[i].code })).token);
}

// ---- the client -------------------------------------------------------------------------------

const K = Buffer.from('"k":');
/** Latency histogram: 10 µs buckets up to 10 s (the last bucket takes anything slower). */
const BUCKET_US = 10;
const hist = new Uint32Array(1_000_000);
const RING = 4096; // > WINDOW: receipts per message in flight, by sequence number
const received = new Uint32Array(RING);
let sent = 0; // messages published
let done = 0; // messages every subscriber has received (all below this one)
let measuring = false;
let deliveries = 0;
let running = false;
let publisher;
const padding = (() => {
  const bare = `{"k":${1e5},"t":${1e8},"p":""}`.length; // a typical sequence number and send time (µs since start)
  return 'x'.repeat(Math.max(0, SIZE - bare));
})();
const nowUs = () => Math.round(performance.now() * 1000);

/** Reads a decimal integer from the bytes at `p`; returns it with the position after its end. */
function digits(buf, p) {
  let n = 0;
  let c;
  while ((c = buf[p]) >= 48 && c <= 57) {
    n = n * 10 + c - 48;
    p++;
  }
  return [n, p];
}

/**
 * A subscriber's frame. Both servers send our `data` object unchanged, which begins
 * {"k":<seq>,"t":<send time µs>, so the two numbers are read from the bytes where they are.
 */
function onSubscriberFrame(data) {
  const i = data.indexOf(K);
  if (i === -1) return onControlFrame(this, data);
  const [k, p] = digits(data, i + 4);
  const [t] = digits(data, p + 5); // past ,"t":
  if (measuring) {
    deliveries++;
    hist[Math.min(((nowUs() - t) / BUCKET_US) | 0, hist.length - 1)]++;
  }
  received[k % RING]++;
  if (received[done % RING] === SUBSCRIBERS) advance();
}

function advance() {
  while (done < sent && received[done % RING] === SUBSCRIBERS) received[done++ % RING] = 0;
  pump();
}

function pump() {
  while (running && sent - done < WINDOW) {
    const k = sent++;
    publisher.send(`{"type":"publish","room":"${ROOM}","event":"tick","data":{"k":${k},"t":${nowUs()},"p":"${padding}"}}`);
  }
}

/** joined / error frames (setup and failures only: never on the hot path). */
function onControlFrame(ws, data) {
  const frame = JSON.parse(data.toString());
  if (frame.type === 'joined') ws.joined?.();
  else if (frame.type === 'error') ws.failed?.(new Error(`${ws.label}: ${frame.code} ${frame.message}`));
}

/** Opens a socket, joins the room, resolves when `joined` arrives. */
function connect(url, token, label, onFrame) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
      rejectUnauthorized: false, // the bench's self-signed certificate
      skipUTF8Validation: true, // the client trusts the server under test: one pass less over each frame
    });
    ws.label = label;
    ws.joined = () => {
      ws.joined = undefined;
      resolve(ws);
    };
    ws.failed = reject;
    clientSockets.add(ws);
    ws.on('message', onFrame);
    ws.on('error', reject);
    ws.on('unexpected-response', (_req, res) => reject(new Error(`${label}: upgrade answered ${res.statusCode}`)));
    ws.on('open', () => ws.send(JSON.stringify({ type: 'join', room: ROOM })));
    ws.on('close', (code) => {
      clientSockets.delete(ws);
      if (running) ws.failed(new Error(`${label}: closed with ${code} during the run`));
    });
  });
}

/** Subscribers, a publisher, a warm-up, then `DURATION` seconds of counted deliveries. */
async function measure(label, url, userTokens, serverPid) {
  const tokenOf = (i) => userTokens[Math.floor(i / PER_USER)];
  const subscribers = await pool(SUBSCRIBERS, 100, (i) => connect(url, tokenOf(i), `${label} subscriber ${i}`, onSubscriberFrame));
  // The publisher is a member too (it gets its own messages back; they are not counted).
  publisher = await connect(url, userTokens.at(-1), `${label} publisher`, function (data) {
    if (data.indexOf(K) === -1) onControlFrame(this, data);
  });
  sent = done = deliveries = 0;
  received.fill(0);
  hist.fill(0);

  const failure = new Promise((_, reject) => {
    for (const ws of [...subscribers, publisher]) ws.failed = reject;
  });
  failure.catch(() => undefined); // handled by the sleeps below; a late one is of no use
  let lastDone = -1;
  let stalled = 0;
  // A lost message would stop the window for good: say so instead of hanging.
  const watchdog = setInterval(() => {
    stalled = done === lastDone ? stalled + 1 : 0;
    lastDone = done;
    if (stalled >= 10) publisher.failed(new Error(`${label}: no progress for 10 s (message ${done}: ${received[done % RING]}/${SUBSCRIBERS} received)`));
  }, 1000);
  const sleep = (s) => Promise.race([new Promise((r) => setTimeout(r, s * 1000)), failure]);
  try {
    running = true;
    pump();
    await sleep(WARMUP);
    const sentBefore = sent;
    deliveries = 0;
    hist.fill(0);
    measuring = true;
    const t0 = performance.now();
    const cpu0 = { server: cpuSeconds(serverPid), client: process.cpuUsage(), machine: machineBusySeconds() };
    await sleep(DURATION);
    measuring = false;
    const seconds = (performance.now() - t0) / 1000;
    const clientCpu = process.cpuUsage(cpu0.client);
    const serverCpu = (cpuSeconds(serverPid) - cpu0.server) / seconds;
    const machineCpu = (machineBusySeconds() - cpu0.machine) / seconds;
    const published = sent - sentBefore;
    running = false;
    // Let what is in flight arrive, so the next target starts clean.
    const deadline = Date.now() + 5000;
    while (done < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return {
      target: label,
      deliveries: deliveries / seconds,
      messages: published / seconds,
      p50: percentile(0.5),
      p99: percentile(0.99),
      serverCpu,
      clientCpu: (clientCpu.user + clientCpu.system) / 1e6 / seconds,
      machineCpu,
    };
  } finally {
    running = false;
    clearInterval(watchdog);
    for (const ws of [...subscribers, publisher]) ws.terminate();
  }
}

/** CPU seconds the whole machine has been busy (all cores), from /proc/stat. */
function machineBusySeconds() {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + steal) / 100;
}

function percentile(q) {
  const total = hist.reduce((a, b) => a + b, 0);
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i];
    if (seen >= q * total) return ((i + 0.5) * BUCKET_US) / 1000; // ms, middle of the bucket
  }
  return NaN;
}

// ---- the run ------------------------------------------------------------------------------------

async function main() {
  const tls = TLS ? selfSignedCertificate(work) : undefined;
  const sandbox = (await start([CLI, 'sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`], /sandbox (http:\/\/\S+)/)).match[1];

  const httpPort = await freePort();
  const httpsPort = tls ? await freePort() : undefined;
  const minigateLog = path.join(work, 'minigate.log');
  const config = path.join(work, 'minigate.yaml');
  writeFileSync(
    config,
    `dataDir: ${work}/data
listen:
  http: 127.0.0.1:${httpPort}
${tls ? `  https: 127.0.0.1:${httpsPort}\n  httpRedirect: false\ntls:\n  certificates:\n    - cert: ${tls.cert}\n      key: ${tls.key}\n` : ''}wechat:
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
  maxConnectionsPerUser: ${PER_USER}
  # The publisher sends far more than a mini program would (20/s by default).
  messagesPerSecond: 1000000
${LIMITS_RAISED_YAML}`,
  );
  const minigate = await start([CLI, 'start', '-c', config], /listening on (https?:\S+)/, minigateLog);
  const http = `http://127.0.0.1:${httpPort}`;
  // One user per PER_USER subscribers, and one for the publisher.
  const users = Math.ceil(SUBSCRIBERS / PER_USER) + 1;
  const userTokens = await tokens(http, sandbox, users);

  const peer = await start([PEER], /peer (ws:\S+)/);
  const peerTls = tls ? await start([PEER, '--cert', tls.cert, '--key', tls.key], /peer (wss:\S+)/) : undefined;
  const mg = minigate.child.pid;

  const pairs = [[await measure('minigate (ws)', `ws://127.0.0.1:${httpPort}/channel`, userTokens, mg), await measure('bare ws (peer)', peer.match[1], userTokens, peer.child.pid)]];
  if (tls) {
    pairs.push([
      await measure('minigate (wss)', `wss://127.0.0.1:${httpsPort}/channel`, userTokens, mg),
      await measure('bare ws (peer, wss)', peerTls.match[1], userTokens, peerTls.child.pid),
    ]);
  }
  await stop(minigate.child);

  // CPU: cores used by the server under test and by this client process (a client near 100% is
  // the limit), and by everything else on the machine (kernel softirq work included): when
  // "others" is high, something else was running and the figures are noisy.
  const pct = (x) => `${Math.round(x * 100)}%`;
  const cpu = pairs.flat().map((r) => `${r.target}: server ${pct(r.serverCpu)}, client ${pct(r.clientCpu)}, others ${pct(Math.max(0, r.machineCpu - r.serverCpu - r.clientCpu))}`);
  const rows = pairs.map(([mine, bare]) =>
    row({ name: `fan-out ${mine.target.includes('wss') ? 'wss' : 'ws'}`, unit: 'deliveries/s', value: mine.deliveries, p99: mine.p99, peer: 'bare ws', peerValue: bare.deliveries, peerP99: bare.p99, target: { ratio: 0.7, p99: 2 } }),
  );
  const notes = [
    `1 publisher → ${SUBSCRIBERS} subscribers in one room, ${SIZE}-byte data, ${WINDOW} messages in flight, ${DURATION}s after ${WARMUP}s warm-up`,
    LIMITS_RAISED_NOTE,
    `CPU (cores) ${cpu.join('; ')}`,
    ...(SMOKE ? ['SMOKE RUN: figures mean nothing'] : []),
  ];
  report(result('channel', notes, { subscribers: SUBSCRIBERS, duration: DURATION, warmup: WARMUP, window: WINDOW, size: SIZE, tls: TLS, smoke: SMOKE }, rows), values.json);
  reportLog(minigateLog);
}

/** Warnings and errors minigate logged, but the self-signed certificate notice (slow-consumer closes, 4008, would show here). */
function reportLog(file) {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => /"level":(40|50|60)/.test(l) && !l.includes('self-signed'));
  if (lines.length === 0) return;
  // On stderr: stdout is the result (one JSON object with --json).
  console.error(`\nminigate logged ${lines.length} warning(s)/error(s); the first:`);
  for (const l of lines.slice(0, 5)) console.error(`  ${l}`);
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
