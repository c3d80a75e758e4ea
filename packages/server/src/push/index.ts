export { createPushService, dedupKey, PUSH_BODY_LIMIT_BYTES, type PushEvent, type PushObserver, type PushReceiverDeps } from './receiver.js';
export { createPushFeature, type PushFeatureDeps } from './feature.js';
