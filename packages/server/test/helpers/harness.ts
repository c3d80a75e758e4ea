/**
 * A real minigate (createServer on port 0) with the sandbox in-process, for integration tests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSandbox, createSandboxClock, type Sandbox, type SandboxClock } from 'minigate-sandbox';
import { loadConfig, type Config } from '../../src/config/index.js';
import { createServer, type MinigateServer } from '../../src/server.js';
import { captureLogs, type CapturedLogs } from './capture-logger.js';

export const TEST_APPID = 'wx0123456789abcdef';
export const TEST_SECRET = 'test-app-secret-0123456789abcdef';
export const OTHER_APPID = 'wxfedcba9876543210';
export const OTHER_SECRET = 'other-app-secret-fedcba9876543210';

export interface Harness {
  server: MinigateServer;
  sandbox: Sandbox;
  clock: SandboxClock;
  config: Config;
  logs: CapturedLogs;
  url: string;
  /** POST to the sandbox control API. */
  control<T = Record<string, unknown>>(route: string, body: unknown): Promise<T>;
  /** A wx.login code for a (new or given) user. */
  code(input?: { appid?: string; openid?: string; unionid?: string }): Promise<{ code: string; openid: string; unionid?: string }>;
  /** A full login; returns the parsed body and status. */
  login(body: Record<string, unknown>): Promise<{ status: number; body: any }>;
  get(pathname: string, token?: string, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  /** A call to the internal API with the internal token (when listen.internal is configured). */
  internal(method: string, pathname: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; raw: Buffer; headers: Headers }>;
  post(pathname: string, body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  /** Stops the server (keeps the data dir, so a new harness can reuse it). */
  stop(): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  store?: string;
  dataDir?: string;
  apps?: { appid: string; secret: string; session?: Record<string, unknown> }[];
  wechatTimeout?: string;
  clock?: SandboxClock;
  /** Reuse a running sandbox (for restarts). */
  sandbox?: Sandbox;
  /** More config (listen is merged with the default one). */
  config?: Record<string, unknown>;
  /** Extra createServer deps (timers). */
  serverDeps?: { acmeCheckIntervalMs?: number };
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const apps = options.apps ?? [{ appid: TEST_APPID, secret: TEST_SECRET }];
  const clock = options.clock ?? createSandboxClock();
  const ownSandbox = !options.sandbox;
  const sandbox = options.sandbox ?? createSandbox({ clock, apps: apps.map(({ appid, secret }) => ({ appid, secret })) });
  if (ownSandbox) await sandbox.start();
  const ownDir = !options.dataDir;
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'minigate-harness-'));
  const { listen, ...extra } = (options.config ?? {}) as { listen?: Record<string, unknown> };
  const config = loadConfig({
    object: {
      dataDir,
      listen: { http: '127.0.0.1:0', ...listen },
      wechat: { apiBase: sandbox.url, timeout: options.wechatTimeout ?? '5s' },
      apps,
      ...(options.store ? { store: options.store } : {}),
      log: { level: 'trace' },
      ...extra,
    },
    env: {},
  });
  const logs = captureLogs();
  const server = createServer(config, { logger: logs.logger, clock, ...options.serverDeps });
  await server.start();

  const request = async (method: string, pathname: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch((server.urls.http ?? server.url) + pathname, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? null : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: response.status, body: parsed as any };
  };
  const control = async <T>(route: string, body: unknown): Promise<T> => {
    const response = await fetch(`${sandbox.url}/__sandbox/${route}`, { method: 'POST', body: JSON.stringify(body) });
    const parsed = (await response.json()) as T;
    if (!response.ok) throw new Error(`sandbox ${route}: ${JSON.stringify(parsed)}`);
    return parsed;
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await server.close();
  };
  return {
    server,
    sandbox,
    clock,
    config,
    logs,
    url: server.urls.http ?? server.url,
    control,
    code: (input = {}) => control('login', { appid: input.appid ?? apps[0]!.appid, ...input }),
    login: (body) => request('POST', '/auth/login', body),
    get: (pathname, token, headers = {}) =>
      request('GET', pathname, undefined, token ? { authorization: `Bearer ${token}`, ...headers } : headers),
    post: (pathname, body, headers) => request('POST', pathname, body, headers),
    async internal(method, pathname, body, headers = {}) {
      const token = (config.internal as { token?: string } | undefined)?.token ?? '';
      const response = await fetch(server.urls.internal + pathname, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? null : JSON.stringify(body),
      });
      const raw = Buffer.from(await response.arrayBuffer());
      let parsed: unknown = raw;
      try {
        parsed = JSON.parse(raw.toString('utf8'));
      } catch {
        // binary
      }
      return { status: response.status, body: parsed as any, raw, headers: response.headers };
    },
    stop,
    async close() {
      await stop();
      if (ownSandbox) await sandbox.close();
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
