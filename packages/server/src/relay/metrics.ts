/**
 * The relay's metrics (docs/metrics.md): names online, streams in flight, bytes each way, and
 * link attempts by outcome. No relay name is a label: names are chosen by operators, but a
 * refused hello's name is the dialler's, and labels must stay bounded.
 */
import type { Metrics } from '../core/index.js';

export interface RelayMeter {
  streamOpened(): void;
  streamClosed(): void;
  bytesIn(n: number): void;
  bytesOut(n: number): void;
  /** A hello answered: `welcome`, or the refusal's code. */
  hello(outcome: string): void;
  /** A request or WebSocket handed to the worker holding its link (`workers`). */
  handoff(): void;
}

export function createRelayMeter(metrics: Metrics, online: () => number): RelayMeter {
  let streams = 0;
  metrics.gauge('minigate_relay_names_online', 'Relay names with a client connected (in this process).', [], { collect: (g) => g.set(online()) });
  metrics.gauge('minigate_relay_streams', 'Relayed requests and WebSockets in flight.', [], { collect: (g) => g.set(streams) });
  const bytes = metrics.counter('minigate_relay_bytes_total', 'Bytes relayed: in (phone → laptop) and out (laptop → phone), bodies and WebSocket frames.', ['direction']);
  const inBytes = bytes.bind({ direction: 'in' });
  const outBytes = bytes.bind({ direction: 'out' });
  const hellos = metrics.counter('minigate_relay_hellos_total', 'Relay clients that said hello, by outcome (welcome or the refusal code).', ['outcome']);
  const handoffs = metrics.counter('minigate_relay_handoffs_total', 'Relayed requests and WebSockets handed to the worker that holds the link (workers: N).');
  return {
    handoff: () => handoffs.inc(),
    streamOpened: () => void streams++,
    streamClosed: () => void streams--,
    bytesIn: (n) => inBytes.inc(n),
    bytesOut: (n) => outBytes.inc(n),
    hello: (outcome) => hellos.inc({ outcome }),
  };
}
