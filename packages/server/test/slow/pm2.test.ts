/**
 * `npm run test:pm2` (not part of `npm test`: it starts a pm2 daemon and takes about a minute;
 * `.ci/run` runs it after `npm test`).
 *
 * minigate under pm2 as deploy/ecosystem.config.cjs runs it: fork mode, minigate's own primary
 * with two workers. Under a steady load of keep-alive and fresh-connection requests,
 * `pm2 sendSignal SIGUSR2` rolls the workers one at a time: every request answers 200, every
 * worker PID changes, the primary (pm2's process) stays. And pm2's cluster mode is refused with
 * a message that says what to do instead.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, startCli, type RunningCli } from '../helpers/cli.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const PM2 = path.join(ROOT, 'node_modules', '.bin', 'pm2');
const ECOSYSTEM = path.join(ROOT, 'deploy', 'ecosystem.config.cjs');
const APPID = 'wx00112233445566dd';
const SECRET = 'pm2-test-app-secret-5e6f7a8b9c';
const NAME = 'mg-pm2-test';

let dir: string;
let sandbox: RunningCli;
let env: NodeJS.ProcessEnv;
let base: string;

function pm2(...args: string[]) {
  return run(PM2, args, { env, cwd: dir, timeout: 60_000 });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function primaryPid(name: string): Promise<number> {
  const list = JSON.parse((await pm2('jlist')).stdout) as { name: string; pid: number }[];
  return list.find((p) => p.name === name)?.pid ?? 0;
}

async function childPids(pid: number): Promise<number[]> {
  const r = await run('ps', ['--ppid', String(pid), '-o', 'pid=']).catch(() => ({ stdout: '' }));
  return r.stdout.split('\n').map((s) => Number(s.trim())).filter(Boolean).sort();
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${logs().slice(-6000)}\n${logs("mg-pm2-cluster").slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** What minigate wrote under pm2, without the per-request lines. */
function logs(name = NAME): string {
  const read = (file: string) => {
    try {
      return readFileSync(path.join(dir, 'pm2', 'logs', file), 'utf8');
    } catch {
      return '';
    }
  };
  // Cluster-mode instances log to NAME-error-ID.log.
  const files = (() => {
    try {
      return readdirSync(path.join(dir, 'pm2', 'logs')).filter((f) => f.startsWith(`${name}-`));
    } catch {
      return [];
    }
  })();
  return files
    .map(read)
    .join('\n')
    .split('\n')
    .filter((l) => !l.includes('"msg":"request"'))
    .join('\n');
}

function get(url: string, agent: http.Agent | false, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    // Which kind of connection failed, for the failure list: a reused keep-alive one or a new one.
    req.on('error', (error) => reject(Object.assign(error, { reused: req.reusedSocket })));
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-pm2-'));
  sandbox = startCli(['sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`]);
  const sandboxUrl = /(http:\/\/\S+)/.exec(await sandbox.waitForLine(/^sandbox http/))![1]!;
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  writeFileSync(path.join(dir, 'app-secret.txt'), `${SECRET}\n`);
  writeFileSync(
    path.join(dir, 'minigate.yaml'),
    [
      `dataDir: ${path.join(dir, 'data')}`,
      `store: sqlite:${path.join(dir, 'data', 'minigate.db')}`,
      'workers: 2',
      'listen:',
      `  http: 127.0.0.1:${port}`,
      'wechat:',
      `  apiBase: ${sandboxUrl}`,
      'apps:',
      `  - appid: ${APPID}`,
      `    secretFile: ${path.join(dir, 'app-secret.txt')}`,
      '',
    ].join('\n'),
  );
  env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MINIGATE_') && !k.startsWith('PM2_') && k !== 'NODE_APP_INSTANCE' && k !== 'pm_id')),
    PM2_HOME: path.join(dir, 'pm2'),
    MG_PM2_NAME: NAME,
    MG_BIN: CLI,
    MG_CONFIG: path.join(dir, 'minigate.yaml'),
  };
});

