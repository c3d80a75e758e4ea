import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { SessionService } from '../auth/index.js';
import type { Config } from '../config/index.js';
import { StartError, type Feature, type SharedDeps } from '../feature/index.js';
import type { Limits } from '../limits/index.js';
import { createEdge, type ConsoleMount, type Edge, type MetricsExporter, type TunnelTargets } from './edge.js';
import { Router, sendJson, type MountedRouter } from '../http/index.js';
import { edgeOperations, openApiDocuments } from './openapi.js';
import type { TlsManager } from '../tls/index.js';

export interface EdgeFeature extends Feature {
  /** Bound addresses by listener name (empty until started). */
  addresses(): Record<string, AddressInfo>;
  /** Base URLs by listener name (empty until started). */
  urls(): Record<string, string>;
  /** The last step of a start: every feature's routes served, /readyz answers 200. */
  routes(deps: EdgeRoutesDeps): Feature;
  /** Every router served and where (empty until the routes are mounted). */
  served(): { public: MountedRouter[]; internal: MountedRouter[] };
}

export interface EdgeFeatureDeps extends Pick<SharedDeps, 'logger' | 'clock'>, Partial<Pick<SharedDeps, 'metrics'>> {
  /** Serves GET /metrics on listen.internal. */
  exporter?: MetricsExporter;
  tls?: TlsManager | undefined;
  /** What is starting, for /readyz until the routes are mounted. */
  starting: () => string;
  /**
   * Bind the listeners only once the routes are mounted, instead of first. For a worker that
   * joins others already serving (a rolling restart): the cluster primary sends connections to
   * a worker as soon as it listens, and they would get 503 NOT_READY while it starts.
   */
  listenWhenReady?: boolean | undefined;
}

export interface EdgeRoutesDeps {
  sessions: SessionService;
  limits: Limits;
  /** The features whose routes are served (every one has started). */
  features: readonly Feature[];
  /** Resolves when the server can serve (the database answers). */
  ready: () => Promise<void>;
  acmeChallenge?: ((token: string) => Promise<string | null>) | undefined;
  /** The admin console, when it runs. */
  console?: ConsoleMount | undefined;
  /** The relay (tunnel routes and relay clients on the HTTPS port), when it runs. */
  relay?: { targets: TunnelTargets; accept: (socket: TLSSocket) => void } | undefined;
}

/**
 * The listeners, bound early (unless listenWhenReady): /healthz answers at once, /readyz and the rest answer 503
 * NOT_READY until routes() has mounted every feature's public and internal routes.
 */
export function createEdgeFeature(config: Config, deps: EdgeFeatureDeps): EdgeFeature {
  const edge: Edge = createEdge(config, {
    logger: deps.logger,
    clock: deps.clock,
    starting: deps.starting,
    ...(deps.tls ? { tls: deps.tls } : {}),
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.exporter ? { exporter: deps.exporter } : {}),
  });
  let closing: Promise<void> | undefined;
  const stop = () => (closing ??= edge.close());
  return {
    name: 'edge',
    addresses: () => edge.addresses(),
    urls: () => edge.urls(),
    served: () => edge.served(),
    async start() {
      if (!deps.listenWhenReady) await bind();
    },
    // Listeners stop accepting and in-flight requests finish, while the other features drain.
    drain: stop,
    close: stop,
    routes: (routes) => ({
      name: 'routes',
      async start() {
        const internalRouter = new Router();
        for (const feature of routes.features) feature.internalRoutes?.(internalRouter);
        // Made on first request (after every route is in), then kept: the routes do not change.
        let documents: ReturnType<typeof openApiDocuments> | undefined;
        const document = (api: 'public' | 'internal') => (documents ??= openApiDocuments(edge.served()))[api];
        internalRouter
          .route('GET', '/openapi/public.json', edgeOperations.publicDocument, (ctx) => sendJson(ctx.res, 200, document('public')))
          .route('GET', '/openapi/internal.json', edgeOperations.internalDocument, (ctx) => sendJson(ctx.res, 200, document('internal')));
        edge.mount({
          sessions: routes.sessions,
          services: routes.features.flatMap((feature) => feature.services?.() ?? []),
          ...(config.internal ? { internal: { token: config.internal.token, router: internalRouter } } : {}),
          limits: routes.limits,
          ready: routes.ready,
          ...(routes.acmeChallenge ? { acmeChallenge: routes.acmeChallenge } : {}),
          ...(routes.console ? { console: routes.console } : {}),
          ...(routes.relay ? { tunnels: routes.relay.targets, relaySocket: routes.relay.accept } : {}),
        });
        if (deps.listenWhenReady) await bind();
      },
      close: async () => undefined,
    }),
  };

  async function bind(): Promise<void> {
    try {
      await edge.start();
    } catch (error) {
      const failure = error as NodeJS.ErrnoException & { listener?: string; where?: string };
      throw new StartError(
        failure.code === 'EADDRINUSE'
          ? `listen.${failure.listener}: ${failure.where} is already in use; choose another port`
          : `listen.${failure.listener ?? 'http'}: cannot listen on ${failure.where ?? ''} (${failure.code ?? failure.message})`,
        { cause: error },
      );
    }
  }
}
