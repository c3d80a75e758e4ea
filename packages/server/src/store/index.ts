export { createStore } from './store.js';
export type { Store, StoreOptions, SaveLoginInput, SaveLoginResult, OutboxEntry } from './store.js';
export type { SessionRecord, UserRecord } from './records.js';
export type { Database } from './schema.js';
export { dialectOf, redactUrl, type DialectName } from './dialects.js';
export { isUnavailable, isUniqueViolation, STORE_OP_TIMEOUT_MS, storeOp } from './errors.js';
export { MIGRATION_NAMES, type MigrationReport } from './migrations.js';
export { watchPool, type PoolUse } from './metrics.js';
