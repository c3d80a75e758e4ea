/**
 * minigate_http_requests_total and minigate_http_request_duration_seconds, by listener, route
 * (the configured path, never the raw URL), method and status. Label children are resolved once
 * per (route, method, status) and kept, so a request costs one map lookup and two increments.
 */
import type { Metrics } from '../core/index.js';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export type RecordRequest = (route: string, method: string, status: number, seconds: number) => void;

export function createRequestMetrics(metrics: Metrics, listener: string): RecordRequest {
  const requests = metrics.counter('minigate_http_requests_total', 'HTTP requests answered, by listener, route, method and status.', ['listener', 'route', 'method', 'status']);
  const duration = metrics.histogram('minigate_http_request_duration_seconds', 'Time from request to the end of the answer, by listener, route and method.', ['listener', 'route', 'method']);
  const bound = new Map<string, { inc(): void; observe(seconds: number): void }>();
  return (route, method, status, seconds) => {
    const key = `${route} ${method} ${status}`;
    let children = bound.get(key);
    if (!children) {
      const m = METHODS.has(method) ? method : 'OTHER';
      const count = requests.bind({ listener, route, method: m, status: String(status) });
      const time = duration.bind({ listener, route, method: m });
      // Methods outside the list share OTHER, so an outsider's inventions cannot grow this map.
      children = { inc: () => count.inc(), observe: (s) => time.observe(s) };
      if (METHODS.has(method)) bound.set(key, children);
    }
    children.inc();
    children.observe(seconds);
  };
}
