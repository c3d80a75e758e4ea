/**
 * WeChat Pay v3 (api.mch.weixin.qq.com) as its official docs describe it, for direct merchants
 * and mini program (JSAPI) payments — docs/pay.md lists each rule and the page it comes from:
 *
 * - every call carries `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,serial_no=…,…` signed
 *   with the merchant's key over `METHOD\nURL\ntimestamp\nnonce\nbody\n`; a bad one is 401 SIGN_ERROR;
 * - every answer is signed by the platform over `timestamp\nnonce\nbody\n`, with the key the
 *   merchant's mode names in `Wechatpay-Serial`: the WeChat Pay public key (`PUB_KEY_ID_…`) or a
 *   platform certificate (downloaded from `GET /v3/certificates`, sealed with the APIv3 key);
 * - a prepay_id lives 2 hours; orders are queried by out_trade_no, closed, refunded;
 * - a payment (the user tapping 支付, `POST /__sandbox/pay/tap`) and a refund send a signed
 *   notification whose `resource` is sealed with AEAD_AES_256_GCM under the APIv3 key.
 */
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { makeCertificateModeKey, makePublicKeyModeKey, nonce, parseAuthorization, rsaVerify, sealResource, signedHeaders, type PlatformKey } from './pay-crypto.js';

export const PREPAY_TTL_MS = 2 * 3600_000;
/** WeChat Pay refuses a request whose timestamp is this far from its clock (INFERRED: 5 minutes, as for notifications). */
const REQUEST_SKEW_MS = 5 * 60_000;
const NOTIFY_TIMEOUT_MS = 5_000;

export type PayVerification = 'publicKey' | 'certificate';

export interface PayMerchant {
  mchid: string;
  /** The merchant API certificate's serial, named in serial_no. */
  serial: string;
  publicKey: KeyObject;
  apiV3Key: string;
  /** Which platform key signs this merchant's answers and notifications. */
  verification: PayVerification;
}

export interface PayOrder {
  mchid: string;
  appid: string;
  outTradeNo: string;
  description: string;
  total: number;
  openid: string;
  attach?: string;
  notifyUrl: string;
  prepayId: string;
  prepayExpiresAt: number;
  /** Every prepay_id handed out for it and when each ends (an earlier one stays good for its 2 hours). */
  prepays: Map<string, number>;
  /** What the order was made with: the same out_trade_no with other content is OUT_TRADE_NO_USED. */
  fingerprint: string;
  state: 'NOTPAY' | 'SUCCESS' | 'CLOSED' | 'REFUND';
  transactionId?: string;
  successTime?: number;
  refunded: number;
}

export interface PayRefund {
  mchid: string;
  outRefundNo: string;
  refundId: string;
  outTradeNo: string;
  transactionId: string;
  refund: number;
  total: number;
  status: 'PROCESSING' | 'SUCCESS';
  createdAt: number;
  successTime?: number;
  notifyUrl?: string;
}

/** How a notification goes wrong, for tests of the receiver. */
export interface NotifyFault {
  /** Signed over other bytes. */
  badSignature?: boolean;
  /** A WeChat probe signature (`WECHATPAY/SIGNTEST/…`). */
  probe?: boolean;
  /** Sealed with another APIv3 key. */
  wrongKey?: boolean;
  /** Timestamped this many ms ago. */
  ageMs?: number;
  /** The amount in the resource differs from the order's. */
  amountDelta?: number;
  /** Not sent at all (the receiver never hears of the payment). */
  drop?: boolean;
  /** Sent this many times (WeChat's repeats), one after the other. */
  repeat?: number;
  /** Sent this long after the tap is answered. */
  delayMs?: number;
}

export class PayInputError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** `2026-12-06T21:04:05+08:00`: WeChat Pay's times are Beijing time, RFC 3339. */
export function rfc3339(ms: number): string {
  return `${new Date(ms + 8 * 3600_000).toISOString().slice(0, 19)}+08:00`;
}

