/**
 * Real databases for tests: each test file gets its own fresh database on the shared MariaDB and
 * PostgreSQL servers (URLs from TEST_MYSQL_URL / TEST_POSTGRES_URL, defaulting to this machine's
 * services) or a temp SQLite file. A server that cannot be reached fails the test; nothing skips.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export type TestDialect = 'sqlite' | 'mysql' | 'postgres';
export const TEST_DIALECTS: TestDialect[] = ['sqlite', 'mysql', 'postgres'];

export const TEST_MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  dialect: TestDialect;
  url: string;
  /** Host and port of the server (not for SQLite). */
  host?: string;
  port?: number;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function createTestDatabase(dialect: TestDialect): Promise<TestDatabase> {
  const name = `mg_t_${randomBytes(5).toString('hex')}`;
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(path.join(tmpdir(), 'minigate-test-'));
    return { dialect, url: `sqlite:${path.join(dir, 'minigate.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  if (dialect === 'mysql') {
    const mysql = await import('mysql2/promise');
    const admin = await mysql.createConnection({ uri: TEST_MYSQL_URL, connectTimeout: 5000 });
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const u = new URL(TEST_MYSQL_URL);
    return {
      dialect,
      url: withDatabase(TEST_MYSQL_URL, name),
      host: u.hostname,
      port: Number(u.port || 3306),
      drop: async () => {
        const c = await mysql.createConnection({ uri: TEST_MYSQL_URL, connectTimeout: 5000 });
        await c.query(`DROP DATABASE IF EXISTS ${name}`);
        await c.end();
      },
    };
  }
  const pg = (await import('pg')).default;
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL, connectionTimeoutMillis: 5000 });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(TEST_POSTGRES_URL);
  return {
    dialect,
    url: withDatabase(TEST_POSTGRES_URL, name),
    host: u.hostname,
    port: Number(u.port || 5432),
    drop: async () => {
      const c = new pg.Client({ connectionString: TEST_POSTGRES_URL, connectionTimeoutMillis: 5000 });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
