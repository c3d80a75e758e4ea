import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSandbox, createSandboxClock, type Sandbox, type SandboxClock } from 'minigate-sandbox';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AppConfig } from '../config/index.js';
import { isAppError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { createStore, type Store } from '../store/index.js';
import { createWechatClient } from '../wechat/index.js';
import { createTokenManager, type TokenManager } from './manager.js';
import { createTokenShare, supersedes } from './shared.js';

const SECRET = 'token-manager-test-secret';
let appSerial = 0;
let dir: string;
let store: Store;
let sandbox: Sandbox;
let clock: SandboxClock;
let appid: string;
let tokens: TokenManager;

function newApp(mode: 'stable' | 'classic' = 'stable'): AppConfig {
  appid = `wx70ce4${String(++appSerial).padStart(11, '0')}`;
  sandbox.model.registerApp({ appid, secret: SECRET });
  return { appid, secret: SECRET, tokenMode: mode, session: { idle: 1, absolute: 1, maxPerUser: 1 } };
}

function manager(app: AppConfig): TokenManager {
  const logger = silentLogger();
  return createTokenManager({
    apps: new Map([[app.appid, app]]),
    wechat: createWechatClient({ apiBase: sandbox.url, timeoutMs: 2_000, logger, busyRetryDelaysMs: [1, 1] }),
    share: createTokenShare({ store, clock, logger }),
    store,
    clock,
    logger,
  });
}

const fetches = (path = '/cgi-bin/stable_token') => sandbox.model.snapshotStats().apps[appid]?.[path] ?? 0;
const accepted = (token: string) => sandbox.model.checkToken(token).ok;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-token-'));
  store = await createStore({ url: `sqlite:${path.join(dir, 'db')}`, logger: silentLogger() });
  await store.migrate();
  clock = createSandboxClock();
  sandbox = createSandbox({ clock });
  await sandbox.start();
});
afterAll(async () => {
  await sandbox.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  tokens = manager(newApp());
});

