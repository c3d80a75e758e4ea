import type { Config } from '../config/index.js';
import { every, type AppError, type CounterSamples, type SharedRedis } from '../core/index.js';
import { createSecretBox } from '../auth/index.js';
import type { Feature, SharedDeps } from '../feature/index.js';
import { routeTo, type HttpContext, type Router } from '../http/index.js';
import type { Store } from '../store/index.js';
import { createAdminApi } from './api.js';
import { createConsoleSessions } from './console-session.js';
import { createInstanceList } from './instances.js';
import { createLoginDelay } from './login-delay.js';
import { decoyHash, verifyPassword } from './password.js';
import { createAdminRecords } from './records.js';
import { createSampler, type TrafficSource } from './sampler.js';
import { readTraffic } from './traffic.js';
import { createAdminServices, type AdminServiceDeps } from './services.js';
import { createTotpCheck } from './totp.js';
import { CONSOLE_HEADERS, loadConsoleUi } from './ui.js';

export const ADMIN_PURGE_INTERVAL_MS = 3_600_000;

export interface AdminFeatureDeps extends SharedDeps, Omit<AdminServiceDeps, 'config' | 'clock' | 'startedAt' | 'instances'> {
  store: Store;
  secretKey: Buffer;
  redis?: SharedRedis | undefined;
  /**
   * The metrics registry's samples, for the charts (read every 10 s); absent with metrics off.
   * `inWorker`: the samples are this worker's share of a `workers` group.
   */
  metricSamples?: { samples: CounterSamples; inWorker: boolean } | undefined;
  version: string;
}

export interface AdminFeature extends Feature {
  /** What the edge serves under admin.path (before the internal bearer check). */
  readonly console: { path: string; public: boolean; handle: (ctx: HttpContext, rest: string) => Promise<void>; api: Router };
}

/** The admin console (admin.enabled): its page, its JSON API, its sessions, the audit log and their purges. */
export function createAdminFeature(config: Config, deps: AdminFeatureDeps): AdminFeature {
  const { clock, logger, store } = deps;
  const admin = config.admin;
  const records = createAdminRecords(store);
  const startedAt = clock.now();
  const instanceList = deps.redis ? createInstanceList(deps.redis, startedAt, () => clock.now()) : undefined;
  const services = createAdminServices({ ...deps, config, clock, startedAt, ...(instanceList ? { instances: instanceList.list } : {}) });
  const box = createSecretBox(deps.secretKey, 'admin totp');
  const totp = createTotpCheck(() => clock.now());
  const source = deps.metricSamples;
  const traffic: TrafficSource = !source ? 'off' : source.inWorker ? 'worker' : 'process';
  const sampler = createSampler(() => readTraffic(source!.samples), () => clock.now());

  async function authenticate(name: string, password: string, code: string | undefined): Promise<boolean> {
    const user = await records.getUser(name);
    // An unknown name costs what a wrong password costs.
    const passwordOk = await verifyPassword(password, user?.passwordHash ?? (await decoyHash()));
    if (!user || !passwordOk) return false;
    if (user.totpSecret === null) return true;
    const secret = box.open(user.totpSecret);
    if (secret === null) {
      logger.error({ admin: name }, 'admin: the TOTP secret does not open with this secret key');
      return false;
    }
    return totp(name, secret, code);
  }

  const api = createAdminApi({
    config,
    records,
    consoleSessions: createConsoleSessions({ records, clock, path: admin.path, idleMs: admin.sessionIdle }),
    loginDelay: createLoginDelay(),
    authenticate,
    services,
    sampler,
    traffic,
    clock,
    logger,
    startedAt,
    version: deps.version,
  });
  const ui = loadConsoleUi();
  const stops: (() => void)[] = [];

  return {
    name: 'admin',
    console: {
      path: admin.path,
      public: admin.public,
      api,
      async handle(ctx, rest) {
        if (rest.startsWith('/api/')) {
          for (const [name, value] of Object.entries(CONSOLE_HEADERS)) ctx.res.setHeader(name, value);
          await routeTo(api, ctx, rest.slice('/api'.length));
          return;
        }
        ui.serve(ctx, rest);
      },
    },
    async start() {
      // Made now, so that the first login with an unknown name takes no longer than later ones.
      await decoyHash();
      if (source) {
        sampler.start();
        stops.push(() => sampler.stop());
      }
      instanceList?.start();
      const warn = (what: string) => (error: unknown) => logger.warn({ code: (error as AppError).code }, `admin: ${what} failed`);
      stops.push(
        every(
          ADMIN_PURGE_INTERVAL_MS,
          async () => {
            const now = clock.now();
            const audit = await records.purgeAudit(now - admin.auditRetention);
            const sessions = await records.purgeSessions(now - admin.sessionIdle);
            const cleared = await records.clearClientInfo(now - admin.clientInfoRetention);
            if (audit || cleared) logger.info({ audit, sessions, clientInfo: cleared }, 'admin: purged old audit entries and client information');
          },
          warn('purge'),
        ),
      );
    },
    async close() {
      for (const stop of stops.splice(0)) stop();
      await instanceList?.stop();
    },
  };
}