export class SandboxPay {
  readonly merchants = new Map<string, PayMerchant>();
  readonly orders = new Map<string, PayOrder>();
  readonly refunds = new Map<string, PayRefund>();
  /** 发货信息管理 state by `mchid:out_trade_no`. */
  readonly shipping = new Map<string, ShippingState>();
  readonly publicKeyMode: PlatformKey = makePublicKeyModeKey();
  private certificateMode: Promise<PlatformKey> | undefined;
  /** The next n answers carry a signature that does not verify. */
  badAnswerSignatures = 0;
  /** How long a refund stays PROCESSING before it completes by itself. */
  refundDelayMs = 50;
  /** Notification attempts made, newest last (for tests). */
  readonly sent: { url: string; eventType: string; status: number; body: string }[] = [];

  constructor(readonly now: () => number) {}

  certificate(): Promise<PlatformKey> {
    this.certificateMode ??= makeCertificateModeKey(this.now());
    return this.certificateMode;
  }

  keyFor(merchant: PayMerchant): Promise<PlatformKey> {
    return merchant.verification === 'certificate' ? this.certificate() : Promise.resolve(this.publicKeyMode);
  }

  registerMerchant(input: { mchid: string; serial: string; publicKey: string; apiV3Key: string; verification?: PayVerification }): void {
    if (!/^\d{6,12}$/.test(input.mchid)) throw new PayInputError(400, 'BAD_REQUEST', 'mchid: 6 to 12 digits');
    if (Buffer.byteLength(input.apiV3Key) !== 32) throw new PayInputError(400, 'BAD_REQUEST', 'apiV3Key must be 32 bytes');
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey(input.publicKey);
    } catch {
      throw new PayInputError(400, 'BAD_REQUEST', 'publicKey must be a PEM public key (or certificate)');
    }
    this.merchants.set(input.mchid, { mchid: input.mchid, serial: input.serial, publicKey, apiV3Key: input.apiV3Key, verification: input.verification ?? 'publicKey' });
  }

  /** The transaction as query and notifications show it. */
  transaction(order: PayOrder, amountDelta = 0): Record<string, unknown> {
    const paid = order.state === 'SUCCESS' || order.state === 'REFUND';
    return {
      appid: order.appid,
      mchid: order.mchid,
      out_trade_no: order.outTradeNo,
      ...(order.transactionId ? { transaction_id: order.transactionId } : {}),
      trade_type: paid ? 'JSAPI' : '',
      trade_state: order.state,
      trade_state_desc: { NOTPAY: '未支付', SUCCESS: '支付成功', CLOSED: '已关闭', REFUND: '转入退款' }[order.state],
      ...(paid ? { bank_type: 'OTHERS', success_time: rfc3339(order.successTime!) } : {}),
      ...(paid && order.attach !== undefined ? { attach: order.attach } : {}),
      payer: { openid: order.openid },
      amount: { total: order.total + amountDelta, ...(paid ? { payer_total: order.total + amountDelta } : {}), currency: 'CNY', payer_currency: 'CNY' },
    };
  }

  refundView(refund: PayRefund): Record<string, unknown> {
    return {
      refund_id: refund.refundId,
      out_refund_no: refund.outRefundNo,
      transaction_id: refund.transactionId,
      out_trade_no: refund.outTradeNo,
      channel: 'ORIGINAL',
      user_received_account: '支付用户零钱',
      create_time: rfc3339(refund.createdAt),
      ...(refund.successTime ? { success_time: rfc3339(refund.successTime) } : {}),
      status: refund.status,
      amount: { total: refund.total, refund: refund.refund, payer_total: refund.total, payer_refund: refund.refund, currency: 'CNY' },
    };
  }

  // ---- the API -------------------------------------------------------------------------------

  /** Checks the Authorization header; the merchant it names, or 401 SIGN_ERROR. */
  authenticate(method: string, target: string, body: string, header: string | undefined): PayMerchant {
    const fields = parseAuthorization(header);
    if (!fields) throw new PayInputError(401, 'SIGN_ERROR', 'Authorization 头缺失或格式错误 (expected WECHATPAY2-SHA256-RSA2048 …)');
    const merchant = this.merchants.get(fields.mchid ?? '');
    if (!merchant) throw new PayInputError(401, 'SIGN_ERROR', '商户号不存在 (mchid unknown to the sandbox)');
    if (fields.serial_no !== merchant.serial) throw new PayInputError(401, 'SIGN_ERROR', '证书序列号错误 (serial_no is not the merchant certificate)');
    const timestamp = Number(fields.timestamp);
    if (!Number.isInteger(timestamp) || Math.abs(this.now() - timestamp * 1000) > REQUEST_SKEW_MS) throw new PayInputError(401, 'SIGN_ERROR', '时间戳过期 (timestamp too far from now)');
    const message = `${method}\n${target}\n${fields.timestamp}\n${fields.nonce_str ?? ''}\n${body}\n`;
    if (!rsaVerify(merchant.publicKey, message, fields.signature ?? '')) throw new PayInputError(401, 'SIGN_ERROR', '签名错误 (the signature does not verify with the merchant key)');
    return merchant;
  }

  createJsapi(merchant: PayMerchant, body: Record<string, unknown>): { prepay_id: string } {
    const amount = body.amount as { total?: unknown } | undefined;
    const payer = body.payer as { openid?: unknown } | undefined;
    const need = (ok: boolean, what: string) => {
      if (!ok) throw new PayInputError(400, 'PARAM_ERROR', `参数错误: ${what}`);
    };
    need(body.mchid === merchant.mchid, 'mchid must be the caller');
    need(typeof body.appid === 'string' && /^wx[0-9a-zA-Z]{16}$/.test(body.appid), 'appid');
    need(typeof body.description === 'string' && body.description.length >= 1 && Buffer.byteLength(body.description) <= 127, 'description (1 to 127 bytes)');
    need(typeof body.out_trade_no === 'string' && /^[0-9A-Za-z_\-*|]{6,32}$/.test(body.out_trade_no), 'out_trade_no (6 to 32 of 0-9 a-z A-Z _-*|)');
    need(typeof body.notify_url === 'string' && /^https?:\/\/[^?#]+$/.test(body.notify_url), 'notify_url (a URL without parameters)');
    need(typeof amount?.total === 'number' && Number.isInteger(amount.total) && amount.total >= 1, 'amount.total (fen, at least 1)');
    need(typeof payer?.openid === 'string' && payer.openid.length > 0, 'payer.openid');
    need(body.attach === undefined || (typeof body.attach === 'string' && Buffer.byteLength(body.attach) <= 128), 'attach (at most 128 bytes)');
    const key = `${merchant.mchid}:${body.out_trade_no as string}`;
    const fingerprint = createHash('sha256').update(JSON.stringify([body.appid, body.description, amount!.total, payer!.openid, body.attach ?? null])).digest('hex');
    const existing = this.orders.get(key);
    if (existing) {
      if (existing.state === 'SUCCESS' || existing.state === 'REFUND') throw new PayInputError(403, 'ORDERPAID', '该订单已支付');
      if (existing.state === 'CLOSED') throw new PayInputError(400, 'ORDER_CLOSED', '订单已关闭');
      if (existing.fingerprint !== fingerprint) throw new PayInputError(403, 'OUT_TRADE_NO_USED', '商户订单号重复');
      existing.prepayId = prepayId(this.now());
      existing.prepayExpiresAt = this.now() + PREPAY_TTL_MS;
      existing.prepays.set(existing.prepayId, existing.prepayExpiresAt);
      return { prepay_id: existing.prepayId };
    }
    const order: PayOrder = {
      mchid: merchant.mchid,
      appid: body.appid as string,
      outTradeNo: body.out_trade_no as string,
      description: body.description as string,
      total: amount!.total as number,
      openid: payer!.openid as string,
      ...(typeof body.attach === 'string' ? { attach: body.attach } : {}),
      notifyUrl: body.notify_url as string,
      prepayId: prepayId(this.now()),
      prepayExpiresAt: this.now() + PREPAY_TTL_MS,
      fingerprint,
      state: 'NOTPAY',
      refunded: 0,
      prepays: new Map(),
    };
    order.prepays.set(order.prepayId, order.prepayExpiresAt);
    this.orders.set(key, order);
    return { prepay_id: order.prepayId };
  }

  order(mchid: string, outTradeNo: string): PayOrder {
    const order = this.orders.get(`${mchid}:${outTradeNo}`);
    if (!order) throw new PayInputError(404, 'ORDER_NOT_EXIST', '订单不存在');
    return order;
  }

  close(merchant: PayMerchant, outTradeNo: string): void {
    const order = this.order(merchant.mchid, outTradeNo);
    if (order.state === 'SUCCESS' || order.state === 'REFUND') throw new PayInputError(400, 'ORDERPAID', '订单已支付，不能关闭');
    order.state = 'CLOSED';
  }

  refund(merchant: PayMerchant, body: Record<string, unknown>): PayRefund {
    const amount = body.amount as { refund?: unknown; total?: unknown } | undefined;
    if (typeof body.out_refund_no !== 'string' || !/^[0-9A-Za-z_\-*|@]{1,64}$/.test(body.out_refund_no)) throw new PayInputError(400, 'PARAM_ERROR', '参数错误: out_refund_no');
    if (typeof body.out_trade_no !== 'string') throw new PayInputError(400, 'PARAM_ERROR', '参数错误: out_trade_no (or transaction_id)');
    const existing = this.refunds.get(`${merchant.mchid}:${body.out_refund_no}`);
    if (existing) return existing; // a retry with the same out_refund_no is the same refund
    const order = this.order(merchant.mchid, body.out_trade_no);
    if (order.state !== 'SUCCESS' && order.state !== 'REFUND') throw new PayInputError(400, 'INVALID_REQUEST', '订单未支付，不能退款');
    if (typeof amount?.refund !== 'number' || !Number.isInteger(amount.refund) || amount.refund < 1) throw new PayInputError(400, 'PARAM_ERROR', '参数错误: amount.refund');
    if (amount.total !== order.total) throw new PayInputError(400, 'PARAM_ERROR', '参数错误: amount.total 与原订单金额不符');
    if (order.refunded + amount.refund > order.total) throw new PayInputError(403, 'NOT_ENOUGH', '退款金额超过可退金额');
    const refund: PayRefund = {
      mchid: merchant.mchid,
      outRefundNo: body.out_refund_no,
      refundId: `50${Date.now()}${randomBytes(4).readUInt32BE() % 1e9}`.slice(0, 29),
      outTradeNo: order.outTradeNo,
      transactionId: order.transactionId!,
      refund: amount.refund,
      total: order.total,
      status: 'PROCESSING',
      createdAt: this.now(),
      ...(typeof body.notify_url === 'string' ? { notifyUrl: body.notify_url } : {}),
    };
    order.refunded += refund.refund;
    order.state = 'REFUND';
    this.refunds.set(`${merchant.mchid}:${refund.outRefundNo}`, refund);
    // Refunds to the user's change complete in moments; then REFUND.SUCCESS goes out.
    setTimeout(() => void this.completeRefund(merchant.mchid, refund.outRefundNo).catch(() => undefined), this.refundDelayMs).unref();
    return refund;
  }

  // ---- the user and the notifications ----------------------------------------------------------

  /**
   * The user taps 支付 in the cashier opened by wx.requestPayment: the parameters are checked
   * as WeChat's client does (paySign with the merchant's key over the four lines, a live
   * prepay_id of the same appid), the order becomes SUCCESS and the notification goes out.
   */
  async tap(input: { appId: string; timeStamp: string; nonceStr: string; package: string; signType: string; paySign: string }, fault: NotifyFault = {}) {
    const id = /^prepay_id=(.+)$/.exec(input.package)?.[1];
    const order = [...this.orders.values()].find((o) => id !== undefined && o.prepays.has(id));
    if (!order) throw new PayInputError(400, 'PREPAY_UNKNOWN', 'requestPayment:fail prepay_id 不存在');
    if (order.appid !== input.appId) throw new PayInputError(400, 'APPID_MISMATCH', 'requestPayment:fail appid 与下单 appid 不一致');
    if (this.now() > order.prepays.get(id!)!) throw new PayInputError(400, 'PREPAY_EXPIRED', 'requestPayment:fail prepay_id 已过期');
    if (input.signType !== 'RSA') throw new PayInputError(400, 'SIGN_TYPE', 'requestPayment:fail signType 只支持 RSA');
    const merchant = this.merchants.get(order.mchid)!;
    if (!rsaVerify(merchant.publicKey, `${input.appId}\n${input.timeStamp}\n${input.nonceStr}\n${input.package}\n`, input.paySign)) {
      throw new PayInputError(400, 'PAY_SIGN', 'requestPayment:fail 支付验证签名失败');
    }
    if (order.state !== 'NOTPAY') throw new PayInputError(400, 'ORDER_STATE', `requestPayment:fail 订单状态 ${order.state}`);
    order.state = 'SUCCESS';
    order.successTime = this.now();
    order.transactionId = `42000${String(this.now()).slice(-10)}${[...randomBytes(13)].map((b) => b % 10).join('')}`.slice(0, 28);
    return { transaction: this.transaction(order), attempts: await this.notify(merchant, order.notifyUrl, 'TRANSACTION.SUCCESS', 'transaction', '支付成功', this.transaction(order, fault.amountDelta ?? 0), fault) };
  }

  /** The refund completes: REFUND.SUCCESS to its notify_url (or the order's). */
  async completeRefund(mchid: string, outRefundNo: string, fault: NotifyFault = {}) {
    const refund = this.refunds.get(`${mchid}:${outRefundNo}`);
    if (!refund) throw new PayInputError(404, 'RESOURCE_NOT_EXISTS', '退款单不存在');
    refund.status = 'SUCCESS';
    refund.successTime = this.now();
    const order = this.order(mchid, refund.outTradeNo);
    const merchant = this.merchants.get(mchid)!;
    const resource = {
      mchid,
      out_trade_no: refund.outTradeNo,
      transaction_id: refund.transactionId,
      out_refund_no: refund.outRefundNo,
      refund_id: refund.refundId,
      refund_status: 'SUCCESS',
      success_time: rfc3339(refund.successTime),
      user_received_account: '支付用户零钱',
      amount: { total: refund.total, refund: refund.refund, payer_total: refund.total, payer_refund: refund.refund },
    };
    return this.notify(merchant, refund.notifyUrl ?? order.notifyUrl, 'REFUND.SUCCESS', 'refund', '退款成功', resource, fault);
  }

  /** Sends one notification (or its fault) and returns each attempt's answer. */
  async notify(merchant: PayMerchant, url: string, eventType: string, originalType: string, summary: string, resource: Record<string, unknown>, fault: NotifyFault) {
    if (fault.drop) return [];
    const apiV3Key = fault.wrongKey ? 'W'.repeat(32) : merchant.apiV3Key;
    const created = this.now() - (fault.ageMs ?? 0);
    const body = JSON.stringify({
      id: randomUUID(),
      create_time: rfc3339(created),
      resource_type: 'encrypt-resource',
      event_type: eventType,
      summary,
      resource: { original_type: originalType, ...sealResource(apiV3Key, JSON.stringify(resource), originalType) },
    });
    const key = await this.keyFor(merchant);
    const send = async () => {
      const attempts: { status: number; body: string }[] = [];
      for (let i = 0; i < Math.max(1, fault.repeat ?? 1); i++) {
        const headers = { 'content-type': 'application/json', ...signedHeaders(key, body, created, fault) };
        let answer = { status: 0, body: '' };
        try {
          const response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(NOTIFY_TIMEOUT_MS) });
          answer = { status: response.status, body: await response.text() };
        } catch (error) {
          answer = { status: 0, body: (error as Error).message };
        }
        this.sent.push({ url, eventType, ...answer });
        attempts.push(answer);
      }
      return attempts;
    };
    if (fault.delayMs) {
      setTimeout(() => void send(), fault.delayMs).unref();
      return [];
    }
    return send();
  }

  /** `GET /v3/certificates`: the platform certificate, sealed with the merchant's APIv3 key. */
  async certificates(merchant: PayMerchant) {
    const key = await this.certificate();
    return {
      data: [
        {
          serial_no: key.serial,
          effective_time: rfc3339(this.now() - 86_400_000),
          expire_time: rfc3339(this.now() + 5 * 365 * 86_400_000),
          encrypt_certificate: sealResource(merchant.apiV3Key, key.certificatePem!, 'certificate'),
        },
      ],
    };
  }
}

