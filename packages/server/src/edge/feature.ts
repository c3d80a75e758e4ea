import type { AddressInfo } from 'node:net';
import type { SessionService } from '../auth/index.js';
import type { Config } from '../config/index.js';
import { StartError, type Feature, type SharedDeps } from '../feature/index.js';
import type { Limits } from '../limits/index.js';
import { createEdge, type ConsoleMount, type Edge } from './edge.js';
import { Router } from '../http/index.js';
import type { TlsManager } from '../tls/index.js';

export interface EdgeFeature extends Feature {
  /** Bound addresses by listener name (empty until started). */
  addresses(): Record<string, AddressInfo>;
  /** Base URLs by listener name (empty until started). */
  urls(): Record<string, string>;
  /** The last step of a start: every feature's routes served, /readyz answers 200. */
  routes(deps: EdgeRoutesDeps): Feature;
}

export interface EdgeFeatureDeps extends Pick<SharedDeps, 'logger' | 'clock'> {
  tls?: TlsManager | undefined;
  /** What is starting, for /readyz until the routes are mounted. */
  starting: () => string;
  /** Told the status of every answered request (counts for the admin console). */
  onAnswered?: ((status: number) => void) | undefined;
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
}

/**
 * The listeners, bound early: /healthz answers at once, /readyz and the rest answer 503
 * NOT_READY until routes() has mounted every feature's public and internal routes.
 */
export function createEdgeFeature(config: Config, deps: EdgeFeatureDeps): EdgeFeature {
  const edge: Edge = createEdge(config, {
    logger: deps.logger,
    clock: deps.clock,
    starting: deps.starting,
    ...(deps.tls ? { tls: deps.tls } : {}),
    ...(deps.onAnswered ? { onAnswered: deps.onAnswered } : {}),
  });
  let closing: Promise<void> | undefined;
  const stop = () => (closing ??= edge.close());
  return {
    name: 'edge',
    addresses: () => edge.addresses(),
    urls: () => edge.urls(),
    async start() {
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
    },
    // Listeners stop accepting and in-flight requests finish, while the other features drain.
    drain: stop,
    close: stop,
    routes: (routes) => ({
      name: 'routes',
      async start() {
        const internalRouter = new Router();
        for (const feature of routes.features) feature.internalRoutes?.(internalRouter);
        edge.mount({
          sessions: routes.sessions,
          services: routes.features.flatMap((feature) => feature.services?.() ?? []),
          ...(config.internal ? { internal: { token: config.internal.token, router: internalRouter } } : {}),
          limits: routes.limits,
          ready: routes.ready,
          ...(routes.acmeChallenge ? { acmeChallenge: routes.acmeChallenge } : {}),
          ...(routes.console ? { console: routes.console } : {}),
        });
      },
      close: async () => undefined,
    }),
  };
}
