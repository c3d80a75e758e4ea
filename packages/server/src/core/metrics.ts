/**
 * A neutral metrics interface: features take a Metrics and record through the handles it returns.
 * NO_METRICS (the default) records nothing; an exporter (Prometheus) can implement the interface
 * later without a feature changing. Names and labels follow Prometheus's rules: base units,
 * `_total` on counters, `_seconds` on durations, and only bounded label values (never an openid,
 * a token or a path with ids).
 */
export interface CounterHandle {
  inc(labels?: Record<string, string>, by?: number): void;
  /** The counter for fixed label values, resolved once (for hot paths: no lookup per call). */
  bind(labels: Record<string, string>): { inc(by?: number): void };
}

export interface HistogramHandle {
  observe(value: number, labels?: Record<string, string>): void;
  /** The histogram for fixed label values, resolved once. */
  bind(labels: Record<string, string>): { observe(value: number): void };
}

export interface GaugeHandle {
  set(value: number, labels?: Record<string, string>): void;
}

export interface GaugeOptions {
  /** Called at each scrape to set the gauge (e.g. a count read from the store). */
  collect?: (gauge: GaugeHandle) => void | Promise<void>;
  /**
   * How the values of several worker processes combine: `sum` (connections each holds, the
   * default) or `max` (a figure every worker reads from the same place, such as the store).
   */
  aggregate?: 'sum' | 'max';
}

/** One sample of a metric family: its labels and value. */
export interface MetricSample {
  labels: Record<string, string>;
  value: number;
}

/** Reads families by name (counters and gauges): each one's samples; a family not registered is absent. */
export type CounterSamples = (names: readonly string[]) => Promise<Record<string, MetricSample[]>>;

export interface Metrics {
  counter(name: string, help: string, labels?: readonly string[]): CounterHandle;
  histogram(name: string, help: string, labels?: readonly string[], buckets?: readonly number[]): HistogramHandle;
  gauge(name: string, help: string, labels?: readonly string[], options?: GaugeOptions): GaugeHandle;
}

const noop = () => undefined;
const noCounter: CounterHandle = { inc: noop, bind: () => ({ inc: noop }) };
const noHistogram: HistogramHandle = { observe: noop, bind: () => ({ observe: noop }) };
const noGauge: GaugeHandle = { set: noop };

/** Records nothing. */
export const NO_METRICS: Metrics = {
  counter: () => noCounter,
  histogram: () => noHistogram,
  gauge: () => noGauge,
};
