/** The internal API's session part: business services look sessions up and end them. */
import type { ErrorCode } from 'minigate-protocol';
import { AppError } from '../core/index.js';
import { sendJson, type Router } from '../http/index.js';
import { operations } from './schemas.js';
import type { SessionService } from './sessions.js';

export function registerSessionRoutes(router: Router, sessions: SessionService, apps: ReadonlySet<string>): void {
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
