// What the benchmarks share: starting the processes under test (and killing what is left), and
// small client helpers.
import { execFileSync, spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

/**
 * The benchmarks measure throughput, not minigate's rate limits (docs/limits.md): one client
 * address making thousands of logins or upgrades a second would be refused at once. Every config
 * they write raises each limit far above what one machine can send — so the limiter's own cost (a
 * count per login, per upgrade) is in the figures but nothing is refused — and every header line
 * says so.
 */
const RAISED = '100000000/s';
export const LIMITS_RAISED_YAML = `limits:\n${['login', 'loginFailures', 'appLoginFailures', 'phone', 'channelUpgrades', 'internalAuthFailures'].map((k) => `  ${k}: ${RAISED}\n`).join('')}`;
export const LIMITS_RAISED_NOTE = `rate limits raised to ${RAISED}`;

/** Node processes started by a benchmark; `killAll` ends those still running. */
export function createProcesses() {
  const children = new Set();
  return {
    /** Starts `node args…`; resolves once `readyPattern` appears on its stdout. Logs (stderr) go to `logFile` when given. */
    start(args, readyPattern, logFile) {
      // Like production, logs go to a file rather than through a pipe the load generator must drain.
      const stdio = ['ignore', 'pipe', logFile ? openSync(logFile, 'w') : 'pipe'];
      const child = spawn(process.execPath, args, { env: { ...process.env, MINIGATE_STORE: undefined }, stdio });
      children.add(child);
      let text = '';
      let ready = false;
      return new Promise((resolve, reject) => {
        child.on('exit', (code) => {
          children.delete(child);
          if (!ready) reject(new Error(`${args.join(' ')} exited ${code}\n${text}${logFile ? readFileSync(logFile, 'utf8') : ''}`));
        });
        child.stdout.on('data', (d) => {
          text += d;
          const m = readyPattern.exec(text);
          if (m && !ready) {
            ready = true;
            resolve({ child, match: m });
          }
        });
        child.stderr?.on('data', (d) => (text += d));
      });
    },
    killAll() {
      for (const child of children) child.kill('SIGKILL');
    },
  };
}

export async function post(url, body) {
  const r = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  if (!r.ok) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  return r.json();
}

/** Runs fn(0…n-1) with at most `limit` in flight. */
export async function pool(n, limit, fn) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return out;
}

export function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A self-signed certificate for localhost and 127.0.0.1 in `dir` (the bench clients do not verify it). */
export function selfSignedCertificate(dir) {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '30', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { cwd: dir, stdio: 'pipe' });
  return { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
}
