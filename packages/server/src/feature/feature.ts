/**
 * The feature contract: what every part of minigate shows the root (server.ts). A feature is made
 * by its folder's factory with what it needs passed in, checks its own settings in validate(),
 * offers routes, and has a visible lifecycle: start, then close. The root starts features in
 * order and closes them in reverse, also when a start fails part-way.
 */
import type { AppConfig } from '../config/index.js';
import type { Clock, Logger, Metrics, Random } from '../core/index.js';
import type { Router, Service } from '../http/index.js';

export interface Feature {
  /** For logs and for the reason /readyz gives (`store: connecting`). */
  readonly name: string;
  /** Refuses settings this feature cannot run with; called before anything starts. */
  validate?(): void;
  /** Public routes (each mounted at its default path or where routes[].service puts it); read once every feature started. */
  services?(): Service[];
  /**
   * Stops taking new work (uploads answer 503, sockets get 1001, listeners stop accepting). Every
   * started feature drains at once (the last started first), before any closes.
   */
  drain?(): Promise<void> | void;
  /** Routes on the internal API (listen.internal); called once every feature started. */
  internalRoutes?(router: Router): void;
  start(): Promise<void>;
  /**
   * Stops what start() began. Called after a failed or partial start too, and then must close
   * only what exists (Caddy's rule: cleanup works even if provisioning failed).
   */
  close(): Promise<void>;
}

/**
 * Started features, closed in reverse. add() starts one; when its start fails, it and every
 * feature started before it are closed (last first) and the error is thrown again.
 *
 * @example
 * const stack = createFeatureStack();
 * const store = await stack.add(createStoreFeature(config, deps));
 * await stack.close();
 */
export interface FeatureStack {
  add<F extends Feature>(feature: F): Promise<F>;
  /** The feature whose start is under way (`store`), if one is. */
  readonly starting: string | undefined;
  /** The features added, in start order. */
  readonly features: readonly Feature[];
  /** Drains every started feature, then closes them in reverse order; errors are collected and the first thrown after all closed. */
  close(): Promise<void>;
}

export function createFeatureStack(onCloseError?: (feature: Feature, error: unknown) => void): FeatureStack {
  const started: Feature[] = [];
  let starting: string | undefined;
  async function close(): Promise<void> {
    let first: unknown;
    let failed = false;
    const fail = (feature: Feature, error: unknown) => {
      onCloseError?.(feature, error);
      if (!failed) [first, failed] = [error, true];
    };
    await Promise.all([...started].reverse().map(async (feature) => {
      try {
        await feature.drain?.();
      } catch (error) {
        fail(feature, error);
      }
    }));
    while (started.length) {
      const feature = started.pop()!;
      try {
        await feature.close();
      } catch (error) {
        fail(feature, error);
      }
    }
    if (failed) throw first;
  }
  return {
    get starting() {
      return starting;
    },
    get features() {
      return [...started];
    },
    async add(feature) {
      // Pushed first: a feature whose start throws half-way is closed too.
      started.push(feature);
      starting = feature.name;
      try {
        feature.validate?.();
        await feature.start();
      } catch (error) {
        await close().catch(() => undefined);
        throw error;
      } finally {
        starting = undefined;
      }
      return feature;
    },
    close,
  };
}

/** A failure to start, with a message for the operator. */
export class StartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartError';
  }
}

/** What the root gives every feature. */
export interface SharedDeps {
  apps: ReadonlyMap<string, AppConfig>;
  logger: Logger;
  clock: Clock;
  random: Random;
  metrics: Metrics;
}
