/**
 * The admin console: a small web app at admin.path on listen.internal (docs/admin.md), its JSON
 * API, admin users with scrypt passwords and optional TOTP, and the audit log.
 */
export { createAdminFeature, ADMIN_PURGE_INTERVAL_MS, type AdminFeature, type AdminFeatureDeps } from './feature.js';
export { createAdminRecords, type AdminRecords, type AdminUser } from './records.js';
export { hashPassword, verifyPassword, passwordProblem, PASSWORD_MIN_CHARS } from './password.js';
export { newTotpSecret, totpUri } from './totp.js';
export { loginDelayMs, LOGIN_DELAY_BASE_MS, LOGIN_DELAY_MAX_MS } from './login-delay.js';
export { SAMPLE_EVERY_MS, SAMPLE_POINTS, type Counters } from './sampler.js';
export { COOKIE_NAME, CSRF_HEADER } from './console-session.js';
export { ADMIN_BODY_LIMIT_BYTES } from './api.js';
