/**
 * A start that fails part-way closes everything it had opened, in reverse: the store, Redis, the
 * TLS manager's file watchers and the ACME timer. Each case starts a real server that fails at one
 * place and compares the process's open handles before and after.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from 'minigate-sandbox';
import { loadConfig, type Config } from '../src/config/index.js';
import { createServer, StartError, type MinigateServer } from '../src/server.js';
import { createStore } from '../src/store/index.js';
import { captureLogs } from './helpers/capture-logger.js';
import { runCli } from './helpers/cli.js';
import { writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';

const APPID = 'wx0123456789abcdef';
const REDIS = process.env.TEST_REDIS_URL;
let dir: string;
let sandbox: Sandbox;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-startfail-'));
  sandbox = createSandbox({ apps: [{ appid: APPID, secret: 'secret' }] });
  await sandbox.start();
});
afterAll(async () => {
  await sandbox?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A config with every part that holds a handle: HTTPS (dev CA: watched files), Redis when there is one, channel, files. */
function baseConfig(name: string, extra: Record<string, unknown> = {}): Config {
  return loadConfig({
    object: {
      dataDir: path.join(dir, name),
      listen: { http: '127.0.0.1:0', https: '127.0.0.1:0' },
      tls: { devCa: true, checkDomains: false },
      wechat: { apiBase: sandbox.url },
      apps: [{ appid: APPID, secret: 'secret' }],
      ...(REDIS ? { redis: REDIS } : {}),
      ...extra,
    },
    env: {},
  });
}

/** Kinds that are one request under way (a file read, a connect), not something left open. */
const IN_FLIGHT = new Set(['FSReqPromise', 'FSReqCallback', 'ConnectWrap', 'GetAddrInfoReqWrap', 'WriteWrap', 'ShutdownWrap']);

/** Open handles by kind (timers, sockets, servers, watchers). */
function handles(): string[] {
  return process
    .getActiveResourcesInfo()
    .filter((kind) => !IN_FLIGHT.has(kind))
    .sort();
}

/** Handles open now that were not open before (by kind, counted). */
function leftOpen(before: string[]): string[] {
  const rest = [...before];
  return handles().filter((kind) => {
    const i = rest.indexOf(kind);
    if (i === -1) return true;
    rest.splice(i, 1);
    return false;
  });
}

/** Starts the server, expects it to fail, and checks that every handle it opened is closed again. */
async function failsAndCloses(config: Config, expected: RegExp): Promise<{ error: Error; server: MinigateServer }> {
  const before = handles();
  const server = createServer(config, { logger: captureLogs().logger });
  const error = (await server.start().then(
    () => new Error('started'),
    (e: unknown) => e as Error,
  )) as Error;
  expect(error.message).toMatch(expected);
  // The listeners were bound before the failing step; they are closed again.
  await expect(fetch(`${server.urls.http}/healthz`)).rejects.toThrow();
  // Sockets finish closing on the next turns of the loop.
  let left = leftOpen(before);
  for (let i = 0; i < 50 && left.length; i++) {
    await new Promise((r) => setTimeout(r, 20));
    left = leftOpen(before);
  }
  expect(left).toEqual([]);
  // The store is closed: it answers no more.
  await expect(server.store.ping()).rejects.toThrow();
  return { error, server };
}

