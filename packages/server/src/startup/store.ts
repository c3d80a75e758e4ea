/**
 * The first step of every start-up (`start`, `dev`, each worker, and the workers' primary):
 * the data dir, the secret key, and the store opened, migrated and checked against the key.
 */
import { checkKeyAgainstStore, loadSecretKey, type SecretKeySource } from '../auth/index.js';
import type { Config } from '../config/index.js';
import { AppError } from '../core/index.js';
import type { Logger } from '../core/index.js';
import { makePrivateDir, warnIfReadable } from '../core/index.js';
import { StartError, type Feature } from '../feature/index.js';
import { createStore, redactUrl, type Store } from '../store/index.js';

export interface StoreFeature extends Feature {
  /** Available once started. */
  readonly store: Store;
  readonly secretKey: SecretKeySource;
}

export function createStoreFeature(config: Config, deps: { logger: Logger }): StoreFeature {
  const { logger } = deps;
  let store: Store | undefined;
  let secretKey: SecretKeySource | undefined;
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
      try {
        store = await createStore({ url: config.store, logger });
        const report = await store.migrate();
        if (report.applied.length) logger.info({ applied: report.applied }, 'store: migrations applied');
      } catch (error) {
        throw new StartError(`cannot use the store ${redactUrl(config.store)}: ${describe(error)}`, { cause: error });
      }
      try {
        await checkKeyAgainstStore(key, store.meta);
      } catch (error) {
        throw new StartError((error as Error).message, { cause: error });
      }
      secretKey = key;
    },
    async close() {
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
