/**
 * The Metrics interface on prom-client, and `GET /metrics` text for one process or for a group
 * of node:cluster workers. Features only see Metrics (core/metrics.ts); this file is the one
 * place prom-client is named.
 *
 * Workers: each worker keeps its own registry; a scrape that reaches any worker asks the primary,
 * which collects every worker's registry over IPC (prom-client's AggregatorRegistry) and answers
 * with the sum, so one scrape counts the whole group.
 */
import cluster from 'node:cluster';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CounterHandle, CounterSamples, GaugeHandle, GaugeOptions, HistogramHandle, MetricSample, Metrics } from './metrics.js';

/** Latency buckets in seconds: 1 ms to 10 s. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** How long the primary waits for the workers' registries. */
export const CLUSTER_SCRAPE_TIMEOUT_MS = 5_000;

export interface Prometheus extends Metrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** The exposition text: this process's, or (in a worker) the whole group's, via the primary. */
  scrape(): Promise<string>;
  /**
   * Families' samples from this process's registry. In a worker that is this worker's share: the
   * group's sums cost a scrape of every worker (every gauge's collect) and are left to /metrics.
   */
  readonly samples: CounterSamples;
  /** True in a node:cluster worker: `samples` are this worker's only. */
  readonly inWorker: boolean;
}

interface BoundCount {
  readonly labels: Record<string, string>;
  count: number;
  inc(by?: number): void;
}

const SCRAPE_REQUEST = 'mg:metrics-scrape';
const SCRAPE_ANSWER = 'mg:metrics-answer';
interface ScrapeMessage {
  type: typeof SCRAPE_REQUEST | typeof SCRAPE_ANSWER;
  id: number;
  text?: string;
  error?: string;
}

export function createPrometheus(options: { defaultMetrics?: boolean } = {}): Prometheus {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'minigate_' });
  // Registered once per name: two features asking for one family share it.
  const made = new Map<string, unknown>();
  // Bound counters of each counter family, added into it at each collect.
  const pendingOf = new Map<string, BoundCount[]>();
  const once = <T>(name: string, make: () => T): T => {
    if (!made.has(name)) made.set(name, make());
    return made.get(name) as T;
  };

  const prometheus: Prometheus = {
    registry,
    contentType: registry.contentType,
    counter(name, help, labels = []): CounterHandle {
      // A bound counter (a hot path: one per route, method and status) only adds to a number of its
      // own; the sums reach prom-client when it collects (each scrape). prom-client's own bound
      // child hashes and checks its labels on every call.
      const counter = once(name, () => {
        const made = new Counter({
          name,
          help,
          labelNames: [...labels],
          registers: [registry],
          collect: () => {
            for (const p of pendingOf.get(name)!) {
              if (p.count === 0) continue;
              made.inc(p.labels, p.count);
              p.count = 0;
            }
          },
        });
        pendingOf.set(name, []);
        return made;
      });
      const mine = pendingOf.get(name)!;
      return {
        inc: (values, by = 1) => (values ? counter.inc(values, by) : counter.inc(by)),
        bind: (values) => {
          // Checked now (prom-client checks at each inc; here the sum is only added at a scrape).
          const unknown = Object.keys(values).find((k) => !labels.includes(k));
          if (unknown !== undefined) throw new Error(`Added label "${unknown}" is not included in initial labelset: ${JSON.stringify(labels)}`);
          const bound: BoundCount = { labels: { ...values }, count: 0, inc: (by = 1) => void (bound.count += by) };
          mine.push(bound);
          return bound;
        },
      };
    },
    histogram(name, help, labels = [], buckets = LATENCY_BUCKETS): HistogramHandle {
      const histogram = once(name, () => new Histogram({ name, help, labelNames: [...labels], buckets: [...buckets], registers: [registry] }));
      return {
        observe: (value, values) => (values ? histogram.observe(values, value) : histogram.observe(value)),
        bind: (values) => boundHistogram(histogram, buckets, values),
      };
    },
    gauge(name, help, labels = [], gaugeOptions: GaugeOptions = {}): GaugeHandle {
      const handle: GaugeHandle = { set: (value, values) => (values ? gauge.set(values, value) : gauge.set(value)) };
      const collect = gaugeOptions.collect;
      const gauge: Gauge = once(
        name,
        () =>
          new Gauge({
            name,
            help,
            labelNames: [...labels],
            registers: [registry],
            aggregator: gaugeOptions.aggregate ?? 'sum',
            ...(collect ? { collect: () => collect(handle) } : {}),
          }),
      );
      return handle;
    },
    async scrape() {
      return cluster.isWorker ? scrapeViaPrimary() : registry.metrics();
    },
    inWorker: cluster.isWorker,
    async samples(names) {
      // Counters have no collect callback: reading two families costs no store query.
      const found: Record<string, MetricSample[]> = {};
      for (const name of names) {
        const metric = registry.getSingleMetric(name);
        if (metric) found[name] = (await metric.get()).values.map((v) => ({ labels: stringLabels(v.labels), value: v.value }));
      }
      return found;
    },
  };
  if (cluster.isWorker) {
    // Answers the primary's requests for this worker's registry (the constructor adds the listener).
    AggregatorRegistry.setRegistries([registry]);
    new AggregatorRegistry();
  }
  return prometheus;
}

