/**
 * The console's JSON API under `{admin.path}api/`. Every route but login needs a console
 * session; every write needs its CSRF token and is written to the audit log (who, what, which
 * target, from where) before it answers. Secrets never leave: no access_token, session key,
 * password hash or TOTP secret is in any answer.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/index.js';
import { AppError, type Clock, type Logger } from '../core/index.js';
import { header, parseWith, readBodyAs, sendJson, Router, type HttpContext, type Operation } from '../http/index.js';
import type { z } from 'zod';
import type { AdminServices } from './services.js';
import type { ConsoleSessions } from './console-session.js';
import type { LoginDelay } from './login-delay.js';
import type { AdminRecords } from './records.js';
import { SAMPLE_EVERY_MS, type Sampler, type TrafficSource } from './sampler.js';
import * as S from './schemas.js';

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
  /** Where the charts' numbers come from ('off' with metrics.enabled false). */
  traffic: TrafficSource;
  clock: Clock;
  logger: Logger;
  startedAt: number;
  version: string;
}

/** Writes must be JSON: a cross-site form cannot send that content type without a preflight. */
async function jsonBody<B extends z.ZodType>(ctx: HttpContext, schema: B): Promise<z.infer<B>> {
  const type = (header(ctx.req, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    ctx.req.resume();
    throw new AppError('UNSUPPORTED_MEDIA_TYPE');
  }
  return readBodyAs(ctx, schema, ADMIN_BODY_LIMIT_BYTES);
}

/** The query string as an object for parseWith: the last of repeated names; an empty value is none (`?status=`). */
const queryOf = (ctx: HttpContext) => Object.fromEntries([...new URLSearchParams(ctx.query)].filter(([, value]) => value !== ''));

export function createAdminApi(deps: AdminApiDeps): Router {
  const { records, consoleSessions, services, clock, config } = deps;
  const router = new Router();

  /** A read: a live console session. */
  const read = (path: string, operation: Operation, handler: (ctx: HttpContext) => Promise<unknown>) =>
    router.route('GET', path, operation, async (ctx) => {
      await consoleSessions.check(ctx);
      sendJson(ctx.res, 200, await handler(ctx));
    });
  /** A write: session, CSRF token (checked by the session check), JSON body by the operation's schema, then the audit entry. */
  const write = <B extends z.ZodType>(
    path: string,
    operation: Operation & { body: B },
    action: string,
    handler: (ctx: HttpContext, body: z.infer<B>) => Promise<{ target: string; detail?: unknown; answer: unknown }>,
  ) =>
    router.route('POST', path, operation, async (ctx) => {
      const session = await consoleSessions.check(ctx);
      const body = await jsonBody(ctx, operation.body);
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
    });

  router.route('POST', '/login', S.operations.login, async (ctx) => {
    const { name, password, totp: code } = await jsonBody(ctx, S.LoginRequest);
    const totp = code || undefined;
    const ok = await deps.loginDelay.run(name, ctx.client.ip, () => deps.authenticate(name, password, totp));
    const at = clock.now();
    await records.audit({ id: randomBytes(12).toString('hex'), at, actor: name.slice(0, 64), action: ok ? 'login' : 'login.failed', target: null, address: ctx.client.ip.slice(0, 64), detail: null });
    if (!ok) throw new AppError('ADMIN_LOGIN_FAILED');
    const csrf = await consoleSessions.open(ctx, name);
    sendJson(ctx.res, 200, { name, csrf });
  });
  router.route('POST', '/logout', S.operations.logout, async (ctx) => {
    await consoleSessions.check(ctx);
    await jsonBody(ctx, S.EmptyRequest);
    await consoleSessions.close(ctx);
    sendJson(ctx.res, 200, { ok: true });
  });
  router.route('GET', '/session', S.operations.session, async (ctx) => {
    const session = await consoleSessions.check(ctx);
    sendJson(ctx.res, 200, { name: session.name, csrf: session.csrf });
  });

  read('/overview', S.operations.overview, async () => {
      const now = clock.now();
      const dayStart = now - (now % DAY_MS);
      const counts = await records.sessionCounts(dayStart, now);
      const points = deps.sampler.points().slice(-6); // the last minute
      const seconds = (points.length * (points.length ? 10 : 1)) || 1;
      const requests = points.reduce((sum, p) => sum + p.requests, 0);
      const errors = points.reduce((sum, p) => sum + p.errors, 0);
      const off = deps.traffic === 'off';
      return {
        version: deps.version,
        startedAt: deps.startedAt,
        uptimeSeconds: Math.round((now - deps.startedAt) / 1000),
        instances: await services.instances(),
        metrics: deps.traffic,
        requestsPerSecond: off ? null : Math.round((requests / seconds) * 100) / 100,
        errorRate: off ? null : requests ? Math.round((errors / requests) * 10_000) / 10_000 : 0,
        loginsToday: counts.loginsSince,
        openSessions: counts.open,
        channelConnections: services.channel?.connections() ?? null,
        relay: services.relay ? { online: services.relay.online(), streams: services.relay.streams() } : null,
        certificates: services.certificates().map((c) => ({ names: c.names, daysLeft: c.daysLeft })),
      };
  });
  read('/series', S.operations.series, async () => ({ everySeconds: SAMPLE_EVERY_MS / 1000, metrics: deps.traffic, points: deps.sampler.points() }));

  // ---- users and sessions ------------------------------------------------------------------
  read('/users', S.operations.users, async (ctx) => {
      const { q = '' } = parseWith(S.UsersQuery, queryOf(ctx));
      return { users: await records.findUsers(q, LIST_LIMIT) };
  });
  read('/users/:appid/:openid/sessions', S.operations.userSessions, async (ctx) => {
      const { appid, openid } = parseWith(S.UserParams, ctx.params);
      const rows = await records.userSessions(appid, openid, LIST_LIMIT);
      const now = clock.now();
      return {
        sessions: rows.map((r) => {
          const idle = config.apps.find((a) => a.appid === r.appid)?.session.idle ?? 0;
          const ended = r.revokedAt !== null ? 'revoked' : now >= Math.min(r.lastSeenAt + idle, r.expiresAt) ? 'expired' : 'active';
          return { ...r, status: ended };
        }),
      };
  });
  write('/sessions/:id/revoke', S.operations.revokeSession, 'session.revoke', async (ctx) => {
      const { id } = parseWith(S.SessionIdParams, ctx.params);
      const revoked = await services.sessions.revokeById(id, 'admin');
      return { target: `session ${id.slice(0, 12)}`, detail: { revoked }, answer: { revoked } };
  });
  write('/users/:appid/:openid/revoke', S.operations.revokeUser, 'user.revoke', async (ctx) => {
      const { appid, openid } = parseWith(S.UserParams, ctx.params);
      if (!config.apps.some((a) => a.appid === appid)) throw new AppError('APP_UNKNOWN');
      const revoked = await services.sessions.revokeUser(appid, openid, 'admin');
      return { target: `user ${appid}/${openid}`, detail: { revoked }, answer: { revoked } };
  });

  // ---- apps and tokens ---------------------------------------------------------------------
  read('/tokens', S.operations.tokens, async () => {
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
  });
  write('/tokens/:appid/refresh', S.operations.refreshToken, 'token.refresh', async (ctx) => {
      const { appid } = parseWith(S.AppParams, ctx.params);
      if (!config.apps.some((a) => a.appid === appid)) throw new AppError('APP_UNKNOWN');
      const token = await services.tokens.forceRefresh(appid);
      return { target: `app ${appid}`, answer: { refreshed: true, expiresAt: token.expiresAt } };
  });

  // ---- channels ----------------------------------------------------------------------------
  const channel = () => {
    if (!services.channel) throw new AppError('NOT_FOUND', { message: 'Channels are off (channel.enabled).' });
    return services.channel;
  };
  read('/channels', S.operations.channels, async () => ({ connections: channel().connections(), rooms: channel().rooms() }));
  read('/channels/:room', S.operations.room, async (ctx) => channel().room(parseWith(S.RoomParams, ctx.params).room));
  write('/channels/:room/publish', S.operations.publish, 'channel.publish', async (ctx, { event, data }) => {
      const { room } = parseWith(S.RoomParams, ctx.params);
      const result = await channel().publish(room, event, data ?? null);
      return { target: `room ${room}`, detail: { event }, answer: result };
  });

  // ---- files -------------------------------------------------------------------------------
  read('/files', S.operations.files, async (ctx) => {
      const { owner = '' } = parseWith(S.FilesQuery, queryOf(ctx));
      return { enabled: !!services.files, used: await records.storageUsed(), files: await records.files(owner, LIST_LIMIT) };
  });
  write('/files/:id/delete', S.operations.deleteFile, 'file.delete', async (ctx) => {
      if (!services.files) throw new AppError('NOT_FOUND', { message: 'Files are off (files.enabled).' });
      const { id } = parseWith(S.IdParams, ctx.params);
      const deleted = await services.files.remove(id);
      if (!deleted) throw new AppError('FILE_NOT_FOUND');
      return { target: `file ${id}`, answer: { deleted } };
  });

  // ---- push and the outbox -----------------------------------------------------------------
  read('/outbox', S.operations.outbox, async (ctx) => {
      const { status } = parseWith(S.OutboxQuery, queryOf(ctx));
      const entries = await services.outboxRecent(LIST_LIMIT, status);
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
  });
  write('/outbox/:id/retry', S.operations.retry, 'outbox.retry', async (ctx) => {
      const { id } = parseWith(S.IdParams, ctx.params);
      const retried = await services.outboxRetry(id);
      if (!retried) throw new AppError('NOT_FOUND', { message: 'No delivery with that id waits or failed (it may be delivered).' });
      return { target: `delivery ${id}`, answer: { retried } };
  });

  // ---- certificates and domains ------------------------------------------------------------
  read('/certificates', S.operations.certificates, async () => ({ certificates: services.certificates(), acme: services.acme(), check: services.lastCheck() }));
  write('/check', S.operations.check, 'check.run', async () => {
      const report = await services.runCheck();
      return { target: 'domains', detail: { exitCode: report?.report.exitCode ?? null }, answer: report };
  });

  read('/audit', S.operations.audit, async () => ({ entries: await records.auditRecent(LIST_LIMIT) }));
  return router;
}
