// The relay (dev tunnel) against the ways a team reaches a laptop's service today, in one run:
//   (a) relay:  phone → minigate (TLS) → the relay link (one TLS connection dialled by
//               `minigate tunnel`, HTTP/2 in reverse) → the laptop's service
//   (b) direct: phone → minigate (TLS) proxying straight to the laptop's service
//   (c) ssh -R: phone → nginx (TLS) → a port forwarded by `ssh -R` (Debian's openssh) → the service
// For each: small requests (wrk: req/s, p99), one big download (MB/s), and the p99 of small
// requests while big downloads run (a download must not starve a login), and the CPU time per GiB
// downloaded of minigate (and `minigate tunnel`) on each minigate path: unlike MB/s, it hardly
// moves when other work shares the machine. All on loopback; the
// "laptop" is a Node process answering GET …/small (100 bytes) and GET …/big (--size bytes).
// Routes are `auth: none` on both minigate paths, so (a) against (b) is the relay's own cost.
//
//   node bench/tunnel.mjs [--duration 10] [--connections 16] [--size 104857600] [--json] [--smoke]
import { execFileSync } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { accepts, cpuSeconds, createProcesses, freePort, LIMITS_RAISED_NOTE, nginxVersion, runBench, runTracked, spawnTracked, startNginx, workDir } from './processes.mjs';
import { certificateChain, CLI, startMinigate, startSandbox } from './setup.mjs';
import { benchArgs, report, result, row } from './table.mjs';
import { requireWrk, wrk } from './wrk.mjs';

const args = benchArgs({
  duration: { type: 'string', default: '10' },
  connections: { type: 'string', default: '16' },
  size: { type: 'string', default: String(100 * 1024 * 1024) },
});
const SMOKE = args.smoke;
const DURATION = SMOKE ? 1 : Number(args.duration);
const CONNECTIONS = SMOKE ? 4 : Number(args.connections);
const SIZE = SMOKE ? 4 * 1024 * 1024 : Number(args.size);
const work = workDir('minigate-bench-tunnel-');
const processes = createProcesses();

/** The laptop's service: …/small answers 100 bytes, …/big streams SIZE bytes. */
async function startLaptop() {
  const file = path.join(work, 'laptop.mjs');
  writeFileSync(
    file,
    `import { createServer } from 'node:http';
const small = Buffer.from(JSON.stringify({ ok: true, pad: 'x'.repeat(76) }));
const chunk = Buffer.alloc(64 * 1024, 0x61);
const size = ${SIZE};
const server = createServer((req, res) => {
  req.resume();
  if (req.url.endsWith('/big')) {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    let sent = 0;
    const more = () => {
      while (sent < size) {
        const piece = chunk.subarray(0, Math.min(chunk.length, size - sent));
        sent += piece.length;
        if (!res.write(piece)) return void res.once('drain', more);
      }
      res.end();
    };
    return more();
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': small.length });
  res.end(small);
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log('laptop http://127.0.0.1:' + server.address().port));`,
  );
  return (await processes.start([file], /laptop (http:\S+)/)).match[1];
}

