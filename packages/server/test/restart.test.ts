/**
 * Sessions survive a restart on every store, and a server started with another secret key is
 * refused instead of failing every session quietly.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSandbox, type Sandbox } from 'minigate-sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StartError } from '../src/server.js';
import { createTestDatabase, TEST_DIALECTS, type TestDatabase } from './helpers/databases.js';
import { startHarness, TEST_APPID, TEST_SECRET } from './helpers/harness.js';

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = createSandbox({ apps: [{ appid: TEST_APPID, secret: TEST_SECRET }] });
  await sandbox.start();
});
afterAll(async () => {
  await sandbox.close();
});

describe.each(TEST_DIALECTS)('restart on %s', (dialect) => {
  let database: TestDatabase;
  let dataDir: string;
  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    dataDir = mkdtempSync(path.join(tmpdir(), 'mg-restart-'));
  });
  afterAll(async () => {
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps sessions and users across a restart; logout still works after it', async () => {
    const store = dialect === 'sqlite' ? undefined : database.url;
    const first = await startHarness({ sandbox, dataDir, ...(store ? { store } : {}) });
    const { code, openid } = await first.code();
    const login = await first.login({ code });
    expect(login.status).toBe(200);
    const revoked = await first.login({ code: (await first.code({ openid })).code });
    await first.post('/auth/logout', undefined, { authorization: `Bearer ${revoked.body.token}` });
    await first.close();

    const second = await startHarness({ sandbox, dataDir, ...(store ? { store } : {}) });
    try {
      expect(second.url).not.toBe('');
      const session = await second.get('/auth/session', login.body.token);
      expect(session).toMatchObject({ status: 200, body: { openid, appid: TEST_APPID } });
      expect((await second.get('/auth/session', revoked.body.token)).body.error.code).toBe('SESSION_REVOKED');
      expect(await second.server.sessions.sessionKey((await second.server.sessions.check(login.body.token) as any).session)).toBe(
        sandbox.model.user(TEST_APPID, openid)!.sessionKey,
      );
      await second.post('/auth/logout', undefined, { authorization: `Bearer ${login.body.token}` });
      expect((await second.get('/auth/session', login.body.token)).body.error.code).toBe('SESSION_REVOKED');
    } finally {
      await second.close();
    }
  });
});

describe.each(['mysql', 'postgres'] as const)('secret key on a shared %s', (dialect) => {
  it('refuses to start with a secret key the database was not set up with', async () => {
    const database = await createTestDatabase(dialect);
    const dirs = [mkdtempSync(path.join(tmpdir(), 'mg-key-a-')), mkdtempSync(path.join(tmpdir(), 'mg-key-b-'))];
    try {
      const first = await startHarness({ sandbox, dataDir: dirs[0], store: database.url });
      await first.close();
      const error = await startHarness({ sandbox, dataDir: dirs[1], store: database.url }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StartError);
      expect((error as Error).message).toMatch(/secret key .* is not the one this database was set up with/);
    } finally {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
      await database.drop();
    }
  });
});
