/**
 * Calls to WeChat Pay v3 for one merchant: signed (Authorization), JSON both ways, and each answer
 * verified before it is believed. An answer that does not verify is not evidence of anything —
 * PayUnverified tells the caller to find out another way (query), never to report failure.
 */
import { AppError, type Clock, type Logger } from '../core/index.js';
import { authorization } from './crypto.js';
import type { Merchant } from './merchants.js';
import { apiLabel, type PayMetrics } from './metrics.js';
import { signedHeadersOf } from './verifier.js';

const USER_AGENT = 'minigate (WeChat Pay v3)';
/** WeChat Pay answers are small; anything bigger is not an answer of theirs. */
const ANSWER_LIMIT_BYTES = 1 << 20;

/** The answer came but its signature did not verify (or it carried none). */
export class PayUnverified extends Error {
  constructor(readonly status: number) {
    super(`WeChat Pay's answer (HTTP ${status}) did not verify`);
  }
}

export interface PayAnswer {
  status: number;
  body: Record<string, unknown>;
}

export interface PayApi {
  /** A signed call; a verified answer (2xx), or AppError for a verified refusal, PayUnverified, PAY_UNAVAILABLE. */
  call(merchant: Merchant, method: 'GET' | 'POST', path: string, body?: unknown): Promise<PayAnswer>;
}

/** WeChat Pay's refusal codes that minigate answers with a code of its own. */
const REFUSALS: Record<string, 'PAY_ORDER_UNKNOWN' | 'PAY_ORDER_PAID' | 'PAY_ORDER_CLOSED' | 'PAY_ORDER_CONFLICT' | 'PAY_REFUND_UNKNOWN'> = {
  ORDER_NOT_EXIST: 'PAY_ORDER_UNKNOWN',
  ORDERNOTEXIST: 'PAY_ORDER_UNKNOWN',
  ORDERPAID: 'PAY_ORDER_PAID',
  ORDER_CLOSED: 'PAY_ORDER_CLOSED',
  ORDERCLOSED: 'PAY_ORDER_CLOSED',
  OUT_TRADE_NO_USED: 'PAY_ORDER_CONFLICT',
  RESOURCE_NOT_EXISTS: 'PAY_REFUND_UNKNOWN',
};

export function createPayApi(deps: { apiBase: string; timeoutMs: number; clock: Clock; logger: Logger; metrics?: PayMetrics; fetch?: typeof fetch }): PayApi {
  const base = deps.apiBase.replace(/\/+$/, '');
  const doFetch = deps.fetch ?? fetch;
  return {
    async call(merchant, method, path, payload) {
      const count = (outcome: Parameters<PayMetrics['call']>[1]) => deps.metrics?.call(apiLabel(method, path), outcome);
      const body = payload === undefined ? '' : JSON.stringify(payload);
      const headers: Record<string, string> = {
        accept: 'application/json',
        'user-agent': USER_AGENT,
        authorization: authorization({ mchid: merchant.mchid, serial: merchant.serial, key: merchant.privateKey, method, target: path, body, nowMs: deps.clock.now() }),
      };
      if (body) headers['content-type'] = 'application/json';
      let response: Response;
      let text: string;
      try {
        response = await doFetch(base + path, { method, headers, ...(body ? { body } : {}), redirect: 'manual', signal: AbortSignal.timeout(deps.timeoutMs) });
        text = await response.text();
      } catch (error) {
        const e = error as Error & { cause?: { code?: string } };
        deps.logger.warn({ mchid: merchant.mchid, path: path.split('?')[0], err: e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.message) }, 'pay: WeChat Pay did not answer');
        count('unavailable');
        throw new AppError('PAY_UNAVAILABLE', { cause: error });
      }
      if (Buffer.byteLength(text) > ANSWER_LIMIT_BYTES) {
        count('unverified');
        throw new PayUnverified(response.status);
      }
      const outcome = merchant.verifier.verify(signedHeadersOf((name) => response.headers.get(name)), text, deps.clock.now());
      if (outcome !== 'ok') {
        if (response.status === 401) {
          // An unsigned 401 is most often WeChat Pay refusing our own signature: say what to check.
          deps.logger.error({ mchid: merchant.mchid, path: path.split('?')[0], status: 401, answer: text.slice(0, 200) }, 'pay: WeChat Pay answered 401 (SIGN_ERROR?): check pay.merchants[].privateKey, serial and mchid, and this server\'s clock');
        } else {
          deps.logger.warn({ mchid: merchant.mchid, path: path.split('?')[0], status: response.status, outcome }, 'pay: an answer of WeChat Pay did not verify');
        }
        count('unverified');
        throw new PayUnverified(response.status);
      }
      let parsed: Record<string, unknown> = {};
      if (text) {
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          count('unverified');
          throw new PayUnverified(response.status);
        }
      }
      if (response.status >= 200 && response.status < 300) {
        count('ok');
        return { status: response.status, body: parsed };
      }
      count(response.status >= 500 ? 'unavailable' : 'refused');
      const code = typeof parsed.code === 'string' ? parsed.code : `HTTP_${response.status}`;
      const message = typeof parsed.message === 'string' ? parsed.message.slice(0, 200) : '';
      deps.logger.warn({ mchid: merchant.mchid, path: path.split('?')[0], status: response.status, code }, 'pay: WeChat Pay refused a call');
      if (REFUSALS[code]) throw new AppError(REFUSALS[code], { details: { wechatpay: code } });
      if (response.status >= 500 || code === 'SYSTEM_ERROR' || code === 'FREQUENCY_LIMITED') throw new AppError('PAY_UNAVAILABLE', { details: { wechatpay: code } });
      throw new AppError('PAY_REFUSED', { message: `WeChat Pay refused the call: ${code}${message ? ` (${message})` : ''}.`, details: { wechatpay: code } });
    },
  };
}
