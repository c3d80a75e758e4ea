import cluster from 'node:cluster';
import type { Config } from '../config/index.js';
import type { SharedRedis } from '../core/redis.js';
import type { Feature, SharedDeps } from '../feature.js';
import { createLimits, NO_LIMITS, type Limits } from './index.js';

export interface LimitsFeature extends Feature {
  /** The limiter, once started. */
  readonly limits: Limits;
}

/** limits.*: one count for every process — Redis across instances, the primary across workers, else here. */
export function createLimitsFeature(config: Config, deps: Pick<SharedDeps, 'logger'> & { redis?: SharedRedis | undefined }): LimitsFeature {
  let limits: Limits = NO_LIMITS;
  return {
    name: 'limits',
    get limits() {
      return limits;
    },
    async start() {
      limits = createLimits(config.limits, {
        logger: deps.logger,
        store: deps.redis ? { kind: 'redis', client: deps.redis.client } : cluster.isWorker ? { kind: 'cluster' } : { kind: 'memory' },
      });
    },
    async close() {},
  };
}
