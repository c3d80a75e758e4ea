/**
 * WeChat Pay as a feature (docs/pay.md): the merchants' keys loaded and checked at start, the
 * platform certificates downloaded (certificate mode) and refreshed, the internal API for orders
 * and refunds, the public notification receiver, one outbox kind per merchant (its webhook), and
 * the reconciliation, which one instance at a time (by lock) asks WeChat about open orders whose
 * notification never came.
 */
import { randomBytes } from 'node:crypto';
import type { SessionService } from '../auth/index.js';
import type { Config } from '../config/index.js';
import { every, type AppError } from '../core/index.js';
import { StartError, type Feature, type SharedDeps } from '../feature/index.js';
import type { Router } from '../http/index.js';
import type { Gateway } from '../gateway/index.js';
import type { Outbox } from '../outbox/index.js';
import type { Store } from '../store/index.js';
import { createPayApi, type PayApi } from './api.js';
import { openResource } from './crypto.js';
import { loadMerchant, payConfigIssues, type Merchant } from './merchants.js';
import { payMetrics } from './metrics.js';
import { createNotifyService } from './notify.js';
import { createPayRecords } from './records.js';
import { registerPayRoutes } from './routes.js';
import { createPayService, payKind } from './service.js';
import { createShipping } from './shipping.js';

export const CERTIFICATE_REFRESH_MS = 12 * 3600_000;
/** Notification ids are kept this long (WeChat repeats one over about a day). */
export const NOTIFICATION_KEEP_MS = 3 * 86_400_000;
/** Orders older than this are left to the business service's own queries. */
const RECONCILE_HORIZON_MS = 86_400_000;
const RECONCILE_BATCH = 50;
const RECONCILE_LOCK = 'pay:reconcile';

export interface PayFeatureDeps extends SharedDeps {
  store: Store;
  outbox: Outbox;
  sessions: SessionService;
  /** The token gateway: shipping info goes to api.weixin.qq.com with the app's access_token. */
  gateway: Gateway;
  /** Tests shorten it; default: a minute, or pay.reconcileAfter when shorter. */
  reconcileIntervalMs?: number;
}

export interface PayFeature extends Feature {
  /** One reconciliation pass now (tests, the console); how many orders it asked about. */
  reconcile(): Promise<number>;
}

/** Downloads /v3/certificates: each is opened with the APIv3 key, which proves it WeChat's; then the answer's signature is checked with them. */
async function downloadCertificates(api: PayApi, merchant: Merchant, logger: SharedDeps['logger']): Promise<void> {
  const { PayUnverified } = await import('./api.js');
  // The answer is signed by a certificate in it: verification can only follow the opening.
  const probe = { ...merchant, verifier: { ...merchant.verifier, verify: () => 'ok' as const } };
  let answer: Awaited<ReturnType<PayApi['call']>>;
  try {
    answer = await api.call(probe, 'GET', '/v3/certificates');
  } catch (error) {
    if (error instanceof PayUnverified) throw new Error('the certificate list did not come back');
    throw error;
  }
  const pems: string[] = [];
  for (const item of (answer.body.data ?? []) as { encrypt_certificate?: Record<string, unknown> }[]) {
    const pem = openResource(merchant.apiV3Key, item.encrypt_certificate ?? {});
    if (pem === null) throw new Error('a platform certificate did not open with the APIv3 key (check apiV3Key)');
    pems.push(pem);
  }
  merchant.verifier.addCertificates(pems);
  logger.info({ mchid: merchant.mchid, certificates: pems.length }, 'pay: platform certificates loaded');
}