/** One series of a prom-client histogram as it keeps it (prom-client 15's `hashMap` values). */
interface SeriesValues {
  labels: Record<string, string>;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/**
 * A histogram for fixed labels that adds to its series directly: prom-client's bound child
 * copies, checks and hashes the labels on every observation, which is most of the cost of a
 * request's metrics. The series is found once here; when prom-client's layout is not the one this
 * knows (another major version), or the series is replaced (a registry reset), it falls back to
 * prom-client's own child.
 */
function boundHistogram(histogram: Histogram, buckets: readonly number[], values: Record<string, string>): { observe(value: number): void } {
  const slow = histogram.labels(values);
  const owner = histogram as unknown as { hashMap?: Record<string, SeriesValues> };
  const bounds = [...buckets];
  let map: Record<string, SeriesValues> | undefined;
  let series: SeriesValues | undefined;
  /** The series, once it exists (the first observation makes it, as prom-client would). */
  const find = (): SeriesValues | undefined => {
    const current = owner.hashMap;
    if (!current || typeof current !== 'object') return undefined;
    const keys = Object.keys(values);
    const found = Object.values(current).find((v) => v && v.labels && Object.keys(v.labels).length === keys.length && keys.every((k) => v.labels[k] === values[k]));
    const known = found !== undefined && typeof found.sum === 'number' && typeof found.count === 'number' && bounds.every((b) => typeof found.bucketValues?.[b] === 'number');
    map = current;
    return known ? found : undefined;
  };
  return {
    observe(value) {
      if (series === undefined || owner.hashMap !== map || !Number.isFinite(value)) {
        slow.observe(value);
        series = find();
        return;
      }
      series.sum += value;
      series.count += 1;
      for (let i = 0; i < bounds.length; i++) {
        if (value <= bounds[i]!) {
          series.bucketValues[bounds[i]!]! += 1;
          return;
        }
      }
    },
  };
}

let nextId = 0;
const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
let listening = false;

/** In a worker: asks the primary for the group's metrics. */
function scrapeViaPrimary(): Promise<string> {
  if (!listening) {
    listening = true;
    process.on('message', (message: ScrapeMessage) => {
      if (message?.type !== SCRAPE_ANSWER) return;
      const pending = waiting.get(message.id);
      waiting.delete(message.id);
      if (message.error !== undefined) pending?.reject(new Error(message.error));
      else pending?.resolve(message.text ?? '');
    });
  }
  const id = ++nextId;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new Error('the primary did not answer the metrics scrape'));
    }, CLUSTER_SCRAPE_TIMEOUT_MS + 1_000);
    waiting.set(id, {
      resolve: (text) => (clearTimeout(timer), resolve(text)),
      reject: (error) => (clearTimeout(timer), reject(error)),
    });
    process.send?.({ type: SCRAPE_REQUEST, id } satisfies ScrapeMessage);
  });
}

/** In the primary: answers workers' scrapes with every worker's metrics added up. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: ScrapeMessage) => {
    if (message?.type !== SCRAPE_REQUEST) return;
    aggregator.clusterMetrics().then(
      (text) => worker.isConnected() && worker.send({ type: SCRAPE_ANSWER, id: message.id, text } satisfies ScrapeMessage),
      (error: Error) => worker.isConnected() && worker.send({ type: SCRAPE_ANSWER, id: message.id, error: error.message } satisfies ScrapeMessage),
    );
  });
}

const stringLabels = (labels: Record<string, string | number | undefined>): Record<string, string> =>
  Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v ?? '')]));

