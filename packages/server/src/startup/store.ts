/**
 * The first step of every start-up (`start`, `dev`, each worker, and the workers' primary):
 * the data dir, the secret key, and the store opened, migrated and checked against the key.
 */
import { checkKeyAgainstStore, loadSecretKey, type SecretKeySource } from '../auth/index.js';
import type { Config } from '../config/index.js';
import { AppError } from '../core/index.js';
import type { Logger, Metrics } from '../core/index.js';
import { makePrivateDir, warnIfReadable } from '../core/index.js';
import { StartError, type Feature } from '../feature/index.js';
import { createStore, redactUrl, watchPool, type Store } from '../store/index.js';

/** Pauses between attempts to reach a database that is not up yet; the last one repeats. */
export const STORE_RETRY_DELAYS_MS = [250, 500, 1_000, 2_000, 5_000];
/** A failure that repeats the last one is logged again only every this many attempts. */
const STORE_RETRY_LOG_EVERY = 10;

/**
 * Failures that a database still starting gives (refused, reset, unreachable, a name compose has
 * not registered yet, PostgreSQL's "starting up"): worth another try. A wrong password or an
 * unknown database is not — waiting would not mend it.
 */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'EPIPE',
  'PROTOCOL_CONNECTION_LOST', // mysql2: the server closed the connection
  '57P03', // PostgreSQL: the database system is starting up
  '08006', // PostgreSQL: connection failure
]);

export interface StoreFeature extends Feature {
  /** Available once started. */
  readonly store: Store;
  readonly secretKey: SecretKeySource;
  /** While the database is not up yet: why, for /readyz (no address or secret in it). */
  readonly waiting: string | undefined;
}

export function createStoreFeature(config: Config, deps: { logger: Logger; metrics?: Metrics; sleep?: (ms: number) => Promise<void> }): StoreFeature {
  const { logger, metrics } = deps;
  let store: Store | undefined;
  // Registered once, reading whichever store is open (a failed attempt's pool is closed).
  if (metrics) watchPool(metrics, () => store?.poolUse());
  let secretKey: SecretKeySource | undefined;
  let waiting: string | undefined;
  let closed = false;
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  /** Opens and migrates the store, trying again while the database is not up, for startup.storeTimeout. */
  async function openStore(): Promise<Store> {
    const timeoutMs = config.startup.storeTimeout;
    const began = Date.now();
    let lastLogged = '';
    for (let attempt = 1; ; attempt++) {
      let opened: Store | undefined;
      try {
        opened = await createStore({ url: config.store, logger, ...(metrics ? { metrics } : {}) });
        const report = await opened.migrate();
        if (report.applied.length) logger.info({ applied: report.applied }, 'store: migrations applied');
        if (attempt > 1) logger.info({ attempts: attempt }, 'store: the database is up');
        return opened;
      } catch (error) {
        await opened?.close().catch(() => undefined);
        const reason = describe(error);
        const elapsed = Date.now() - began;
        const delay = STORE_RETRY_DELAYS_MS[Math.min(attempt - 1, STORE_RETRY_DELAYS_MS.length - 1)]!;
        if (closed || !isTransient(error) || elapsed + delay > timeoutMs) {
          const tried = attempt > 1 ? ` (tried ${attempt} times over ${Math.round(elapsed / 1000)} s; startup.storeTimeout is ${Math.round(timeoutMs / 1000)} s)` : '';
          throw new StartError(`cannot use the store ${redactUrl(config.store)}: ${reason}${tried}`, { cause: error });
        }
        // Once, then when the reason changes, then every few attempts: not a line per retry.
        if (reason !== lastLogged || attempt % STORE_RETRY_LOG_EVERY === 0) {
          logger.warn(
            { store: redactUrl(config.store), attempt, reason, retryingForS: Math.round((timeoutMs - elapsed) / 1000) },
            'store: the database is not reachable yet; retrying (is it running, and is the store URL right? startup.storeTimeout sets how long to wait)',
          );
          lastLogged = reason;
        }
        waiting = `store: waiting for the database (attempt ${attempt}: ${codeOf(error) ?? 'not reachable'})`;
        await (deps.sleep ?? pause)(delay);
        waiting = undefined;
      }
    }
  }

  return {
    name: 'store',
    get store() {
      if (!store) throw new Error('the store is not open');
      return store;
    },
    get secretKey() {
      if (!secretKey) throw new Error('the secret key is not loaded');
      return secretKey;
    },
    async start() {
      makeDataDir(config);
      let key;
      try {
        key = loadSecretKey(config.secretKey, config.dataDir);
      } catch (error) {
        throw new StartError(`secret key: ${(error as Error).message}`, { cause: error });
      }
      if (key.created) logger.info({ file: key.origin }, 'generated a new secret key');
      else if (!config.secretKey) warnIfReadable([key.origin], logger, 'the secret key');
      store = await openStore();
      try {
        await checkKeyAgainstStore(key, store.meta);
      } catch (error) {
        throw new StartError((error as Error).message, { cause: error });
      }
      secretKey = key;
    },
    get waiting() {
      return waiting;
    },
    async close() {
      closed = true;
      wake?.();
      await store?.close();
    },
  };
}

/** The data dir, made for this user only (the secret key, the dev CA and the SQLite file live there). */
export function makeDataDir(config: Config): void {
  try {
    makePrivateDir(config.dataDir);
  } catch (error) {
    throw new StartError(`dataDir: cannot create ${config.dataDir} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
  }
}

function describe(error: unknown): string {
  const e = (error instanceof AppError && error.cause ? error.cause : error) as { code?: string; message?: string };
  const message = redactUrl(e?.message ?? String(error));
  return e?.code && !message.includes(e.code) ? `${e.code}: ${message}` : message;
}

/** The error's code (a socket's, a driver's, PostgreSQL's SQLSTATE), looking through wrappers. */
function codeOf(error: unknown): string | undefined {
  // Our own AppError's code names the registry entry; the cause's says what happened.
  let e = (error instanceof AppError && error.cause ? error.cause : error) as { code?: unknown; cause?: unknown; errors?: unknown[] } | undefined;
  for (let depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === 'string' && e.code) return e.code;
    // Node's connect to a name with several addresses fails with an AggregateError.
    const inner = e.errors?.[0] ?? e.cause;
    e = inner as typeof e;
  }
  return undefined;
}

function isTransient(error: unknown): boolean {
  const code = codeOf(error);
  if (code) return TRANSIENT_CODES.has(code);
  // pg's words when the server goes away or never answers the start-up.
  return /Connection terminated|timeout expired|ECONNREFUSED/i.test(String((error as Error)?.message ?? error));
}
