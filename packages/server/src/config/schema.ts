/**
 * The one schema of `minigate.yaml`: the source of the config's types, defaults and reference
 * doc (`docs/configuration.md` is generated from it by `npm run docs:config`).
 *
 * Conventions: every object is strict (unknown keys are errors); durations are strings with a
 * unit (`30s`, `15m`, `7d`) and come out as milliseconds; fields marked `secret` may instead be
 * given as `<name>File: path` and never appear in logs.
 */
import { z } from 'zod';
import { DURATION_PATTERN, formatDuration, parseDuration } from './duration.js';
import { parseListenAddress } from './listen.js';

export const SESSION_IDLE_DEFAULT = '7d';
export const SESSION_ABSOLUTE_DEFAULT = '30d';
export const SESSION_MAX_PER_USER_DEFAULT = 10;
export const WECHAT_TIMEOUT_DEFAULT = '5s';
export const WECHAT_API_BASE_DEFAULT = 'https://api.weixin.qq.com';

/** A duration string (`30s`, `15m`, `7d`) that parses to milliseconds. */
function duration(description: string, min?: string) {
  const minMs = min === undefined ? 1 : parseDuration(min)!;
  return z
    .string()
    .regex(DURATION_PATTERN, { error: 'expected a duration such as "30s", "15m" or "7d"' })
    .transform((text) => parseDuration(text)!)
    .refine((ms) => ms >= minMs, { error: `must be at least ${formatDuration(minMs)}` })
    .meta({ description, format: 'duration' });
}

/** A listen address (`8080`, `127.0.0.1:8080`, `[::1]:8443`) that parses to `{host, port}`. */
function listenAddress(description: string) {
  return z
    .union([z.string(), z.number().int()])
    .transform((value, ctx) => {
      const address = parseListenAddress(value);
      if (!address) {
        ctx.addIssue({
          code: 'custom',
          message: 'expected a port or host:port such as "8080", "127.0.0.1:8080" or "[::1]:8080"',
        });
        return z.NEVER;
      }
      return address;
    })
    .meta({ description, format: 'listen-address' });
}

function secret(description: string) {
  return z.string().min(1, { error: 'must not be empty' }).meta({ description, secret: true });
}

const STORE_URL = /^(sqlite:.+|mysql:\/\/.+|mariadb:\/\/.+|postgres(ql)?:\/\/.+)$/;

export const sessionSchema = z
  .strictObject({
    idle: duration('A session unused for this long ends.', '1m').prefault(SESSION_IDLE_DEFAULT),
    absolute: duration('A session ends this long after login, however much it is used.', '1m').prefault(
      SESSION_ABSOLUTE_DEFAULT,
    ),
    maxPerUser: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(SESSION_MAX_PER_USER_DEFAULT)
      .meta({ description: 'Sessions one user may hold at once; a new login ends the oldest beyond this.' }),
  })
  // Durations that failed to parse are not numbers; their own issue is reported instead.
  .refine((s) => typeof s.idle !== 'number' || typeof s.absolute !== 'number' || s.absolute >= s.idle, {
    error: 'absolute must be at least as long as idle',
    path: ['absolute'],
  })
  .meta({ description: 'Session lifetimes for this app.' });

export const appSchema = z
  .strictObject({
    appid: z
      .string()
      .regex(/^wx[0-9a-zA-Z]{16}$/, { error: 'expected an AppID: "wx" and 16 letters or digits' })
      .meta({ description: 'The mini program AppID (开发管理 → 开发设置).' }),
    secret: secret('The AppSecret. Never logged, never sent to a client.'),
    session: sessionSchema.prefault({}),
  })
  .meta({ description: 'One mini program this server logs users into.' });

export const configSchema = z
  .strictObject({
    dataDir: z
      .string()
      .min(1)
      .default('./.minigate')
      .meta({
        description:
          'Directory for the SQLite database, the secret key and other local state. Relative paths are resolved against the config file.',
      }),
    listen: z
      .strictObject({
        http: listenAddress('Plain HTTP listener.').prefault('127.0.0.1:8080'),
      })
      .prefault({})
      .meta({ description: 'Where minigate listens.' }),
    wechat: z
      .strictObject({
        apiBase: z
          .url({ protocol: /^https?$/, error: 'expected an http(s) URL' })
          .default(WECHAT_API_BASE_DEFAULT)
          .meta({ description: "WeChat's server API; point it at `minigate sandbox` for offline work." }),
        timeout: duration('Time limit for one call to WeChat.', '100ms').prefault(WECHAT_TIMEOUT_DEFAULT),
      })
      .prefault({})
      .meta({ description: "How minigate calls WeChat's server API." }),
    apps: z
      .array(appSchema)
      .min(1, { error: 'configure at least one app' })
      .refine((apps) => new Set(apps.map((a) => a.appid)).size === apps.length, {
        error: 'each appid may appear only once',
      })
      .meta({ description: 'The mini programs this server serves.' }),
    store: z
      .string()
      .regex(STORE_URL, {
        error: 'expected sqlite:PATH, mysql://user:pass@host:port/db or postgres://user:pass@host:port/db',
      })
      .optional()
      .meta({
        description: 'Database URL. Default: `sqlite:<dataDir>/minigate.db`.',
        secret: true,
      }),
    redis: z
      .string()
      .regex(/^rediss?:\/\/.+/, { error: 'expected redis://host:port or rediss://…' })
      .optional()
      .meta({
        description: 'Redis URL, for several instances sharing state (channel bus, token locks; read by those features).',
        secret: true,
      }),
    secretKey: z
      .string()
      .regex(/^([0-9a-fA-F]{64}|[A-Za-z0-9+/_-]{43}=?)$/, {
        error: 'expected 32 bytes as 64 hex digits or base64',
      })
      .optional()
      .meta({
        description:
          'Key that encrypts session_key at rest. Default: generated once into `<dataDir>/secret.key`. Every instance sharing a database needs the same key.',
        secret: true,
      }),
    log: z
      .strictObject({
        level: z
          .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
          .default('info')
          .meta({ description: 'Least severe level written.' }),
      })
      .prefault({})
      .meta({ description: 'Logging (JSON lines on stderr).' }),
  })
  .meta({ description: 'minigate.yaml' });

/** The config as written (before defaults and parsing). */
export type ConfigInput = z.input<typeof configSchema>;
/** The config after parsing: durations in ms, defaults filled. */
export type ParsedConfig = z.output<typeof configSchema>;
export type AppConfig = ParsedConfig['apps'][number];
