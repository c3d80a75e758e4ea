// CPU per request of minigate itself, before vs after a change: two trees (each built) run side
// by side with the same config (metrics and access lines at their defaults, log level info); a
// Node client sends exactly N requests on keep-alive connections to each in turn, and the server
// process reports its own CPU time (process.cpuUsage(): user + system, all threads) before and
// after. CPU time, unlike requests/s, hardly moves when other work shares the machine, so a few
// per cent can be seen on a loaded 2-core box. Median of the alternating runs.
//
//   node bench/cost.mjs --before /work/before [--after .] [--requests 20000] [--runs 5] [--json] [--smoke]
//
// Not part of `npm run bench` (it needs a second tree); the smoke run compares this tree with itself.
//
// Paths: GET /auth/session over plain HTTP (session check from the store), and GET /api/items over
// HTTPS through the authed proxy (session check, identity headers, upstream on keep-alive).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import path from 'node:path';
import { createProcesses, freePort, LIMITS_RAISED_NOTE, LIMITS_RAISED_YAML, runBench, workDir } from './processes.mjs';
import { benchArgs, median, report, result, row } from './table.mjs';

const values = benchArgs({
    before: { type: 'string' },
    after: { type: 'string', default: new URL('..', import.meta.url).pathname },
    requests: { type: 'string', default: '20000' },
    runs: { type: 'string', default: '5' },
    connections: { type: 'string', default: '8' },
    // YAML appended to the after tree's config only, to see what a setting costs (e.g. "metrics: {enabled: false}").
    'after-yaml': { type: 'string', default: '' },
    // warn: no access lines in either tree, to tell their cost from the rest.
    'log-level': { type: 'string', default: 'info' },
});
if (!values.before) {
  console.error('usage: node bench/cost.mjs --before <tree> [--after <tree>] [--requests N] [--runs R] [--json]');
  process.exit(2);
}
const SMOKE = values.smoke;
const N = SMOKE ? 500 : Number(values.requests);
const RUNS = SMOKE ? 1 : Number(values.runs);
const CONNECTIONS = Number(values.connections);
const APPID = 'wx0b0e0c0d0a0f0e0d';
const SECRET = 'bench-secret-0123456789abcdef0123';
const cli = (tree) => path.join(path.resolve(tree), 'packages/server/bin/minigate.js');
const work = workDir('minigate-bench-cost-');
const processes = createProcesses();

// Loaded into each minigate process (NODE_OPTIONS --require): answers its CPU time on a unix socket.
const PROBE = path.join(work, 'probe.cjs');
writeFileSync(
  PROBE,
  `const p = process.env.MG_COST_PROBE;
delete process.env.MG_COST_PROBE;
delete process.env.NODE_OPTIONS;
if (p) require('node:net').createServer((c) => c.end(JSON.stringify(process.cpuUsage()))).listen(p).unref();
`,
);

function cpuOf(socketPath) {
  return new Promise((resolve, reject) => {
    let text = '';
    connect(socketPath)
      .on('data', (d) => (text += d))
      .on('end', () => {
        const { user, system } = JSON.parse(text);
        resolve(user + system);
      })
      .on('error', reject);
  });
}

function start(args, ready, { logFile, env } = {}) {
  return processes.start(args, ready, logFile, env).then(({ match }) => match);
}

