/**
 * Schemas of the console's JSON API (`{admin.path}api/…`, docs/admin.md): request schemas
 * validate (admin/api.ts), response schemas describe; both go into the internal OpenAPI document.
 * Reads need the console cookie; writes need the cookie and the session's CSRF token.
 */
import { z } from 'zod';
import type { Operation, ResponseDoc } from '../http/index.js';

const tags = ['admin'];
const short = (max: number) => z.string().max(max, `at most ${max} characters`);

// ---- requests ------------------------------------------------------------------------------
export const LoginRequest = z.object({
  name: z.string({ error: 'required: the admin name' }).min(1, 'required: the admin name').max(64, 'at most 64 characters'),
  password: z.string({ error: 'required' }).min(1, 'required').max(1024, 'at most 1024 characters'),
  totp: short(16).optional().meta({ description: 'The TOTP code, for an admin added with --totp.' }),
});
/** A write without fields still sends `{}` (JSON, so a cross-site form cannot make it). */
export const EmptyRequest = z.object({}).meta({ description: 'An empty JSON object.' });
export const PublishRequest = z.object({
  event: z.string({ error: 'required: 1 to 64 characters' }).min(1, 'required: 1 to 64 characters').max(64, 'at most 64 characters'),
  data: z.unknown().optional().meta({ description: 'Any JSON; null when absent.' }),
});

export const SessionIdParams = z.object({ id: z.string().regex(/^[0-9a-f]{64}$/, 'a session id is 64 hex digits') });
export const UserParams = z.object({ appid: short(64), openid: short(128) });
export const AppParams = z.object({ appid: short(64) });
export const RoomParams = z.object({ room: short(200) });
export const IdParams = z.object({ id: short(128) });
export const UsersQuery = z.object({ q: short(128).optional().meta({ description: 'Part of an openid or unionid; empty lists the latest users.' }) });
export const FilesQuery = z.object({ owner: short(128).optional().meta({ description: "The owner's openid; empty lists every file." }) });
export const OutboxQuery = z.object({ status: z.enum(['pending', 'delivered', 'failed']).optional() });