describe('start-up phases', () => {
  it('answers /healthz at once, and /readyz and routes 503 NOT_READY naming what is starting, until ready', async () => {
    // A database that accepts the connection and never answers holds the store step.
    const sockets = new Set<Socket>();
    const silent = createNetServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    const before = handles();
    // storeTimeout 0s: give up at the first failure (waiting for a late database: validate-truth.test.ts).
    const server = createServer(baseConfig('phases', { listen: { http: '127.0.0.1:0' }, store: `postgres://minigate@127.0.0.1:${port}/minigate`, startup: { storeTimeout: '0s' } }), { logger: captureLogs().logger });
    const starting = server.start().then(
      () => new Error('started'),
      (e: unknown) => e as Error,
    );
    for (let i = 0; i < 100 && !server.urls.http; i++) await new Promise((r) => setTimeout(r, 20));
    const url = server.urls.http!;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'NOT_READY', message: expect.stringContaining('store: starting') });
    const route = await fetch(`${url}/auth/session`);
    expect(route.status).toBe(503);
    expect(((await route.json()) as { error: { code: string } }).error.code).toBe('NOT_READY');
    // The database goes away: the start fails and closes the listeners it had opened.
    for (const socket of sockets) socket.destroy();
    await new Promise((r) => silent.close(r));
    const error = await starting;
    expect(error).toBeInstanceOf(StartError);
    expect(error.message).toMatch(/^cannot use the store postgres:/);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    let left = leftOpen(before);
    for (let i = 0; i < 50 && left.length; i++) {
      await new Promise((r) => setTimeout(r, 20));
      left = leftOpen(before);
    }
    expect(left).toEqual([]);
  });
});

describe('a start that fails part-way', () => {
  it('closes the store, Redis and the TLS watchers when the edge refuses its routes (a route to a service that is off)', async () => {
    const valid = baseConfig('edge', { channel: { enabled: false }, files: { enabled: true }, routes: [{ path: '/rt', service: 'auth' }] });
    // validate refuses a route to channel while channel is off; a config built another way is not validated.
    const config = { ...valid, routes: [{ ...valid.routes[0]!, service: 'channel' as const }] } as Config;
    await failsAndCloses(config, /the channel service is not running/);
  });

  it('closes everything when ACME cannot start (a stored certificate it cannot read)', async () => {
    const config = baseConfig('acme', {
      tls: { checkDomains: false, acme: { email: 'ops@minigate.test', domains: ['a.minigate.test'], directory: 'https://127.0.0.1:9/dir' } },
      channel: { enabled: true },
    });
    mkdirSync(config.dataDir, { recursive: true });
    const store = await createStore({ url: config.store, logger: captureLogs().logger });
    await store.migrate();
    await store.kvSet('acme:cert:a.minigate.test', '{not json', Date.now());
    await store.close();
    const { error } = await failsAndCloses(config, /^tls\.acme: /);
    expect(error).toBeInstanceOf(StartError);
  });

  it('closes everything when the files dir is inside a static route', async () => {
    const config = baseConfig('static', { files: { enabled: true }, routes: [{ path: '/site', static: path.join(dir, 'static') }] });
    const { error } = await failsAndCloses(config, /files\.storage\.dir .* is inside routes\[\]\.static/);
    expect(error).toBeInstanceOf(StartError);
  });

  it('makes `minigate validate` and `minigate start` refuse a files dir inside a static route, naming the line', async () => {
    const file = path.join(dir, 'static.yaml');
    writeFileSync(
      file,
      `dataDir: ${path.join(dir, 'cli')}\nlisten:\n  http: 127.0.0.1:0\nwechat:\n  apiBase: ${sandbox.url}\napps:\n  - appid: ${APPID}\n    secret: secret\nfiles:\n  enabled: true\nroutes:\n  - path: /site\n    static: ${dir}\n${REDIS ? `redis: ${REDIS}\n` : ''}`,
    );
    for (const command of ['validate', 'start']) {
      const result = await runCli([command, '-c', file]);
      expect(result.code, command).toBe(1);
      expect(result.stderr, command).toContain(`${file}:13:5  routes[0].static: serves the uploads directory`);
    }
  });

  it('makes `minigate start` exit 1 by itself when a step after the listeners fails (the store cannot be reached)', async () => {
    const file = path.join(dir, 'no-store.yaml');
    writeFileSync(
      file,
      `dataDir: ${path.join(dir, 'cli2')}\nlisten:\n  http: 127.0.0.1:0\nwechat:\n  apiBase: ${sandbox.url}\napps:\n  - appid: ${APPID}\n    secret: secret\nstore: postgres://postgres@127.0.0.1:1/test\nstartup:\n  storeTimeout: 1s\n${REDIS ? `redis: ${REDIS}\n` : ''}`,
    );
    const result = await runCli(['start', '-c', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^minigate: cannot use the store postgres:\/\/postgres@127\.0\.0\.1:1\/test/m);
  });
});
