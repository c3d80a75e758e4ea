/**
 * `minigate export` / `import` / `backup`, run as a user runs them: a deployment on SQLite with a
 * real login moves to MariaDB (and PostgreSQL) and back; the session still works there, with the
 * secret key that travelled in the file. Then the refusals: a non-empty store, a file from a
 * newer minigate, a cut-off or tampered file (nothing imported), another key.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/core/logger.js';
import { createRelayRecords } from '../src/relay/index.js';
import { createStore, MIGRATION_NAMES, type Store } from '../src/store/index.js';
import { runCli, startCli, type RunningCli } from './helpers/cli.js';
import { createTestDatabase, type TestDatabase } from './helpers/databases.js';

const APPID = 'wx00112233445566ee';
const SECRET = 'export-test-app-secret-0a1b2c3d4e';
const TABLES = ['users', 'sessions', 'files', 'kv', 'outbox', 'pay_orders', 'pay_refunds', 'pay_notifications', 'relay_names'] as const;

let dir: string;
let sandbox: RunningCli;
let sandboxUrl: string;
const databases: TestDatabase[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-move-'));
  writeFileSync(path.join(dir, 'app-secret.txt'), `${SECRET}\n`);
  sandbox = startCli(['sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`]);
  sandboxUrl = /(http:\/\/\S+)/.exec(await sandbox.waitForLine(/^sandbox http/))![1]!;
});
afterAll(async () => {
  await sandbox?.stop();
  for (const d of databases) await d.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** A config file for one deployment: its own data dir (so its own secret key) and store. */
function deployment(name: string, store: string): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `dataDir: ./data-${name}`,
      `store: ${JSON.stringify(store)}`,
      'listen:',
      '  http: 127.0.0.1:0',
      'wechat:',
      `  apiBase: ${sandboxUrl}`,
      'apps:',
      `  - appid: ${APPID}`,
      '    secretFile: ./app-secret.txt',
      '',
    ].join('\n'),
  );
  return file;
}

async function fresh(dialect: 'sqlite' | 'mysql' | 'postgres'): Promise<TestDatabase> {
  const d = await createTestDatabase(dialect);
  databases.push(d);
  return d;
}

async function serve(config: string) {
  const server = startCli(['start', '-c', config]);
  const url = /listening on (http:\S+)/.exec(await server.waitForLine(/^minigate listening on http/))![1]!;
  await server.waitForStderr('"msg":"minigate started"', 20_000);
  return { server, url };
}

