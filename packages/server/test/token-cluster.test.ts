/**
 * One access_token for a deployment of three minigate processes sharing MariaDB and Redis
 * (docs/reliability.md#access_token): under load across token rotations the sandbox sees exactly
 * one fetch per rotation and every caller gets a token it accepts; a forced rotation by someone
 * else costs one deployment-wide refresh and no failed call; with Redis cut, the database's lock
 * takes over and says so.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type RunningCli } from './helpers/cli.js';
import { createTestDatabase, type TestDatabase } from './helpers/databases.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SHORT = 'wx7e5700000000c001'; // tokens live 20 s: rotations happen during the test
const LONG = 'wx7e5700000000c002'; // tokens live 7200 s: only a forced rotation changes them
const SECRET = 'cluster-test-app-secret-0123456789';
const INTERNAL = 'cluster-internal-token-0123456789abcdef';

let dir: string;
let database: TestDatabase;
let redisProxy: TcpProxy;
let sandbox: RunningCli;
let sandboxUrl: string;
const instances: { cli: RunningCli; internal: string }[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-cluster-'));
  database = await createTestDatabase('mysql');
  const redis = new URL(REDIS_URL);
  redisProxy = await startTcpProxy(redis.hostname, Number(redis.port || 6379));
  sandbox = startCli(['sandbox', '--port', '0', '--app', `${SHORT}:${SECRET}`, '--token-ttl', '20']);
  sandboxUrl = /(http:\/\/\S+)/.exec(await sandbox.waitForLine(/^sandbox http/))![1]!;
  await fetch(`${sandboxUrl}/__sandbox/apps`, { method: 'POST', body: JSON.stringify({ appid: LONG, secret: SECRET }) });
  const file = path.join(dir, 'minigate.yaml');
  writeFileSync(
    file,
    [
      'dataDir: ./data',
      'listen:',
      '  http: 127.0.0.1:0',
      '  internal: 127.0.0.1:0',
      'wechat:',
      `  apiBase: ${sandboxUrl}`,
      'apps:',
      `  - appid: ${SHORT}`,
      `    secret: ${SECRET}`,
      `  - appid: ${LONG}`,
      `    secret: ${SECRET}`,
      `redis: redis://127.0.0.1:${redisProxy.port}`,
      'internal:',
      `  token: ${INTERNAL}`,
      'secretKey: ' + 'cd'.repeat(32),
      '',
    ].join('\n'),
  );
  for (let i = 0; i < 3; i++) {
    const cli = startCli(['start', '-c', file], { env: { MINIGATE_STORE: database.url } });
    const internal = /internal API on (http:\S+)/.exec(await cli.waitForLine(/^minigate internal API on/))![1]!;
    instances.push({ cli, internal });
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(instances.map((i) => i.cli.stop()));
  await sandbox?.stop();
  await redisProxy?.close();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function fetches(appid: string): Promise<number> {
  const stats = (await (await fetch(`${sandboxUrl}/__sandbox/stats?appid=${appid}`)).json()) as { paths: Record<string, number> };
  return stats.paths['/cgi-bin/stable_token'] ?? 0;
}

async function tokenCheck(token: string): Promise<boolean> {
  const response = await fetch(`${sandboxUrl}/__sandbox/check-token`, { method: 'POST', body: JSON.stringify({ access_token: token }) });
  return ((await response.json()) as { ok: boolean }).ok;
}

function internal(i: number, pathname: string) {
  return fetch(`${instances[i % 3]!.internal}${pathname}`, { headers: { authorization: `Bearer ${INTERNAL}` } }).then(async (r) => ({
    status: r.status,
    body: (await r.json()) as any,
  }));
}

/** Runs `rounds` rounds of `perRound` concurrent calls spread over the instances, `gapMs` apart. */
async function load(rounds: number, perRound: number, gapMs: number, call: (i: number) => Promise<void>): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    await Promise.all(Array.from({ length: perRound }, (_, k) => call(round * perRound + k)));
    await new Promise((r) => setTimeout(r, gapMs));
  }
}