/** Waits until `test()` holds, polling; throws with `what` after `ms`. */
async function until(test, what, ms = 20_000) {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (await test()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** `minigate tunnel` holding `name`, its per-request lines in a file (a pipe the bench would have to drain); resolves with its child. */
async function startTunnel(serverUrl, name, token, to, ca) {
  const log = path.join(work, 'tunnel.log');
  const child = spawnTracked(process.execPath, [CLI, 'tunnel', '--server', serverUrl, '--name', name, '--token', token, '--to', to, '--ca', ca], {
    stdio: ['ignore', openSync(log, 'w'), openSync(path.join(work, 'tunnel.err'), 'w')],
    name: 'minigate tunnel',
  });
  await until(() => /link up/.test(readFileSync(log, 'utf8')), 'the relay link');
  return child;
}

/** A private sshd on loopback and `ssh -R` forwarding a port to the laptop, as 花生壳/frp-less teams do. */
async function startSshForward(laptop) {
  const dir = path.join(work, 'ssh');
  mkdirSync(dir, { mode: 0o700 });
  mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege-separation directory
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'user')]);
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(path.join(dir, 'user.pub')), { mode: 0o600 });
  const sshdPort = await freePort();
  writeFileSync(
    path.join(dir, 'sshd_config'),
    [`ListenAddress 127.0.0.1`, `Port ${sshdPort}`, `HostKey ${dir}/host`, `PidFile ${dir}/sshd.pid`, `AuthorizedKeysFile ${dir}/authorized_keys`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'UsePAM no', 'StrictModes no', 'AllowTcpForwarding yes', ''].join('\n'),
  );
  spawnTracked('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', openSync(path.join(dir, 'sshd.log'), 'w')], name: 'sshd' });
  await until(() => accepts(sshdPort), 'sshd');
  const forwardPort = await freePort();
  const target = new URL(laptop);
  spawnTracked(
    'ssh',
    ['-N', '-i', path.join(dir, 'user'), '-p', String(sshdPort), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ExitOnForwardFailure=yes', '-o', 'LogLevel=ERROR', '-R', `127.0.0.1:${forwardPort}:127.0.0.1:${target.port}`, 'root@127.0.0.1'],
    { stdio: ['ignore', 'ignore', openSync(path.join(dir, 'ssh.log'), 'w')], name: 'ssh -R' },
  );
  await until(() => accepts(forwardPort), 'the ssh -R forward');
  return forwardPort;
}

