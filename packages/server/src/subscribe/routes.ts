/** The internal API's subscribe part: send with a grant, and a user's grants. */
import type { AppConfig } from '../config/index.js';
import { operations } from './schemas.js';
import { AppError } from '../core/index.js';
import { readJsonBody, sendJson, type Router } from '../http/index.js';
import type { Subscriptions } from './subscribe.js';

export function registerSubscribeRoutes(router: Router, deps: { apps: ReadonlyMap<string, AppConfig>; subscriptions: Subscriptions }): void {
  const appOf = (appid: string | undefined) => {
    if (!deps.apps.has(appid ?? '')) throw new AppError('APP_UNKNOWN');
    return appid!;
  };

  router.route('POST', '/v1/apps/:appid/subscribe-messages', operations.send, async (ctx) => {
    const appid = appOf(ctx.params.appid);
    const body = await readJsonBody(ctx.req);
    sendJson(
      ctx.res,
      200,
      await deps.subscriptions.send(appid, {
        touser: body.touser,
        templateId: body.templateId,
        data: body.data,
        page: body.page,
        miniprogramState: body.miniprogramState,
        lang: body.lang,
      }),
    );
  });

  router.route('GET', '/v1/apps/:appid/users/:openid/subscriptions', operations.grants, async (ctx) => {
    const appid = appOf(ctx.params.appid);
    const openid = ctx.params.openid ?? '';
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(openid)) throw new AppError('BAD_REQUEST', { message: 'openid: the user\'s openid.' });
    sendJson(ctx.res, 200, { grants: await deps.subscriptions.list(appid, openid) });
  });
}
