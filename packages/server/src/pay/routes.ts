/** The internal API of WeChat Pay: orders and refunds for business services (docs/pay.md). */
import type { AppConfig } from '../config/index.js';
import { AppError } from '../core/index.js';
import { readJsonBody, sendJson, type Router } from '../http/index.js';
import { operations } from './schemas.js';
import type { PayService } from './service.js';
import type { createShipping } from './shipping.js';

export function registerPayRoutes(router: Router, deps: { apps: ReadonlyMap<string, AppConfig>; service: PayService; shipping: ReturnType<typeof createShipping> }): void {
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
  router.route('POST', '/v1/apps/:appid/pay/orders/:outTradeNo/shipping', operations.uploadShipping, async (ctx) => {
    const appid = appOf(ctx.params.appid);
    const merchant = service.merchantFor(appid, mchidOf(ctx.query));
    sendJson(ctx.res, 200, await deps.shipping.upload(merchant.mchid, appid, ctx.params.outTradeNo ?? '', await readJsonBody(ctx.req)));
  });
  router.route('GET', '/v1/apps/:appid/pay/orders/:outTradeNo/shipping', operations.queryShipping, async (ctx) => {
    const appid = appOf(ctx.params.appid);
    const merchant = service.merchantFor(appid, mchidOf(ctx.query));
    sendJson(ctx.res, 200, await deps.shipping.query(merchant.mchid, appid, ctx.params.outTradeNo ?? ''));
  });
  router.route('GET', '/v1/apps/:appid/pay/refunds/:outRefundNo', operations.queryRefund, async (ctx) => {
    sendJson(ctx.res, 200, await service.queryRefund(appOf(ctx.params.appid), ctx.params.outRefundNo ?? '', mchidOf(ctx.query)));
  });
}