export function createPayFeature(config: Config, deps: PayFeatureDeps): PayFeature | undefined {
  const pay = config.pay;
  if (!pay) return undefined;
  const { apps, clock, logger, store, outbox } = deps;
  const merchants = new Map<string, Merchant>();
  // Keys that do not load are reported by validate(), which the root calls before start (and
  // which closes what started); made here, the feature would throw outside that walk.
  const issues = payConfigIssues(config);
  if (!issues.length) for (const m of pay.merchants) merchants.set(m.mchid, loadMerchant(m));
  const metrics = payMetrics(deps.metrics);
  const api = createPayApi({ apiBase: pay.apiBase, timeoutMs: pay.timeout, clock, logger, metrics });
  const records = createPayRecords(store);
  const service = createPayService({ merchants, api, records, outbox, sessions: deps.sessions, clock, logger, notifyBase: pay.notifyBase, mchidRequired: pay.mchidRequired });
  // Each merchant's events go to its webhook; registered now, before the outbox starts.
  for (const merchant of merchants.values()) {
    outbox.target(payKind(merchant.mchid), () => (merchant.webhook ? { url: merchant.webhook, secret: config.upstreamSecret } : null), { idHeader: 'x-minigate-event-id' });
  }
  const lastRefresh = new Map<string, number>();
  const refreshCertificates = async (merchant: Merchant) => {
    // At most once a minute per merchant: a flood of unknown serials must not become a flood of downloads.
    if (clock.now() - (lastRefresh.get(merchant.mchid) ?? 0) < 60_000) return;
    lastRefresh.set(merchant.mchid, clock.now());
    await downloadCertificates(api, merchant, logger);
  };
  const notify = createNotifyService({ merchants, records, service, clock, logger, metrics, refreshCertificates });
  const owner = randomBytes(8).toString('hex');
  const reconcileAfter = pay.reconcileAfter;

  async function reconcile(): Promise<number> {
    if (!(await store.lockAcquire(RECONCILE_LOCK, owner, 5 * 60_000, clock.now()))) return 0;
    try {
      const now = clock.now();
      const open = await records.openOrders(now - RECONCILE_HORIZON_MS, now - reconcileAfter, RECONCILE_BATCH);
      for (const row of open.filter((o) => o.prepay_id !== null)) {
        try {
          const state = await service.reconcile(row);
          if (state !== row.state) logger.info({ mchid: row.mchid, outTradeNo: row.out_trade_no, state }, 'pay: reconciliation settled an order');
        } catch (error) {
          logger.warn({ mchid: row.mchid, outTradeNo: row.out_trade_no, code: (error as AppError).code }, 'pay: reconciliation could not ask about an order');
        }
      }
      return open.length;
    } finally {
      await store.lockRelease(RECONCILE_LOCK, owner).catch(() => undefined);
    }
  }

  const stops: (() => void)[] = [];
  return {
    name: 'pay',
    reconcile,
    validate() {
      if (issues.length) throw new StartError(`pay: ${issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    },
    services: () => [notify],
    internalRoutes: (router: Router) => registerPayRoutes(router, { apps, service, shipping: createShipping({ gateway: deps.gateway, records, clock }) }),
    async start() {
      for (const merchant of merchants.values()) {
        if (!merchant.certificates) continue;
        try {
          await downloadCertificates(api, merchant, logger);
        } catch (error) {
          // With a public key as well, the merchant still works; without one, it cannot verify anything.
          if (!pay.merchants.find((m) => m.mchid === merchant.mchid)?.publicKeyId) throw new StartError(`pay: merchant ${merchant.mchid}: platform certificates could not be downloaded (${(error as Error).message})`, { cause: error });
          logger.warn({ mchid: merchant.mchid, err: (error as Error).message }, 'pay: platform certificates could not be downloaded; the public key verifies meanwhile');
        }
      }
      stops.push(
        every(
          CERTIFICATE_REFRESH_MS,
          async () => {
            for (const merchant of merchants.values()) if (merchant.certificates) await downloadCertificates(api, merchant, logger);
          },
          (error) => logger.warn({ err: (error as Error).message }, 'pay: certificate refresh failed'),
        ),
        every(deps.reconcileIntervalMs ?? Math.min(60_000, reconcileAfter), reconcile, (error) => logger.warn({ code: (error as AppError).code }, 'pay: reconciliation failed')),
        every(3600_000, () => records.purgeSeen(clock.now() - NOTIFICATION_KEEP_MS), (error) => logger.warn({ code: (error as AppError).code }, 'pay: purge failed')),
      );
    },
    async close() {
      for (const stop of stops.splice(0)) stop();
    },
  };
}