function prepayId(now: number): string {
  const stamp = rfc3339(now).slice(0, 19).replace(/\D/g, '');
  return `wx${stamp}${randomBytes(11).toString('hex')}`.slice(0, 36);
}

function randomUUID(): string {
  const b = randomBytes(16).toString('hex');
  return `${b.slice(0, 8)}-${b.slice(8, 12)}-${b.slice(12, 16)}-${b.slice(16, 20)}-${b.slice(20)}`;
}

/** Answers a /v3 call as WeChat Pay does: JSON signed by the platform key of the merchant's mode. */
async function answer(pay: SandboxPay, res: ServerResponse, merchant: PayMerchant | undefined, status: number, value: unknown): Promise<void> {
  const body = status === 204 ? '' : JSON.stringify(value);
  const headers: Record<string, string | number> = { 'content-length': Buffer.byteLength(body) };
  if (body) headers['content-type'] = 'application/json; charset=utf-8';
  if (merchant) {
    const bad = pay.badAnswerSignatures > 0;
    if (bad) pay.badAnswerSignatures--;
    Object.assign(headers, signedHeaders(await pay.keyFor(merchant), body, pay.now(), { badSignature: bad }));
  }
  res.writeHead(status, headers);
  res.end(body);
}

/** Handles `/v3/…`; the body is the raw bytes the signature covers. */
export async function handlePayApi(pay: SandboxPay, req: IncomingMessage, res: ServerResponse, url: URL, body: string): Promise<void> {
  const method = req.method ?? 'GET';
  const target = url.pathname + url.search;
  let merchant: PayMerchant | undefined;
  try {
    merchant = pay.authenticate(method, target, body, req.headers.authorization);
    const json = (): Record<string, unknown> => {
      try {
        const value: unknown = JSON.parse(body);
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
      } catch {
        // below
      }
      throw new PayInputError(400, 'PARAM_ERROR', '请求体不是 JSON 对象');
    };
    const path = url.pathname;
    let match: RegExpExecArray | null;
    if (method === 'POST' && path === '/v3/pay/transactions/jsapi') return answer(pay, res, merchant, 200, pay.createJsapi(merchant, json()));
    if (method === 'GET' && (match = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)$/.exec(path))) {
      if (url.searchParams.get('mchid') !== merchant.mchid) throw new PayInputError(400, 'PARAM_ERROR', '参数错误: mchid');
      return answer(pay, res, merchant, 200, pay.transaction(pay.order(merchant.mchid, decodeURIComponent(match[1]!))));
    }
    if (method === 'POST' && (match = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)\/close$/.exec(path))) {
      if (json().mchid !== merchant.mchid) throw new PayInputError(400, 'PARAM_ERROR', '参数错误: mchid');
      pay.close(merchant, decodeURIComponent(match[1]!));
      return answer(pay, res, merchant, 204, null);
    }
    if (method === 'POST' && path === '/v3/refund/domestic/refunds') return answer(pay, res, merchant, 200, pay.refundView(pay.refund(merchant, json())));
    if (method === 'GET' && (match = /^\/v3\/refund\/domestic\/refunds\/([^/]+)$/.exec(path))) {
      const refund = pay.refunds.get(`${merchant.mchid}:${decodeURIComponent(match[1]!)}`);
      if (!refund) throw new PayInputError(404, 'RESOURCE_NOT_EXISTS', '退款单不存在');
      return answer(pay, res, merchant, 200, pay.refundView(refund));
    }
    if (method === 'GET' && path === '/v3/certificates') return answer(pay, res, merchant, 200, await pay.certificates(merchant));
    throw new PayInputError(404, 'NOT_FOUND', `no WeChat Pay API ${method} ${path} in the sandbox`);
  } catch (error) {
    if (!(error instanceof PayInputError)) throw error;
    // A refused signature is answered unsigned (the caller's key is not known to be good).
    return answer(pay, res, error.status === 401 ? undefined : merchant, error.status, { code: error.code, message: error.message });
  }
}

