export { createChecksFeature, MEDIA_CHECK_PURGE_INTERVAL_MS, type ChecksFeature } from './feature.js';
export { createContentChecks, MEDIA_CHECK_KIND, MEDIA_CHECK_EVENT, MEDIA_CHECK_KEEP_MS, type ContentChecks } from './checks.js';
