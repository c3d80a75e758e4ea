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
import { createSessionKeyTools, type TokenCall } from './session-key.js';
import { createSessionService, type SessionService } from './sessions.js';

/** Ended sessions are kept this long (so a revoked token is told "revoked", not "invalid"). */
export const SESSION_PURGE_AFTER_MS = 7 * 86_400_000;
export const SESSION_PURGE_INTERVAL_MS = 3_600_000;

/** Reports of wx.requestSubscribeMessage per user: a person taps a popup a few times a minute at most. */
export const SUBSCRIPTION_REPORTS_LIMIT = { rate: { points: 10, durationMs: 60_000 }, burst: 0 };

export interface AuthFeature extends Feature {
  readonly sessions: SessionService;
}

export interface AuthFeatureDeps extends SharedDeps {
  store: Store;
  secretKey: Buffer;
  wechat: WechatClient;
  limits: Limits;
  phoneNumber: NonNullable<LoginDeps['phoneNumber']>;
  /** Records the client's report of a wx.requestSubscribeMessage result (the subscribe feature's). */
  reportSubscriptions?: LoginDeps['reportSubscriptions'];
  /** A WeChat call with the access_token (the gateway's), for the session-key tools. */
  call: TokenCall;
  /** The channel's Wafer tunnel URLs, asked for when the routes are made (channels start after auth). */
  tunnelUrl: () => LoginDeps['tunnelUrl'] | undefined;
  /** admin.recordClientInfo: keep each login's client address and user agent. */
  recordClientInfo?: boolean;
}

/** Sessions (login, check, revoke), their routes on both listeners, and the purge of ended ones. */
export function createAuthFeature(deps: AuthFeatureDeps): AuthFeature {
  const { apps, store, clock, logger } = deps;
  const sessions = createSessionService({ store, apps, box: createSecretBox(deps.secretKey, 'session_key'), clock, random: deps.random, logger });
  const keys = createSessionKeyTools({ sessions, call: deps.call, clock, logger });
  let stopPurge: (() => void) | undefined;
  return {
    name: 'auth',
    sessions,
    services() {
      const tunnelUrl = deps.tunnelUrl();
      return createAuthServices({
        logins: deps.metrics.counter('minigate_logins_total', 'Logins by app, outcome (ok, refused) and error code.', ['appid', 'outcome', 'code']),
        apps,
        wechat: deps.wechat,
        sessions,
        clock,
        phoneNumber: deps.phoneNumber,
        savePhone: (appid, openid, phone) => store.setUserPhone(appid, openid, phone),
        limits: deps.limits,
        keys,
        ...(deps.reportSubscriptions
          ? { reportSubscriptions: deps.reportSubscriptions, subscriptionsLimit: deps.limits.forRoute({ path: '/auth/subscriptions', rateLimit: SUBSCRIPTION_REPORTS_LIMIT }) }
          : {}),
        recordClientInfo: deps.recordClientInfo ?? false,
        ...(tunnelUrl ? { tunnelUrl } : {}),
      });
    },
    internalRoutes: (router: Router) => registerSessionRoutes(router, sessions, new Set(apps.keys()), keys),
    async start() {
      watchSessions(deps);
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

/** Seconds a scrape reuses the last count of active sessions (the count is one query). */
export const SESSION_GAUGE_CACHE_MS = 5_000;

/** minigate_sessions_active: open sessions per app, read from the store at scrape, cached a few seconds. */
function watchSessions(deps: AuthFeatureDeps): void {
  let cached: { at: number; rows: { appid: string; n: number }[] } | undefined;
  deps.metrics.gauge('minigate_sessions_active', 'Sessions neither ended nor revoked, per app (from the store).', ['appid'], {
    // Every worker reads the same table: the group's figure is any one's, not their sum.
    aggregate: 'max',
    collect: async (gauge) => {
      const now = deps.clock.now();
      if (!cached || now - cached.at > SESSION_GAUGE_CACHE_MS) {
        const rows = await deps.store.db
          .selectFrom('sessions')
          .select(['appid', (eb) => eb.fn.countAll<number>().as('n')])
          .where('revoked_at', 'is', null)
          .where('expires_at', '>', now)
          .groupBy('appid')
          .execute();
        cached = { at: now, rows: rows.map((r) => ({ appid: r.appid, n: Number(r.n) })) };
      }
      for (const appid of deps.apps.keys()) gauge.set(cached.rows.find((r) => r.appid === appid)?.n ?? 0, { appid });
    },
  });
}
