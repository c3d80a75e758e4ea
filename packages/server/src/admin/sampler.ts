/**
 * The charts' data: every SAMPLE_EVERY_MS the counter function is read and the difference to
 * the last reading kept, SAMPLE_POINTS points (an hour). The counters come from the metrics
 * registry (admin/traffic.ts): with metrics off there is nothing to chart.
 */
export const SAMPLE_EVERY_MS = 10_000;
export const SAMPLE_POINTS = 360;

/** Where the numbers come from: nowhere (metrics.enabled false), this process, or this worker of a `workers` group. */
export type TrafficSource = 'off' | 'process' | 'worker';

export interface Counters {
  requests: number;
  errors: number;
  logins: number;
}

export interface Sample extends Counters {
  /** End of the interval, epoch ms. */
  at: number;
}

export interface Sampler {
  /** Reads the counters now and keeps the difference (the timer calls it; tests may too). */
  sample(): Promise<void>;
  points(): Sample[];
  start(): void;
  stop(): void;
}

export function createSampler(read: () => Counters | Promise<Counters>, now: () => number, everyMs = SAMPLE_EVERY_MS): Sampler {
  const points: Sample[] = [];
  let last: Counters | undefined;
  let timer: NodeJS.Timeout | undefined;
  const sampler: Sampler = {
    async sample() {
      const current = await read();
      if (last) {
        // A counter that went down (a restart behind it) starts again from zero.
        const diff = (k: keyof Counters) => Math.max(0, current[k] >= last![k] ? current[k] - last![k] : current[k]);
        points.push({ at: now(), requests: diff('requests'), errors: diff('errors'), logins: diff('logins') });
        if (points.length > SAMPLE_POINTS) points.splice(0, points.length - SAMPLE_POINTS);
      }
      last = current;
    },
    points: () => points.slice(),
    start() {
      void sampler.sample().catch(() => undefined);
      timer = setInterval(() => void sampler.sample().catch(() => undefined), everyMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
    },
  };
  return sampler;
}
