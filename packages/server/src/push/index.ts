export { createPushService, dedupKey, PUSH_BODY_LIMIT_BYTES, type PushEvent, type PushReceiverDeps } from './receiver.js';
export { createOutboxWorker, WEBHOOK_RETRY_DELAYS_MS, type OutboxWorker } from './outbox.js';
export { createPushFeature, OUTBOX_KEEP_MS, OUTBOX_PURGE_INTERVAL_MS, type PushFeatureDeps } from './feature.js';
