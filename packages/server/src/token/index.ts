export { createTokenManager, TOKEN_ERRCODES, ROTATION_WINDOW_MS, FORCE_REFRESH_PER_DAY, FORCE_REFRESH_MIN_INTERVAL_MS } from './manager.js';
export type { TokenManager, AccessToken, TokenStatus } from './manager.js';
export { createTokenShare, type TokenShare, type TokenRecord } from './shared.js';
export { createTokenFeature, type TokenFeature, type TokenFeatureDeps } from './feature.js';
