/** The internal API of WeChat Pay: orders and refunds for business services (docs/pay.md). */
import type { AppConfig } from '../config/index.js';
import { AppError } from '../core/index.js';
import { readJsonBody, sendJson, type Router } from '../http/index.js';
import { operations } from './schemas.js';
import type { PayService } from './service.js';

export function registerPayRoutes(router: Router, deps: { apps: ReadonlyMap<string, AppConfig>; service: PayService }): void {
  const { service } = deps;
  const appOf = (appid: string | undefined) => {
    if (!deps.apps.has(appid ?? '')) throw new AppError('APP_UNKNOWN');
    return appid!;
  };
  const mchidOf = (query: string) => new URLSearchParams(query).get('mchid') ?? undefined;
  router.route('POST', '/v1/apps/:appid/pay/orders', operations.create, async (ctx) => {
    sendJson(ctx.res, 200, await service.createOrder(appOf(ctx.params.appid), await readJsonBody(ctx.req)));
  });
  router.route('GET', '/v1/apps/:appid/pay/orders/:outTradeNo', operations.query, async (ctx) => {
    sendJson(ctx.res, 200, await service.queryOrder(appOf(ctx.params.appid), ctx.params.outTradeNo ?? '', mchidOf(ctx.query)));
  });
  router.route('POST', '/v1/apps/:appid/pay/orders/:outTradeNo/close', operations.close, async (ctx) => {
    sendJson(ctx.res, 200, await service.closeOrder(appOf(ctx.params.appid), ctx.params.outTradeNo ?? '', mchidOf(ctx.query)));
  });
  router.route('POST', '/v1/apps/:appid/pay/refunds', operations.refund, async (ctx) => {
    sendJson(ctx.res, 200, await service.refund(appOf(ctx.params.appid), await readJsonBody(ctx.req)));
  });
  router.route('GET', '/v1/apps/:appid/pay/refunds/:outRefundNo', operations.queryRefund, async (ctx) => {
    sendJson(ctx.res, 200, await service.queryRefund(appOf(ctx.params.appid), ctx.params.outRefundNo ?? '', mchidOf(ctx.query)));
  });
}