describe('three instances, one token', () => {
  it('fetches once per rotation deployment-wide, and every token handed out works', { timeout: 90_000 }, async () => {
    const before = await fetches(SHORT);
    const seen = new Map<string, boolean>();
    let failures = 0;
    // 25 s of calls (500 concurrent at the start, then 25 every 50 ms): a rotation happens inside.
    await Promise.all(Array.from({ length: 500 }, (_, i) => internal(i, `/v1/apps/${SHORT}/access-token`)));
    await load(500, 25, 50, async (i) => {
      const answer = await internal(i, `/v1/apps/${SHORT}/access-token`);
      if (answer.status !== 200) {
        failures++;
        return;
      }
      const token = answer.body.accessToken as string;
      // Checked the moment it is handed out: the sandbox must accept it then.
      if (!seen.has(token)) seen.set(token, await tokenCheck(token));
    });
    const fetched = (await fetches(SHORT)) - before;
    if (fetched !== seen.size) {
      // Which instance fetched when, and on which lock: what tells a lock race from a quiet fetch.
      for (const [n, i] of instances.entries()) console.log(`instance ${n}:\n${i.cli.stderr().split('\n').filter((l) => /token:|redis:/.test(l)).join('\n')}`);
    }
    expect(failures).toBe(0);
    expect([...seen.values()].every(Boolean)).toBe(true);
    expect(seen.size).toBeGreaterThanOrEqual(2); // at least one rotation happened
    expect(fetched).toBe(seen.size);
  });

  it('recovers from a forced rotation with one refresh deployment-wide, and no call fails', { timeout: 60_000 }, async () => {
    // Warm every instance with the long-lived token.
    await Promise.all([0, 1, 2].map((i) => internal(i, `/v1/apps/${LONG}/access-token`)));
    const before = await fetches(LONG);
    // Someone with the AppSecret forces a rotation: every cached token is dead at once.
    const forced = await fetch(`${sandboxUrl}/cgi-bin/stable_token`, {
      method: 'POST',
      body: JSON.stringify({ grant_type: 'client_credential', appid: LONG, secret: SECRET, force_refresh: true }),
    });
    expect(((await forced.json()) as { access_token?: string }).access_token).toBeTruthy();
    const forcedCalls = (await fetches(LONG)) - before; // the forced call itself
    const results: number[] = [];
    await load(10, 30, 20, async (i) => {
      const answer = await internal(i, `/v1/apps/${LONG}/wechat/wxa/checksession?openid=nobody&signature=x&sig_method=hmac_sha256`);
      results.push(answer.body.errcode as number);
    });
    // 40003 (unknown openid) means WeChat took the token; nobody saw 40001.
    expect(results.filter((errcode) => errcode !== 40003)).toEqual([]);
    expect((await fetches(LONG)) - before - forcedCalls).toBe(1);
  });

  it('keeps handing out valid tokens with Redis cut, using the database lock, and says so', { timeout: 90_000 }, async () => {
    await redisProxy.cut('refuse');
    try {
      const current = (await internal(0, `/v1/apps/${SHORT}/access-token`)).body.accessToken as string;
      const before = await fetches(SHORT);
      const seen = new Map<string, boolean>();
      let failures = 0;
      await load(300, 15, 60, async (i) => {
        const answer = await internal(i, `/v1/apps/${SHORT}/access-token`);
        if (answer.status !== 200) {
          failures++;
          return;
        }
        const token = answer.body.accessToken as string;
        if (!seen.has(token)) seen.set(token, await tokenCheck(token));
      });
      expect(failures).toBe(0);
      expect(seen.size).toBeGreaterThanOrEqual(2);
      expect([...seen.values()].every(Boolean)).toBe(true);
      // The token in hand when Redis went away was fetched before; every later one once.
      expect((await fetches(SHORT)) - before).toBe(seen.size - (seen.has(current) ? 1 : 0));
      const logs = instances.map((i) => i.cli.stderr()).join('\n');
      expect(logs).toContain('redis: unavailable');
      expect(logs).toContain('token: redis is down; using the database for the token lock and cache');
      expect(logs).toMatch(/"lock":"database","msg":"token: refreshed"/);
    } finally {
      await redisProxy.restore();
    }
  });
});
