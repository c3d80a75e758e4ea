/** The internal API's session part: business services look sessions up and end them. */
import type { ErrorCode } from 'minigate-protocol';
import { AppError } from '../core/index.js';
import { readJsonBody, sendJson, type Router } from '../http/index.js';
import { operations } from './schemas.js';
import { sessionForApp } from './require-session.js';
import type { SessionKeyTools } from './session-key.js';
import type { SessionService } from './sessions.js';

export function registerSessionRoutes(router: Router, sessions: SessionService, apps: ReadonlySet<string>, keys?: SessionKeyTools): void {
  const appOf = (appid: string | undefined) => {
    if (!apps.has(appid ?? '')) throw new AppError('APP_UNKNOWN' satisfies ErrorCode);
    return appid!;
  };
  if (keys) {
    // By the session token the mini program sent: whether WeChat still holds its session_key, and
    // a new key for the user (the old one stops working; the session keeps the new one).
    router.route('POST', '/v1/apps/:appid/session-key/check', operations.sessionKeyCheck, async (ctx) => {
      const appid = appOf(ctx.params.appid);
      const session = await sessionForApp(sessions, appid, (await readJsonBody(ctx.req)).session);
      sendJson(ctx.res, 200, { valid: await keys.check(session) });
    });
    router.route('POST', '/v1/apps/:appid/session-key/reset', operations.sessionKeyReset, async (ctx) => {
      const appid = appOf(ctx.params.appid);
      const session = await sessionForApp(sessions, appid, (await readJsonBody(ctx.req)).session);
      await keys.reset(session);
      sendJson(ctx.res, 200, { reset: true });
    });
  }

  router.route('GET', '/v1/sessions/:id', operations.sessionById, async (ctx) => {
    const found = await sessions.byId(ctx.params.id ?? '');
    if (!found) throw new AppError('NOT_FOUND', { message: 'No session with that id.' });
    const { record } = found;
    sendJson(ctx.res, 200, {
      id: record.tokenHash,
      status: found.status,
      appid: record.appid,
      openid: record.openid,
      ...(record.unionid ? { unionid: record.unionid } : {}),
      createdAt: record.createdAt,
      lastSeenAt: record.lastSeenAt,
      // The absolute end, and the end if unused from now on (idle timeout).
      expiresAt: record.expiresAt,
      endsAt: found.endsAt,
      revokedAt: record.revokedAt,
      ...(record.revokedReason ? { revokedReason: record.revokedReason } : {}),
    });
  });

  router.route('DELETE', '/v1/sessions/:id', operations.revokeById, async (ctx) => {
    sendJson(ctx.res, 200, { revoked: await sessions.revokeById(ctx.params.id ?? '', 'internal') });
  });

  router.route('DELETE', '/v1/apps/:appid/users/:openid/sessions', operations.revokeUser, async (ctx) => {
    const appid = ctx.params.appid ?? '';
    if (!apps.has(appid)) throw new AppError('APP_UNKNOWN' satisfies ErrorCode);
    sendJson(ctx.res, 200, { revoked: await sessions.revokeUser(appid, ctx.params.openid ?? '', 'internal') });
  });
}
