/**
 * The console's JSON API under `{admin.path}api/`. Every route but login needs a console
 * session; every write needs its CSRF token and is written to the audit log (who, what, which
 * target, from where) before it answers. Secrets never leave: no access_token, session key,
 * password hash or TOTP secret is in any answer.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/index.js';
import { AppError, type Clock, type Logger } from '../core/index.js';
import { readJsonBody, sendJson, header, Router, type HttpContext } from '../http/index.js';
import type { AdminServices } from './services.js';
import type { ConsoleSessions } from './console-session.js';
import type { LoginDelay } from './login-delay.js';
import type { AdminRecords } from './records.js';
import type { Sampler } from './sampler.js';

/** Admin API bodies are small: 16 KiB (a server message to publish is the largest). */
export const ADMIN_BODY_LIMIT_BYTES = 16 * 1024;
const LIST_LIMIT = 200;
const DAY_MS = 86_400_000;

export interface AdminApiDeps {
  config: Config;
  records: AdminRecords;
  consoleSessions: ConsoleSessions;
  loginDelay: LoginDelay;
  /** Checks name, password and TOTP; true when all are right. */
  authenticate: (name: string, password: string, totp: string | undefined) => Promise<boolean>;
  services: AdminServices;
  sampler: Sampler;
  clock: Clock;
  logger: Logger;
  startedAt: number;
  version: string;
}

const text = (value: unknown, field: string, max: number, required = true): string => {
  if (value === undefined || value === null || value === '') {
    if (required) throw new AppError('BAD_REQUEST', { message: `${field} is required.` });
    return '';
  }
  if (typeof value !== 'string' || value.length > max) throw new AppError('BAD_REQUEST', { message: `${field} must be a string of at most ${max} characters.` });
  return value;
};

