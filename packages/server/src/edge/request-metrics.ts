/**
 * minigate_http_requests_total and minigate_http_request_duration_seconds, by listener, route
 * (the configured path, never the raw URL), method and status. Label children are resolved once
 * per (route, method, status) and kept in nested maps (no key string built per request), so a
 * request costs three map lookups, one increment and one observation.
 */
import type { Metrics } from '../core/index.js';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export type RecordRequest = (route: string, method: string, status: number, seconds: number) => void;

interface Children {
  count: { inc(by?: number): void };
  time: { observe(seconds: number): void };
}

export function createRequestMetrics(metrics: Metrics, listener: string): RecordRequest {
  const requests = metrics.counter('minigate_http_requests_total', 'HTTP requests answered, by listener, route, method and status.', ['listener', 'route', 'method', 'status']);
  const duration = metrics.histogram('minigate_http_request_duration_seconds', 'Time from request to the end of the answer, by listener, route and method.', ['listener', 'route', 'method']);
  // route → method → status → children. Routes come from the config; statuses are three digits.
  const bound = new Map<string, Map<string, Map<number, Children>>>();
  const resolve = (route: string, method: string, status: number): Children => {
    const m = METHODS.has(method) ? method : 'OTHER';
    return {
      count: requests.bind({ listener, route, method: m, status: String(status) }),
      time: duration.bind({ listener, route, method: m }),
    };
  };
  return (route, method, status, seconds) => {
    let byMethod = bound.get(route);
    if (!byMethod) bound.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    let children = byStatus?.get(status);
    if (!children) {
      children = resolve(route, method, status);
      // Methods outside the list share OTHER, so an outsider's inventions cannot grow these maps.
      if (METHODS.has(method)) {
        if (!byStatus) byMethod.set(method, (byStatus = new Map()));
        byStatus.set(status, children);
      }
    }
    children.count.inc();
    children.time.observe(seconds);
  };
}
