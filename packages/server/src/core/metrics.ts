/**
 * A neutral metrics interface: features take a Metrics and record through the handles it returns.
 * NO_METRICS (the default) records nothing; an exporter (Prometheus) can implement the interface
 * later without a feature changing. Names and labels follow Prometheus's rules: base units,
 * `_total` on counters, `_seconds` on durations, and only bounded label values (never an openid,
 * a token or a path with ids).
 */
export interface CounterHandle {
  inc(labels?: Record<string, string>, by?: number): void;
}

export interface HistogramHandle {
  observe(value: number, labels?: Record<string, string>): void;
}

export interface GaugeHandle {
  set(value: number, labels?: Record<string, string>): void;
}

export interface Metrics {
  counter(name: string, help: string, labels?: readonly string[]): CounterHandle;
  histogram(name: string, help: string, labels?: readonly string[], buckets?: readonly number[]): HistogramHandle;
  gauge(name: string, help: string, labels?: readonly string[]): GaugeHandle;
}

const noCounter: CounterHandle = { inc: () => undefined };
const noHistogram: HistogramHandle = { observe: () => undefined };
const noGauge: GaugeHandle = { set: () => undefined };

/** Records nothing. */
export const NO_METRICS: Metrics = {
  counter: () => noCounter,
  histogram: () => noHistogram,
  gauge: () => noGauge,
};
