/**
 * The relay part of the config schema: the dev tunnel that carries a route's traffic to a
 * laptop that dialled in (docs/relay.md). Present (even `relay: {}`) means on.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { duration } from './schema-types.js';

export const RELAY_MAX_STREAMS_DEFAULT = 256;

export const relaySchema = z
  .strictObject({
    maxStreams: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(RELAY_MAX_STREAMS_DEFAULT)
      .meta({ description: 'Requests (and WebSockets) in flight at once on one relay name; more get 503 TUNNEL_BUSY.' }),
    maxBytesPerSecond: z
      .number()
      .int()
      .min(1024)
      .optional()
      .meta({ description: 'Bandwidth of one relay name, both directions and all its requests together (bytes per second); default: no cap.' }),
    helloTimeout: duration('Time a relay client has, once its TLS handshake is done, to send its hello.', '100ms').prefault('10s'),
    pingInterval: duration('How often minigate pings each relay link (HTTP/2 PING); a link whose ping is not answered within this is dropped.', '1s').prefault('20s'),
    idleTimeout: duration('A relayed request or WebSocket with no bytes either way for this long is closed.', '1s').prefault('5m'),
    uploadTimeout: duration('Time a relayed request body may take to arrive in full (a phone\'s wx.uploadFile over a slow network); other deadlines are the route\'s.', '1s').prefault('1h'),
    handoffAddress: z
      .string()
      .refine((address) => isIP(address) !== 0, { error: 'expected an IP address (IPv4 or IPv6, no port)' })
      .refine((address) => address !== '0.0.0.0' && address !== '::', {
        error: 'expected an address the other instances can reach (this machine\'s private address), not 0.0.0.0 or ::',
      })
      .default('127.0.0.1')
      .meta({
        description:
          'Address the hand-off listener binds (a port of its own, picked at start): requests for a name whose link another worker or instance holds are handed there. The default, loopback, serves workers on one machine; with several instances sharing `redis`, set this machine\'s private address, reachable by the other instances and by no one else.',
      }),
  })
  .optional()
  .meta({ description: 'The dev tunnel: routes with `tunnel: NAME` go to the `minigate tunnel` client holding NAME (names: `minigate relay add`). Needs listen.https (the client dials it, ALPN minigate-relay).' });

export type RelayConfig = NonNullable<z.output<typeof relaySchema>>;
