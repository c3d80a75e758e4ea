/**
 * The edge: the HTTP and HTTPS listeners with their limits, the route table (proxy, static
 * files, built-in services), forwarded headers, the request-target checks, and WebSocket upgrades.
 */
export { createEdge, type ConsoleMount, type Edge, type EdgeDeps } from './edge.js';
export {
  createListener,
  boundUrl,
  localUrl,
  HEADERS_TIMEOUT_MS,
  REQUEST_TIMEOUT_MS,
  SOCKET_IDLE_TIMEOUT_MS,
  KEEP_ALIVE_TIMEOUT_MS,
  MAX_HEADER_BYTES,
  TLS_HANDSHAKE_TIMEOUT_MS,
  DRAIN_GRACE_MS,
  type Listener,
  type ListenerOptions,
} from './listener.js';
export { createEdgeFeature, type EdgeFeature, type EdgeFeatureDeps, type EdgeRoutesDeps } from './feature.js';
export { upstreamRequestHeaders, upstreamResponseHeaders } from './headers.js';
export { websocketAccept } from './upgrade.js';
export { createTunnel, type Tunnel } from './ws-tunnel.js';
export type { TunnelTarget, TunnelRoute, TunnelTargets } from './edge.js';
