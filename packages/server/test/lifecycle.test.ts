/**
 * Process lifecycle, with the built CLI: SIGTERM drains (in-flight requests finish, new
 * connections are refused, idle keep-alive connections do not hold the exit), and `workers`
 * runs several processes on one listener, restarting one that dies.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type RunningCli } from './helpers/cli.js';

const APPID = 'wx00aa11bb22cc33ee';
let dir: string;
let sandbox: RunningCli;
let sandboxUrl: string;
let slow: Server;
let slowUrl: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-life-'));
  sandbox = startCli(['sandbox', '--port', '0', '--app', `${APPID}:secret`]);
  sandboxUrl = /(http:\/\/\S+)/.exec(await sandbox.waitForLine(/^sandbox http/))![1]!;
  slow = createServer((req, res) => setTimeout(() => res.end(`done ${req.url}`), 1500));
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
  slowUrl = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await sandbox?.stop();
  slow?.closeAllConnections();
  await new Promise((r) => slow?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function config(name: string, extra = ''): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `dataDir: ./${name}\nlisten:\n  http: 127.0.0.1:0\nwechat:\n  apiBase: ${sandboxUrl}\napps:\n  - appid: ${APPID}\n    secret: secret\nroutes:\n  - path: /slow\n    proxy: ${slowUrl}\n${extra}`,
  );
  return file;
}

async function start(file: string) {
  const server = startCli(['start', '-c', file]);
  const url = /listening on (http:\S+)/.exec(await server.waitForLine(/^minigate listening on/))![1]!;
  return { server, url };
}

function fetchWith(url: string, agent?: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('SIGTERM', () => {
  it('lets in-flight requests finish, refuses new connections, and exits 0', async () => {
    const { server, url } = await start(config('drain'));
    const idle = new Agent({ keepAlive: true });
    await fetchWith(`${url}/healthz`, idle); // leaves an idle keep-alive connection open
    const inflight = fetchWith(`${url}/slow/x`);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    server.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    await expect(fetchWith(`${url}/healthz`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await inflight).toEqual({ status: 200, body: 'done /slow/x' });
    expect(await server.exited()).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    idle.destroy();
  });
});

describe('workers', () => {
  it('runs N processes on one port, replaces one that dies, and drains them all on SIGTERM', async () => {
    const { server, url } = await start(config('workers', 'workers: 2\n'));
    const children = () =>
      execFileSync('pgrep', ['-P', String(server.child.pid)], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .filter(Boolean)
        .map(Number);
    try {
      expect(children()).toHaveLength(2);
      for (let i = 0; i < 6; i++) expect((await fetchWith(`${url}/healthz`)).status).toBe(200);
      const [victim] = children();
      process.kill(victim!, 'SIGKILL');
      const deadline = Date.now() + 10_000;
      while (!(children().length === 2 && !children().includes(victim!))) {
        if (Date.now() > deadline) throw new Error('the dead worker was not replaced');
        await new Promise((r) => setTimeout(r, 100));
      }
      await server.waitForStderr('worker died; starting another');
      for (let i = 0; i < 4; i++) expect((await fetchWith(`${url}/healthz`)).status).toBe(200);
    } finally {
      expect(await server.stop('SIGTERM')).toBe(0);
    }
  });

  it('stops with the first start failure instead of forking forever', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    const file = config('workers-bad', 'workers: 2\n');
    writeFileSync(file, readFileSync(file, 'utf8').replace('127.0.0.1:0', `127.0.0.1:${port}`));
    try {
      const server = startCli(['start', '-c', file]);
      expect(await server.exited()).toBe(1);
      expect(server.stderr()).toContain(`listen.http: 127.0.0.1:${port} is already in use`);
    } finally {
      taken.close();
    }
  });
});
