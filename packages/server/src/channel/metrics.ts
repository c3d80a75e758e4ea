/**
 * The channel's metric families (docs/metrics.md). Label children are bound once here, so a
 * message costs one counter increment and nothing else; connections and rooms are read from the
 * hub at scrape time rather than kept up to date on every join.
 */
import { NO_METRICS, type Metrics } from '../core/index.js';

export interface ChannelMetrics {
  /** A frame (or Wafer packet) a client sent that was let through the rate limit. */
  readonly messageIn: { inc(): void };
  /** A frame written to a socket. */
  readonly messageOut: { inc(): void };
  /** A connection closed with 4008 because it stopped reading. */
  readonly slowClose: { inc(): void };
}

export function channelMetrics(metrics: Metrics = NO_METRICS): ChannelMetrics {
  const messages = metrics.counter('minigate_channel_messages_total', 'Channel frames by direction: in (from clients), out (written to sockets).', ['direction']);
  const slow = metrics.counter('minigate_channel_slow_closes_total', 'Channel connections closed (4008) because the client stopped reading.');
  return {
    messageIn: messages.bind({ direction: 'in' }),
    messageOut: messages.bind({ direction: 'out' }),
    slowClose: { inc: () => slow.inc() },
  };
}

/** Connections and rooms, read from the hub when scraped. */
export function channelGauges(metrics: Metrics, hub: { connections(): number; rooms(): number }): void {
  metrics.gauge('minigate_channel_connections', 'Open channel connections (WebSocket and Wafer tunnel).', [], { collect: (g) => g.set(hub.connections()) });
  metrics.gauge('minigate_channel_rooms', 'Rooms with at least one connection on this process (summed over workers).', [], { collect: (g) => g.set(hub.rooms()) });
}
