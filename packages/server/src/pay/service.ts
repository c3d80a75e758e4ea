/**
 * Orders and refunds for business services (docs/pay.md): made at WeChat Pay, kept in the store,
 * and their outcome handed to the merchant's webhook through the outbox, once, whichever of the
 * notification, a query or the reconciliation learns it first (the outbox drops the repeats by
 * `paid:<mchid>:<outTradeNo>` / `refund:<mchid>:<outRefundNo>:<status>`).
 */
import { createHash } from 'node:crypto';
import { sessionForApp, type SessionService } from '../auth/index.js';
import { AppError, type Clock, type Logger } from '../core/index.js';
import type { Outbox } from '../outbox/index.js';
import { PayUnverified, type PayApi } from './api.js';
import { paymentParams } from './crypto.js';
import type { Merchant } from './merchants.js';
import type { OrderRow, PayRecords, RefundRow } from './records.js';

export const PREPAY_LIFE_MS = 2 * 3600_000;
const OUT_TRADE_NO = /^[0-9A-Za-z_\-*|]{6,32}$/;
const OUT_REFUND_NO = /^[0-9A-Za-z_\-*|@]{1,64}$/;
/** A fen amount WeChat takes (it is an int32 on their side). */
const MAX_AMOUNT = 2_147_483_647;

/** The outbox kind of a merchant's events: each merchant names its own webhook. */
export const payKind = (mchid: string) => `pay.m${mchid}`;

export interface PayServiceDeps {
  merchants: ReadonlyMap<string, Merchant>;
  api: PayApi;
  records: PayRecords;
  outbox: Outbox;
  sessions: Pick<SessionService, 'check'>;
  clock: Clock;
  logger: Logger;
  notifyBase: string;
  mchidRequired: boolean;
}

const bad = (message: string) => new AppError('BAD_REQUEST', { message });

/** Beijing time, RFC 3339, as WeChat Pay writes times. */
function rfc3339(ms: number): string {
  return `${new Date(ms + 8 * 3600_000).toISOString().slice(0, 19)}+08:00`;
}

export function orderView(row: OrderRow) {
  return {
    mchid: row.mchid,
    appid: row.appid,
    outTradeNo: row.out_trade_no,
    openid: row.openid,
    description: row.description,
    amount: row.amount,
    ...(row.attach !== null ? { attach: row.attach } : {}),
    state: row.state,
    ...(row.transaction_id ? { transactionId: row.transaction_id } : {}),
    ...(row.success_time ? { successTime: row.success_time } : {}),
    ...(row.prepay_expires_at ? { prepayExpiresAt: row.prepay_expires_at } : {}),
    createdAt: row.created_at,
  };
}

export function refundView(row: RefundRow) {
  return {
    mchid: row.mchid,
    appid: row.appid,
    outTradeNo: row.out_trade_no,
    outRefundNo: row.out_refund_no,
    ...(row.refund_id ? { refundId: row.refund_id } : {}),
    amount: row.amount,
    total: row.total,
    status: row.status,
    ...(row.success_time ? { successTime: row.success_time } : {}),
    createdAt: row.created_at,
  };
}

