export { createSessionService, SESSION_CACHE_TTL_MS, LAST_SEEN_WRITE_INTERVAL_MS } from './sessions.js';
export type { SessionService, ActiveSession, SessionCheck, SessionFailure, SessionLookup, NewSession } from './sessions.js';
export { createAuthServices, requireSession, toUserInfo } from './routes.js';
export { login, resolveApp, USER_DATA_MAX_AGE_S, type LoginDeps } from './login.js';
export { createSecretBox, type SecretBox } from './secret-box.js';
export { loadSecretKey, checkKeyAgainstStore, decodeSecretKey, SECRET_KEY_FILE, type SecretKeySource } from './secret-key.js';
export { hashToken, tokenFromRequest, isWellFormedToken } from './tokens.js';
export { registerSessionRoutes } from './internal-routes.js';
export { createAuthFeature, SESSION_PURGE_AFTER_MS, SESSION_PURGE_INTERVAL_MS, type AuthFeature, type AuthFeatureDeps } from './feature.js';
