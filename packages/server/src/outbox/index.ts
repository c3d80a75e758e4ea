export {
  createOutbox,
  OUTBOX_LEASE_MS,
  PUSH_KIND,
  WEBHOOK_RETRY_DELAYS_MS,
  WEBHOOK_TIMEOUT_MS,
  type Outbox,
  type OutboxDeps,
  type OutboxDestination,
  type OutboxEvent,
  type OutboxResolve,
  type OutboxTargetOptions,
} from './outbox.js';
export { createOutboxFeature, OUTBOX_KEEP_MS, OUTBOX_PURGE_INTERVAL_MS, type OutboxFeature } from './feature.js';
