/**
 * `POST /pay/notify/:mchid`: WeChat Pay's notifications (docs/pay.md). Verified (signature over
 * `Wechatpay-Timestamp\nWechatpay-Nonce\nbody\n` with the key `Wechatpay-Serial` names, within
 * 5 minutes, never a probe), opened (AEAD_AES_256_GCM with the APIv3 key), checked against the
 * stored order (mchid, appid, amount), recorded by id, and answered 204 in WeChat's 5 seconds —
 * the webhook gets the event later, from the outbox. Anything refused is answered 4xx so that
 * WeChat (for a real notification) sends it again.
 */
import { AppError, type Clock, type Logger } from '../core/index.js';
import { readBody, Router, type HttpContext, type Service } from '../http/index.js';
import { openResource } from './crypto.js';
import type { Merchant } from './merchants.js';
import type { NotifyOutcome, PayMetrics } from './metrics.js';
import type { PayRecords } from './records.js';
import { operations } from './schemas.js';
import type { PayService } from './service.js';
import { signedHeadersOf } from './verifier.js';

export const NOTIFY_BODY_LIMIT_BYTES = 64 * 1024;
/** Work on a notification past this is cut short: WeChat wants its answer within 5 s. */
export const NOTIFY_DEADLINE_MS = 4_000;

export interface NotifyDeps {
  merchants: ReadonlyMap<string, Merchant>;
  records: PayRecords;
  service: PayService;
  clock: Clock;
  logger: Logger;
  metrics: PayMetrics;
  /** Downloads the platform certificates again (an unknown serial in certificate mode). */
  refreshCertificates(merchant: Merchant): Promise<void>;
}

const mismatch = (what: string) => new AppError('PAY_NOTIFY_MISMATCH', { message: `The notification does not match the stored order: ${what}.` });

export function createNotifyService(deps: NotifyDeps): Service {
  const { merchants, records, service, clock, logger } = deps;
  const router = new Router();

  async function take(merchant: Merchant, body: string): Promise<void> {
    let envelope: Record<string, unknown>;
    try {
      envelope = JSON.parse(body) as Record<string, unknown>;
    } catch {
      throw new AppError('BAD_REQUEST', { message: 'The notification is not JSON.' });
    }
    if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) throw new AppError('BAD_REQUEST', { message: 'The notification is not a JSON object.' });
    const id = typeof envelope.id === 'string' ? envelope.id.slice(0, 64) : '';
    const eventType = typeof envelope.event_type === 'string' ? envelope.event_type.slice(0, 64) : '';
    const plaintext = openResource(merchant.apiV3Key, (envelope.resource ?? {}) as Record<string, unknown>);
    if (plaintext === null) throw new AppError('PAY_DECRYPT_FAILED');
    let resource: Record<string, unknown>;
    try {
      resource = JSON.parse(plaintext) as Record<string, unknown>;
    } catch {
      throw new AppError('PAY_DECRYPT_FAILED', { message: 'The notification resource opened but is not JSON.' });
    }
    if (typeof resource !== 'object' || resource === null) throw new AppError('PAY_DECRYPT_FAILED', { message: 'The notification resource is not an object.' });
    if (resource.mchid !== merchant.mchid) throw mismatch('mchid');
    if (eventType.startsWith('TRANSACTION.')) {
      const order = await records.order(merchant.mchid, String(resource.out_trade_no ?? ''));
      if (!order) throw mismatch('no such out_trade_no');
      if (resource.appid !== order.appid) throw mismatch('appid');
      if ((resource.amount as { total?: unknown } | undefined)?.total !== order.amount) throw mismatch('amount');
      await service.settle(order, resource, 'notification');
    } else if (eventType.startsWith('REFUND.')) {
      const refund = await records.refund(merchant.mchid, String(resource.out_refund_no ?? ''));
      if (!refund || refund.out_trade_no !== resource.out_trade_no) throw mismatch('no such out_refund_no');
      if ((resource.amount as { refund?: unknown } | undefined)?.refund !== refund.amount) throw mismatch('refund amount');
      await service.settleRefund(refund, resource);
    } else {
      logger.info({ mchid: merchant.mchid, eventType }, 'pay: a notification of a kind minigate does not act on; taken');
    }
    const first = id ? await records.seen(merchant.mchid, id, eventType, clock.now()) : true;
    deps.metrics.notification(first ? 'taken' : 'repeat');
    logger.info({ mchid: merchant.mchid, eventType, notification: id, repeat: !first }, first ? 'pay: notification taken' : 'pay: notification repeat');
  }

  /** The outcome label of a refusal. */
  const refused = (error: unknown): NotifyOutcome => {
    const code = (error as AppError).code;
    if (code === 'PAY_SIGNATURE_INVALID') return 'signature';
    if (code === 'PAY_NOTIFY_STALE') return 'stale';
    if (code === 'PAY_DECRYPT_FAILED') return 'decrypt';
    if (code === 'PAY_NOTIFY_MISMATCH') return 'mismatch';
    return 'bad';
  };

  router.route('POST', '/:mchid', operations.notify, async (ctx) => {
    try {
      await receive(ctx);
    } catch (error) {
      if (error instanceof AppError && error.code !== 'PAY_UNAVAILABLE') deps.metrics.notification(refused(error));
      throw error;
    }
  });

  async function receive(ctx: HttpContext): Promise<void> {
    const merchant = merchants.get(ctx.params.mchid ?? '');
    if (!merchant) throw new AppError('PAY_NOT_CONFIGURED');
    const body = (await readBody(ctx.req, NOTIFY_BODY_LIMIT_BYTES)).toString('utf8');
    const headers = signedHeadersOf((name) => {
      const value = ctx.req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    });
    let outcome = merchant.verifier.verify(headers, body, clock.now());
    if (outcome === 'unknown-serial' && merchant.certificates) {
      // WeChat may have rotated its certificate: fetch the list once and look again.
      await deps.refreshCertificates(merchant).catch(() => undefined);
      outcome = merchant.verifier.verify(headers, body, clock.now());
    }
    if (outcome !== 'ok') {
      logger.warn({ mchid: merchant.mchid, outcome, serial: headers.serial.slice(0, 64) }, 'pay: notification refused');
      throw new AppError(outcome === 'stale' ? 'PAY_NOTIFY_STALE' : 'PAY_SIGNATURE_INVALID');
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AppError('PAY_UNAVAILABLE')), NOTIFY_DEADLINE_MS);
    });
    try {
      await Promise.race([take(merchant, body), deadline]);
    } finally {
      clearTimeout(timer);
    }
    ctx.res.writeHead(204);
    ctx.res.end();
  }

  return { name: 'pay', defaultPath: '/pay/notify', router, plainHttp: true };
}
