import type { Router } from './http.js';

/** Built-in services a route can mount (`routes[].service`). */
export type ServiceName = 'auth' | 'wafer';

/**
 * A feature's HTTP routes, with paths relative to where it is mounted: at `defaultPath`, or
 * where a configured route with `service: <name>` puts it.
 */
export interface Service {
  name: ServiceName;
  defaultPath: string;
  router: Router;
}
