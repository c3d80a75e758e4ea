/**
 * Request limits (docs/limits.md): login attempts and failed codes, /auth/phone, channel upgrades,
 * internal API token failures, and routes[].rateLimit. Keys are the real client address (after
 * trustedProxies), the user (appid:openid) or the appid; counts are shared by every process that
 * shares the store (see counter.ts). Past a limit: AppError RATE_LIMITED with `retryAfterS`, which
 * the HTTP layer sends as Retry-After.
 *
 * Created once by the server and passed to the features that check it.
 */
import cluster from 'node:cluster';
import { isIP } from 'node:net';
import type { Config, LimitsConfig, Rate, RouteRateLimit } from '../config/index.js';
import type { SharedRedis } from '../core/index.js';
import type { Feature, SharedDeps } from '../feature/index.js';
import { AppError } from '../core/index.js';
import { NO_METRICS, type Logger, type Metrics } from '../core/index.js';
import { createCounter, createLimitStore, type Counter, type LimitStoreOptions } from './counter.js';

export { serveLimitsInPrimary, retrySeconds, type LimitStoreOptions } from './counter.js';

export interface Limits {
  /** Before a login code goes to WeChat: the address's attempts, and the address's and the app's failed codes. */
  beforeLogin(address: string, appid: string): Promise<void>;
  /** After WeChat refused a login code (invalid or used). */
  loginFailed(address: string, appid: string): Promise<void>;
  /** Before a phone-number code goes to WeChat. */
  beforePhone(appid: string, openid: string): Promise<void>;
  /** Before a channel WebSocket upgrade is accepted. */
  channelUpgrade(address: string): Promise<void>;
  /** Before the internal API token is compared: refuses an address past its failures. */
  beforeInternalAuth(address: string): Promise<void>;
  /** After a wrong or missing internal API token. */
  internalAuthFailed(address: string): Promise<void>;
  /** The check of a route's rateLimit (per user `appid:openid` when given, else per address), or undefined when it has none. */
  forRoute(route: { host?: string | undefined; path: string; rateLimit?: RouteRateLimit | undefined }): ((user: string | null, address: string) => Promise<void>) | undefined;
}

export interface LimitsDeps {
  logger: Logger;
  store: LimitStoreOptions;
  /** minigate_rate_limited_total (limit). */
  metrics?: Metrics;
}

/** The error past a limit: which one, and when to come back. */
export function rateLimited(limit: string, retryAfterS: number): AppError {
  return new AppError('RATE_LIMITED', {
    message: `Too many requests (${limit}); retry in ${retryAfterS} s.`,
    details: { limit, retryAfterS },
  });
}

/**
 * What a client address is counted as: an IPv4 address itself; an IPv6 address by its /64, the
 * network one subscriber (or one device) gets and can pick any address in.
 */
export function addressKey(address: string): string {
  const plain = address.split('%')[0]!.toLowerCase();
  if (isIP(plain) !== 6) return address;
  // Groups a part of an address stands for (a trailing dotted IPv4 stands for two).
  const count = (part: string) => (part ? part.split(':').reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0) : 0);
  const [head = '', tail] = plain.split('::');
  const groups = head ? head.split(':') : [];
  if (tail !== undefined) groups.push(...Array<string>(8 - count(head) - count(tail)).fill('0'), ...(tail ? tail.split(':') : []));
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

const none = async (): Promise<void> => undefined;

/** Limits that never refuse (limits.enabled: false). */
export const NO_LIMITS: Limits = {
  beforeLogin: none,
  loginFailed: none,
  beforePhone: none,
  channelUpgrade: none,
  beforeInternalAuth: none,
  internalAuthFailed: none,
  forRoute: () => undefined,
};