function nginxConf(port, forwardPort, tls) {
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
  upstream laptop { server 127.0.0.1:${forwardPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 100000;
    location /ssh/ {
      proxy_pass http://laptop;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_buffering off;
    }
  }
}
`;
}

/** One download of …/big over HTTPS (certificate not checked: the bench's own); resolves with MB/s. */
function download(url) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = httpsRequest(url, { rejectUnauthorized: false, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (d) => (bytes += d.length));
      res.on('end', () => {
        if (res.statusCode !== 200 || bytes !== SIZE) return reject(new Error(`${url}: ${res.statusCode}, ${bytes} of ${SIZE} bytes`));
        resolve(bytes / 1024 / 1024 / ((performance.now() - started) / 1000));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function small(url) {
  const r = await wrk({ url, duration: DURATION, connections: CONNECTIONS, work, lua: '' });
  const errors = r.non2xx + r.socketErrors;
  if (!(r.total > 0) || errors / r.total > 0.01) throw new Error(`${url}: ${errors} of ${r.total} requests failed\n${r.raw}`);
  return r;
}

/** Small requests while downloads run back to back for the whole wrk run: their p99. */
async function smallDuringDownloads(base) {
  let downloading = true;
  const downloads = (async () => {
    let n = 0;
    while (downloading) {
      await download(`${base}/big`);
      n++;
    }
    return n;
  })();
  // Let the first download reach full speed before wrk starts.
  await new Promise((r) => setTimeout(r, 200));
  const r = await small(`${base}/small`).finally(() => (downloading = false));
  await downloads;
  return r;
}

/** `pids`: the processes whose CPU time per GiB downloaded is counted (none for nginx + ssh -R). */
async function measure(base, pids = []) {
  await small(`${base}/small`); // warm-up
  const alone = await small(`${base}/small`);
  // Untimed: the first download after the small requests costs minigate up to twice the CPU of
  // the next ones (its heap and JIT settle), on every path alike.
  await download(`${base}/big`);
  const cpu = () => cpuSeconds(...pids);
  const cpu0 = cpu();
  const mbps = Math.max(await download(`${base}/big`), await download(`${base}/big`));
  const cpuPerGiB = (cpu() - cpu0) / ((2 * SIZE) / 2 ** 30);
  const during = await smallDuringDownloads(base);
  return { rps: alone.rps, p99: alone.p99, mbps, cpuPerGiB, duringP99: during.p99, duringRps: during.rps };
}

async function main() {
  const wrkVersion = await requireWrk();
  const nginx = nginxVersion();
  const tls = certificateChain(work, 'ec');
  const caFile = path.join(work, 'ec-root.pem');
  const laptop = await startLaptop();
  const sandbox = await startSandbox();
  const name = 'bench';
  const minigate = await startMinigate(
    work,
    'minigate',
    sandbox,
    `listen:\n  https: 127.0.0.1:0\ntls:\n  certificates:\n    - cert: ${tls.cert}\n      key: ${tls.key}\nrelay: {}\nroutes:\n  - path: /relay\n    tunnel: ${name}\n  - path: /direct\n    proxy: ${laptop}\n`,
  );
  const config = path.join(work, 'minigate.yaml');
  const { stdout } = await runTracked(process.execPath, [CLI, 'relay', 'add', name, '-c', config], { timeoutMs: 30_000 });
  const token = stdout.trim().split('\n').at(-1);
  const port = new URL(minigate.url).port;
  const tunnel = await startTunnel(`https://localhost:${port}`, name, token, laptop, caFile);
  const forwardPort = await startSshForward(laptop);
  const nginxPort = await freePort();
  await startNginx(work, nginxConf(nginxPort, forwardPort, tls), nginxPort, 'nginx');

  const relay = await measure(`https://127.0.0.1:${port}/relay`, [minigate.child.pid, tunnel.pid]);
  const direct = await measure(`https://127.0.0.1:${port}/direct`, [minigate.child.pid]);
  const ssh = await measure(`https://127.0.0.1:${nginxPort}/ssh`);
  const rows = [
    row({ name: '(a) relay: small requests', unit: 'req/s', value: relay.rps, p99: relay.p99, peer: '(b) direct', peerValue: direct.rps, peerP99: direct.p99 }),
    row({ name: '(a) relay: small requests', unit: 'req/s', value: relay.rps, p99: relay.p99, peer: '(c) nginx + ssh -R', peerValue: ssh.rps, peerP99: ssh.p99 }),
    row({ name: '(a) relay: download', unit: 'MB/s', value: relay.mbps, peer: '(b) direct', peerValue: direct.mbps, target: { ratio: 0.5 } }),
    row({ name: '(a) relay: download', unit: 'MB/s', value: relay.mbps, peer: '(c) nginx + ssh -R', peerValue: ssh.mbps, target: { ratio: 1 } }),
    row({ name: '(a) relay: CPU of minigate + minigate tunnel per GiB downloaded', unit: 's/GiB', value: relay.cpuPerGiB, peer: '(b) direct: minigate', peerValue: direct.cpuPerGiB }),
    // value and peer are p99s: the ratio is how much a download slows a small request's tail.
    row({ name: '(a) relay: p99 of small requests during downloads', unit: 'ms', value: relay.duringP99, peer: 'the same alone', peerValue: relay.p99, target: { maxRatio: 5 } }),
    row({ name: '(b) direct: p99 of small requests during downloads', unit: 'ms', value: direct.duringP99, peer: 'the same alone', peerValue: direct.p99 }),
    row({ name: '(c) nginx + ssh -R: p99 of small requests during downloads', unit: 'ms', value: ssh.duringP99, peer: 'the same alone', peerValue: ssh.p99 }),
  ];
  const notes = [
    `small: GET …/small (100 bytes) over HTTPS keep-alive, ${DURATION}s, ${CONNECTIONS} connections after a warm-up; download: GET …/big, ${(SIZE / 1024 / 1024).toFixed(0)} MiB, best of two after one untimed; during: small requests while downloads run back to back`,
    'routes auth: none on both minigate paths (the relay’s own cost); the laptop is a node:http process on loopback',
    LIMITS_RAISED_NOTE,
    nginx,
    wrkVersion,
    ...(SMOKE ? ['SMOKE RUN: figures mean nothing'] : []),
  ];
  report(result('tunnel', notes, { duration: DURATION, connections: CONNECTIONS, size: SIZE, smoke: SMOKE }, rows), args.json);
}

runBench(main);
