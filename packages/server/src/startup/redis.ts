/** The shared Redis connection (config.redis): locks, token share, channel bus, limits. */
import type { Config } from '../config/index.js';
import type { Logger } from '../core/index.js';
import { createRedis, REDIS_CONNECT_TIMEOUT_MS, type SharedRedis } from '../core/index.js';
import type { Feature } from '../feature/index.js';

export interface RedisFeature extends Feature {
  /** The connection, once started, when config.redis is set. */
  readonly redis: SharedRedis | undefined;
}

export function createRedisFeature(config: Config, deps: { logger: Logger }): RedisFeature {
  let redis: SharedRedis | undefined;
  return {
    name: 'redis',
    get redis() {
      return redis;
    },
    async start() {
      if (!config.redis) return;
      redis = createRedis(config.redis, deps.logger);
      // Every instance must start on the same lock: one still connecting would take the
      // database's while the others hold Redis's, and both would refresh.
      if (!(await redis.ready(REDIS_CONNECT_TIMEOUT_MS))) deps.logger.warn('redis: not reachable at start; the database takes its place until it is');
    },
    async close() {
      await redis?.close();
    },
  };
}