afterAll(async () => {
  await pm2('kill').catch(() => undefined);
  await sandbox?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('minigate under pm2 (fork mode, deploy/ecosystem.config.cjs)', () => {
  it('rolls its workers on SIGUSR2 under load without failing a request', async () => {
    await pm2('start', ECOSYSTEM);
    await until('/healthz', async () => ((await get(`${base}/healthz`, false)) === 200 ? true : undefined));
    const primary = await primaryPid(NAME);
    const before = await until('two workers', async () => {
      const pids = await childPids(primary);
      return pids.length === 2 ? pids : undefined;
    });

    // A session to ask about: a login through the sandbox.
    const sandboxUrl = /apiBase: (\S+)/.exec(readFileSync(path.join(dir, 'minigate.yaml'), 'utf8'))![1]!;
    const { code } = (await (await fetch(`${sandboxUrl}/__sandbox/login`, { method: 'POST', body: JSON.stringify({ appid: APPID }) })).json()) as { code: string };
    const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
    const { token } = (await login.json()) as { token: string };
    expect(login.status).toBe(200);

    let running = true;
    const failures: string[] = [];
    let done = 0;
    let signalled = 0;
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const loop = async (url: string, agent: http.Agent | false, headers: Record<string, string> = {}) => {
      while (running) {
        try {
          const status = await get(url, agent, headers);
          if (status !== 200) failures.push(`${url} (${agent ? 'keep-alive' : 'new connection'}): HTTP ${status}`);
        } catch (error) {
          const kind = (error as { reused?: boolean }).reused ? 'reused keep-alive connection' : agent ? 'new keep-alive connection' : 'new connection';
          failures.push(`${url} (${kind}, ${Date.now() - signalled} ms after the signal): ${(error as Error).message}`);
        }
        done++;
      }
    };
    const auth = { authorization: `Bearer ${token}` };
    const loops = [
      loop(`${base}/auth/session`, keepAlive, auth),
      loop(`${base}/auth/session`, keepAlive, auth),
      loop(`${base}/healthz`, keepAlive),
      loop(`${base}/healthz`, false),
      loop(`${base}/auth/session`, false, auth),
    ];
    await new Promise((r) => setTimeout(r, 500));
    signalled = Date.now();
    await pm2('sendSignal', 'SIGUSR2', NAME);
    const after = await until(
      'every worker replaced',
      async () => {
        const pids = await childPids(primary);
        return pids.length === 2 && pids.every((p) => !before.includes(p)) && logs().includes('rolling restart: done') ? pids : undefined;
      },
      60_000,
    );
    const rolled = Date.now() - signalled;
    await new Promise((r) => setTimeout(r, 500));
    running = false;
    await Promise.all(loops);
    keepAlive.destroy();

    console.log(`pm2 rolling restart: ${done} requests, ${failures.length} failed; the roll took ${rolled} ms`);
    expect(failures).toEqual([]);
    expect(done).toBeGreaterThan(200);
    expect(after).toHaveLength(2);
    expect(await primaryPid(NAME)).toBe(primary);
    console.log(`pm2 rolling restart: workers ${before.join(',')} → ${after.join(',')}`);

    // pm2 stop sends SIGTERM (kill_signal) and the primary drains its workers: no stray process.
    await pm2('stop', NAME);
    expect(await childPids(primary)).toEqual([]);
  }, 120_000);

  it("refuses pm2's cluster mode, saying to use fork mode", async () => {
    const name = 'mg-pm2-cluster';
    await pm2('start', CLI, '--name', name, '-i', '1', '--no-autorestart', '--', 'start', '-c', path.join(dir, 'minigate.yaml'));
    await until('the refusal', async () => (logs(name).includes("pm2's fork mode") ? true : undefined));
    await pm2('delete', name);
  }, 60_000);
});
