/**
 * One counted limit over many keys, on rate-limiter-flexible: in this process's memory, in the
 * primary (workers without Redis, over the cluster IPC channel), or in Redis (instances sharing
 * it). While the shared store fails, each process counts in its own memory instead (limits stay,
 * per process) and the log says so once; a fault past that fails open: the request goes on.
 */
import type { Redis } from 'ioredis';
import {
  RateLimiterCluster,
  RateLimiterClusterMaster,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { Rate } from '../config/index.js';
import type { Logger } from '../core/index.js';

/** How long a worker waits for the primary's count before it counts alone. */
export const CLUSTER_ANSWER_TIMEOUT_MS = 1_000;
/** Redis keys are `minigate:limit:<limit>:<key>`. */
const KEY_PREFIX = 'minigate:limit';

/** Where counts are kept. */
export type LimitStoreOptions = { kind: 'memory' } | { kind: 'cluster' } | { kind: 'redis'; client: Redis };

export interface LimitStore {
  readonly kind: LimitStoreOptions['kind'];
  /** The shared limiter for a limit, and a memory one for when the shared one fails. */
  limiters(name: string, rate: Rate): { shared: RateLimiterAbstract; local: RateLimiterMemory };
  /** Reports how the shared store answered (logs the change from working to failing and back). */
  answered(ok: boolean, error?: unknown): void;
}

export function createLimitStore(options: LimitStoreOptions, logger: Logger): LimitStore {
  let failing = false;
  return {
    kind: options.kind,
    limiters(name, rate) {
      const settings = { keyPrefix: `${KEY_PREFIX}:${name}`, points: rate.points, duration: rate.durationMs / 1000 };
      const local = new RateLimiterMemory(settings);
      const shared =
        options.kind === 'redis'
          ? new RateLimiterRedis({ ...settings, storeClient: options.client, rejectIfRedisNotReady: true })
          : options.kind === 'cluster'
            ? new RateLimiterCluster({ ...settings, timeoutMs: CLUSTER_ANSWER_TIMEOUT_MS })
            : local;
      return { shared, local };
    },
    answered(ok, error) {
      if (ok && failing) logger.info({ store: options.kind }, 'limits: the shared count answers again');
      if (!ok && !failing) {
        logger.warn(
          { store: options.kind, err: (error as Error)?.message ?? String(error) },
          'limits: the shared count failed; each process counts alone until it answers',
        );
      }
      failing = !ok;
    },
  };
}

/** In the primary of `workers` without Redis: keeps the workers' counts (once per process). */
export function serveLimitsInPrimary(): void {
  new RateLimiterClusterMaster();
}

export interface Counter {
  /** Takes a point for key: 0 when within the limit, else the seconds until it would be (≥ 1). */
  take(key: string): Promise<number>;
  /** Seconds until key is within the limit again, without taking a point (0 when it is). */
  wait(key: string): Promise<number>;
  /** Counts one for key (a failure, counted after the fact) and never refuses. */
  add(key: string): Promise<void>;
}

/** Whole seconds, rounded up, never 0: what Retry-After says. */
export function retrySeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

export function createCounter(store: LimitStore, name: string, rate: Rate, logger: Logger): Counter {
  const { shared, local } = store.limiters(name, rate);

  /** Runs op on the shared limiter, else on the local one; a RateLimiterRes rejection means "over". */
  async function run<T>(op: (limiter: RateLimiterAbstract) => Promise<T>): Promise<T> {
    if (shared === local) return op(local);
    try {
      const result = await op(shared);
      store.answered(true);
      return result;
    } catch (error) {
      if (error instanceof RateLimiterRes) {
        store.answered(true);
        throw error;
      }
      store.answered(false, error);
      return op(local);
    }
  }

  const failOpen = (error: unknown): 0 => {
    logger.error({ limit: name, err: (error as Error)?.message ?? String(error) }, 'limits: counting failed; the request goes on');
    return 0;
  };

  return {
    async take(key) {
      try {
        await run((limiter) => limiter.consume(key));
        return 0;
      } catch (error) {
        return error instanceof RateLimiterRes ? retrySeconds(error.msBeforeNext) : failOpen(error);
      }
    },
    async wait(key) {
      try {
        const res = await run((limiter) => limiter.get(key));
        return res && res.consumedPoints >= rate.points ? retrySeconds(res.msBeforeNext) : 0;
      } catch (error) {
        return failOpen(error);
      }
    },
    async add(key) {
      try {
        await run((limiter) => limiter.penalty(key));
      } catch (error) {
        failOpen(error);
      }
    },
  };
}
