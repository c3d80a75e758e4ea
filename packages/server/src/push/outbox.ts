/**
 * Delivers queued pushes to each app's webhook (`apps[].push.webhook`), away from WeChat's
 * request: the receiver has already answered `success` by the time this runs.
 *
 * Every instance runs a worker; a delivery is claimed in the database (a lease on its
 * next_attempt_at) before it is sent, so two instances never send it at the same time, and a
 * claim left by a process that died is taken over when its lease ends. Delivery is at least
 * once: the webhook should drop repeats by X-Minigate-Push-Id (a 2xx that arrives after our
 * timeout is retried), and in no set order.
 */
import type { AppConfig } from '../config/index.js';
import { signedHeaders, type Clock, type Logger } from '../core/index.js';
import type { OutboxEntry, Store } from '../store/index.js';
import type { PushEvent } from './receiver.js';

/** Waits before attempts 2, 3, …; after the last, the delivery is given up (about 16 h in all). */
export const WEBHOOK_RETRY_DELAYS_MS = [1_000, 5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000, 28_800_000];
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** Longer than a delivery can take, so a live claim is never taken over. */
export const OUTBOX_LEASE_MS = 60_000;
const POLL_MS = 1_000;
const BATCH = 16;
/** Deliveries under way at once, per process. */
const MAX_IN_FLIGHT = 64;

export interface OutboxWorkerDeps {
  apps: ReadonlyMap<string, AppConfig>;
  store: Store;
  clock: Clock;
  logger: Logger;
  /** Signs deliveries (config.upstreamSecret; required by the config when a webhook is set). */
  secret: string | undefined;
  timeoutMs?: number;
  pollMs?: number;
}

export interface OutboxWorker {
  /** Looks for work now (after the receiver queued a push) instead of at the next poll. */
  kick(): void;
  start(): void;
  /** Stops polling and waits (briefly) for deliveries under way. */
  close(): Promise<void>;
}

export function createOutboxWorker(deps: OutboxWorkerDeps): OutboxWorker {
  const { apps, store, clock, logger } = deps;
  const timeoutMs = deps.timeoutMs ?? WEBHOOK_TIMEOUT_MS;
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const inFlight = new Set<Promise<void>>();
  let again = false;
  let closed = false;
  let checkFailing = false;

  async function deliver(entry: OutboxEntry): Promise<void> {
    const event = JSON.parse(entry.payload) as PushEvent;
    const webhook = apps.get(entry.appid)?.push?.webhook;
    if (!webhook) {
      // Pushes are queued for de-duplication even when nobody takes them.
      await store.outboxDone(entry.id, clock.now());
      return;
    }
    const body = JSON.stringify({ id: entry.id, ...event });
    let failure: string;
    try {
      const response = await fetch(webhook, {
        method: 'POST',
        headers: { ...signedHeaders(deps.secret, body, clock.now()), 'x-minigate-push-id': entry.id, 'x-minigate-appid': entry.appid },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([abort.signal, AbortSignal.timeout(timeoutMs)]),
      });
      await response.body?.cancel();
      if (response.status >= 200 && response.status < 300) {
        await store.outboxDone(entry.id, clock.now());
        logger.info({ appid: entry.appid, push: entry.id, attempt: entry.attempts + 1 }, 'push: delivered to the webhook');
        return;
      }
      failure = `HTTP ${response.status}`;
    } catch (error) {
      const e = error as Error & { cause?: { code?: string } };
      failure = e.name === 'TimeoutError' ? `no answer in ${timeoutMs} ms` : (e.cause?.code ?? e.message);
    }
    const attempts = entry.attempts + 1;
    const delay = WEBHOOK_RETRY_DELAYS_MS[attempts - 1];
    const nextAt = delay === undefined ? null : clock.now() + delay;
    await store.outboxRetry(entry.id, attempts, nextAt, failure);
    const where = new URL(webhook).origin;
    if (nextAt === null) logger.error({ appid: entry.appid, push: entry.id, webhook: where, attempts, failure }, 'push: webhook delivery given up');
    else logger.warn({ appid: entry.appid, push: entry.id, webhook: where, attempts, failure, retryInMs: delay }, 'push: webhook delivery failed; will retry');
  }

  const failed = (what: string) => (error: unknown) =>
    logger.warn({ code: (error as { code?: string }).code, err: (error as Error).message }, `push: ${what} failed`);

  /** Claims what is due and starts sending it; deliveries run on their own (a hung webhook holds one slot, not the queue). */
  async function drain(): Promise<void> {
    for (;;) {
      again = false;
      const room = MAX_IN_FLIGHT - inFlight.size;
      if (room <= 0 || closed) return;
      const now = clock.now();
      const due = await store.outboxDue(now, Math.min(BATCH, room));
      for (const entry of due) {
        if (closed) return;
        if (!(await store.outboxClaim(entry, now + OUTBOX_LEASE_MS))) continue;
        const job: Promise<void> = deliver(entry)
          .catch(failed('webhook delivery'))
          .finally(() => {
            inFlight.delete(job);
            if (inFlight.size === MAX_IN_FLIGHT - 1) kick(); // a slot opened while work may wait
          });
        inFlight.add(job);
      }
      if (!again && due.length < BATCH) return;
    }
  }

  function kick(): void {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = drain()
      .then(() => {
        if (checkFailing) logger.info('push: outbox check works again');
        checkFailing = false;
      })
      .catch((error: unknown) => {
        // Said once per outage, not once a second.
        if (!checkFailing) failed('outbox check')(error);
        checkFailing = true;
      })
      .finally(() => {
        running = undefined;
      });
  }

  return {
    kick,
    start() {
      timer = setInterval(kick, deps.pollMs ?? POLL_MS);
      timer.unref();
      kick();
    },
    async close() {
      closed = true;
      clearInterval(timer);
      // A delivery under way gets a moment to finish; cut off, it is sent again after its lease.
      const grace = setTimeout(() => abort.abort(), 3_000);
      await running;
      await Promise.all(inFlight);
      clearTimeout(grace);
    },
  };
}
