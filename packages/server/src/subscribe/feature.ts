/**
 * Subscribe messages with grants (docs/subscribe.md): records what users granted (from pushes and
 * the client SDK), checks a send against the template and the grants before WeChat is called.
 * Made before auth, whose /auth/subscriptions route reports through it.
 */
import type { Feature, SharedDeps } from '../feature/index.js';
import type { Gateway } from '../gateway/index.js';
import type { Router } from '../http/index.js';
import type { Store } from '../store/index.js';
import { createGrantRecords } from './grants.js';
import { registerSubscribeRoutes } from './routes.js';
import { createSubscriptions, type Subscriptions } from './subscribe.js';
import { createTemplateList } from './templates.js';

export interface SubscribeFeature extends Feature {
  readonly subscriptions: Subscriptions;
}

export function createSubscribeFeature(deps: Pick<SharedDeps, 'apps' | 'clock' | 'logger'> & { store: Store; gateway: Gateway }): SubscribeFeature {
  const { apps, clock, logger } = deps;
  const subscriptions = createSubscriptions({
    gateway: deps.gateway,
    templates: createTemplateList({ gateway: deps.gateway, clock }),
    grants: createGrantRecords(deps.store),
    clock,
    logger,
  });
  return {
    name: 'subscribe',
    subscriptions,
    internalRoutes: (router: Router) => registerSubscribeRoutes(router, { apps, subscriptions }),
    start: async () => undefined,
    close: async () => undefined,
  };
}
