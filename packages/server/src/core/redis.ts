/**
 * The Redis connection several instances share (token locks and cache now, the channel bus
 * later). Commands fail fast while Redis is down (no offline queue, one attempt), so callers
 * fall back instead of hanging (docs/reliability.md#store-and-redis); it reconnects by itself
 * and says so in the log.
 */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { Logger } from './logger.js';

export const REDIS_CONNECT_TIMEOUT_MS = 2_000;
export const REDIS_COMMAND_TIMEOUT_MS = 2_000;

export interface SharedRedis {
  readonly client: Redis;
  /** True while connected. */
  readonly up: boolean;
  /** Waits for the first connection, at most `timeoutMs`; true when connected. */
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

// ioredis loads when Redis is configured, not with every server. It ships CommonJS: a require
// keeps this factory synchronous.
const require = createRequire(import.meta.url);

export function createRedis(url: string, logger: Logger): SharedRedis {
  const { Redis } = require('ioredis') as typeof import('ioredis');
  const client = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    // Reconnect quickly at first, then every two seconds, forever.
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  let up = false;
  let everUp = false;
  client.on('ready', () => {
    if (!up) logger.info({ redis: redactRedis(url) }, everUp ? 'redis: back' : 'redis: connected');
    up = true;
    everUp = true;
  });
  const down = (reason: string) => {
    if (up || !everUp) logger.warn({ redis: redactRedis(url), reason }, 'redis: unavailable; falling back where possible');
    up = false;
    everUp = true;
  };
  client.on('error', (error: NodeJS.ErrnoException) => down(error.code ?? error.message));
  client.on('end', () => down('closed'));
  return {
    client,
    get up() {
      return up;
    },
    ready(timeoutMs) {
      if (up) return Promise.resolve(true);
      return new Promise((resolve) => {
        const done = (value: boolean) => {
          clearTimeout(timer);
          client.off('ready', onReady);
          resolve(value);
        };
        const onReady = () => done(true);
        const timer = setTimeout(() => done(up), timeoutMs);
        client.on('ready', onReady);
      });
    },
    async close() {
      client.removeAllListeners('end');
      await client.quit().catch(() => client.disconnect());
    },
  };
}

function redactRedis(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
