export { createPushService, dedupKey, PUSH_BODY_LIMIT_BYTES, type PushEvent, type PushReceiverDeps } from './receiver.js';
export { createOutboxWorker, WEBHOOK_RETRY_DELAYS_MS, type OutboxWorker } from './outbox.js';