export { nonce };

// ---- shipping info (发货信息管理, on api.weixin.qq.com with the app's access_token) -------------

/** order_state of 发货信息管理: 1 to ship, 2 shipped, 3 receipt confirmed, 4 done, 5 refunded. */
export interface ShippingState {
  orderState: number;
  uploads: Record<string, unknown>[];
}

/** errcodes of the shipping API (INFERRED from the docs' table: 10060001 no such payment, 10060003 shipped already and not editable). */
const SHIPPING_ORDER_UNKNOWN = 10060001;
const SHIPPING_DONE = 10060003;

export function shippingCall(pay: SandboxPay, path: string, appid: string, body: Record<string, unknown>): Record<string, unknown> {
  const key = (body.order_key ?? {}) as { order_number_type?: unknown; mchid?: unknown; out_trade_no?: unknown; transaction_id?: unknown };
  const find = (mchid: unknown, outTradeNo: unknown, transactionId?: unknown) =>
    [...pay.orders.values()].find((o) => o.appid === appid && ((o.mchid === mchid && o.outTradeNo === outTradeNo) || (transactionId !== undefined && o.transactionId === transactionId)));
  if (path === '/wxa/sec/order/upload_shipping_info') {
    const order = find(key.mchid, key.out_trade_no, key.order_number_type === 2 ? key.transaction_id : undefined);
    if (!order || order.state === 'NOTPAY' || order.state === 'CLOSED') return { errcode: SHIPPING_ORDER_UNKNOWN, errmsg: '支付单不存在' };
    if (![1, 2, 3, 4].includes(body.logistics_type as number)) return { errcode: 47003, errmsg: 'argument invalid! logistics_type' };
    if (!Array.isArray(body.shipping_list) || body.shipping_list.length === 0 || body.shipping_list.length > 10) return { errcode: 47003, errmsg: 'argument invalid! shipping_list' };
    if ((body.payer as { openid?: unknown } | undefined)?.openid !== order.openid) return { errcode: 47003, errmsg: 'argument invalid! payer.openid' };
    const state = pay.shipping.get(`${order.mchid}:${order.outTradeNo}`) ?? { orderState: 1, uploads: [] };
    if (state.orderState >= 3) return { errcode: SHIPPING_DONE, errmsg: '订单已确认收货，不能修改发货信息' };
    state.orderState = 2;
    state.uploads.push(body);
    pay.shipping.set(`${order.mchid}:${order.outTradeNo}`, state);
    return { errcode: 0, errmsg: 'ok' };
  }
  // /wxa/sec/order/get_order
  const order = find(body.merchant_id, body.merchant_trade_no, body.transaction_id);
  if (!order) return { errcode: SHIPPING_ORDER_UNKNOWN, errmsg: '支付单不存在' };
  const state = pay.shipping.get(`${order.mchid}:${order.outTradeNo}`);
  return {
    errcode: 0,
    errmsg: 'ok',
    order: {
      transaction_id: order.transactionId ?? '',
      merchant_id: order.mchid,
      merchant_trade_no: order.outTradeNo,
      description: order.description,
      paid_amount: order.total,
      openid: order.openid,
      order_state: order.state === 'REFUND' ? 5 : (state?.orderState ?? 1),
      ...(state?.uploads.length ? { shipping: state.uploads.at(-1) } : {}),
    },
  };
}
