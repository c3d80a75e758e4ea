/**
 * The `limits` section (docs/limits.md) and `routes[].rateLimit`: how many requests a client
 * address, a user or an app may make per window before minigate answers 429 RATE_LIMITED.
 *
 * A rate is written `<points>/<window>`: `120/m`, `30/10m`, `5/h`, `10/s`. Windows are fixed:
 * one starts at a key's first request and the count resets when it ends.
 */
import { z } from 'zod';
import { DURATION_PATTERN, formatDuration, parseDuration } from './duration.js';

/** Every login attempt per client address: two a second, so users behind one carrier NAT share room. */
export const LOGIN_PER_ADDRESS_DEFAULT = '120/m';
/** Failed login codes per client address: a real user almost never sends a bad code. */
export const LOGIN_FAILURES_PER_ADDRESS_DEFAULT = '30/10m';
/** Failed login codes per appid, all addresses together: far above a real app's peak. */
export const LOGIN_FAILURES_PER_APP_DEFAULT = '3000/m';
/** POST /auth/phone per user: WeChat bills every phone-number call. */
export const PHONE_PER_USER_DEFAULT = '5/h';
/** Channel WebSocket upgrades per client address (a reconnect storm behind a NAT fits). */
export const CHANNEL_UPGRADES_PER_ADDRESS_DEFAULT = '120/m';
/** Wrong internal API tokens per client address. */
export const INTERNAL_AUTH_FAILURES_PER_ADDRESS_DEFAULT = '10/m';

/** A parsed rate: `points` per `durationMs`. */
export interface Rate {
  points: number;
  durationMs: number;
}

const RATE_PATTERN = /^(\d+)\s*\/\s*(.+)$/;

/** `120/m` → {points: 120, durationMs: 60000}; a bare unit means one of it (`/m` = `/1m`). Null when not a rate. */
export function parseRate(text: string): Rate | null {
  const match = RATE_PATTERN.exec(text.trim());
  if (!match) return null;
  const window = /^(ms|s|m|h|d)$/.test(match[2]!) ? `1${match[2]}` : match[2]!;
  if (!DURATION_PATTERN.test(window)) return null;
  const points = Number(match[1]);
  const durationMs = parseDuration(window)!;
  return points >= 1 && durationMs >= 1000 && durationMs % 1000 === 0 ? { points, durationMs } : null;
}

export function formatRate(rate: Rate): string {
  return `${rate.points}/${formatDuration(rate.durationMs)}`;
}

const RATE_ERROR = 'expected a rate such as "120/m", "30/10m" or "10/s" (a window of whole seconds)';

/** A rate string. */
function rateString(description: string) {
  return z
    .string()
    .transform((text, ctx) => {
      const rate = parseRate(text);
      if (!rate) {
        ctx.addIssue({ code: 'custom', message: RATE_ERROR });
        return z.NEVER;
      }
      return rate;
    })
    .meta({ description, format: 'rate' });
}

/** A rate, or `false` (also "false" or "off", as an env variable gives it) to switch this one limit off (null). */
function limit(description: string, fallback: string) {
  return z
    .union([z.boolean(), z.string()])
    .default(fallback)
    .transform((value, ctx): Rate | null => {
      if (value === false || value === 'false' || value === 'off') return null;
      const rate = typeof value === 'string' ? parseRate(value) : null;
      if (!rate) {
        ctx.addIssue({ code: 'custom', message: `${RATE_ERROR}, or false to switch it off` });
        return z.NEVER;
      }
      return rate;
    })
    .meta({ description: `${description} \`false\` switches it off.`, format: 'rate' });
}

export const limitsSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .meta({ description: 'Enforce the limits below and routes[].rateLimit (false: none, e.g. for load tests).' }),
    login: limit('Login attempts per client address (POST /auth/login, /weapp/login), checked before WeChat is called.', LOGIN_PER_ADDRESS_DEFAULT),
    loginFailures: limit('Login codes WeChat refused, per client address; past it, that address cannot log in until the window ends.', LOGIN_FAILURES_PER_ADDRESS_DEFAULT),
    appLoginFailures: limit(
      'Login codes WeChat refused, per appid from all addresses; past it, nobody logs in to that app until the window ends, so it is kept far above a real peak.',
      LOGIN_FAILURES_PER_APP_DEFAULT,
    ),
    phone: limit('POST /auth/phone per user (WeChat bills each phone-number call).', PHONE_PER_USER_DEFAULT),
    channelUpgrades: limit('Channel WebSocket upgrades per client address.', CHANNEL_UPGRADES_PER_ADDRESS_DEFAULT),
    internalAuthFailures: limit(
      'Requests with a wrong or missing token on listen.internal, per client address; past it, that address is refused even with the right token until the window ends.',
      INTERNAL_AUTH_FAILURES_PER_ADDRESS_DEFAULT,
    ),
  })
  .prefault({})
  .meta({
    description:
      'Request limits (docs/limits.md), per real client address (after trustedProxies), user or app; shared across workers, and across instances with redis. Past a limit: 429 RATE_LIMITED with Retry-After.',
  });

export const routeRateLimitSchema = z
  .strictObject({
    rate: rateString('Requests per window, per user on routes with a session (auth: required or optional), else per client address: "10/s", "600/m".'),
    burst: z
      .number()
      .int()
      .min(0)
      .default(0)
      .meta({ description: 'Requests allowed beyond the rate in a short burst (refilled at the rate), like nginx limit_req burst … nodelay.' }),
  })
  .meta({ description: 'A request limit on this route (as nginx limit_req); off with limits.enabled: false.' });

export type LimitsConfig = z.output<typeof limitsSchema>;
export type RouteRateLimit = z.output<typeof routeRateLimitSchema>;
