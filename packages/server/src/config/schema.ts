/**
 * The one schema of `minigate.yaml`: the source of the config's types, defaults and reference
 * doc (`docs/configuration.md` is generated from it by `npm run docs:config`).
 *
 * Conventions: every object is strict (unknown keys are errors); durations are strings with a
 * unit (`30s`, `15m`, `7d`) and come out as milliseconds; fields marked `secret` may instead be
 * given as `<name>File: path` and never appear in logs.
 */
import { networkInterfaces } from 'node:os';
import { z } from 'zod';
import { channelSchema } from './schema-channel.js';
import { appFilesSchema, filesSchema } from './schema-files.js';
import { limitsSchema } from './schema-limits.js';
import { ROOM_NAME } from 'minigate-protocol';
import { roomCovered } from './room-match.js';
import { routeSchema, tlsSchema, type RouteConfig } from './schema-edge.js';
import { relaySchema } from './schema-relay.js';
import { duration, filePath, listenAddress, secret } from './schema-types.js';
import { adminSchema } from './schema-admin.js';
import { paySchema } from './schema-pay.js';
import { internalListenProblem, isWildcard, listenExposure } from '../core/index.js';
import { isIP } from 'node:net';

export const SESSION_IDLE_DEFAULT = '7d';
export const SESSION_ABSOLUTE_DEFAULT = '30d';
export const SESSION_MAX_PER_USER_DEFAULT = 10;
export const WECHAT_TIMEOUT_DEFAULT = '5s';
export const WECHAT_API_BASE_DEFAULT = 'https://api.weixin.qq.com';
/** compose and systemd start the database beside minigate: a minute covers a cold MariaDB. */
export const STORE_TIMEOUT_DEFAULT = '60s';
/** listen.http when listen.https is not set. */
export const LISTEN_HTTP_DEFAULT = { host: '127.0.0.1', port: 8080 } as const;

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
    tokenMode: z
      .enum(['stable', 'classic'])
      .default('stable')
      .meta({
        description:
          'How the access_token is fetched: stable (getStableAccessToken, normal mode: safe however many fetch) or classic (cgi-bin/token: each fetch invalidates the previous token after 5 minutes).',
      }),
    files: appFilesSchema.optional(),
    push: z
      .strictObject({
        token: secret('The Token of 消息推送配置 (signs pushes).'),
        encodingAESKey: z
          .string()
          .regex(/^[A-Za-z0-9]{43}$/, { error: 'expected the 43-character EncodingAESKey' })
          .optional()
          .meta({ description: 'The EncodingAESKey, for compatible and safe mode.', secret: true }),
        webhook: z
          .url({ protocol: /^https?$/ })
          .optional()
          .meta({ description: 'Where each push is delivered (POST JSON, signed with upstreamSecret, retried with back-off).' }),
        room: z
          .string()
          .regex(/^[A-Za-z0-9_\-:.@{}]{1,200}$/, { error: 'a channel room name; {openid} stands for the user the push is about' })
          .optional()
          .meta({
            description:
              'A channel room each push is also published to, as event push.<Event or MsgType> (best effort, at once). `user:{openid}` sends it to the user it is about (FromUserName); a room like `ops:push` needs a channel.rooms rule.',
          }),
      })
      .optional()
      .meta({ description: 'Message push (WeChat → /wechat/push/<appid>).' }),
  })
  .meta({ description: 'One mini program this server logs users into.' });

/**
 * The key that switches a built-in service off, when it is off (auth, wafer and push are always
 * served). server.ts creates channel and files only when their section is enabled, so a route
 * mounting one that is off would have nothing to serve.
 */
function disabledBy(config: { channel: { enabled: boolean }; files: { enabled: boolean }; pay?: unknown }, service: NonNullable<RouteConfig['service']>): string | undefined {
  if (service === 'pay' && !config.pay) return 'pay (configure pay.merchants)';
  if (service === 'channel' && !config.channel.enabled) return 'channel.enabled';
  if (service === 'files' && !config.files.enabled) return 'files.enabled';
  return undefined;
}

