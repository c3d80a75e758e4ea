export * from './errors.js';
export * from './clock.js';
export * from './random.js';
export * from './logger.js';
export * from './redis.js';
export * from './signature.js';
export * from './address-scope.js';
export * from './private-files.js';