function certificates() {
  const openssl = (args) => execFileSync('openssl', args, { cwd: work, stdio: 'pipe' });
  writeFileSync(path.join(work, 'leaf.ext'), 'basicConstraints=CA:false\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.pem', '-days', '30', '-subj', '/CN=localhost', '-extensions', 'v3_req', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
  return { cert: path.join(work, 'leaf.pem'), key: path.join(work, 'leaf.key') };
}

/** Sends exactly `n` requests, `CONNECTIONS` at a time on keep-alive connections; every answer must be 200. */
function send(url, n, token) {
  const target = new URL(url);
  const https = target.protocol === 'https:';
  const agent = new (https ? HttpsAgent : HttpAgent)({ keepAlive: true, maxSockets: CONNECTIONS });
  const request = https ? httpsRequest : httpRequest;
  let issued = 0;
  let bad = 0;
  const one = () =>
    new Promise((resolve, reject) => {
      const req = request(target, { agent, rejectUnauthorized: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
        if (res.statusCode !== 200) bad++;
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
  const lane = async () => {
    while (issued < n) {
      issued++;
      await one();
    }
  };
  return Promise.all(Array.from({ length: CONNECTIONS }, lane)).then(() => {
    agent.destroy();
    if (bad) throw new Error(`${url}: ${bad} of ${n} answers were not 200`);
  });
}

async function login(base, sandbox) {
  const { code } = await (await fetch(`${sandbox}/__sandbox/login`, { method: 'POST', body: JSON.stringify({ appid: APPID }) })).json();
  const r = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
  if (!r.ok) throw new Error(`login at ${base}: ${r.status} ${await r.text()}`);
  return (await r.json()).token;
}

async function server(name, tree, sandbox, upstream, tls) {
  const config = path.join(work, `${name}.yaml`);
  // start prints only the HTTPS address; the HTTP one is chosen here.
  const httpPort = await freePort();
  writeFileSync(
    config,
    `dataDir: ${work}/data-${name}
listen:
  http: 127.0.0.1:${httpPort}
  https: 127.0.0.1:0
  httpRedirect: false
tls:
  certificates:
    - cert: ${tls.cert}
      key: ${tls.key}
wechat:
  apiBase: ${sandbox}
apps:
  - appid: ${APPID}
    secret: ${SECRET}
upstreamSecret: bench-upstream-secret
routes:
  - path: /api
    proxy: ${upstream}
    auth: required
log:
  level: ${values['log-level']}
${LIMITS_RAISED_YAML}${name === 'after' && values['after-yaml'] ? `${values['after-yaml']}\n` : ''}`,
  );
  const probe = path.join(work, `${name}.sock`);
  const env = { NODE_OPTIONS: `--require ${PROBE}`, MG_COST_PROBE: probe };
  // Both listeners are announced; wait for both.
  const urls = await start([cli(tree), 'start', '-c', config], (text) => {
    const https = /listening on (https:\/\/\S+)/.exec(text);
    return https ? { https: https[1], http: `http://127.0.0.1:${httpPort}` } : null;
  }, { logFile: path.join(work, `${name}.log`), env });
  const token = await login(urls.http, sandbox);
  return { name, probe, urls, token };
}

/** CPU µs per request of one server for n requests to url. */
async function cost(s, url, n) {
  const before = await cpuOf(s.probe);
  await send(url, n, s.token);
  return ((await cpuOf(s.probe)) - before) / n;
}


async function main() {
  const tls = certificates();
  const upstreamFile = path.join(work, 'upstream.mjs');
  writeFileSync(
    upstreamFile,
    `import { createServer } from 'node:http';
const body = JSON.stringify({ ok: true, items: [1, 2, 3] });
const server = createServer((req, res) => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }); res.end(body); });
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log('upstream http://127.0.0.1:' + server.address().port));`,
  );
  const upstream = (await start([upstreamFile], /upstream (http:\S+)/))[1];
  const sandbox = (await start([cli(values.after), 'sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`], /sandbox (http:\/\/\S+)/))[1];

  const servers = [await server('before', values.before, sandbox, upstream, tls), await server('after', values.after, sandbox, upstream, tls)];
  const paths = [
    { label: 'GET /auth/session (HTTP)', url: (s) => `${s.urls.http}/auth/session` },
    { label: 'GET /api/items (HTTPS, authed proxy)', url: (s) => `${s.urls.https}/api/items` },
  ];
  const results = [];
  for (const p of paths) {
    const samples = { before: [], after: [] };
    // Warm up (JIT, pools, the store's caches) on both before measuring.
    for (const s of servers) await send(p.url(s), N, s.token);
    for (let run = 0; run < RUNS; run++) {
      // Alternate which goes first, so a change in the machine's load hits both alike.
      const order = run % 2 ? [...servers].reverse() : servers;
      for (const s of order) samples[s.name].push(await cost(s, p.url(s), N));
    }
    const before = median(samples.before);
    const after = median(samples.after);
    results.push({ path: p.label, beforeUs: before, afterUs: after, ratio: after / before, samples });
  }
  const notes = [
    `server CPU µs per request (user + system, median of ${RUNS} alternating runs of ${N} requests, ${CONNECTIONS} keep-alive connections), log level ${values['log-level']}, metrics on; lower is better, ratio = after / before`,
    LIMITS_RAISED_NOTE,
    `before: ${path.resolve(values.before)}`,
    `after: ${path.resolve(values.after)}`,
    ...results.map((r) => `${r.path} runs: before ${r.samples.before.map((x) => x.toFixed(0)).join(' ')}, after ${r.samples.after.map((x) => x.toFixed(0)).join(' ')}`),
    ...(SMOKE ? ['SMOKE RUN: figures mean nothing'] : []),
  ];
  const rows = results.map((r) => row({ name: r.path, unit: 'CPU µs/request', value: r.afterUs, peer: 'before', peerValue: r.beforeUs }));
  report(result('cost', notes, { requests: N, runs: RUNS, connections: CONNECTIONS, before: path.resolve(values.before), after: path.resolve(values.after), smoke: SMOKE }, rows), values.json);
}

runBench(main);
