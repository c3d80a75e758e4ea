/**
 * The outbox's metric families (docs/metrics.md): deliveries by kind and outcome, counted by the
 * worker as it finishes each attempt, and the depth — events not yet delivered, by kind — read
 * from the store when scraped (at most once every few seconds, whatever the scrape rate).
 */
import { NO_METRICS, type Clock, type Metrics } from '../core/index.js';
import type { Store } from '../store/index.js';

/** How long a depth read from the store is reused by the next scrapes. */
export const OUTBOX_DEPTH_CACHE_MS = 5_000;

export type DeliveryOutcome = 'delivered' | 'retried' | 'failed';

export interface OutboxMetrics {
  delivery(kind: string, outcome: DeliveryOutcome): void;
}

export function outboxMetrics(metrics: Metrics = NO_METRICS): OutboxMetrics {
  const deliveries = metrics.counter(
    'minigate_outbox_deliveries_total',
    'Outbox delivery attempts by event kind and outcome (delivered, retried: failed and scheduled again, failed: given up).',
    ['kind', 'outcome'],
  );
  // Kinds are the few that features register; one child per (kind, outcome), bound on first use.
  const children = new Map<string, { inc(): void }>();
  return {
    delivery(kind, outcome) {
      const key = `${kind}\n${outcome}`;
      let child = children.get(key);
      if (!child) children.set(key, (child = deliveries.bind({ kind, outcome })));
      child.inc();
    },
  };
}

/** minigate_outbox_pending: events waiting for delivery (or for a retry), by kind, from the store. */
export function watchOutboxDepth(metrics: Metrics, store: Store, clock: Clock): void {
  let cached: { at: number; rows: { kind: string; n: number }[] } | undefined;
  const seen = new Set<string>();
  metrics.gauge('minigate_outbox_pending', 'Outbox events not yet delivered nor given up, by kind (from the store).', ['kind'], {
    // Every worker reads the same table: the group's figure is any one's, not their sum.
    aggregate: 'max',
    collect: async (gauge) => {
      const now = clock.now();
      if (!cached || now - cached.at > OUTBOX_DEPTH_CACHE_MS) {
        const rows = await store.db
          .selectFrom('outbox')
          .select(['kind', (eb) => eb.fn.countAll<number>().as('n')])
          .where('status', '=', 'pending')
          .groupBy('kind')
          .execute();
        cached = { at: now, rows: rows.map((r) => ({ kind: r.kind, n: Number(r.n) })) };
      }
      // A kind that emptied shows 0 rather than its last figure.
      for (const kind of seen) gauge.set(0, { kind });
      for (const { kind, n } of cached.rows) {
        seen.add(kind);
        gauge.set(n, { kind });
      }
    },
  });
}
