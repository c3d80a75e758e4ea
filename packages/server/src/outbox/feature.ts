/**
 * The outbox as a feature: the Outbox is made as soon as the store exists, so that features can
 * register their event kinds (push does); it is started — polling, retrying, purging — once they
 * all have, so a delivery left from the last run never meets a kind with no target yet.
 */
import { every, type AppError, type Clock, type Logger, type Metrics } from '../core/index.js';
import type { Feature } from '../feature/index.js';
import type { Store } from '../store/index.js';
import { outboxMetrics, watchOutboxDepth } from './metrics.js';
import { createOutbox, type Outbox } from './outbox.js';

/** Finished deliveries are kept this long (WeChat's repeats of a push come within a minute). */
export const OUTBOX_KEEP_MS = 3 * 86_400_000;
export const OUTBOX_PURGE_INTERVAL_MS = 3_600_000;

export interface OutboxFeature extends Feature {
  readonly outbox: Outbox;
}

export function createOutboxFeature(deps: { store: Store; clock: Clock; logger: Logger; metrics?: Metrics }): OutboxFeature {
  const { store, clock, logger } = deps;
  const outbox = createOutbox({ store, clock, logger, metrics: outboxMetrics(deps.metrics) });
  if (deps.metrics) watchOutboxDepth(deps.metrics, store, clock);
  let stopPurge: (() => void) | undefined;
  return {
    name: 'outbox',
    outbox,
    async start() {
      outbox.start();
      stopPurge = every(
        OUTBOX_PURGE_INTERVAL_MS,
        async () => {
          const n = await store.outboxPurge(clock.now() - OUTBOX_KEEP_MS);
          if (n) logger.info({ deleted: n }, 'outbox: purged finished deliveries');
        },
        (error) => logger.warn({ code: (error as AppError).code }, 'outbox: purge failed'),
      );
    },
    async close() {
      stopPurge?.();
      await outbox.close();
    },
  };
}
