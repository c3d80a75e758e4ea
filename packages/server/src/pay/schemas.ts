/** Schemas of WeChat Pay's routes: the internal API for business services, and the notification receiver. */
import { z } from 'zod';
import type { Operation } from '../http/index.js';

const tags = ['pay'];
const security = 'internal' as const;
const appParams = z.object({ appid: z.string() });
const mchid = z.string().optional().meta({ description: 'The merchant (needed when the app is under several: pay.mchidRequired).' });
const errors = {
  400: { description: 'A field is invalid (BAD_REQUEST), WeChat Pay refused (PAY_REFUSED), or the merchant must be named (PAY_MERCHANT_REQUIRED).' },
  404: { description: 'No merchant serves the app (PAY_NOT_CONFIGURED), or no such order (PAY_ORDER_UNKNOWN).' },
  409: { description: 'The order conflicts with one already made (PAY_ORDER_CONFLICT, PAY_ORDER_PAID, PAY_ORDER_CLOSED, PAY_PREPAY_EXPIRED).' },
  503: { description: 'WeChat Pay did not answer, or not verifiably (PAY_UNAVAILABLE): retry with the same numbers.' },
};
const order = z.looseObject({
  mchid: z.string(),
  appid: z.string(),
  outTradeNo: z.string(),
  openid: z.string(),
  description: z.string(),
  amount: z.number().meta({ description: 'Fen.' }),
  attach: z.string().optional(),
  state: z.string().meta({ description: "WeChat Pay's trade_state: NOTPAY, SUCCESS, CLOSED, REFUND, PAYERROR, …" }),
  transactionId: z.string().optional(),
  successTime: z.string().optional(),
  fresh: z.boolean().optional().meta({ description: 'False when WeChat Pay could not be asked and this is the stored state.' }),
});
const refund = z.looseObject({
  mchid: z.string(),
  outTradeNo: z.string(),
  outRefundNo: z.string(),
  refundId: z.string().optional(),
  amount: z.number(),
  total: z.number(),
  status: z.string().meta({ description: 'PROCESSING, SUCCESS, CLOSED or ABNORMAL.' }),
  fresh: z.boolean().optional(),
});

