/** The relay client (`minigate tunnel`): imports only Node and minigate-protocol. */
export { startTunnel, backoffMs, type Tunnel, type TunnelOptions } from './client.js';
