export * from './errors.js';
export * from './clock.js';
export * from './random.js';
export * from './logger.js';
