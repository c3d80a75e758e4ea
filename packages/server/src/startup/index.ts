/**
 * Start-up steps that are no feature of their own but follow the same contract: the
 * listen.internal exposure check, the data directory, the store with the secret key, TLS and
 * ACME, and the shared Redis connection (docs/design.md, "Start and stop").
 */
export { createInternalListenCheck } from './internal-listen.js';
export { createRedisFeature, type RedisFeature } from './redis.js';
export { createStoreFeature, makeDataDir, type StoreFeature } from './store.js';
export { createAcmeFeature, createTlsFeature, type AcmeFeature, type AcmeFeatureDeps, type TlsFeature } from './tls.js';
