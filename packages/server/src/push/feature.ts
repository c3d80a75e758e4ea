import type { AppError } from '../core/errors.js';
import type { Config } from '../config/index.js';
import type { Feature, SharedDeps } from '../feature.js';
import type { Store } from '../store/index.js';
import { createOutboxWorker } from './outbox.js';
import { createPushService, type PushReceiverDeps } from './receiver.js';

/** Finished push deliveries are kept this long (WeChat's repeats come within a minute). */
export const OUTBOX_KEEP_MS = 3 * 86_400_000;
export const OUTBOX_PURGE_INTERVAL_MS = 3_600_000;

export interface PushFeatureDeps extends SharedDeps {
  store: Store;
  /** Publishes into a channel room; absent when channels are off. */
  publish?: PushReceiverDeps['publish'];
}

/** WeChat's message push: the receiver, the outbox worker that delivers to webhooks, and its purge. */
export function createPushFeature(config: Config, deps: PushFeatureDeps): Feature {
  const { apps, store, clock, logger } = deps;
  const worker = createOutboxWorker({ apps, store, clock, logger, secret: config.upstreamSecret });
  let purgeTimer: NodeJS.Timeout | undefined;
  return {
    name: 'push',
    services: () => [
      createPushService({ apps, store, clock, logger, queued: () => worker.kick(), ...(deps.publish ? { publish: deps.publish } : {}) }),
    ],
    async start() {
      worker.start();
      purgeTimer = setInterval(() => {
        store
          .outboxPurge(clock.now() - OUTBOX_KEEP_MS)
          .then((n) => n && logger.info({ deleted: n }, 'push: purged finished deliveries'))
          .catch((error: unknown) => logger.warn({ code: (error as AppError).code }, 'push: purge failed'));
      }, OUTBOX_PURGE_INTERVAL_MS);
      purgeTimer.unref();
    },
    async close() {
      clearInterval(purgeTimer);
      await worker.close();
    },
  };
}