export const operations = {
  create: {
    summary: 'Makes a WeChat Pay order (JSAPI) for a user and returns the signed wx.requestPayment parameters; idempotent on outTradeNo while its prepay_id lives (2 h).',
    tags,
    security,
    params: appParams,
    body: z.object({
      session: z.string().optional().meta({ description: "The paying user's session token (or openid)." }),
      openid: z.string().optional(),
      outTradeNo: z.string().meta({ description: 'Your order number: 6 to 32 of 0-9 A-Z a-z _ - * |.' }),
      description: z.string().meta({ description: 'What is bought, 1 to 127 bytes.' }),
      amount: z.number().meta({ description: 'Fen (1 = ¥0.01).' }),
      attach: z.string().optional().meta({ description: 'Returned with the payment event, at most 128 bytes.' }),
      expiresAt: z.number().optional().meta({ description: 'When the order stops taking payment (epoch ms).' }),
      mchid,
    }),
    responses: {
      200: {
        description: 'The order and the five parameters of wx.requestPayment (give `payment` to client.pay()).',
        schema: z.object({
          mchid: z.string(),
          outTradeNo: z.string(),
          prepayExpiresAt: z.number(),
          payment: z.object({ timeStamp: z.string(), nonceStr: z.string(), package: z.string(), signType: z.literal('RSA'), paySign: z.string() }),
        }),
      },
      ...errors,
    },
  },
  query: {
    summary: 'An order: the stored one refreshed from WeChat Pay (a newly paid order also queues its event).',
    tags,
    security,
    params: z.object({ appid: z.string(), outTradeNo: z.string() }),
    query: z.object({ mchid }),
    responses: { 200: { description: 'The order.', schema: order }, ...errors },
  },
  close: {
    summary: 'Closes an unpaid order at WeChat Pay.',
    tags,
    security,
    params: z.object({ appid: z.string(), outTradeNo: z.string() }),
    query: z.object({ mchid }),
    responses: { 200: { description: 'The closed order.', schema: order }, ...errors },
  },
  refund: {
    summary: 'Refunds (part of) a paid order; a retry reuses outRefundNo. REFUND.SUCCESS reaches the webhook.',
    tags,
    security,
    params: appParams,
    body: z.object({
      outTradeNo: z.string(),
      outRefundNo: z.string().meta({ description: 'Your refund number, 1 to 64 characters; a retry repeats it.' }),
      amount: z.number().meta({ description: 'Fen to refund.' }),
      reason: z.string().optional(),
      mchid,
    }),
    responses: { 200: { description: 'The refund (PROCESSING until WeChat completes it).', schema: refund }, ...errors },
  },
  queryRefund: {
    summary: 'A refund, refreshed from WeChat Pay.',
    tags,
    security,
    params: z.object({ appid: z.string(), outRefundNo: z.string() }),
    query: z.object({ mchid }),
    responses: { 200: { description: 'The refund.', schema: refund }, 404: { description: 'No such refund (PAY_REFUND_UNKNOWN).' }, 503: errors[503] },
  },
  uploadShipping: {
    summary: 'Uploads the shipping info of a paid order (发货信息管理, /wxa/sec/order/upload_shipping_info through the token gateway).',
    tags,
    security,
    params: z.object({ appid: z.string(), outTradeNo: z.string() }),
    query: z.object({ mchid }),
    body: z.object({
      logisticsType: z.number().meta({ description: '1 express, 2 same-city delivery, 3 virtual goods, 4 pickup.' }),
      deliveryMode: z.number().optional().meta({ description: '1 all at once (default), 2 in parts.' }),
      isAllDelivered: z.boolean().optional(),
      shippingList: z.array(
        z.object({
          itemDesc: z.string(),
          trackingNo: z.string().optional(),
          expressCompany: z.string().optional(),
          contact: z.object({ consignorContact: z.string().optional(), receiverContact: z.string().optional() }).optional(),
        }),
      ),
    }),
    responses: {
      200: { description: 'Uploaded.', schema: z.object({ outTradeNo: z.string(), uploaded: z.literal(true) }) },
      400: errors[400],
      404: errors[404],
      502: { description: 'WeChat refused (WECHAT_ERROR, WECHAT_BAD_ARGUMENT).' },
      503: { description: 'WeChat unreachable (WECHAT_UNAVAILABLE).' },
    },
  },
  queryShipping: {
    summary: "An order's shipping state at WeChat (/wxa/sec/order/get_order): to_ship, shipped, received, done, refunded.",
    tags,
    security,
    params: z.object({ appid: z.string(), outTradeNo: z.string() }),
    query: z.object({ mchid }),
    responses: {
      200: { description: 'The state.', schema: z.looseObject({ outTradeNo: z.string(), orderState: z.number().nullable(), state: z.string() }) },
      404: errors[404],
      502: { description: 'WeChat refused (WECHAT_ERROR).' },
      503: { description: 'WeChat unreachable (WECHAT_UNAVAILABLE).' },
    },
  },
  notify: {
    summary: "WeChat Pay's notification (payment or refund result): verified, decrypted, checked, queued for the merchant's webhook.",
    tags,
    params: z.object({ mchid: z.string() }),
    responses: {
      204: { description: 'Taken (or a repeat of one taken).' },
      400: { description: 'Not JSON, not decryptable (PAY_DECRYPT_FAILED) or not matching the order (PAY_NOTIFY_MISMATCH).' },
      401: { description: 'The signature does not verify or is a probe (PAY_SIGNATURE_INVALID), or the timestamp is stale (PAY_NOTIFY_STALE).' },
      404: { description: 'No such merchant (PAY_NOT_CONFIGURED).' },
    },
  },
} satisfies Record<string, Operation>;
