import type { AddressInfo } from 'node:net';
import type { SessionService } from '../auth/index.js';
import type { Config } from '../config/index.js';
import { StartError, type Feature, type SharedDeps } from '../feature.js';
import type { Limits } from '../limits/index.js';
import { createEdge, type Edge } from './edge.js';
import { Router } from './http.js';
import type { TlsManager } from './tls/manager.js';

export interface EdgeFeature extends Feature {
  /** Bound addresses by listener name (empty until started). */
  addresses(): Record<string, AddressInfo>;
  /** Base URLs by listener name (empty until started). */
  urls(): Record<string, string>;
}

export interface EdgeFeatureDeps extends Pick<SharedDeps, 'logger' | 'clock'> {
  sessions: SessionService;
  limits: Limits;
  /** The features whose routes the edge serves (read when it starts: every one has started). */
  features: () => readonly Feature[];
  /** Resolves when the server can serve (the database answers). */
  ready: () => Promise<void>;
  tls?: TlsManager | undefined;
  acmeChallenge?: ((token: string) => Promise<string | null>) | undefined;
}

/** The listeners and the route table, with every feature's public and internal routes. */
export function createEdgeFeature(config: Config, deps: EdgeFeatureDeps): EdgeFeature {
  let edge: Edge | undefined;
  let closing: Promise<void> | undefined;
  const stop = () => (closing ??= edge?.close() ?? Promise.resolve());
  return {
    name: 'edge',
    addresses: () => edge?.addresses() ?? {},
    urls: () => edge?.urls() ?? {},
    async start() {
      const internalRouter = new Router();
      for (const feature of deps.features()) feature.internalRoutes?.(internalRouter);
      edge = createEdge(config, {
        logger: deps.logger,
        clock: deps.clock,
        sessions: deps.sessions,
        services: deps.features().flatMap((feature) => feature.services?.() ?? []),
        ...(config.internal ? { internal: { token: config.internal.token, router: internalRouter } } : {}),
        limits: deps.limits,
        ready: deps.ready,
        ...(deps.tls ? { tls: deps.tls } : {}),
        ...(deps.acmeChallenge ? { acmeChallenge: deps.acmeChallenge } : {}),
      });
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
  };
}
