/**
 * minigate killed (SIGKILL) in the middle of a burst of logins: after a restart the SQLite
 * database is intact, every session has its user, and logins work again.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type RunningCli } from './helpers/cli.js';

const APPID = 'wx00aa11bb22cc33dd';
const SECRET = 'crash-test-secret-00112233445566';

describe('killed mid-login', () => {
  let dir: string;
  let sandbox: RunningCli;
  let sandboxUrl: string;
  let file: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'mg-crash-'));
    sandbox = startCli(['sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`]);
    sandboxUrl = /(http:\/\/\S+)/.exec(await sandbox.waitForLine(/^sandbox http/))![1]!;
    file = path.join(dir, 'minigate.yaml');
    writeFileSync(
      file,
      `dataDir: ./data\nlisten:\n  http: 127.0.0.1:0\nwechat:\n  apiBase: ${sandboxUrl}\napps:\n  - appid: ${APPID}\n    secret: ${SECRET}\n    session:\n      maxPerUser: 3\n`,
    );
  });
  afterAll(async () => {
    await sandbox?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const startServer = async () => {
    const server = startCli(['start', '-c', file]);
    const url = /listening on (http:\S+)/.exec(await server.waitForLine(/^minigate listening on/))![1]!;
    return { server, url };
  };

  const login = async (url: string, openid: string) => {
    const minted = await fetch(`${sandboxUrl}/__sandbox/login`, { method: 'POST', body: JSON.stringify({ appid: APPID, openid }) });
    const { code } = (await minted.json()) as { code: string };
    return fetch(`${url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
  };

  it('leaves a consistent database and serves again after a restart', async () => {
    let answered = 0;
    for (let round = 0; round < 3; round++) {
      const { server, url } = await startServer();
      // A stream of logins over a few users (so maxPerUser revocations happen too), then the kill.
      const inflight: Promise<unknown>[] = [];
      for (let i = 0; i < 150; i++) {
        inflight.push(login(url, `o-crash-${i % 7}`).then((r) => r.status === 200 && answered++, () => undefined));
      }
      const target = answered + 20 + round * 15;
      const deadline = Date.now() + 10_000;
      while (answered < target && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
      expect(await server.stop('SIGKILL')).toBeNull();
      await Promise.all(inflight);
    }
    // The kills really landed mid-burst: some logins finished, others never got an answer.
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThan(450);

    const db = new Database(path.join(dir, 'data', 'minigate.db'), { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(db.pragma('foreign_key_check')).toEqual([]);
      const orphans = db.prepare('SELECT COUNT(*) AS n FROM sessions s LEFT JOIN users u ON u.appid = s.appid AND u.openid = s.openid WHERE u.openid IS NULL').get() as { n: number };
      expect(orphans.n).toBe(0);
      const live = db
        .prepare('SELECT openid, COUNT(*) AS n FROM sessions WHERE revoked_at IS NULL GROUP BY openid HAVING n > 3')
        .all();
      expect(live).toEqual([]);
    } finally {
      db.close();
    }

    const { server, url } = await startServer();
    try {
      const response = await login(url, 'o-crash-after');
      expect(response.status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});