export const configSchema = z
  .strictObject({
    dataDir: z
      .string()
      .min(1)
      .default('./.minigate')
      .meta({
        description:
          'Directory for the SQLite database, the secret key and other local state. Relative paths are resolved against the config file. Created 0700, and the database (with its -wal and -shm) and keys in it 0600; an existing database or key file other users can read is named at start with the chmod that fixes it.',
      }),
    listen: z
      .strictObject({
        http: listenAddress(
          'Plain HTTP. With listen.https: ACME and CA file-validation paths, everything else redirected (308) to HTTPS; not bound unless given (tls.acme needs it). Without listen.https: serves all routes (behind a TLS-terminating load balancer); default 127.0.0.1:8080.',
        ).optional(),
        https: listenAddress('HTTPS (and WSS) with the certificates of `tls`.').optional(),
        internal: listenAddress(
          'The internal API for business services, on loopback or a private address. A public address, or 0.0.0.0 / :: on a host with a public interface, needs internal.allowPublic.',
        ).optional(),
        httpRedirect: z
          .boolean()
          .default(true)
          .meta({ description: 'With listen.https: redirect plain HTTP to HTTPS (false serves it too, as minigate dev does for local tools).' }),
        publicHttpsPort: z
          .number()
          .int()
          .min(1)
          .max(65535)
          .optional()
          .meta({
            description:
              'The port clients reach HTTPS on when it differs from the port of listen.https (a container or NAT mapping 443 to 8443): the HTTP→HTTPS redirect points there. Default: the port listen.https binds.',
          }),
      })
      // Plain HTTP is bound by default only when it is the one listener: beside HTTPS a port
      // nobody asked for would be a surprise (and a second way in).
      .transform((listen) => ({ ...listen, http: listen.http ?? (listen.https ? undefined : LISTEN_HTTP_DEFAULT) }))
      .prefault({})
      .meta({ description: 'Where minigate listens.' }),
    tls: tlsSchema,
    routes: z
      .array(routeSchema)
      .default([])
      .meta({
        description:
          'Paths served besides the built-in ones (/auth, /weapp, /healthz, /readyz), matched by longest prefix. A route with `service:` moves a built-in service to its path.',
      }),
    channel: channelSchema,
    files: filesSchema.prefault({}),
    relay: relaySchema,
    admin: adminSchema,
    pay: paySchema.optional(),
    limits: limitsSchema,
    trustedProxies: z
      .array(z.string().regex(/^[0-9a-fA-F:.]+(\/\d{1,3})?$/, { error: 'expected an IP address or CIDR such as 10.0.0.0/8' }))
      .default([])
      .meta({ description: 'Load balancers whose X-Forwarded-For / X-Forwarded-Proto are believed.' }),
    upstreamSecret: secret('Shared secret of the X-Minigate-Signature on identity headers sent to upstreams.').optional(),
    internal: z
      .strictObject({
        token: secret('Bearer token business services send to listen.internal (at least 32 characters).').refine((t) => t.length >= 32, {
          error: 'must be at least 32 characters (e.g. openssl rand -hex 32)',
        }),
        allowPublic: z
          .boolean()
          .default(false)
          .meta({
            description:
              'Let listen.internal bind a public address (or every interface of a host that has a public one): only behind a firewall that keeps outsiders off it.',
          }),
      })
      .optional()
      .meta({ description: 'The internal API (access_token, WeChat API gateway) on listen.internal.' }),
    pkiValidationDir: filePath('Files served at /.well-known/pki-validation/ (CA domain validation).').optional(),
    workers: z
      .union([z.number().int().min(1).max(256), z.literal('auto')])
      .default(1)
      .meta({ description: 'Processes sharing the listeners: a number, or auto for one per core.' }),
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
        description: 'Database URL. Default: `sqlite:<dataDir>/minigate.db`. A relative `sqlite:` path is resolved against the config file, like every path in it.',
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
    startup: z
      .strictObject({
        storeTimeout: duration(
          'How long start waits for a database that is not up yet (retrying with back-off, /readyz answering 503 meanwhile) before it gives up and exits 1. 0s: give up at the first failure.',
          '0s',
        ).prefault(STORE_TIMEOUT_DEFAULT),
      })
      .prefault({})
      .meta({ description: 'How start-up waits for what it needs.' }),
    log: z
      .strictObject({
        level: z
          .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
          .default('info')
          .meta({ description: 'Least severe level written.' }),
        format: z
          .enum(['json', 'pretty'])
          .optional()
          .meta({ description: 'json: one JSON object per line (for collectors); pretty: one readable line per event. Default: json, pretty under `minigate dev`.' }),
        access: z
          .enum(['all', 'errors', 'off'])
          .default('all')
          .meta({ description: 'Access lines: every request, only answers with status 400 or above, or none (busy sites).' }),
        accessSample: z
          .number()
          .gt(0)
          .max(1)
          .default(1)
          .meta({ description: 'Share of successful requests given an access line (0.1: one in ten); error answers are always logged.' }),
      })
      .prefault({})
      .meta({ description: 'Logging (on stderr).' }),
    metrics: z
      .strictObject({
        enabled: z.boolean().default(true).meta({ description: 'Serve GET /metrics (Prometheus text) on listen.internal.' }),
        token: secret('A bearer token for /metrics only (a scraper then needs no internal.token); internal.token is accepted too.')
          .refine((t) => t.length >= 32, { error: 'must be at least 32 characters (e.g. openssl rand -hex 32)' })
          .optional(),
      })
      .prefault({})
      .meta({ description: 'Prometheus metrics (docs/metrics.md).' }),
  })
  .superRefine((config, ctx) => {
    const tls = config.tls;
    if (config.listen.https && !tls.certificates.length && !tls.acme && !tls.devCa) {
      ctx.addIssue({ code: 'custom', path: ['listen', 'https'], message: 'needs tls.certificates, tls.acme or tls.devCa' });
    }
    if (config.listen.https && tls.acme && !config.listen.http) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message: 'tls.acme proves the domains with HTTP-01 on port 80: set listen.http (e.g. "0.0.0.0:80"), which also redirects plain HTTP to HTTPS',
      });
    }
    if (config.listen.publicHttpsPort !== undefined && !config.listen.https) {
      ctx.addIssue({ code: 'custom', path: ['listen', 'publicHttpsPort'], message: 'needs listen.https (it is the public port of that listener)' });
    }
    const seen = new Set<string>();
    if (config.listen.internal && !config.internal) {
      ctx.addIssue({ code: 'custom', path: ['internal'], message: 'listen.internal needs internal.token (business services authenticate with it)' });
    }
    // Addresses only; a host name is looked up and checked at start.
    const internalHost = config.listen.internal?.host;
    if (internalHost && (isIP(internalHost) || isWildcard(internalHost))) {
      const problem = internalListenProblem(internalHost, listenExposure(internalHost, networkInterfaces()), config.internal?.allowPublic ?? false);
      if (problem) ctx.addIssue({ code: 'custom', path: ['listen', 'internal'], message: problem });
    }
    config.apps.forEach((app, i) => {
      if (app.push?.webhook && !config.upstreamSecret) {
        ctx.addIssue({ code: 'custom', path: ['apps', i, 'push', 'webhook'], message: 'push deliveries are signed with upstreamSecret; set it' });
      }
      const room = app.push?.room;
      if (room !== undefined) {
        const sample = room.replaceAll('{openid}', 'o_sample_openid');
        const path = ['apps', i, 'push', 'room'];
        if (!config.channel.enabled) ctx.addIssue({ code: 'custom', path, message: 'pushes go to a room only with channel.enabled' });
        else if (!ROOM_NAME.test(sample)) ctx.addIssue({ code: 'custom', path, message: 'not a room name: 1 to 200 letters, digits or _ - : . @ ({openid} allowed)' });
        else if (!roomCovered(config.channel.rooms, config.channel.wafer.room, sample)) {
          ctx.addIssue({ code: 'custom', path, message: `no channel.rooms rule covers ${room}, so nobody could join it; add one (e.g. match: ${JSON.stringify(room.split(':')[0] + ':*')}, publish: server) or use user:{openid}` });
        }
      }
    });
    if (config.relay && !config.listen.https) {
      ctx.addIssue({ code: 'custom', path: ['relay'], message: 'relay clients dial the HTTPS listener; set listen.https' });
    }
    const appids = new Set(config.apps.map((a) => a.appid));
    config.pay?.merchants.forEach((m, i) => {
      m.appids.forEach((appid, j) => {
        if (!appids.has(appid)) ctx.addIssue({ code: 'custom', path: ['pay', 'merchants', i, 'appids', j], message: `${appid} is not one of apps[].appid` });
      });
      if (m.webhook && !config.upstreamSecret) ctx.addIssue({ code: 'custom', path: ['pay', 'merchants', i, 'webhook'], message: 'payment events are signed with upstreamSecret; set it' });
    });
    if (config.pay && !config.listen.internal) ctx.addIssue({ code: 'custom', path: ['pay'], message: 'orders are made on the internal API: set listen.internal (and internal.token)' });
    if (config.channel.webhook && !config.upstreamSecret) {
      ctx.addIssue({ code: 'custom', path: ['channel', 'webhook'], message: 'channel webhooks are signed with upstreamSecret; set it' });
    }
    config.channel.rooms.forEach((rule, i) => {
      if (rule.join === 'ask' && !config.channel.webhook) {
        ctx.addIssue({ code: 'custom', path: ['channel', 'rooms', i, 'join'], message: 'join: ask needs channel.webhook (it decides)' });
      }
    });
    config.routes.forEach((route, i) => {
      const key = `${route.host ?? '*'} ${route.path.replace(/\/+$/, '') || '/'}`;
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['routes', i, 'path'], message: 'another route has the same host and path' });
      seen.add(key);
      const off = route.service && disabledBy(config, route.service);
      if (off) {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'service'], message: `the ${route.service} service is not enabled (set ${off}: true)` });
      }
      if (route.tunnel && !config.relay) {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'tunnel'], message: 'tunnel routes need the relay turned on (add `relay: {}`)' });
      }
      if ((route.proxy || route.tunnel) && route.auth !== 'none' && !config.upstreamSecret) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'auth'],
          message: 'identity headers to an upstream need upstreamSecret (to sign them)',
        });
      }
    });
  })
  .meta({ description: 'minigate.yaml' });

/** The config as written (before defaults and parsing). */
export type ConfigInput = z.input<typeof configSchema>;
/** The config after parsing: durations in ms, defaults filled. */
export type ParsedConfig = z.output<typeof configSchema>;
export type AppConfig = ParsedConfig['apps'][number];