export function createPayService(deps: PayServiceDeps) {
  const { merchants, api, records, outbox, clock, logger } = deps;

  function merchantFor(appid: string, mchid: unknown): Merchant {
    if (mchid !== undefined) {
      const merchant = typeof mchid === 'string' ? merchants.get(mchid) : undefined;
      if (!merchant || !merchant.appids.includes(appid)) throw new AppError('PAY_NOT_CONFIGURED', { message: `No merchant ${String(mchid)} serves ${appid} (pay.merchants).` });
      return merchant;
    }
    const serving = [...merchants.values()].filter((m) => m.appids.includes(appid));
    if (serving.length === 0) throw new AppError('PAY_NOT_CONFIGURED');
    if (serving.length > 1 || deps.mchidRequired) throw new AppError('PAY_MERCHANT_REQUIRED');
    return serving[0]!;
  }

  const notifyUrl = (mchid: string) => `${deps.notifyBase.replace(/\/+$/, '')}/pay/notify/${mchid}`;

  /** Queues the paid event (once per order, whoever learns it). */
  async function paid(row: OrderRow, transaction: Record<string, unknown>, source: 'notification' | 'query' | 'reconciliation'): Promise<void> {
    await outbox.enqueue({
      kind: payKind(row.mchid),
      appid: row.appid,
      dedupKey: `paid:${row.mchid}:${row.out_trade_no}`,
      payload: { event: 'TRANSACTION.SUCCESS', source, order: orderView(row), transaction },
    });
  }

  /** Writes what WeChat says of the order; a newly paid order's event is queued. */
  async function settle(row: OrderRow, transaction: Record<string, unknown>, source: 'notification' | 'query' | 'reconciliation'): Promise<OrderRow> {
    const state = typeof transaction.trade_state === 'string' ? transaction.trade_state.slice(0, 16) : row.state;
    const next: OrderRow = {
      ...row,
      state,
      transaction_id: typeof transaction.transaction_id === 'string' ? transaction.transaction_id.slice(0, 64) : row.transaction_id,
      success_time: typeof transaction.success_time === 'string' ? transaction.success_time.slice(0, 40) : row.success_time,
      updated_at: clock.now(),
      ...(state === 'SUCCESS' && row.notified_at === null ? { notified_at: clock.now() } : {}),
    };
    // A refunded order stays REFUND here: a query says REFUND, a late notification SUCCESS.
    if (row.state === 'REFUND' && state === 'SUCCESS') next.state = 'REFUND';
    await records.updateOrder(row.mchid, row.out_trade_no, { state: next.state, transaction_id: next.transaction_id, success_time: next.success_time, updated_at: next.updated_at, notified_at: next.notified_at });
    if (state === 'SUCCESS' || (state === 'REFUND' && row.state !== 'REFUND' && row.notified_at === null)) await paid(next, transaction, source);
    return next;
  }

  async function queryAtWechat(merchant: Merchant, outTradeNo: string) {
    return (await api.call(merchant, 'GET', `/v3/pay/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}?mchid=${merchant.mchid}`)).body;
  }

  /** jsapi: the prepay_id; an unverifiable answer is checked by a query (and one more try) before it counts as a failure. */
  async function prepay(merchant: Merchant, row: OrderRow, expiresAt: number | undefined): Promise<string> {
    const request = {
      appid: row.appid,
      mchid: merchant.mchid,
      description: row.description,
      out_trade_no: row.out_trade_no,
      ...(expiresAt ? { time_expire: rfc3339(expiresAt) } : {}),
      ...(row.attach !== null ? { attach: row.attach } : {}),
      notify_url: notifyUrl(merchant.mchid),
      amount: { total: row.amount, currency: 'CNY' },
      payer: { openid: row.openid },
    };
    const once = async () => {
      const answer = await api.call(merchant, 'POST', '/v3/pay/transactions/jsapi', request);
      if (typeof answer.body.prepay_id !== 'string') throw new AppError('PAY_UNAVAILABLE');
      return answer.body.prepay_id;
    };
    try {
      return await once();
    } catch (error) {
      if (!(error instanceof PayUnverified)) throw error;
      // Not proof of failure: ask what WeChat has; if the order exists, the same request again gives its prepay_id.
      try {
        await queryAtWechat(merchant, row.out_trade_no);
      } catch (queryError) {
        if (queryError instanceof AppError && queryError.code === 'PAY_ORDER_UNKNOWN') throw new AppError('PAY_UNAVAILABLE', { cause: error });
        throw queryError instanceof AppError ? queryError : new AppError('PAY_UNAVAILABLE', { cause: queryError });
      }
      try {
        return await once();
      } catch (again) {
        throw again instanceof PayUnverified ? new AppError('PAY_UNAVAILABLE', { cause: again }) : again;
      }
    }
  }

  function payment(merchant: Merchant, row: OrderRow) {
    return {
      mchid: row.mchid,
      outTradeNo: row.out_trade_no,
      prepayExpiresAt: row.prepay_expires_at,
      // The five parameters of wx.requestPayment; a fresh timeStamp and nonceStr each time.
      payment: paymentParams(row.appid, row.prepay_id!, merchant.privateKey, clock.now()),
    };
  }

  async function parseUser(appid: string, body: Record<string, unknown>): Promise<string> {
    if (body.session !== undefined) return (await sessionForApp(deps.sessions, appid, body.session)).openid;
    if (typeof body.openid !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(body.openid)) throw bad('openid (or session): the paying user.');
    return body.openid;
  }

  return {
    merchantFor,
    settle,

    async createOrder(appid: string, body: Record<string, unknown>) {
      const merchant = merchantFor(appid, body.mchid);
      const openid = await parseUser(appid, body);
      const { outTradeNo, description, amount, attach, expiresAt } = body;
      if (typeof outTradeNo !== 'string' || !OUT_TRADE_NO.test(outTradeNo)) throw bad('outTradeNo: 6 to 32 letters, digits or _-*|, unique per merchant.');
      if (typeof description !== 'string' || description.length === 0 || Buffer.byteLength(description) > 127) throw bad('description: 1 to 127 bytes (UTF-8).');
      if (typeof amount !== 'number' || !Number.isInteger(amount) || amount < 1 || amount > MAX_AMOUNT) throw bad('amount: a whole number of fen, at least 1.');
      if (attach !== undefined && (typeof attach !== 'string' || Buffer.byteLength(attach) > 128)) throw bad('attach: at most 128 bytes.');
      if (expiresAt !== undefined && (typeof expiresAt !== 'number' || !Number.isInteger(expiresAt) || expiresAt <= clock.now() + 60_000)) throw bad('expiresAt: epoch milliseconds, more than a minute ahead.');
      const fingerprint = createHash('sha256').update(JSON.stringify([appid, openid, description, amount, attach ?? null])).digest('hex');
      const now = clock.now();
      const fresh: OrderRow = {
        mchid: merchant.mchid,
        out_trade_no: outTradeNo,
        appid,
        openid,
        description,
        amount,
        attach: (attach as string | undefined) ?? null,
        fingerprint,
        prepay_id: null,
        prepay_expires_at: null,
        state: 'NOTPAY',
        transaction_id: null,
        success_time: null,
        notified_at: null,
        created_at: now,
        updated_at: now,
      };
      let row = (await records.addOrder(fresh)) ? fresh : await records.order(merchant.mchid, outTradeNo);
      if (!row) throw new AppError('PAY_UNAVAILABLE');
      if (row !== fresh) {
        if (row.appid !== appid || row.fingerprint !== fingerprint) throw new AppError('PAY_ORDER_CONFLICT');
        if (row.state === 'SUCCESS' || row.state === 'REFUND') throw new AppError('PAY_ORDER_PAID');
        if (row.state === 'CLOSED' || row.state === 'REVOKED') throw new AppError('PAY_ORDER_CLOSED');
        if (row.prepay_id && row.prepay_expires_at !== null) {
          // The same order again: the stored prepay_id, signed anew, while it lives; never a silent new order after.
          if (now < row.prepay_expires_at) return payment(merchant, row);
          throw new AppError('PAY_PREPAY_EXPIRED');
        }
      }
      const prepayId = await prepay(merchant, row, expiresAt as number | undefined);
      row = { ...row, prepay_id: prepayId, prepay_expires_at: clock.now() + PREPAY_LIFE_MS, updated_at: clock.now() };
      await records.updateOrder(row.mchid, row.out_trade_no, { prepay_id: row.prepay_id, prepay_expires_at: row.prepay_expires_at, updated_at: row.updated_at });
      logger.info({ appid, mchid: row.mchid, outTradeNo, amount }, 'pay: order made');
      return payment(merchant, row);
    },

    /** The stored order, refreshed from WeChat Pay (the stored one when WeChat cannot be asked). */
    async queryOrder(appid: string, outTradeNo: string, mchid: unknown) {
      const merchant = merchantFor(appid, mchid);
      const row = await records.order(merchant.mchid, outTradeNo);
      if (!row || row.appid !== appid) throw new AppError('PAY_ORDER_UNKNOWN');
      try {
        return { ...orderView(await settle(row, await queryAtWechat(merchant, outTradeNo), 'query')), fresh: true };
      } catch (error) {
        if (error instanceof AppError && error.code !== 'PAY_UNAVAILABLE') throw error;
        if (!(error instanceof AppError) && !(error instanceof PayUnverified)) throw error;
        return { ...orderView(row), fresh: false };
      }
    },

    async closeOrder(appid: string, outTradeNo: string, mchid: unknown) {
      const merchant = merchantFor(appid, mchid);
      const row = await records.order(merchant.mchid, outTradeNo);
      if (!row || row.appid !== appid) throw new AppError('PAY_ORDER_UNKNOWN');
      if (row.state === 'SUCCESS' || row.state === 'REFUND') throw new AppError('PAY_ORDER_PAID');
      try {
        await api.call(merchant, 'POST', `/v3/pay/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}/close`, { mchid: merchant.mchid });
      } catch (error) {
        if (!(error instanceof PayUnverified)) throw error;
        // Did it close? The query says.
        const state = await queryAtWechat(merchant, outTradeNo).catch(() => null);
        if (state?.trade_state !== 'CLOSED') throw new AppError('PAY_UNAVAILABLE', { cause: error });
      }
      await records.updateOrder(row.mchid, outTradeNo, { state: 'CLOSED', updated_at: clock.now() });
      return orderView({ ...row, state: 'CLOSED' });
    },

    async refund(appid: string, body: Record<string, unknown>) {
      const merchant = merchantFor(appid, body.mchid);
      const { outTradeNo, outRefundNo, amount, reason } = body;
      if (typeof outTradeNo !== 'string' || !OUT_TRADE_NO.test(outTradeNo)) throw bad('outTradeNo: the paid order.');
      if (typeof outRefundNo !== 'string' || !OUT_REFUND_NO.test(outRefundNo)) throw bad('outRefundNo: 1 to 64 letters, digits or _-*|@, unique per merchant; a retry reuses it.');
      if (typeof amount !== 'number' || !Number.isInteger(amount) || amount < 1) throw bad('amount: fen to refund, at least 1.');
      if (reason !== undefined && (typeof reason !== 'string' || Buffer.byteLength(reason) > 80)) throw bad('reason: at most 80 bytes (shown to the user).');
      const order = await records.order(merchant.mchid, outTradeNo);
      if (!order || order.appid !== appid) throw new AppError('PAY_ORDER_UNKNOWN');
      if (amount > order.amount) throw bad('amount: more than the order.');
      const now = clock.now();
      const fresh: RefundRow = { mchid: merchant.mchid, out_refund_no: outRefundNo, out_trade_no: outTradeNo, appid, refund_id: null, amount, total: order.amount, reason: (reason as string | undefined) ?? null, status: 'PROCESSING', success_time: null, created_at: now, updated_at: now };
      const stored = (await records.addRefund(fresh)) ? fresh : await records.refund(merchant.mchid, outRefundNo);
      if (!stored || stored.out_trade_no !== outTradeNo || stored.amount !== amount) throw new AppError('PAY_ORDER_CONFLICT', { message: 'This outRefundNo was used for another refund; a retry must repeat the same order and amount.' });
      const request = { out_trade_no: outTradeNo, out_refund_no: outRefundNo, ...(reason ? { reason } : {}), notify_url: notifyUrl(merchant.mchid), amount: { refund: amount, total: order.amount, currency: 'CNY' } };
      let answer: Record<string, unknown>;
      try {
        answer = (await api.call(merchant, 'POST', '/v3/refund/domestic/refunds', request)).body;
      } catch (error) {
        if (!(error instanceof PayUnverified)) throw error;
        answer = await api.call(merchant, 'GET', `/v3/refund/domestic/refunds/${encodeURIComponent(outRefundNo)}`).then((a) => a.body, () => { throw new AppError('PAY_UNAVAILABLE', { cause: error }); });
      }
      return refundView(await this.settleRefund(stored, answer));
    },

    async settleRefund(row: RefundRow, refund: Record<string, unknown>): Promise<RefundRow> {
      const status = typeof refund.status === 'string' ? refund.status : typeof refund.refund_status === 'string' ? refund.refund_status : row.status;
      const next: RefundRow = { ...row, status: status.slice(0, 16), refund_id: typeof refund.refund_id === 'string' ? refund.refund_id.slice(0, 64) : row.refund_id, success_time: typeof refund.success_time === 'string' ? refund.success_time.slice(0, 40) : row.success_time, updated_at: clock.now() };
      await records.updateRefund(row.mchid, row.out_refund_no, { status: next.status, refund_id: next.refund_id, success_time: next.success_time, updated_at: next.updated_at });
      if (next.status === 'SUCCESS') {
        // The order is (partly) refunded now: WeChat's trade_state says REFUND too.
        const order = await records.order(row.mchid, row.out_trade_no);
        if (order?.state === 'SUCCESS') await records.updateOrder(row.mchid, row.out_trade_no, { state: 'REFUND', updated_at: clock.now() });
      }
      if (next.status !== 'PROCESSING') {
        await outbox.enqueue({ kind: payKind(row.mchid), appid: row.appid, dedupKey: `refund:${row.mchid}:${row.out_refund_no}:${next.status}`, payload: { event: `REFUND.${next.status}`, refund: refundView(next), detail: refund } });
      }
      return next;
    },

    async queryRefund(appid: string, outRefundNo: string, mchid: unknown) {
      const merchant = merchantFor(appid, mchid);
      const row = await records.refund(merchant.mchid, outRefundNo);
      if (!row || row.appid !== appid) throw new AppError('PAY_REFUND_UNKNOWN');
      try {
        const answer = await api.call(merchant, 'GET', `/v3/refund/domestic/refunds/${encodeURIComponent(outRefundNo)}`);
        return { ...refundView(await this.settleRefund(row, answer.body)), fresh: true };
      } catch (error) {
        if (error instanceof AppError && error.code !== 'PAY_UNAVAILABLE') throw error;
        return { ...refundView(row), fresh: false };
      }
    },

    /** Asks WeChat about an open order whose notification did not come (the reconciliation). */
    async reconcile(row: OrderRow): Promise<string> {
      const merchant = merchants.get(row.mchid);
      if (!merchant) return row.state;
      return (await settle(row, await queryAtWechat(merchant, row.out_trade_no), 'reconciliation')).state;
    },
  };
}

export type PayService = ReturnType<typeof createPayService>;