export function createLimits(config: LimitsConfig, deps: LimitsDeps): Limits {
  if (!config.enabled) return NO_LIMITS;
  const store = createLimitStore(deps.store, deps.logger);
  const counter = (name: string, rate: Rate | null): Counter | undefined => (rate ? createCounter(store, name, rate, deps.logger) : undefined);
  const login = counter('login', config.login);
  const loginFailures = counter('loginFailures', config.loginFailures);
  const appLoginFailures = counter('appLoginFailures', config.appLoginFailures);
  const phone = counter('phone', config.phone);
  const channelUpgrades = counter('channelUpgrades', config.channelUpgrades);
  const internalAuthFailures = counter('internalAuthFailures', config.internalAuthFailures);

  const refusals = (deps.metrics ?? NO_METRICS).counter('minigate_rate_limited_total', 'Requests refused 429 RATE_LIMITED, by the limit that refused them.', ['limit']);
  /** Throws past the limit (seconds > 0). */
  const check = (limit: string, seconds: number) => {
    if (seconds > 0) {
      refusals.inc({ limit });
      throw rateLimited(limit, seconds);
    }
  };

  return {
    async beforeLogin(address, appid) {
      const key = addressKey(address);
      // Failures first: a blocked address or app takes no attempt point.
      const [addressWait, appWait] = await Promise.all([loginFailures?.wait(key), appLoginFailures?.wait(appid)]);
      check('limits.loginFailures', addressWait ?? 0);
      check('limits.appLoginFailures', appWait ?? 0);
      check('limits.login', (await login?.take(key)) ?? 0);
    },
    async loginFailed(address, appid) {
      await Promise.all([loginFailures?.add(addressKey(address)), appLoginFailures?.add(appid)]);
    },
    async beforePhone(appid, openid) {
      check('limits.phone', (await phone?.take(`${appid}:${openid}`)) ?? 0);
    },
    async channelUpgrade(address) {
      check('limits.channelUpgrades', (await channelUpgrades?.take(addressKey(address))) ?? 0);
    },
    async beforeInternalAuth(address) {
      check('limits.internalAuthFailures', (await internalAuthFailures?.wait(addressKey(address))) ?? 0);
    },
    async internalAuthFailed(address) {
      await internalAuthFailures?.add(addressKey(address));
    },
    forRoute(route) {
      if (!route.rateLimit) return undefined;
      const { rate, burst } = route.rateLimit;
      const name = `route:${route.host ?? '*'}${route.path}`;
      const steady = createCounter(store, name, rate, deps.logger);
      // The burst pool refills in the time the rate takes to earn it (at least a second).
      const burstRate = burst > 0 ? { points: burst, durationMs: Math.max(1, Math.ceil((burst * rate.durationMs) / rate.points / 1000)) * 1000 } : null;
      const extra = burstRate ? createCounter(store, `${name}:burst`, burstRate, deps.logger) : undefined;
      const label = `routes[${route.path}].rateLimit`;
      return async (user, address) => {
        const key = user ?? addressKey(address);
        const seconds = await steady.take(key);
        if (seconds === 0) return;
        const more = extra ? await extra.take(key) : seconds;
        if (more > 0) {
          refusals.inc({ limit: label });
          throw rateLimited(label, Math.min(seconds, more));
        }
      };
    },
  };
}

export interface LimitsFeature extends Feature {
  /** The limiter, once started. */
  readonly limits: Limits;
}

/** limits.*: one count for every process — Redis across instances, the primary across workers, else here. */
export function createLimitsFeature(config: Config, deps: Pick<SharedDeps, 'logger'> & Partial<Pick<SharedDeps, 'metrics'>> & { redis?: SharedRedis | undefined }): LimitsFeature {
  let limits: Limits = NO_LIMITS;
  return {
    name: 'limits',
    get limits() {
      return limits;
    },
    async start() {
      limits = createLimits(config.limits, {
        logger: deps.logger,
        ...(deps.metrics ? { metrics: deps.metrics } : {}),
        store: deps.redis ? { kind: 'redis', client: deps.redis.client } : cluster.isWorker ? { kind: 'cluster' } : { kind: 'memory' },
      });
    },
    async close() {},
  };
}
