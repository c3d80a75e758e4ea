/**
 * Shipping info (发货信息管理) for paid orders: a mini program that takes payments must upload how
 * each order was delivered or its settlement is held. The upload and the query go to WeChat's
 * `/wxa/sec/order/upload_shipping_info` and `/wxa/sec/order/get_order` through the token gateway,
 * the order named by mchid + out_trade_no and its payer taken from the stored order. The related
 * trade-management pushes (trade_manage_*) arrive as ordinary message pushes and reach
 * apps[].push.webhook through the push receiver.
 */
import { AppError, type Clock } from '../core/index.js';
import type { Gateway } from '../gateway/index.js';
import type { PayRecords } from './records.js';

const bad = (message: string) => new AppError('BAD_REQUEST', { message });
/** errcode → ours: no such payment at WeChat (10060001). */
const SHIPPING_ERRORS = { 10060001: 'PAY_ORDER_UNKNOWN', 47003: 'WECHAT_BAD_ARGUMENT' } as const;

function rfc3339(ms: number): string {
  return `${new Date(ms + 8 * 3600_000).toISOString().slice(0, 19)}+08:00`;
}

function shippingItem(value: unknown, i: number, logisticsType: number): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(`shippingList[${i}]: an object`);
  const item = value as Record<string, unknown>;
  const itemDesc = item.itemDesc;
  if (typeof itemDesc !== 'string' || itemDesc.length === 0 || itemDesc.length > 120) throw bad(`shippingList[${i}].itemDesc: what was shipped, 1 to 120 characters.`);
  const out: Record<string, unknown> = { item_desc: itemDesc };
  if (logisticsType === 1) {
    // Express: tracking number and company are required by WeChat.
    if (typeof item.trackingNo !== 'string' || !/^[0-9A-Za-z-]{1,128}$/.test(item.trackingNo)) throw bad(`shippingList[${i}].trackingNo: the tracking number (express delivery).`);
    if (typeof item.expressCompany !== 'string' || !/^[A-Za-z0-9_]{1,64}$/.test(item.expressCompany)) throw bad(`shippingList[${i}].expressCompany: the company code from WeChat's list (SF, YTO, …).`);
    out.tracking_no = item.trackingNo;
    out.express_company = item.expressCompany;
  }
  if (item.contact !== undefined) {
    const contact = item.contact as { consignorContact?: unknown; receiverContact?: unknown };
    out.contact = {
      ...(typeof contact.consignorContact === 'string' ? { consignor_contact: contact.consignorContact.slice(0, 1024) } : {}),
      ...(typeof contact.receiverContact === 'string' ? { receiver_contact: contact.receiverContact.slice(0, 1024) } : {}),
    };
  }
  return out;
}

export function createShipping(deps: { gateway: Gateway; records: PayRecords; clock: Clock }) {
  const { gateway, records, clock } = deps;
  async function paidOrder(mchid: string, appid: string, outTradeNo: string) {
    const order = await records.order(mchid, outTradeNo);
    if (!order || order.appid !== appid) throw new AppError('PAY_ORDER_UNKNOWN');
    return order;
  }
  return {
    async upload(mchid: string, appid: string, outTradeNo: string, body: Record<string, unknown>) {
      const order = await paidOrder(mchid, appid, outTradeNo);
      if (order.state !== 'SUCCESS' && order.state !== 'REFUND') throw new AppError('BAD_REQUEST', { message: 'Shipping info is for paid orders; this one is not paid.' });
      const logisticsType = body.logisticsType;
      if (typeof logisticsType !== 'number' || ![1, 2, 3, 4].includes(logisticsType)) throw bad('logisticsType: 1 express, 2 same-city delivery, 3 virtual goods, 4 pickup.');
      const deliveryMode = body.deliveryMode ?? 1;
      if (deliveryMode !== 1 && deliveryMode !== 2) throw bad('deliveryMode: 1 all at once, 2 in parts.');
      if (!Array.isArray(body.shippingList) || body.shippingList.length === 0 || body.shippingList.length > 10) throw bad('shippingList: 1 to 10 items.');
      const shippingList = body.shippingList.map((item, i) => shippingItem(item, i, logisticsType));
      await gateway.call(appid, {
        path: '/wxa/sec/order/upload_shipping_info',
        method: 'POST',
        body: {
          order_key: { order_number_type: 1, mchid, out_trade_no: outTradeNo },
          logistics_type: logisticsType,
          delivery_mode: deliveryMode,
          ...(deliveryMode === 2 ? { is_all_delivered: body.isAllDelivered === true } : {}),
          shipping_list: shippingList,
          upload_time: rfc3339(clock.now()),
          payer: { openid: order.openid },
        },
        errors: SHIPPING_ERRORS,
      });
      return { outTradeNo, uploaded: true };
    },

    async query(mchid: string, appid: string, outTradeNo: string) {
      await paidOrder(mchid, appid, outTradeNo);
      const answer = await gateway.call<{ order?: Record<string, unknown> }>(appid, {
        path: '/wxa/sec/order/get_order',
        method: 'POST',
        body: { merchant_id: mchid, merchant_trade_no: outTradeNo },
        errors: SHIPPING_ERRORS,
      });
      const order = answer.order ?? {};
      const state = Number(order.order_state);
      const names: Record<number, string> = { 1: 'to_ship', 2: 'shipped', 3: 'received', 4: 'done', 5: 'refunded' };
      return { outTradeNo, orderState: Number.isInteger(state) ? state : null, state: names[state] ?? 'unknown', ...(order.shipping ? { shipping: order.shipping } : {}) };
    },
  };
}
