import type { Router } from '../http/index.js';
import type { Feature, SharedDeps } from '../feature/index.js';
import type { TokenManager } from '../token/index.js';
import type { WechatClient } from '../wechat/index.js';
import { createGateway, type Gateway } from './gateway.js';
import { phoneNumber, type PhoneNumber } from './helpers.js';
import { registerGatewayRoutes } from './routes.js';

export interface GatewayFeature extends Feature {
  /** WeChat calls with the access_token, for the features that call WeChat for a user. */
  readonly gateway: Gateway;
  /** getPhoneNumber for a code, for login's phone step. */
  phoneNumber(appid: string, code: unknown, openid: string): Promise<PhoneNumber>;
}

/** WeChat's server API on the internal listener, with the access_token added. */
export function createGatewayFeature(deps: Pick<SharedDeps, 'apps' | 'logger'> & { tokens: TokenManager; wechat: WechatClient }): GatewayFeature {
  const { apps, tokens, wechat, logger } = deps;
  const gateway = createGateway({ tokens, wechat, logger });
  return {
    name: 'gateway',
    gateway,
    phoneNumber: (appid, code, openid) => phoneNumber(gateway, appid, { code, openid }),
    internalRoutes: (router: Router) => registerGatewayRoutes(router, { apps, tokens, gateway }),
    start: async () => undefined,
    close: async () => undefined,
  };
}
