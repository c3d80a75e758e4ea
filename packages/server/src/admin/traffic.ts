/**
 * The charts' counters read from the metrics registry, so the console and Prometheus count the
 * same answers: requests and 5xx from minigate_http_requests_total (every listener), logins
 * from minigate_logins_total with outcome "ok".
 */
import type { CounterSamples } from '../core/index.js';
import type { Counters } from './sampler.js';

export const REQUESTS_FAMILY = 'minigate_http_requests_total';
export const LOGINS_FAMILY = 'minigate_logins_total';

export async function readTraffic(read: CounterSamples): Promise<Counters> {
  const families = await read([REQUESTS_FAMILY, LOGINS_FAMILY]);
  let requests = 0;
  let errors = 0;
  for (const { labels, value } of families[REQUESTS_FAMILY] ?? []) {
    requests += value;
    if (/^5\d\d$/.test(labels.status ?? '')) errors += value;
  }
  let logins = 0;
  for (const { labels, value } of families[LOGINS_FAMILY] ?? []) if (labels.outcome === 'ok') logins += value;
  return { requests, errors, logins };
}
