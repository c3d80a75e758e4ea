export { createGateway, gatewayFor, PASSTHROUGH_MAX_BODY_BYTES, type Gateway, type PassthroughRequest } from './gateway.js';
export { phoneNumber, msgSecCheck, mediaCheckAsync, sendSubscribeMessage, wxacode, urlScheme, urlLink, type PhoneNumber, type ContentCheck } from './helpers.js';
export { registerGatewayRoutes, type GatewayRouteDeps } from './routes.js';
export { createGatewayFeature, type GatewayFeature } from './feature.js';
