import { every, type AppError } from '../core/index.js';
import type { Router } from '../http/index.js';
import type { Limits } from '../limits/index.js';
import type { Feature, SharedDeps } from '../feature/index.js';
import type { Store } from '../store/index.js';
import type { WechatClient } from '../wechat/index.js';
import { registerSessionRoutes } from './internal-routes.js';
import type { LoginDeps } from './login.js';
import { createAuthServices } from './routes.js';
import { createSecretBox } from './secret-box.js';
import { createSessionService, type SessionService } from './sessions.js';

/** Ended sessions are kept this long (so a revoked token is told "revoked", not "invalid"). */
export const SESSION_PURGE_AFTER_MS = 7 * 86_400_000;
export const SESSION_PURGE_INTERVAL_MS = 3_600_000;

export interface AuthFeature extends Feature {
  readonly sessions: SessionService;
}

export interface AuthFeatureDeps extends SharedDeps {
  store: Store;
  secretKey: Buffer;
  wechat: WechatClient;
  limits: Limits;
  phoneNumber: NonNullable<LoginDeps['phoneNumber']>;
  /** The channel's Wafer tunnel URLs, asked for when the routes are made (channels start after auth). */
  tunnelUrl: () => LoginDeps['tunnelUrl'] | undefined;
  /** admin.recordClientInfo: keep each login's client address and user agent. */
  recordClientInfo?: boolean;
}

/** Sessions (login, check, revoke), their routes on both listeners, and the purge of ended ones. */
export function createAuthFeature(deps: AuthFeatureDeps): AuthFeature {
  const { apps, store, clock, logger } = deps;
  const sessions = createSessionService({ store, apps, box: createSecretBox(deps.secretKey, 'session_key'), clock, random: deps.random, logger });
  let stopPurge: (() => void) | undefined;
  return {
    name: 'auth',
    sessions,
    services() {
      const tunnelUrl = deps.tunnelUrl();
      return createAuthServices({
        apps,
        wechat: deps.wechat,
        sessions,
        clock,
        phoneNumber: deps.phoneNumber,
        savePhone: (appid, openid, phone) => store.setUserPhone(appid, openid, phone),
        limits: deps.limits,
        recordClientInfo: deps.recordClientInfo ?? false,
        ...(tunnelUrl ? { tunnelUrl } : {}),
      });
    },
    internalRoutes: (router: Router) => registerSessionRoutes(router, sessions, new Set(apps.keys())),
    async start() {
      stopPurge = every(
        SESSION_PURGE_INTERVAL_MS,
        async () => {
          const n = await sessions.purge(SESSION_PURGE_AFTER_MS);
          if (n) logger.info({ deleted: n }, 'session: purged ended sessions');
        },
        (error) => logger.warn({ code: (error as AppError).code }, 'session: purge failed'),
      );
    },
    async close() {
      stopPurge?.();
      await sessions.flush();
    },
  };
}