describe('token manager', () => {
  it('serves a thousand concurrent callers with one fetch (single flight)', async () => {
    const answers = await Promise.all(Array.from({ length: 1000 }, () => tokens.get(appid)));
    expect(new Set(answers.map((a) => a.accessToken)).size).toBe(1);
    expect(fetches()).toBe(1);
    expect(accepted(answers[0]!.accessToken)).toBe(true);
  });

  it('refreshes in the rotation window behind the callers, who never wait', async () => {
    const first = await tokens.get(appid);
    clock.advance(7_200_000 - 200_000); // 200 s left: inside WeChat's 5-minute window
    const during = await tokens.get(appid);
    expect(during.accessToken).toBe(first.accessToken); // handed out at once
    await new Promise((r) => setTimeout(r, 50));
    const after = await tokens.get(appid);
    expect(after.accessToken).not.toBe(first.accessToken);
    expect(fetches()).toBe(2);
    expect(accepted(first.accessToken)).toBe(true); // the old one lives to its end
  });

  it('shares the token with another manager (another instance) through the store', async () => {
    const first = await tokens.get(appid);
    const other = manager({ appid, secret: SECRET, tokenMode: 'stable', session: { idle: 1, absolute: 1, maxPerUser: 1 } });
    expect((await other.get(appid)).accessToken).toBe(first.accessToken);
    expect(fetches()).toBe(1);
  });

  it('keeps the cached token while WeChat fails, backs off, and recovers', async () => {
    const first = await tokens.get(appid);
    clock.advance(7_200_000 - 200_000);
    sandbox.model.addFault({ path: '/cgi-bin/stable_token', errcode: -1, times: 30 });
    for (let i = 0; i < 20; i++) {
      expect((await tokens.get(appid)).accessToken).toBe(first.accessToken);
      await new Promise((r) => setTimeout(r, 5));
    }
    // One failed refresh (three attempts with -1 retries), then quiet during the back-off.
    expect(fetches()).toBeLessThanOrEqual(1 + 3);
    sandbox.model.clearFaults();
    clock.advance(2_000); // past the first back-off
    await tokens.get(appid);
    await new Promise((r) => setTimeout(r, 50));
    expect((await tokens.get(appid)).accessToken).not.toBe(first.accessToken);
  });

  it('fails clearly once the cached token has really expired and WeChat is still down', async () => {
    await tokens.get(appid);
    sandbox.model.addFault({ path: '/cgi-bin/stable_token', errcode: -1, times: 100 });
    clock.advance(7_200_000);
    const error = await tokens.get(appid).catch((e: unknown) => e);
    expect(isAppError(error, 'WECHAT_UNAVAILABLE')).toBe(true);
    sandbox.model.clearFaults();
  });

  it('does not ask again at once when WeChat is not rotating yet', async () => {
    await tokens.get(appid);
    // Move to just before WeChat's window but inside ours (as rounding can make it).
    clock.advance(7_200_000 - 301_000);
    const shared = createTokenShare({ store, clock, logger: silentLogger() });
    const record = (await shared.read(appid))!;
    // Pretend our record was computed a little short, so our window opens before WeChat's.
    await shared.replace(appid, { ...record, expiresAt: record.expiresAt - 20_000 });
    const fresh = manager({ appid, secret: SECRET, tokenMode: 'stable', session: { idle: 1, absolute: 1, maxPerUser: 1 } });
    await fresh.get(appid);
    await new Promise((r) => setTimeout(r, 30));
    const before = fetches();
    for (let i = 0; i < 10; i++) await fresh.get(appid);
    await new Promise((r) => setTimeout(r, 30));
    expect(fetches() - before).toBe(0);
  });

  it('never forces a refresh by itself, and limits forced ones', async () => {
    await tokens.get(appid);
    await tokens.forceRefresh(appid);
    const error = await tokens.forceRefresh(appid).catch((e: unknown) => e);
    expect(isAppError(error, 'TOKEN_REFRESH_LIMITED')).toBe(true);
    clock.advance(31_000);
    await tokens.forceRefresh(appid);
  });

  it('allows 20 forced refreshes in any 24 hours', async () => {
    await tokens.get(appid);
    for (let i = 0; i < 20; i++) {
      await tokens.forceRefresh(appid);
      clock.advance(31_000);
    }
    const error = await tokens.forceRefresh(appid).catch((e: unknown) => e);
    expect(isAppError(error, 'TOKEN_REFRESH_LIMITED')).toBe(true);
    expect((error as Error).message).toContain('20 forced refreshes a day');
    clock.advance(86_400_000 - 20 * 31_000 + 1_000); // the first one is a day old
    const next = await tokens.forceRefresh(appid);
    expect(accepted(next.accessToken)).toBe(true);
  });

  it('classic mode asks the classic API once per rotation', async () => {
    tokens = manager(newApp('classic'));
    await Promise.all(Array.from({ length: 50 }, () => tokens.get(appid)));
    expect(fetches('/cgi-bin/token')).toBe(1);
    expect(fetches('/cgi-bin/stable_token')).toBe(0);
  });
});

describe('shared record ordering', () => {
  it('keeps the token fetched later, unless the stored one was refused', async () => {
    const share = createTokenShare({ store, clock, logger: silentLogger() });
    const app = newApp();
    const newer = { token: 'new', fetchedAt: 2000, expiresAt: 9000 };
    const older = { token: 'old', fetchedAt: 1000, expiresAt: 9500 };
    expect(await share.write(app.appid, newer)).toBe(true);
    expect(await share.write(app.appid, older)).toBe(false);
    expect((await share.read(app.appid))?.token).toBe('new');
    expect(await share.write(app.appid, older, 'new')).toBe(true);
    expect(supersedes(older, newer)).toBe(false);
    expect(supersedes(older, newer, 'new')).toBe(true);
  });
});
