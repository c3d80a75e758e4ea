// Authenticated proxied requests over HTTPS (keep-alive): wrk → minigate (TLS, session check,
// signed identity headers) → upstream, next to wrk → nginx (TLS, proxy_pass with keep-alive)
// → the same upstream, measured in the same run. One process each (nginx: one worker).
//
//   node bench/proxy.mjs [--duration 10] [--connections 32]      (after npm run build)
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LIMITS_RAISED_NOTE, LIMITS_RAISED_YAML } from './processes.mjs';
import { printTable } from './table.mjs';
import { requireWrk, wrk } from './wrk.mjs';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
  },
});
const DURATION = Number(values.duration);
const CONNECTIONS = Number(values.connections);
const APPID = 'wx0b0e0c0d0a0f0e0d';
const SECRET = 'bench-secret-0123456789abcdef0123';
const CLI = new URL('../packages/server/bin/minigate.js', import.meta.url).pathname;
const work = mkdtempSync(path.join(tmpdir(), 'minigate-bench-proxy-'));
const children = [];

function openssl(args) {
  execFileSync('openssl', args, { cwd: work, stdio: 'pipe' });
}

/** A root → intermediate → leaf chain for localhost, as an operator would make it. */
function certificates() {
  writeFileSync(path.join(work, 'ca.ext'), 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n');
  writeFileSync(path.join(work, 'leaf.ext'), 'basicConstraints=CA:false\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'root.key', '-out', 'root.pem', '-days', '30', '-subj', '/CN=bench root']);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'int.key', '-out', 'int.csr', '-subj', '/CN=bench intermediate']);
  openssl(['x509', '-req', '-in', 'int.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-out', 'int.pem', '-days', '30', '-extfile', 'ca.ext']);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=localhost']);
  openssl(['x509', '-req', '-in', 'leaf.csr', '-CA', 'int.pem', '-CAkey', 'int.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '30', '-extfile', 'leaf.ext']);
  execFileSync('sh', ['-c', 'cat leaf.pem int.pem > fullchain.pem'], { cwd: work });
  return { cert: path.join(work, 'fullchain.pem'), key: path.join(work, 'leaf.key') };
}

function start(command, args, ready, logFile) {
  const stdio = ['ignore', 'pipe', logFile ? openSync(logFile, 'w') : 'pipe'];
  const child = spawn(command, args, { stdio });
  children.push(child);
  let text = '';
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`${command} ${args.join(' ')} exited ${code}\n${text}`)));
    child.stdout.on('data', (d) => {
      text += d;
      const m = ready.exec(text);
      if (m) resolve({ child, match: m });
    });
    child.stderr?.on('data', (d) => (text += d));
  });
}

async function freePort() {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function main() {
  const wrkVersion = await requireWrk();
  const nginxVersion = (() => {
    try {
      // nginx -v prints to stderr.
      return execFileSync('sh', ['-c', 'nginx -v 2>&1'], { encoding: 'utf8' }).trim();
    } catch {
      throw new Error('nginx is not installed: apt-get install -y nginx-light (.ci/run does it)');
    }
  })();
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
  const upstream = (await start(process.execPath, [upstreamFile], /upstream (http:\S+)/)).match[1];
  const sandbox = (await start(process.execPath, [CLI, 'sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`], /sandbox (http:\/\/\S+)/)).match[1];

  const config = path.join(work, 'minigate.yaml');
  writeFileSync(
    config,
    `dataDir: ${work}/data
listen:
  http: 127.0.0.1:0
  https: 127.0.0.1:0
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
  - path: /open
    proxy: ${upstream}
${LIMITS_RAISED_YAML}`,
  );
  const minigate = (await start(process.execPath, [CLI, 'start', '-c', config], /listening on (https:\S+)/, path.join(work, 'minigate.log'))).match[1];

  // A session token, as the mini program would hold one.
  const { code } = await (await fetch(`${sandbox}/__sandbox/login`, { method: 'POST', body: JSON.stringify({ appid: APPID }) })).json();
  const https = await import('node:https');
  const token = await new Promise((resolve, reject) => {
    const req = https.request(`${minigate}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, rejectUnauthorized: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve(JSON.parse(text).token));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ code }));
  });

  const nginxPort = await freePort();
  const upstreamHostPort = upstream.replace('http://', '');
  writeFileSync(
    path.join(work, 'nginx.conf'),
    `worker_processes 1;
daemon off;
master_process on;
pid ${work}/nginx.pid;
error_log ${work}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log ${work}/nginx-access.log;
  client_body_temp_path ${work}/nginx-body;
  proxy_temp_path ${work}/nginx-proxy;
  upstream app { server ${upstreamHostPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${nginxPort} ssl;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
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
`,
  );
  const nginx = spawn('nginx', ['-c', path.join(work, 'nginx.conf'), '-p', work], { stdio: 'ignore' });
  children.push(nginx);
  await new Promise((r) => setTimeout(r, 700));

  const lua = `wrk.headers["Authorization"] = "Bearer ${token}"\n`;
  const measure = async (label, url) => {
    await wrk({ url, duration: 2, connections: CONNECTIONS, work, lua }); // warm up
    const r = await wrk({ url, duration: DURATION, connections: CONNECTIONS, work, lua });
    return { server: label, rps: Math.round(r.rps), p50: r.p50, p99: r.p99, errors: r.non2xx + r.socketErrors };
  };
  const rows = [
    await measure('nginx (TLS) → upstream', `https://127.0.0.1:${nginxPort}/api/items`),
    await measure('minigate (TLS, auth, identity) → upstream', `${minigate}/api/items`),
    // For reference: the same route without the session check and identity headers.
    await measure('minigate (TLS, auth: none) → upstream', `${minigate}/open/items`),
  ];

  const peer = rows[0];
  const title = `proxy bench: GET /api/items over HTTPS keep-alive, ${DURATION}s, ${CONNECTIONS} connections, ${LIMITS_RAISED_NOTE}, node ${process.version}, ${cpus().length} cores, ${nginxVersion.trim()}, ${wrkVersion}`;
  const header = ['server', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'vs nginx'];
  printTable(title, header, rows.map((r) => [r.server, String(r.rps), r.p50.toFixed(2), r.p99.toFixed(2), String(r.errors), (r.rps / peer.rps).toFixed(2)]));
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) child.kill('SIGKILL');
    try {
      execFileSync('sh', ['-c', `kill $(cat ${work}/nginx.pid 2>/dev/null) 2>/dev/null; true`]);
    } catch {
      // nginx already gone
    }
    rmSync(work, { recursive: true, force: true });
  });
