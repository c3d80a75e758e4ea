import type { SharedRedis } from '../core/index.js';
import type { Feature, SharedDeps } from '../feature/index.js';
import type { Store } from '../store/index.js';
import type { WechatClient } from '../wechat/index.js';
import { createTokenManager, type TokenManager } from './manager.js';
import { createTokenShare } from './shared.js';

export interface TokenFeature extends Feature {
  readonly tokens: TokenManager;
}

export interface TokenFeatureDeps extends Pick<SharedDeps, 'apps' | 'clock' | 'logger'>, Partial<Pick<SharedDeps, 'metrics'>> {
  wechat: WechatClient;
  store: Store;
  redis?: SharedRedis | undefined;
}

/** The apps' access_tokens, shared with the other instances through the store (and Redis). */
export function createTokenFeature(deps: TokenFeatureDeps): TokenFeature {
  const { apps, wechat, store, redis, clock, logger } = deps;
  const tokens = createTokenManager({
    apps,
    wechat,
    share: createTokenShare({ store, ...(redis ? { redis } : {}), clock, logger }),
    store,
    clock,
    logger,
    metrics: deps.metrics,
  });
  return { name: 'token', tokens, start: async () => undefined, close: async () => undefined };
}
