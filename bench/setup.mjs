// Set-up the proxy, handshake, upload and stack benches share: certificates, the upstream, the
// WeChat sandbox, a minigate process with a given config, and a session token from it.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { createProcesses, LIMITS_RAISED_YAML } from './processes.mjs';

export const APPID = 'wx0b0e0c0d0a0f0e0d';
export const SECRET = 'bench-secret-0123456789abcdef0123';
export const CLI = new URL('../packages/server/bin/minigate.js', import.meta.url).pathname;
const processes = createProcesses();

/**
 * A root → intermediate → leaf chain for localhost, as an operator would make it; the leaf's key
 * is ECDSA P-256 (`ec`) or RSA 2048 (`rsa`). Returns the full chain and the leaf's key.
 */
export function certificateChain(work, keyType = 'ec', name = keyType) {
  const openssl = (args) => execFileSync('openssl', args, { cwd: work, stdio: 'pipe' });
  writeFileSync(path.join(work, 'ca.ext'), 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n');
  writeFileSync(path.join(work, 'leaf.ext'), 'basicConstraints=CA:false\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-root.key`, '-out', `${name}-root.pem`, '-days', '30', '-subj', '/CN=bench root']);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-int.key`, '-out', `${name}-int.csr`, '-subj', '/CN=bench intermediate']);
  openssl(['x509', '-req', '-in', `${name}-int.csr`, '-CA', `${name}-root.pem`, '-CAkey', `${name}-root.key`, '-CAcreateserial', '-out', `${name}-int.pem`, '-days', '30', '-extfile', 'ca.ext']);
  const leafKey = keyType === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  openssl(['req', ...leafKey, '-nodes', '-keyout', `${name}-leaf.key`, '-out', `${name}-leaf.csr`, '-subj', '/CN=localhost']);
  openssl(['x509', '-req', '-in', `${name}-leaf.csr`, '-CA', `${name}-int.pem`, '-CAkey', `${name}-int.key`, '-CAcreateserial', '-out', `${name}-leaf.pem`, '-days', '30', '-extfile', 'leaf.ext']);
  execFileSync('sh', ['-c', `cat ${name}-leaf.pem ${name}-int.pem > ${name}-fullchain.pem`], { cwd: work });
  return { cert: path.join(work, `${name}-fullchain.pem`), key: path.join(work, `${name}-leaf.key`) };
}

/** The upstream every proxy bench forwards to: node:http, a small JSON answer, keep-alive. */
export async function startUpstream(work, cpu = undefined) {
  const file = path.join(work, 'upstream.mjs');
  writeFileSync(
    file,
    `import { createServer } from 'node:http';
const body = JSON.stringify({ ok: true, items: [1, 2, 3] });
const server = createServer((req, res) => {
  // Drain a request body (uploads proxied to it) before answering.
  req.resume();
  req.on('end', () => { res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }); res.end(body); });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log('upstream http://127.0.0.1:' + server.address().port));`,
  );
  return (await processes.start([file], /upstream (http:\S+)/, undefined, undefined, cpu)).match[1];
}

export async function startSandbox(cpu = undefined) {
  return (await processes.start([CLI, 'sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`], /sandbox (http:\/\/\S+)/, undefined, undefined, cpu)).match[1];
}

/**
 * `minigate start` with the app, the sandbox and the raised limits, plus `yaml` (listeners, tls,
 * routes…). Resolves with the child and the announced URL (HTTPS when there is an HTTPS listener).
 */
export async function startMinigate(work, name, sandbox, yaml, cpu = undefined) {
  const config = path.join(work, `${name}.yaml`);
  writeFileSync(config, `dataDir: ${work}/data-${name}\nwechat:\n  apiBase: ${sandbox}\napps:\n  - appid: ${APPID}\n    secret: ${SECRET}\n${yaml}${LIMITS_RAISED_YAML}`);
  const { child, match } = await processes.start([CLI, 'start', '-c', config], /listening on (https?:\S+)/, path.join(work, `${name}.log`), undefined, cpu);
  return { child, url: match[1] };
}

/** Sends one request (TLS not verified: the benches' certificates are their own); resolves with { status, body }. */
export function send(url, { method = 'GET', headers = {}, body } = {}) {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, rejectUnauthorized: false, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A session token from minigate at `base`, as the mini program would hold one. */
export async function login(base, sandbox) {
  const { code } = await (await fetch(`${sandbox}/__sandbox/login`, { method: 'POST', body: JSON.stringify({ appid: APPID }) })).json();
  const r = await send(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
  if (r.status !== 200) throw new Error(`login at ${base}: ${r.status} ${r.body}`);
  return JSON.parse(r.body).token;
}
