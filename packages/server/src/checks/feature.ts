/**
 * Content checks for a user (docs/internal-api.md, content checks): the text check by session, and the media check
 * whose verdict arrives by push and goes to the app's webhook through the outbox. Registers the
 * `media_check` kind (apps[].push.webhook) when made, before the outbox starts.
 */
import type { Config } from '../config/index.js';
import { every, type AppError } from '../core/index.js';
import type { SessionService } from '../auth/index.js';
import type { Feature, SharedDeps } from '../feature/index.js';
import type { Gateway } from '../gateway/index.js';
import type { Router } from '../http/index.js';
import type { Outbox } from '../outbox/index.js';
import type { Store } from '../store/index.js';
import { createContentChecks, MEDIA_CHECK_KEEP_MS, MEDIA_CHECK_KIND, type ContentChecks } from './checks.js';
import { createMediaCheckRecords } from './records.js';
import { registerCheckRoutes } from './routes.js';

export const MEDIA_CHECK_PURGE_INTERVAL_MS = 3_600_000;

export interface ChecksFeature extends Feature {
  readonly checks: ContentChecks;
}

export function createChecksFeature(
  config: Pick<Config, 'upstreamSecret'>,
  deps: Pick<SharedDeps, 'apps' | 'clock' | 'logger'> & { store: Store; gateway: Gateway; sessions: SessionService; outbox: Outbox },
): ChecksFeature {
  const { apps, clock, logger, outbox } = deps;
  const records = createMediaCheckRecords(deps.store);
  const checks = createContentChecks({ gateway: deps.gateway, sessions: deps.sessions, outbox, records, clock, logger });
  outbox.target(
    MEDIA_CHECK_KIND,
    (appid) => {
      const webhook = apps.get(appid)?.push?.webhook;
      return webhook ? { url: webhook, secret: config.upstreamSecret } : null;
    },
    { idHeader: 'x-minigate-event-id' },
  );
  let stopPurge: (() => void) | undefined;
  return {
    name: 'checks',
    checks,
    internalRoutes: (router: Router) => registerCheckRoutes(router, { apps, checks }),
    async start() {
      stopPurge = every(
        MEDIA_CHECK_PURGE_INTERVAL_MS,
        async () => {
          const n = await records.purge(clock.now() - MEDIA_CHECK_KEEP_MS);
          if (n) logger.info({ deleted: n }, 'checks: purged media checks that got no result');
        },
        (error) => logger.warn({ code: (error as AppError).code }, 'checks: purge failed'),
      );
    },
    async close() {
      stopPurge?.();
    },
  };
}
