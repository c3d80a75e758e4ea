import type { UpgradeHandler } from './context.js';
import type { Router } from './router.js';

/** Built-in services a route can mount (`routes[].service`). */
export type ServiceName = 'auth' | 'wafer' | 'push' | 'channel' | 'files' | 'pay';

/**
 * A feature's HTTP routes, with paths relative to where it is mounted: at `defaultPath`, or
 * where a configured route with `service: <name>` puts it.
 */
export interface Service {
  name: ServiceName;
  defaultPath: string;
  router: Router;
  /**
   * Answered on the HTTP listener too when it redirects to HTTPS: WeChat's push may be set to
   * an http:// URL (port 80) and does not follow a redirect; its requests are signed.
   */
  plainHttp?: boolean;
  /** WebSocket upgrades on its path. */
  upgrade?: UpgradeHandler;
}