// ---- answers -------------------------------------------------------------------------------
const ms = z.number().meta({ description: 'Epoch milliseconds.' });
const Csrf = z.object({ name: z.string(), csrf: z.string().meta({ description: 'Send it as X-CSRF-Token on every write.' }) });
const Instance = z.object({ id: z.string(), host: z.string(), pid: z.number(), startedAt: ms, self: z.boolean() });
const Traffic = z.enum(['off', 'process', 'worker']).meta({
  description: "Where the charts' numbers come from: off (metrics.enabled is false), process (this process), worker (this worker of a `workers` group; GET /metrics has the group's sums).",
});
const Overview = z.object({
  version: z.string(),
  startedAt: ms,
  uptimeSeconds: z.number(),
  instances: z.array(Instance),
  metrics: Traffic,
  requestsPerSecond: z.number().nullable().meta({ description: 'Over the last minute; null with metrics off.' }),
  errorRate: z.number().nullable().meta({ description: '5xx answers over all answers in the last minute; null with metrics off.' }),
  loginsToday: z.number(),
  openSessions: z.number(),
  channelConnections: z.number().nullable(),
  relay: z
    .object({ online: z.array(z.string()), streams: z.number() })
    .nullable()
    .meta({ description: 'The relay (dev tunnel): names with a client connected to the process that answered (with workers: that worker), and streams in flight; null when relay is off.' }),
  certificates: z.array(z.object({ names: z.array(z.string()), daysLeft: z.number() })),
});
const Series = z.object({
  everySeconds: z.number(),
  metrics: Traffic,
  points: z.array(z.object({ at: ms, requests: z.number(), errors: z.number().meta({ description: '5xx answers.' }), logins: z.number().meta({ description: 'Successful logins.' }) })),
});
const User = z.object({ appid: z.string(), openid: z.string(), unionid: z.string().nullable(), firstSeenAt: ms, lastSeenAt: ms });
const UserSession = z.object({
  id: z.string(),
  appid: z.string(),
  openid: z.string(),
  createdAt: ms,
  lastSeenAt: ms,
  expiresAt: ms,
  revokedAt: ms.nullable(),
  revokedReason: z.string().nullable(),
  clientAddress: z.string().nullable(),
  userAgent: z.string().nullable(),
  status: z.enum(['active', 'expired', 'revoked']),
});
const TokenState = z.object({
  appid: z.string(),
  tokenMode: z.string(),
  fetchedAt: ms.nullable(),
  expiresAt: ms.nullable(),
  ageSeconds: z.number().nullable(),
  expiresInSeconds: z.number().nullable(),
  refreshes: z.number(),
  forcedRefreshes: z.number(),
  lastError: z.object({ at: ms, code: z.string(), message: z.string() }).nullable(),
});
const File = z.object({ id: z.string(), appid: z.string(), openid: z.string(), name: z.string(), contentType: z.string(), size: z.number(), access: z.string(), createdAt: ms });
const Delivery = z.object({
  id: z.string(),
  kind: z.string(),
  appid: z.string().nullable(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number(),
  createdAt: ms,
  nextAttemptAt: ms.nullable(),
  deliveredAt: ms.nullable(),
  lastError: z.string().nullable(),
});
const CheckRun = z.object({ at: ms, report: z.looseObject({}).meta({ description: 'The `minigate check --json` report.' }) }).nullable();
const AuditEntry = z.object({ id: z.string(), at: ms, actor: z.string(), action: z.string(), target: z.string().nullable(), address: z.string().nullable(), detail: z.string().nullable() });

// ---- operations ----------------------------------------------------------------------------
const denied = { 401: { description: 'No live console session (ADMIN_AUTH_REQUIRED).' } } satisfies Record<number, ResponseDoc>;
const writeErrors = {
  ...denied,
  403: { description: 'X-CSRF-Token missing or wrong (ADMIN_CSRF).' },
  415: { description: 'The body is not application/json (UNSUPPORTED_MEDIA_TYPE).' },
} satisfies Record<number, ResponseDoc>;
const ok = (description: string, schema: z.ZodType): ResponseDoc => ({ description, schema });
/** A read: the console cookie. */
const read = (summary: string, schema: z.ZodType, more: Partial<Operation> = {}): Operation => ({
  summary,
  tags,
  security: 'adminCookie',
  ...more,
  responses: { 200: ok('The answer.', schema), ...denied, ...more.responses },
});
/** A write: the cookie, X-CSRF-Token and a JSON body; audited before it answers. */
const write = <B extends z.ZodType = typeof EmptyRequest>(summary: string, schema: z.ZodType, more: Partial<Operation> & { body?: B } = {}): Operation & { body: B } => ({
  summary: `${summary} Audited.`,
  tags,
  security: 'adminCsrf',
  ...more,
  body: (more.body ?? EmptyRequest) as B,
  responses: { 200: ok('Done.', schema), ...writeErrors, ...more.responses },
});
const notFound = (what: string) => ({ 404: { description: what } });

export const operations = {
  login: {
    summary: 'Logs an admin in: sets the HttpOnly session cookie and answers the CSRF token. Failures slow down per name and address. Audited.',
    tags,
    security: 'none',
    body: LoginRequest,
    responses: {
      200: ok('Logged in (Set-Cookie: minigate_admin=…).', Csrf),
      400: { description: 'A field is missing or too long (BAD_REQUEST).' },
      401: { description: 'Wrong name, password or TOTP code (ADMIN_LOGIN_FAILED).' },
      415: { description: 'The body is not application/json (UNSUPPORTED_MEDIA_TYPE).' },
    },
  },
  logout: write('Ends the console session and clears its cookie.', z.object({ ok: z.literal(true) })),
  session: read('The current console session: its admin and CSRF token (the page asks after a reload).', Csrf),
  overview: read('Version, uptime, instances, traffic of the last minute, logins today, open sessions, channel connections, relay names online, certificates.', Overview),
  series: read('The last hour of requests, 5xx errors and logins, in 10-second steps, from the metrics.', Series),
  users: read('Users by part of an openid or unionid (at most 200).', z.object({ users: z.array(User) }), { query: UsersQuery }),
  userSessions: read("A user's sessions, newest first, with client address and user agent where recorded.", z.object({ sessions: z.array(UserSession) }), { params: UserParams }),
  revokeSession: write('Revokes one session on every instance (its sockets close with 4001).', z.object({ revoked: z.boolean() }), {
    params: SessionIdParams,
    responses: { 400: { description: 'Not a session id (BAD_REQUEST).' } },
  }),
  revokeUser: write("Revokes all of a user's sessions on every instance.", z.object({ revoked: z.number() }), {
    params: UserParams,
    responses: notFound('No such app (APP_UNKNOWN).'),
  }),
  tokens: read("Per app the access_token's age and expiry (never the token), refreshes and the last error.", z.object({ apps: z.array(TokenState) })),
  refreshToken: write('Forces an access_token refresh for an app.', z.object({ refreshed: z.literal(true), expiresAt: ms }), {
    params: AppParams,
    responses: notFound('No such app (APP_UNKNOWN).'),
  }),
  channels: read('Channel connections on this instance and the rooms.', z.object({ connections: z.number(), rooms: z.array(z.object({ room: z.string(), users: z.number() })) }), {
    responses: notFound('Channels are off (NOT_FOUND).'),
  }),
  room: read("A room's members and recent history.", z.looseObject({ room: z.string(), members: z.array(z.string()), history: z.array(z.unknown()) }), {
    params: RoomParams,
    responses: notFound('Channels are off (NOT_FOUND).'),
  }),
  publish: write('Publishes a server message into a room.', z.looseObject({}), {
    params: RoomParams,
    body: PublishRequest,
    responses: { 400: { description: 'event missing or invalid, or the room name invalid (BAD_REQUEST).' }, ...notFound('Channels are off (NOT_FOUND).') },
  }),
  files: read('Storage used and files, by owner (at most 200).', z.object({ enabled: z.boolean(), used: z.object({ files: z.number(), bytes: z.number() }), files: z.array(File) }), { query: FilesQuery }),
  deleteFile: write('Deletes a file.', z.object({ deleted: z.literal(true) }), { params: IdParams, responses: notFound('No such file (FILE_NOT_FOUND), or files are off.') }),
  outbox: read('Recent deliveries of the outbox (push and other events), with the last error.', z.object({ deliveries: z.array(Delivery) }), {
    query: OutboxQuery,
    responses: { 400: { description: 'status is not pending, delivered or failed (BAD_REQUEST).' } },
  }),
  retry: write('Retries a failed or waiting delivery now.', z.object({ retried: z.literal(true) }), { params: IdParams, responses: notFound('No delivery with that id waits or failed (NOT_FOUND).') }),
  certificates: read('Certificates, the ACME state and the last check.', z.object({ certificates: z.array(z.looseObject({})), acme: z.looseObject({}), check: CheckRun })),
  check: write('Runs `minigate check` now.', CheckRun),
  audit: read('The audit log, newest first (at most 200).', z.object({ entries: z.array(AuditEntry) })),
} satisfies Record<string, Operation>;
