/**
 * The store's metric families (docs/metrics.md). Query time comes from Kysely's `log` hook, which
 * times every query the store runs; it is labelled by the kind of statement only — never by SQL
 * text, which would make a series per query shape and could carry values. Pool use is read from
 * the driver's pool when scraped (SQLite has no pool: one connection in this process).
 */
import type { LogEvent } from 'kysely';
import { NO_METRICS, type Metrics } from '../core/index.js';

export interface PoolUse {
  /** Connections open (busy or idle). */
  total: number;
  idle: number;
  /** Requests waiting for a connection. */
  waiting: number;
}

const STATEMENTS: Record<string, string> = {
  SelectQueryNode: 'select',
  InsertQueryNode: 'insert',
  UpdateQueryNode: 'update',
  DeleteQueryNode: 'delete',
};

/** Kysely's log hook observing minigate_store_query_duration_seconds, children bound once. */
export function queryTimer(metrics: Metrics = NO_METRICS): (event: LogEvent) => void {
  const histogram = metrics.histogram('minigate_store_query_duration_seconds', 'Store query time by statement kind (select, insert, update, delete, other).', ['statement']);
  const bound = new Map(['select', 'insert', 'update', 'delete', 'other'].map((s) => [s, histogram.bind({ statement: s })]));
  const other = bound.get('other')!;
  return (event) => {
    (bound.get(STATEMENTS[event.query.query.kind] ?? 'other') ?? other).observe(event.queryDurationMillis / 1000);
  };
}

/** Registers the pool gauges, read through `use` at scrape (undefined: no pool, nothing shown). */
export function watchPool(metrics: Metrics, use: () => PoolUse | undefined): void {
  metrics.gauge('minigate_store_pool_connections', 'Database connections in the pool, by state (open: busy or idle; idle).', ['state'], {
    collect: (gauge) => {
      const now = use();
      if (!now) return;
      gauge.set(now.total, { state: 'open' });
      gauge.set(now.idle, { state: 'idle' });
    },
  });
  metrics.gauge('minigate_store_pool_waiting', 'Store queries waiting for a free database connection.', [], {
    collect: (gauge) => {
      const now = use();
      if (now) gauge.set(now.waiting);
    },
  });
}