/** Writes must be JSON: a cross-site form cannot send that content type without a preflight. */
async function jsonBody(ctx: HttpContext): Promise<Record<string, unknown>> {
  const type = (header(ctx.req, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    ctx.req.resume();
    throw new AppError('UNSUPPORTED_MEDIA_TYPE');
  }
  return readJsonBody(ctx.req, ADMIN_BODY_LIMIT_BYTES);
}

export function createAdminApi(deps: AdminApiDeps): Router {
  const { records, consoleSessions, services, clock, config } = deps;
  const router = new Router();

  /** A read: a live console session. */
  const read = (handler: (ctx: HttpContext) => Promise<unknown>) => async (ctx: HttpContext) => {
    await consoleSessions.check(ctx);
    sendJson(ctx.res, 200, await handler(ctx));
  };
  /** A write: session, CSRF token (checked by the session check), JSON body, then the audit entry. */
  const write = (action: string, handler: (ctx: HttpContext, body: Record<string, unknown>) => Promise<{ target: string; detail?: unknown; answer: unknown }>) =>
    async (ctx: HttpContext) => {
      const session = await consoleSessions.check(ctx);
      const body = await jsonBody(ctx);
      const done = await handler(ctx, body);
      await records.audit({
        id: randomBytes(12).toString('hex'),
        at: clock.now(),
        actor: session.name,
        action,
        target: done.target.slice(0, 255),
        address: ctx.client.ip.slice(0, 64),
        detail: done.detail === undefined ? null : JSON.stringify(done.detail).slice(0, 2000),
      });
      sendJson(ctx.res, 200, done.answer);
    };

  router.add('POST', '/login', async (ctx) => {
    const body = await jsonBody(ctx);
    const name = text(body.name, 'name', 64);
    const password = text(body.password, 'password', 1024);
    const totp = text(body.totp, 'totp', 16, false) || undefined;
    const ok = await deps.loginDelay.run(name, ctx.client.ip, () => deps.authenticate(name, password, totp));
    const at = clock.now();
    await records.audit({ id: randomBytes(12).toString('hex'), at, actor: name.slice(0, 64), action: ok ? 'login' : 'login.failed', target: null, address: ctx.client.ip.slice(0, 64), detail: null });
    if (!ok) throw new AppError('ADMIN_LOGIN_FAILED');
    const csrf = await consoleSessions.open(ctx, name);
    sendJson(ctx.res, 200, { name, csrf });
  });
  router.add('POST', '/logout', async (ctx) => {
    await consoleSessions.check(ctx);
    await consoleSessions.close(ctx);
    sendJson(ctx.res, 200, { ok: true });
  });
  router.add('GET', '/session', async (ctx) => {
    const session = await consoleSessions.check(ctx);
    sendJson(ctx.res, 200, { name: session.name, csrf: session.csrf });
  });

  router.add(
    'GET',
    '/overview',
    read(async () => {
      const now = clock.now();
      const dayStart = now - (now % DAY_MS);
      const counts = await records.sessionCounts(dayStart, now);
      const points = deps.sampler.points().slice(-6); // the last minute
      const seconds = (points.length * (points.length ? 10 : 1)) || 1;
      const requests = points.reduce((sum, p) => sum + p.requests, 0);
      const errors = points.reduce((sum, p) => sum + p.errors, 0);
      return {
        version: deps.version,
        startedAt: deps.startedAt,
        uptimeSeconds: Math.round((now - deps.startedAt) / 1000),
        instances: await services.instances(),
        requestsPerSecond: Math.round((requests / seconds) * 100) / 100,
        errorRate: requests ? Math.round((errors / requests) * 10_000) / 10_000 : 0,
        loginsToday: counts.loginsSince,
        openSessions: counts.open,
        channelConnections: services.channel?.connections() ?? null,
        certificates: services.certificates().map((c) => ({ names: c.names, daysLeft: c.daysLeft })),
      };
    }),
  );
  router.add('GET', '/series', read(async () => ({ everySeconds: 10, points: deps.sampler.points() })));

  // ---- users and sessions ------------------------------------------------------------------
  router.add(
    'GET',
    '/users',
    read(async (ctx) => {
      const q = text(new URLSearchParams(ctx.query).get('q') ?? '', 'q', 128, false);
      return { users: await records.findUsers(q, LIST_LIMIT) };
    }),
  );
  router.add(
    'GET',
    '/users/:appid/:openid/sessions',
    read(async (ctx) => {
      const rows = await records.userSessions(ctx.params.appid ?? '', ctx.params.openid ?? '', LIST_LIMIT);
      const now = clock.now();
      return {
        sessions: rows.map((r) => {
          const idle = config.apps.find((a) => a.appid === r.appid)?.session.idle ?? 0;
          const ended = r.revokedAt !== null ? 'revoked' : now >= Math.min(r.lastSeenAt + idle, r.expiresAt) ? 'expired' : 'active';
          return { ...r, status: ended };
        }),
      };
    }),
  );
  router.add(
    'POST',
    '/sessions/:id/revoke',
    write('session.revoke', async (ctx) => {
      const id = ctx.params.id ?? '';
      if (!/^[0-9a-f]{64}$/.test(id)) throw new AppError('BAD_REQUEST', { message: 'A session id is 64 hex digits.' });
      const revoked = await services.sessions.revokeById(id, 'admin');
      return { target: `session ${id.slice(0, 12)}`, detail: { revoked }, answer: { revoked } };
    }),
  );
  router.add(
    'POST',
    '/users/:appid/:openid/revoke',
    write('user.revoke', async (ctx) => {
      const appid = ctx.params.appid ?? '';
      if (!config.apps.some((a) => a.appid === appid)) throw new AppError('APP_UNKNOWN');
      const openid = ctx.params.openid ?? '';
      const revoked = await services.sessions.revokeUser(appid, openid, 'admin');
      return { target: `user ${appid}/${openid}`, detail: { revoked }, answer: { revoked } };
    }),
  );

  // ---- apps and tokens ---------------------------------------------------------------------
  router.add(
    'GET',
    '/tokens',
    read(async () => {
      const now = clock.now();
      return {
        apps: config.apps.map((app) => {
          const s = services.tokens.status(app.appid);
          return {
            ...s,
            tokenMode: app.tokenMode,
            ageSeconds: s.fetchedAt === null ? null : Math.round((now - s.fetchedAt) / 1000),
            expiresInSeconds: s.expiresAt === null ? null : Math.round((s.expiresAt - now) / 1000),
          };
        }),
      };
    }),
  );
  router.add(
    'POST',
    '/tokens/:appid/refresh',
    write('token.refresh', async (ctx) => {
      const appid = ctx.params.appid ?? '';
      if (!config.apps.some((a) => a.appid === appid)) throw new AppError('APP_UNKNOWN');
      const token = await services.tokens.forceRefresh(appid);
      return { target: `app ${appid}`, answer: { refreshed: true, expiresAt: token.expiresAt } };
    }),
  );

  // ---- channels ----------------------------------------------------------------------------
  const channel = () => {
    if (!services.channel) throw new AppError('NOT_FOUND', { message: 'Channels are off (channel.enabled).' });
    return services.channel;
  };
  router.add('GET', '/channels', read(async () => ({ connections: channel().connections(), rooms: channel().rooms() })));
  router.add('GET', '/channels/:room', read(async (ctx) => channel().room(ctx.params.room ?? '')));
  router.add(
    'POST',
    '/channels/:room/publish',
    write('channel.publish', async (ctx, body) => {
      const room = ctx.params.room ?? '';
      const event = text(body.event, 'event', 64);
      const result = await channel().publish(room, event, body.data ?? null);
      return { target: `room ${room}`, detail: { event }, answer: result };
    }),
  );

  // ---- files -------------------------------------------------------------------------------
  router.add(
    'GET',
    '/files',
    read(async (ctx) => {
      const owner = text(new URLSearchParams(ctx.query).get('owner') ?? '', 'owner', 128, false);
      return { enabled: !!services.files, used: await records.storageUsed(), files: await records.files(owner, LIST_LIMIT) };
    }),
  );
  router.add(
    'POST',
    '/files/:id/delete',
    write('file.delete', async (ctx) => {
      if (!services.files) throw new AppError('NOT_FOUND', { message: 'Files are off (files.enabled).' });
      const id = ctx.params.id ?? '';
      const deleted = await services.files.remove(id);
      if (!deleted) throw new AppError('FILE_NOT_FOUND');
      return { target: `file ${id}`, answer: { deleted } };
    }),
  );

  // ---- push and the outbox -----------------------------------------------------------------
  router.add(
    'GET',
    '/outbox',
    read(async (ctx) => {
      const status = new URLSearchParams(ctx.query).get('status') ?? '';
      if (status && status !== 'pending' && status !== 'delivered' && status !== 'failed') throw new AppError('BAD_REQUEST', { message: 'status is pending, delivered or failed.' });
      const entries = await services.outboxRecent(LIST_LIMIT, (status || undefined) as 'pending' | 'delivered' | 'failed' | undefined);
      return {
        deliveries: entries.map((e) => ({
          id: e.id,
          kind: e.kind,
          appid: e.appid,
          status: e.status,
          attempts: e.attempts,
          createdAt: e.createdAt,
          nextAttemptAt: e.status === 'pending' ? e.nextAttemptAt : null,
          deliveredAt: e.deliveredAt,
          lastError: e.lastError,
        })),
      };
    }),
  );
  router.add(
    'POST',
    '/outbox/:id/retry',
    write('outbox.retry', async (ctx) => {
      const id = ctx.params.id ?? '';
      const retried = await services.outboxRetry(id);
      if (!retried) throw new AppError('NOT_FOUND', { message: 'No delivery with that id waits or failed (it may be delivered).' });
      return { target: `delivery ${id}`, answer: { retried } };
    }),
  );

  // ---- certificates and domains ------------------------------------------------------------
  router.add('GET', '/certificates', read(async () => ({ certificates: services.certificates(), acme: services.acme(), check: services.lastCheck() })));
  router.add(
    'POST',
    '/check',
    write('check.run', async () => {
      const report = await services.runCheck();
      return { target: 'domains', detail: { exitCode: report?.report.exitCode ?? null }, answer: report };
    }),
  );

  router.add('GET', '/audit', read(async () => ({ entries: await records.auditRecent(LIST_LIMIT) })));
  return router;
}
