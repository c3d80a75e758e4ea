/** The internal API's content checks: text (msgSecCheck v2) and media (mediaCheckAsync). */
import type { AppConfig } from '../config/index.js';
import { operations } from './schemas.js';
import { AppError } from '../core/index.js';
import { readJsonBody, sendJson, type Router } from '../http/index.js';
import type { ContentChecks } from './checks.js';

export function registerCheckRoutes(router: Router, deps: { apps: ReadonlyMap<string, AppConfig>; checks: ContentChecks }): void {
  const appOf = (appid: string | undefined) => {
    if (!deps.apps.has(appid ?? '')) throw new AppError('APP_UNKNOWN');
    return appid!;
  };
  router.route('POST', '/v1/apps/:appid/msg-sec-check', operations.text, async (ctx) => {
    const appid = appOf(ctx.params.appid);
    sendJson(ctx.res, 200, await deps.checks.text(appid, await readJsonBody(ctx.req)));
  });
  router.route('POST', '/v1/apps/:appid/media-check', operations.media, async (ctx) => {
    const appid = appOf(ctx.params.appid);
    // 202: the verdict comes later, to the webhook (kind media_check), matched by traceId.
    sendJson(ctx.res, 202, await deps.checks.media(appid, await readJsonBody(ctx.req)));
  });
}
