import cluster from 'node:cluster';
import type { Config } from '../config/index.js';
import type { Feature, SharedDeps } from '../feature/index.js';
import { CHECK_TIMEOUT_MS, runChecks } from './checks.js';
import { configuredUrls, registerCheckRoutes } from './routes.js';

/** How long after start the served domains are checked (ACME and DNS may need the moment). */
export const DOMAIN_CHECK_DELAY_MS = 30_000;

/** POST /v1/check on the internal API, and one check of the served domains after start (tls.checkDomains). */
export function createDoctorFeature(config: Config, deps: Pick<SharedDeps, 'logger'>): Feature {
  const { logger } = deps;
  let timer: NodeJS.Timeout | undefined;
  return {
    name: 'doctor',
    internalRoutes: registerCheckRoutes,
    async start() {
      // WeChat's rules for the served domains, once, after ACME and DNS have had a moment (one worker does it).
      const domains = config.tls.checkDomains && (!cluster.isWorker || cluster.worker?.id === 1) ? configuredUrls(config) : [];
      if (!domains.length) return;
      timer = setTimeout(() => {
        runChecks(domains, { timeoutMs: CHECK_TIMEOUT_MS, ca: [], resolve: new Map() })
          .then((report) => {
            for (const r of report.results) {
              const bad = r.checks.filter((c) => c.verdict === 'fail' || c.verdict === 'warn');
              for (const c of bad) logger.warn({ url: r.url, check: c.id, detail: c.detail, fix: c.fix }, `check: ${c.title} ${c.verdict}s for ${r.url}`);
              if (!bad.length) logger.info({ url: r.url }, 'check: the domain passes WeChat\'s server-domain rules');
            }
          })
          .catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'check: could not run'));
      }, DOMAIN_CHECK_DELAY_MS);
      timer.unref();
    },
    async close() {
      clearTimeout(timer);
    },
  };
}