async function login(url: string): Promise<string> {
  const { code } = (await (await fetch(`${sandboxUrl}/__sandbox/login`, { method: 'POST', body: JSON.stringify({ appid: APPID }) })).json()) as { code: string };
  const r = await fetch(`${url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
  const body = (await r.json()) as { token: string };
  expect(r.status, JSON.stringify(body)).toBe(200);
  return body.token;
}

async function sessionStatus(url: string, token: string): Promise<number> {
  return (await fetch(`${url}/auth/session`, { headers: { authorization: `Bearer ${token}` } })).status;
}

/** Every row an export carries, as plain sorted JSON, to compare two stores. */
async function contents(url: string): Promise<Record<string, unknown[]>> {
  const store = await createStore({ url, logger: silentLogger() });
  try {
    const out: Record<string, unknown[]> = {};
    for (const table of TABLES) {
      const rows = await store.db.selectFrom(table).selectAll().execute();
      out[table] = rows.map((r) => JSON.stringify(Object.fromEntries(Object.entries(r).sort()))).sort();
    }
    return out;
  } finally {
    await store.close();
  }
}

function pendingOnly(c: Record<string, unknown[]>): Record<string, unknown[]> {
  return { ...c, outbox: c.outbox!.filter((o) => String(o).includes('"status":"pending"')) };
}

async function withStore<T>(url: string, run: (store: Store) => Promise<T>): Promise<T> {
  const store = await createStore({ url, logger: silentLogger() });
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

describe('export and import', () => {
  let source: TestDatabase;
  let sourceConfig: string;
  let token: string;
  let exported: string;
  let relayToken: string;

  beforeAll(async () => {
    source = await fresh('sqlite');
    sourceConfig = deployment('source', source.url);
    const { server, url } = await serve(sourceConfig);
    try {
      token = await login(url);
      expect(await sessionStatus(url, token)).toBe(200);
    } finally {
      expect(await server.stop('SIGTERM')).toBe(0);
    }
    // What no HTTP call here makes quickly: file metadata, shared state and deliveries, one
    // pending and one finished (the finished one stays behind).
    await withStore(source.url, async (store) => {
      const now = Date.now();
      await store.db
        .insertInto('files')
        .values({ id: 'f1', appid: APPID, openid: 'o-1', name: '照片 "1".png', content_type: 'image/png', size: 12, sha256: 'a'.repeat(64), storage_key: 'k/f1', access: 'private', meta: '{"x":1}', created_at: now })
        .execute();
      await store.kvSet('token:wx', '{"access_token":"secret-token-value","expires_at":1}', now);
      await store.outboxAdd({ id: 'o1', kind: 'push', appid: APPID, dedupKey: 'd1', payload: '{"a":"\\n"}', now });
      await store.outboxAdd({ id: 'o2', kind: 'push', appid: APPID, dedupKey: 'd2', payload: '{}', now });
      await store.outboxDone('o2', now);
      // A paid order, its refund, and the notification that settled it (a repeat must stay known).
      await store.db
        .insertInto('pay_orders')
        .values({ mchid: '1900000109', out_trade_no: 'T1', appid: APPID, openid: 'o-1', description: '咖啡', amount: 1, attach: null, fingerprint: 'b'.repeat(64), prepay_id: 'wx_prepay_1', prepay_expires_at: now + 7_200_000, state: 'REFUND', transaction_id: '4200000001', success_time: '2026-12-06T10:00:00+08:00', notified_at: now, created_at: now, updated_at: now })
        .execute();
      await store.db
        .insertInto('pay_refunds')
        .values({ mchid: '1900000109', out_refund_no: 'R1', out_trade_no: 'T1', appid: APPID, refund_id: '5030000001', amount: 1, total: 1, reason: null, status: 'SUCCESS', success_time: null, created_at: now, updated_at: now })
        .execute();
      await store.db.insertInto('pay_notifications').values({ mchid: '1900000109', id: 'EV-1', event_type: 'TRANSACTION.SUCCESS', received_at: now }).execute();
    });
    // A relay name (the dev tunnel): its token must still be accepted after the move.
    const added = await runCli(['relay', 'add', 'alice', '-c', sourceConfig]);
    expect(added.code, added.stderr).toBe(0);
    relayToken = added.stdout.trim().split('\n').at(-1)!;
    exported = path.join(dir, 'source.jsonl');
    const r = await runCli(['export', '-c', sourceConfig, '--out', exported]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 users, 1 sessions, 1 files, 1 kv, 0 subscribe_grants, 0 admin_users, 0 audit_log, 1 outbox, 1 pay_orders, 1 pay_refunds, 1 pay_notifications, 1 relay_names/);
  }, 60_000);

  it('writes a private file with a versioned header and the secret key', () => {
    expect(statSync(exported).mode & 0o777).toBe(0o600);
    const [first, ...rest] = readFileSync(exported, 'utf8').trimEnd().split('\n');
    const header = JSON.parse(first!);
    expect(header).toMatchObject({ format: 'minigate-export', formatVersion: 1, migration: MIGRATION_NAMES.at(-1), source: 'sqlite' });
    expect(header.secretKey).toBe(readFileSync(path.join(dir, 'data-source', 'secret.key'), 'utf8').trim());
    expect(rest.map((l) => JSON.parse(l).table)).toEqual(['users', 'sessions', 'files', 'kv', 'outbox', 'pay_orders', 'pay_refunds', 'pay_notifications', 'relay_names']);
    // The relay name travels with its token's hash, never the token.
    expect(readFileSync(exported, 'utf8')).not.toContain(relayToken);
    // No temporary file left beside it.
    expect(readFileSync(exported, 'utf8')).not.toContain('"o2"');
  });

  it.each(['mysql', 'postgres'] as const)('moves SQLite → %s → SQLite with the session still valid', async (dialect) => {
    const target = await fresh(dialect);
    const targetConfig = deployment(`target-${dialect}`, target.url);
    const r = await runCli(['import', '-c', targetConfig, exported]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('wrote the secret key');
    expect(statSync(path.join(dir, `data-target-${dialect}`, 'secret.key')).mode & 0o777).toBe(0o600);
    expect(await contents(target.url)).toEqual(await contents(source.url).then(pendingOnly));
    expect(await withStore(target.url, (store) => createRelayRecords(store).verify('alice', relayToken))).toBe(true);

    // The moved deployment starts (its key matches the store's fingerprint) and knows the token.
    const { server, url } = await serve(targetConfig);
    try {
      expect(await sessionStatus(url, token)).toBe(200);
    } finally {
      expect(await server.stop('SIGTERM')).toBe(0);
    }

    // And back, into a new SQLite file.
    const back = path.join(dir, `back-${dialect}.jsonl`);
    expect((await runCli(['export', '-c', targetConfig, '--out', back])).code).toBe(0);
    const again = await fresh('sqlite');
    const againConfig = deployment(`again-${dialect}`, again.url);
    const b = await runCli(['import', '-c', againConfig, back]);
    expect(b.code, b.stderr).toBe(0);
    // The moved deployment's outbox has delivered the pending row by now; pending ones travel.
    expect(await contents(again.url)).toEqual(await contents(target.url).then(pendingOnly));
  }, 120_000);

  it('imports an export made before pay and relay tables travelled (no counts, no such rows)', async () => {
    const lines = readFileSync(exported, 'utf8').trimEnd().split('\n');
    const header = JSON.parse(lines[0]!);
    const later = ['pay_orders', 'pay_refunds', 'pay_notifications', 'relay_names'];
    for (const table of later) delete header.counts[table];
    const older = path.join(dir, 'older.jsonl');
    writeFileSync(older, [JSON.stringify(header), ...lines.slice(1).filter((l) => !later.includes(JSON.parse(l).table))].join('\n'));
    const target = await fresh('postgres');
    const r = await runCli(['import', '-c', deployment('older', target.url), older]);
    expect(r.code, r.stderr).toBe(0);
    const moved = await contents(target.url);
    expect([moved.relay_names, moved.pay_orders, moved.pay_refunds, moved.pay_notifications]).toEqual([[], [], [], []]);
    expect(moved.users).toHaveLength(1);
  }, 30_000);

  it('refuses a store that is not empty, and replaces it with --force', async () => {
    const target = await fresh('mysql');
    const config = deployment('busy', target.url);
    expect((await runCli(['import', '-c', config, exported])).code).toBe(0);
    const again = await runCli(['import', '-c', config, exported]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('is not empty');
    const forced = await runCli(['import', '-c', config, exported, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect((await contents(target.url)).users).toHaveLength(1);
  }, 30_000);

  it('imports nothing from a cut-off, tampered or foreign file', async () => {
    const lines = readFileSync(exported, 'utf8').trimEnd().split('\n');
    const header = JSON.parse(lines[0]!);
    const cases: [string, string, string][] = [
      ['cut', lines.slice(0, -1).join('\n'), '0 relay_names rows, the header says 1'],
      ['newer', [JSON.stringify({ ...header, migration: '9999_future' }), ...lines.slice(1)].join('\n'), 'comes from a newer minigate'],
      ['format', [JSON.stringify({ ...header, formatVersion: 2 }), ...lines.slice(1)].join('\n'), 'export format 2'],
      ['garbage', [lines[0], '{"table":"users","row":', ...lines.slice(1)].join('\n'), ':2: not JSON'],
      ['extra-column', [lines[0], lines[1]!.replace('"appid"', '"evil":"x","appid"'), ...lines.slice(2)].join('\n'), 'bad users row'],
      ['unknown-table', [lines[0], '{"table":"locks","row":{}}', ...lines.slice(1)].join('\n'), 'not a row line'],
      ['bad-hash', [lines[0], lines[1], lines[2]!.replace(/"token_hash":"[0-9a-f]+"/, '"token_hash":"../../x"'), ...lines.slice(3)].join('\n'), 'token_hash'],
      ['order', [lines[0], lines[2], lines[1], ...lines.slice(3)].join('\n'), 'a users row after the sessions rows'],
      ['not-export', '{"hello":1}\n', 'is not a minigate export'],
      ['relay-name', [...lines.slice(0, -1), lines.at(-1)!.replace('"name":"alice"', '"name":"../Alice"')].join('\n'), 'bad relay_names row'],
      ['pay-amount', lines.map((l) => (l.includes('"table":"pay_orders"') ? l.replace('"amount":1', '"amount":-1') : l)).join('\n'), 'bad pay_orders row'],
      ['relay-count', [JSON.stringify({ ...header, counts: { ...header.counts, relay_names: 2 } }), ...lines.slice(1)].join('\n'), '1 relay_names rows, the header says 2'],
      ['empty', '', 'is empty'],
    ];
    const target = await fresh('sqlite');
    const config = deployment('hostile', target.url);
    for (const [name, text, message] of cases) {
      const file = path.join(dir, `${name}.jsonl`);
      writeFileSync(file, text);
      const r = await runCli(['import', '-c', config, file]);
      expect(r.code, `${name}: ${r.stderr}`).toBe(1);
      expect(r.stderr, name).toContain(message);
      expect(r.stderr).not.toContain(header.secretKey);
    }
    expect(Object.values(await contents(target.url)).flat()).toEqual([]);
    expect(existsSync(path.join(dir, 'data-hostile', 'secret.key'))).toBe(false);
  }, 60_000);

  it('refuses a data dir holding another key, and a config secretKey that differs', async () => {
    const target = await fresh('sqlite');
    const config = deployment('other-key', target.url);
    const { server } = await serve(config); // makes its own key and fingerprint
    expect(await server.stop('SIGTERM')).toBe(0);
    const keyFile = path.join(dir, 'data-other-key', 'secret.key');
    const ownKey = readFileSync(keyFile, 'utf8');
    const r = await runCli(['import', '-c', config, exported]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('holds another key');
    expect(readFileSync(keyFile, 'utf8')).toBe(ownKey);
    const forced = await runCli(['import', '-c', config, exported, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(keyFile, 'utf8').trim()).toBe(JSON.parse(readFileSync(exported, 'utf8').split('\n')[0]!).secretKey);

    const withKey = path.join(dir, 'with-key.yaml');
    writeFileSync(withKey, `${readFileSync(deployment('with-key', (await fresh('sqlite')).url), 'utf8')}secretKey: ${'ab'.repeat(32)}\n`);
    const k = await runCli(['import', '-c', withKey, exported]);
    expect(k.code).toBe(1);
    expect(k.stderr).toContain('sets secretKey to another key');
  }, 60_000);

  it('refuses to overwrite an export without --force', async () => {
    const r = await runCli(['export', '-c', sourceConfig, '--out', exported]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('exists');
  });
});

describe('backup', () => {
  it('copies a SQLite store online into a private file that opens as the same data', async () => {
    const source = await fresh('sqlite');
    const config = deployment('backup', source.url);
    const { server, url } = await serve(config);
    try {
      await login(url);
      const out = path.join(dir, 'backup.db');
      const r = await runCli(['backup', '-c', config, '--out', out]); // while it runs
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('secret.key');
      expect(statSync(out).mode & 0o777).toBe(0o600);
      expect(await contents(`sqlite:${out}`)).toEqual(await contents(source.url));
    } finally {
      expect(await server.stop('SIGTERM')).toBe(0);
    }
  }, 30_000);

  it('prints the mysqldump and pg_dump lines without the password', async () => {
    const mysql = await runCli(['backup', '-c', deployment('dump-my', 'mysql://mg:p%40ss-w0rd@db.example:3307/mini'), '--out', '/backups/mg.sql']);
    expect(mysql.code, mysql.stderr).toBe(0);
    expect(mysql.stdout).toBe('MYSQL_PWD="$MYSQL_PWD" mysqldump --single-transaction --host db.example --port 3307 --user mg --result-file=/backups/mg.sql mini\n');
    const pg = await runCli(['backup', '-c', deployment('dump-pg', "postgres://mg:p%40ss-w0rd@db.example/mini'db"), '--out', 'x.dump']);
    expect(pg.stdout).toBe(`PGPASSWORD="$PGPASSWORD" pg_dump --format=custom --host db.example --port 5432 --username mg --file=x.dump 'mini'\\''db'\n`);
    for (const r of [mysql, pg]) expect(r.stdout + r.stderr).not.toMatch(/p@ss|p%40ss/);
  });
});
