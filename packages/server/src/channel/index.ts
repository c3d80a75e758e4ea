export { createChannelService, SUBPROTOCOL, REVOCATION_POLL_MS, type ChannelService, type ChannelServiceDeps } from './service.js';
export type { ChannelHub, Connection, PublishResult } from './hub.js';
export { registerChannelRoutes } from './routes.js';
export { createChannelFeature, type ChannelFeature, type ChannelFeatureDeps, type ChannelInspect } from './feature.js';
