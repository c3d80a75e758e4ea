/**
 * One Kysely instance per store URL: `sqlite:PATH`, `mysql://…` (or `mariadb://…`),
 * `postgres://…`. Drivers are loaded only for the database in use.
 */
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect, type LogEvent } from 'kysely';
import { PRIVATE_FILE_MODE, makePrivateDir, redactUrl, warnIfReadable, type Logger } from '../core/index.js';
import type { PoolUse } from './metrics.js';
import type { Database } from './schema.js';

export type DialectName = 'sqlite' | 'mysql' | 'postgres';

/** Connections a pool may open. Small on purpose: requests are short and the database is shared. */
export const POOL_SIZE = 10;
/** How long to wait for a new database connection before failing the request. */
export const CONNECT_TIMEOUT_MS = 5_000;
/** How long SQLite waits for a lock held by another process. */
export const SQLITE_BUSY_TIMEOUT_MS = 5_000;

export interface OpenedDatabase {
  db: Kysely<Database>;
  dialect: DialectName;
  /** The URL with any password replaced, for logs. */
  redactedUrl: string;
  /** The connection pool's state now (none for SQLite). */
  poolUse(): PoolUse | undefined;
}

export interface OpenOptions {
  /** Kysely's log hook, called after each query (metrics time queries with it). */
  onQuery?: (event: LogEvent) => void;
}

export function dialectOf(url: string): DialectName {
  if (url.startsWith('sqlite:')) return 'sqlite';
  if (url.startsWith('mysql://') || url.startsWith('mariadb://')) return 'mysql';
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return 'postgres';
  throw new Error(`unsupported store URL scheme: ${redactUrl(url)}`);
}

export { redactUrl };

export async function openDatabase(url: string, logger: Logger, options: OpenOptions = {}): Promise<OpenedDatabase> {
  const dialect = dialectOf(url);
  const redactedUrl = redactUrl(url);
  const log = options.onQuery ? { log: options.onQuery } : {};
  if (dialect === 'sqlite') {
    const { default: SQLite } = await import('better-sqlite3');
    const file = url.slice('sqlite:'.length);
    if (file !== ':memory:' && file !== '') {
      const resolved = path.resolve(file);
      makePrivateDir(path.dirname(resolved));
      warnIfReadable([resolved, `${resolved}-wal`, `${resolved}-shm`], logger, 'store: the database file');
      // Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the database's mode.
      closeSync(openSync(resolved, 'a', PRIVATE_FILE_MODE));
    }
    const database = new SQLite(file, { timeout: SQLITE_BUSY_TIMEOUT_MS });
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('foreign_keys = ON');
    return { db: new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(database) }), ...log }), dialect, redactedUrl, poolUse: () => undefined };
  }
  if (dialect === 'mysql') {
    const mysql = await import('mysql2');
    const pool = mysql.createPool({
      uri: url.replace(/^mariadb:/, 'mysql:'),
      connectionLimit: POOL_SIZE,
      connectTimeout: CONNECT_TIMEOUT_MS,
      enableKeepAlive: true,
      // Epoch-ms BIGINTs fit in a double; keep them numbers.
      supportBigNumbers: true,
      bigNumberStrings: false,
    });
    // A broken pooled connection must not crash the process; the pool drops it.
    pool.on('connection', (connection) => {
      connection.on('error', (error) => logger.warn({ err: errorSummary(error) }, 'store: mysql connection error'));
    });
    // mysql2 has no public counts; its pool keeps them in these queues (checked, so a change
    // in mysql2 hides the gauges instead of breaking a scrape).
    const queues = pool as unknown as { _allConnections?: { length: number }; _freeConnections?: { length: number }; _connectionQueue?: { length: number } };
    const poolUse = () =>
      typeof queues._allConnections?.length === 'number'
        ? { total: queues._allConnections.length, idle: queues._freeConnections?.length ?? 0, waiting: queues._connectionQueue?.length ?? 0 }
        : undefined;
    return { db: new Kysely<Database>({ dialect: new MysqlDialect({ pool }), ...log }), dialect, redactedUrl, poolUse };
  }
  const pg = await import('pg');
  const Pool = pg.default.Pool;
  const pool = new Pool({
    connectionString: url,
    max: POOL_SIZE,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    types: {
      // BIGINT (oid 20) as a number: our BIGINTs are epoch ms and counts.
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === 20 ? (value: string) => Number(value) : pg.default.types.getTypeParser(oid, format)) as never,
    },
  });
  pool.on('error', (error) => logger.warn({ err: errorSummary(error) }, 'store: idle postgres connection error'));
  // The pool listens for errors only while a client is idle: a connection reset while a client is
  // checked out between two statements (in a transaction, or just before release) would be an
  // 'error' event with no listener, which ends the process. The statement in flight, if any, still
  // gets its own error; this only keeps the process up.
  pool.on('connect', (client) => {
    client.on('error', (error) => logger.warn({ err: errorSummary(error) }, 'store: postgres connection error'));
  });
  const poolUse = () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount });
  return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }), ...log }), dialect, redactedUrl, poolUse };
}

/** Prepared SQLite statements kept for reuse (our queries are a small, fixed set). */
export const SQLITE_STATEMENT_CACHE_SIZE = 200;

/**
 * Kysely prepares every query anew; preparing costs as much as running a short query. Our SQL
 * texts repeat (parameters are bound), so statements are kept by text and reused. Safe because
 * SQLite runs one query at a time on this connection and Kysely never interleaves a statement's
 * iteration with another use of it.
 */
function withStatementCache(database: import('better-sqlite3').Database) {
  const statements = new Map<string, import('better-sqlite3').Statement>();
  return {
    prepare(sql: string) {
      let statement = statements.get(sql);
      if (!statement) {
        statement = database.prepare(sql);
        statements.set(sql, statement);
        if (statements.size > SQLITE_STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
      }
      return statement;
    },
    close: () => database.close(),
  };
}

/** The fields of a driver error worth logging (its message can carry the URL, so it is redacted). */
export function errorSummary(error: unknown): Record<string, unknown> {
  const e = error as { code?: unknown; errno?: unknown; message?: unknown; name?: unknown };
  return {
    name: e?.name,
    code: e?.code,
    errno: e?.errno,
    message: typeof e?.message === 'string' ? redactUrl(e.message) : undefined,
  };
}
