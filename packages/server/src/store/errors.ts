/**
 * Which database failures mean "the database is unavailable right now" (answered 503 with
 * STORE_UNAVAILABLE, the client may retry) rather than a bug (500).
 */
import { AppError } from '../core/index.js';

/** A store operation that takes longer than this fails rather than holding the request. */
export const STORE_OP_TIMEOUT_MS = 10_000;

const UNAVAILABLE_CODES = new Set([
  // sockets
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  'ECONNABORTED',
  // mysql2 / MariaDB
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'PROTOCOL_ENQUEUE_AFTER_QUIT', 'ER_CON_COUNT_ERROR', 'ER_SERVER_SHUTDOWN', 'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_DEADLOCK', 'ER_OPTION_PREVENTS_STATEMENT', 'ER_ACCESS_DENIED_ERROR', 'ER_BAD_DB_ERROR',
  'ER_TOO_MANY_USER_CONNECTIONS', 'ER_QUERY_INTERRUPTED', 'ER_CONNECTION_KILLED',
  // SQLite
  'SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_READONLY', 'SQLITE_CANTOPEN',
  'SQLITE_PROTOCOL', 'SQLITE_NOMEM',
]);

/** PostgreSQL SQLSTATE classes: 08 connection, 53 resources, 57 operator intervention. */
const PG_UNAVAILABLE_CLASSES = new Set(['08', '53', '57']);
/** PostgreSQL SQLSTATEs: serialization failure, deadlock, read-only transaction. */
const PG_UNAVAILABLE_STATES = new Set(['40001', '40P01', '25006']);

const UNAVAILABLE_MESSAGE =
  /connection terminated|timeout exceeded when trying to connect|pool is closed|connection (is )?closed|can't add new command when connection is in closed state|not queryable|connect ECONNREFUSED/i;

export class StoreTimeoutError extends Error {
  readonly code = 'STORE_TIMEOUT';
  constructor(operation: string) {
    super(`store operation "${operation}" took longer than ${STORE_OP_TIMEOUT_MS} ms`);
    this.name = 'StoreTimeoutError';
  }
}

export function isUnavailable(error: unknown): boolean {
  if (error instanceof StoreTimeoutError) return true;
  const e = error as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (UNAVAILABLE_CODES.has(code)) return true;
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_BUSY')) return true;
  if (/^[0-9A-Z]{5}$/.test(code) && (PG_UNAVAILABLE_CLASSES.has(code.slice(0, 2)) || PG_UNAVAILABLE_STATES.has(code))) {
    return true;
  }
  return typeof e?.message === 'string' && UNAVAILABLE_MESSAGE.test(e.message);
}

/** A UNIQUE or PRIMARY KEY clash, on any of the three databases. */
export function isUniqueViolation(error: unknown): boolean {
  const code = String((error as { code?: unknown }).code ?? '');
  return code === 'ER_DUP_ENTRY' || code === '23505' || code.startsWith('SQLITE_CONSTRAINT');
}

/** The AppError a failed store operation becomes. */
export function storeError(error: unknown, operation: string): AppError {
  if (error instanceof AppError) return error;
  return new AppError(isUnavailable(error) ? 'STORE_UNAVAILABLE' : 'INTERNAL', {
    cause: error,
    details: { operation },
  });
}

/** Runs one store operation within STORE_OP_TIMEOUT_MS, its failures mapped to AppErrors (see Store). */
export async function storeOp<T>(operation: string, run: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreTimeoutError(operation)), STORE_OP_TIMEOUT_MS);
  });
  try {
    return await Promise.race([run(), timeout]);
  } catch (error) {
    throw storeError(error, operation);
  } finally {
    clearTimeout(timer);
  }
}
