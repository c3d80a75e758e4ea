/**
 * The internal API's WeChat part (listen.internal, `Authorization: Bearer <internal.token>`):
 * how business services in any language use the deployment's access_token without the AppSecret.
 */
import type { AppConfig } from '../config/index.js';
import { AppError } from '../core/index.js';
import { readBody, readBodyAs, readJsonBody, sendJson, type HttpContext, type Operation, type Router } from '../http/index.js';
import type { TokenManager } from '../token/index.js';
import { PASSTHROUGH_MAX_BODY_BYTES, gatewayFor, type Gateway } from './gateway.js';
import { RejectedRequest, operations } from './schemas.js';
import { phoneNumber, urlLink, urlScheme, wxacode } from './helpers.js';

export interface GatewayRouteDeps {
  apps: ReadonlyMap<string, AppConfig>;
  tokens: TokenManager;
  gateway: Gateway;
}

function appOf(deps: GatewayRouteDeps, ctx: HttpContext): string {
  const appid = ctx.params.appid ?? '';
  if (!deps.apps.has(appid)) throw new AppError('APP_UNKNOWN');
  return appid;
}

export function registerGatewayRoutes(router: Router, deps: GatewayRouteDeps): void {
  const { tokens, gateway } = deps;

  router.route('GET', '/v1/apps/:appid/access-token', operations.accessToken, async (ctx) => {
    sendJson(ctx.res, 200, await tokens.get(appOf(deps, ctx)));
  });

  router.route('POST', '/v1/apps/:appid/access-token/refresh', operations.refresh, async (ctx) => {
    sendJson(ctx.res, 200, await tokens.forceRefresh(appOf(deps, ctx)));
  });

  router.route('POST', '/v1/apps/:appid/access-token/rejected', operations.rejected, async (ctx) => {
    const appid = appOf(deps, ctx);
    const body = await readBodyAs(ctx, RejectedRequest);
    sendJson(ctx.res, 200, await tokens.recover(appid, body.accessToken));
  });

  router.route(['GET', 'POST'], '/v1/apps/:appid/wechat/*', operations.passthrough, async (ctx) => {
    const appid = appOf(deps, ctx);
    // The router answers HEAD with the GET handler; WeChat has no HEAD APIs.
    if (ctx.req.method === 'HEAD') throw new AppError('METHOD_NOT_ALLOWED', { details: { allowed: ['GET', 'POST'] } });
    const body = ctx.req.method === 'POST' ? await readBody(ctx.req, PASSTHROUGH_MAX_BODY_BYTES) : undefined;
    const contentType = ctx.req.headers['content-type'];
    const answer = await gatewayFor(gateway, ctx.requestId).passthrough(appid, {
      method: ctx.req.method ?? 'GET',
      path: `/${ctx.params['*']}`,
      query: new URLSearchParams(ctx.query),
      ...(contentType ? { contentType } : {}),
      ...(body ? { body } : {}),
    });
    ctx.res.writeHead(answer.status, {
      'content-type': answer.headers['content-type'] ?? 'application/octet-stream',
      'content-length': answer.body.length,
      'cache-control': 'no-store',
    });
    ctx.res.end(answer.body);
  });

  // Each helper gets the request's view of the gateway, so its WeChat log lines carry the request id.
  const json = (path: string, operation: Operation, run: (traced: Gateway, appid: string, body: Record<string, unknown>) => Promise<unknown>) =>
    router.route('POST', path, operation, async (ctx) => sendJson(ctx.res, 200, await run(gatewayFor(gateway, ctx.requestId), appOf(deps, ctx), await readJsonBody(ctx.req))));

  json('/v1/apps/:appid/phone-number', operations.phoneNumber, (traced, appid, body) => phoneNumber(traced, appid, { code: body.code, openid: body.openid }));
  // msg-sec-check and subscribe-messages are the checks and subscribe features' (they need the user).
  json('/v1/apps/:appid/url-scheme', operations.urlScheme, (traced, appid, body) => urlScheme(traced, appid, body));
  json('/v1/apps/:appid/url-link', operations.urlLink, (traced, appid, body) => urlLink(traced, appid, body));

  router.route('POST', '/v1/apps/:appid/wxacode', operations.wxacode, async (ctx) => {
    const appid = appOf(deps, ctx);
    const body = await readJsonBody(ctx.req);
    const image = await wxacode(gatewayFor(gateway, ctx.requestId), appid, { ...body, scene: body.scene });
    ctx.res.writeHead(200, { 'content-type': image.contentType, 'content-length': image.body.length, 'cache-control': 'no-store' });
    ctx.res.end(image.body);
  });
}
