/**
 * The relay (the dev tunnel): a laptop behind NAT dials minigate's HTTPS port (ALPN
 * minigate-relay), and routes with `tunnel: NAME` reach its service over that one link.
 */
export { createRelayFeature, type RelayFeature, type RelayDeps } from './feature.js';
export { createRelayRecords, type RelayRecords, type RelayName } from './records.js';
export { serveRelayOwners } from './cluster.js';
