export * from './errors.js';
export * from './auth.js';
export * from './channel.js';
export * from './relay.js';
