import type { Config } from '../config/index.js';
import type { Feature, SharedDeps } from '../feature/index.js';
import type { Outbox } from '../outbox/index.js';
import { createPushService, type PushReceiverDeps } from './receiver.js';

export interface PushFeatureDeps extends SharedDeps {
  /** Where pushes are queued; the feature registers the `push` kind (apps[].push.webhook) on it. */
  outbox: Outbox;
  /** Publishes into a channel room; absent when channels are off. */
  publish?: PushReceiverDeps['publish'];
  /** Features that act on pushes (subscribe, checks). */
  observers?: PushReceiverDeps['observers'];
}

/** WeChat's message push: the receiver, which queues each push in the outbox for the app's webhook. */
export function createPushFeature(config: Config, deps: PushFeatureDeps): Feature {
  const { apps, clock, logger } = deps;
  // Made now, so the push kind has its target before the outbox starts delivering.
  const service = createPushService({
    apps,
    outbox: deps.outbox,
    secret: config.upstreamSecret,
    clock,
    logger,
    ...(deps.publish ? { publish: deps.publish } : {}),
    ...(deps.observers ? { observers: deps.observers } : {}),
  });
  return {
    name: 'push',
    services: () => [service],
    async start() {},
    async close() {},
  };
}
