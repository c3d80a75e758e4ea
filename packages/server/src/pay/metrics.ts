/**
 * WeChat Pay's metric families (docs/metrics.md): calls to WeChat Pay by API and outcome, and
 * notifications by outcome. Labels are a handful of fixed words: never an order number, a user or an
 * amount. (The outbox's deliveries carry the kind `pay.m<mchid>`: as many as merchants configured.)
 */
import { NO_METRICS, type Metrics } from '../core/index.js';

export type PayCallOutcome = 'ok' | 'refused' | 'unverified' | 'unavailable';
export type NotifyOutcome = 'taken' | 'repeat' | 'signature' | 'stale' | 'decrypt' | 'mismatch' | 'bad';

export interface PayMetrics {
  call(api: string, outcome: PayCallOutcome): void;
  notification(outcome: NotifyOutcome): void;
}

/** The API a path is, as a label: jsapi, query, close, refund, refund_query, certificates, other. */
export function apiLabel(method: string, path: string): string {
  const p = path.split('?')[0]!;
  if (p === '/v3/pay/transactions/jsapi') return 'jsapi';
  if (/^\/v3\/pay\/transactions\/out-trade-no\/[^/]+\/close$/.test(p)) return 'close';
  if (p.startsWith('/v3/pay/transactions/out-trade-no/')) return 'query';
  if (p === '/v3/refund/domestic/refunds') return method === 'POST' ? 'refund' : 'other';
  if (p.startsWith('/v3/refund/domestic/refunds/')) return 'refund_query';
  if (p === '/v3/certificates') return 'certificates';
  return 'other';
}

export function payMetrics(metrics: Metrics = NO_METRICS): PayMetrics {
  const calls = metrics.counter('minigate_pay_calls_total', 'Calls to WeChat Pay by API and outcome (ok, refused: a verified refusal, unverified: an answer whose signature failed, unavailable: no answer).', ['api', 'outcome']);
  const notifications = metrics.counter('minigate_pay_notifications_total', 'WeChat Pay notifications by outcome (taken, repeat, or refused: signature, stale, decrypt, mismatch, bad).', ['outcome']);
  return {
    call: (api, outcome) => calls.bind({ api, outcome }).inc(),
    notification: (outcome) => notifications.bind({ outcome }).inc(),
  };
}
