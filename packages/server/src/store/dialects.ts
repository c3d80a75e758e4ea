/**
 * One Kysely instance per store URL: `sqlite:PATH`, `mysql://…` (or `mariadb://…`),
 * `postgres://…`. Drivers are loaded only for the database in use.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect, type LogEvent, type PostgresPool, type PostgresPoolClient } from 'kysely';
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
  /**
   * Has this SQL text run as a named prepared statement on each PostgreSQL connection: parsed and
   * planned once per connection instead of on every run (no effect on the other databases).
   */
  keepParsed(sql: string): void;
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
    return { db: new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(database) }), ...log }), dialect, redactedUrl, poolUse: () => undefined, keepParsed: () => {} };
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
    return { db: new Kysely<Database>({ dialect: new MysqlDialect({ pool }), ...log }), dialect, redactedUrl, poolUse, keepParsed: () => {} };
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
  const { kyselyPool, keepParsed } = namingPool(pool, logger);
  return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool: kyselyPool }), ...log }), dialect, redactedUrl, poolUse, keepParsed };
}

/**
 * SQLSTATEs of a named statement the server does not have, or already has under that name: what a
 * pooler in transaction mode that does not carry prepared statements (PgBouncer before 1.21, or
 * max_prepared_statements = 0) answers when a connection's statements land on another server
 * connection. Nothing ran; the query is sent again unnamed.
 */
const NAMING_REFUSED = new Set(['26000', '42P05']);

/**
 * The pool as Kysely sees it, running the texts given to keepParsed as named prepared statements
 * (node-postgres parses a name once per connection, then only binds and executes it). PostgreSQL
 * parses, analyses and plans an unnamed statement on every run: for the one-statement login
 * (store/login.ts) that is most of its cost, about 640–780 µs of server CPU a run against 130–160
 * named (3,000 runs each, measured). If the server refuses a named statement (a pooler, above),
 * naming stops for this process with one warning and the query runs unnamed.
 */
function namingPool(pool: import('pg').Pool, logger: Logger): { kyselyPool: PostgresPool; keepParsed: (sql: string) => void } {
  const names = new Map<string, string>();
  let naming = true;
  const clients = new WeakMap<import('pg').PoolClient, PostgresPoolClient>();
  const wrap = (client: import('pg').PoolClient): PostgresPoolClient => ({
    query: ((text: unknown, values?: unknown[]) => {
      const name = naming && typeof text === 'string' ? names.get(text) : undefined;
      if (name === undefined) return client.query(text as never, values as never);
      return client.query({ name, text: text as string, values }).catch((error: unknown) => {
        if (!naming || !NAMING_REFUSED.has(String((error as { code?: unknown }).code))) throw error;
        naming = false;
        logger.warn({ err: errorSummary(error) }, 'store: the database refused a named prepared statement (a pooler in transaction mode?); statements run unnamed from now on');
        return client.query(text as string, values);
      });
    }) as unknown as PostgresPoolClient['query'],
    release: () => client.release(),
  });
  return {
    kyselyPool: {
      connect: async () => {
        const client = await pool.connect();
        let wrapped = clients.get(client);
        if (!wrapped) clients.set(client, (wrapped = wrap(client)));
        return wrapped;
      },
      end: () => pool.end(),
    },
    // Named by the text's hash: connections shared through a pooler, or instances of two versions,
    // can only ever meet the same name with the same text.
    keepParsed: (sql) => void names.set(sql, `minigate_${createHash('sha256').update(sql).digest('hex').slice(0, 24)}`),
  };
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
