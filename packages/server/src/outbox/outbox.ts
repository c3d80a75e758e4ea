/**
 * The outbox: events a feature must hand to a business service reliably (message pushes now;
 * payment notices and others later), written to the database first and delivered afterwards,
 * signed, with retries.
 *
 * A producer enqueues `{kind, appid, payload, dedupKey}`; where a kind goes is not its concern:
 * the feature that owns the kind registers a target (`target(kind, resolve)`) that names the URL
 * and signing secret per app. An event whose kind has no target is recorded as failed, with the
 * reason, and logged; one whose target resolves to null for its app (no webhook configured) is
 * marked done at once — it was queued for de-duplication only.
 *
 * Every instance runs a worker; a delivery is claimed in the database (a lease on its
 * next_attempt_at) before it is sent, so two instances never send it at the same time, and a
 * claim left by a process that died is taken over when its lease ends. Delivery is at least
 * once: the receiver should drop repeats by the event id (a 2xx that arrives after our timeout
 * is retried), and in no set order.
 */
import { randomBytes } from 'node:crypto';
import { signedHeaders, type Clock, type Logger } from '../core/index.js';
import type { OutboxEntry, Store } from '../store/index.js';
import { outboxMetrics, type OutboxMetrics } from './metrics.js';

/** Waits before attempts 2, 3, …; after the last, the delivery is given up (about 16 h in all). */
export const WEBHOOK_RETRY_DELAYS_MS = [1_000, 5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000, 28_800_000];
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** Longer than a delivery can take, so a live claim is never taken over. */
export const OUTBOX_LEASE_MS = 60_000;
/** The kind of every row written before the outbox had kinds; its dedupe keys are stored bare. */
export const PUSH_KIND = 'push';
/** The dedup_key column (varchar(191)) holds the kind prefix and the producer's key. */
const DEDUP_KEY_MAX_CHARS = 191;
const KIND_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;
const KIND_MAX_CHARS = 64;
const POLL_MS = 1_000;
const BATCH = 16;
/** Deliveries under way at once, per process. */
const MAX_IN_FLIGHT = 64;

/** Where one app's events of a kind go. */
export interface OutboxDestination {
  url: string;
  /** Signs the delivery (X-Minigate-Signature); without one the delivery is sent unsigned. */
  secret: string | undefined;
}

/** Finds an app's destination for a kind; null when the app takes none (the event is then done). */
export type OutboxResolve = (appid: string) => OutboxDestination | null;

export interface OutboxTargetOptions {
  /** The header that carries the event id (the receiver drops repeats by it); default `x-minigate-event-id`. */
  idHeader?: string;
}

export interface OutboxEvent {
  /** Which target the event goes to: `push`, later `pay.transaction`, … (lower case, dot-separated). */
  kind: string;
  appid: string;
  /**
   * The body of the delivery, without `id`: it is sent as `{"id": …, …payload}`. Must survive
   * JSON (no bigint, no undefined you care about).
   */
  payload: Record<string, unknown>;
  /** Same kind, app and key as an event already queued → a repeat, dropped. Unique per kind and app. */
  dedupKey: string;
  /** The event id (default: 24 random hex digits); at most 32 characters. */
  id?: string;
}

export interface OutboxDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  timeoutMs?: number;
  pollMs?: number;
  /** Deliveries by kind and outcome (docs/metrics.md). */
  metrics?: OutboxMetrics;
}

export interface Outbox {
  /**
   * Registers where events of `kind` go (once per kind; a second registration throws). Call it
   * while the server is being put together, before `start`.
   */
  target(kind: string, resolve: OutboxResolve, options?: OutboxTargetOptions): void;
  /**
   * Writes the event to the outbox and has the worker look at it now. Returns its id, or null
   * when it is a repeat of one already queued (same kind, appid and dedupKey).
   * Throws the store's STORE_UNAVAILABLE when the database is down.
   */
  enqueue(event: OutboxEvent): Promise<string | null>;
  /** Looks for work now instead of at the next poll. */
  kick(): void;
  /**
   * An operator's retry: a delivery not yet delivered (pending or given up) is sent now, its
   * attempts kept. False when it is unknown or already delivered.
   */
  retryNow(id: string): Promise<boolean>;
  start(): void;
  /** Stops polling and waits (briefly) for deliveries under way. */
  close(): Promise<void>;
}

interface Target {
  resolve: OutboxResolve;
  idHeader: string;
}

/**
 * The key as stored: push keys bare (rows from before kinds, so a repeat arriving across an
 * upgrade is still caught), every other kind's prefixed by the kind, since the unique
 * constraint is on (appid, dedup_key).
 */
function storedKey(kind: string, key: string): string {
  return kind === PUSH_KIND ? key : `${kind}:${key}`;
}

/** The first ANSWER_KEEP_CHARS of a refusal's body, on one line; never waits for a body that does not come. */
const ANSWER_KEEP_CHARS = 200;
async function answerStart(response: Response): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), 1_000).unref());
    while (size < ANSWER_KEEP_CHARS * 4) {
      const read = await Promise.race([reader.read(), timeout]);
      if (!read || read.done) break;
      chunks.push(read.value);
      size += read.value.length;
    }
  } catch {
    // The answer broke off: what arrived is enough.
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\s+/g, ' ').trim().slice(0, ANSWER_KEEP_CHARS);
}

/**
 * @example
 * const outbox = createOutbox({ store, clock, logger });
 * outbox.target('pay.transaction', (appid) => ({ url: apps.get(appid)!.pay!.webhook, secret }));
 * await outbox.enqueue({ kind: 'pay.transaction', appid, payload: { transaction }, dedupKey: transaction.id });
 * outbox.start();
 */
export function createOutbox(deps: OutboxDeps): Outbox {
  const { store, clock, logger } = deps;
  const timeoutMs = deps.timeoutMs ?? WEBHOOK_TIMEOUT_MS;
  const counts = deps.metrics ?? outboxMetrics();
  const targets = new Map<string, Target>();
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const inFlight = new Set<Promise<void>>();
  let again = false;
  let closed = false;
  let checkFailing = false;

  async function fail(entry: OutboxEntry, failure: string, giveUp: boolean, where?: string): Promise<void> {
    const attempts = entry.attempts + 1;
    const delay = giveUp ? undefined : WEBHOOK_RETRY_DELAYS_MS[attempts - 1];
    const nextAt = delay === undefined ? null : clock.now() + delay;
    await store.outboxRetry(entry.id, attempts, nextAt, failure);
    counts.delivery(entry.kind, nextAt === null ? 'failed' : 'retried');
    const fields = { appid: entry.appid, kind: entry.kind, id: entry.id, ...(where ? { webhook: where } : {}), attempts, failure };
    if (nextAt === null) logger.error(fields, `${entry.kind}: webhook delivery given up`);
    else logger.warn({ ...fields, retryInMs: delay }, `${entry.kind}: webhook delivery failed; will retry`);
  }

  async function deliver(entry: OutboxEntry): Promise<void> {
    const target = targets.get(entry.kind);
    if (!target) {
      // Written by a feature this process does not run (or no longer has): nowhere to send it.
      await fail(entry, `no delivery target for kind "${entry.kind}"`.slice(0, 250), true);
      return;
    }
    const destination = target.resolve(entry.appid);
    if (!destination) {
      // Queued for de-duplication even when nobody takes them.
      await store.outboxDone(entry.id, clock.now());
      return;
    }
    const payload = JSON.parse(entry.payload) as Record<string, unknown>;
    const body = JSON.stringify({ id: entry.id, ...payload });
    let failure: string;
    try {
      const response = await fetch(destination.url, {
        method: 'POST',
        headers: { ...signedHeaders(destination.secret, body, clock.now()), [target.idHeader]: entry.id, 'x-minigate-appid': entry.appid },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([abort.signal, AbortSignal.timeout(timeoutMs)]),
      });
      if (response.status >= 200 && response.status < 300) {
        await response.body?.cancel();
        await store.outboxDone(entry.id, clock.now());
        counts.delivery(entry.kind, 'delivered');
        logger.info({ appid: entry.appid, kind: entry.kind, id: entry.id, attempt: entry.attempts + 1 }, `${entry.kind}: delivered to the webhook`);
        return;
      }
      // The start of the webhook's answer, so an operator sees why it refused.
      const answer = await answerStart(response);
      failure = `HTTP ${response.status}${answer ? `: ${answer}` : ''}`;
    } catch (error) {
      const e = error as Error & { cause?: { code?: string } };
      failure = e.name === 'TimeoutError' ? `no answer in ${timeoutMs} ms` : (e.cause?.code ?? e.message);
    }
    await fail(entry, failure, false, new URL(destination.url).origin);
  }

  const failed = (what: string) => (error: unknown) =>
    logger.warn({ code: (error as { code?: string }).code, err: (error as Error).message }, `outbox: ${what} failed`);

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
        if (checkFailing) logger.info('outbox: check works again');
        checkFailing = false;
      })
      .catch((error: unknown) => {
        // Said once per outage, not once a second.
        if (!checkFailing) failed('check')(error);
        checkFailing = true;
      })
      .finally(() => {
        running = undefined;
      });
  }

  return {
    target(kind, resolve, options = {}) {
      if (kind.length > KIND_MAX_CHARS || !KIND_PATTERN.test(kind)) throw new Error(`outbox: "${kind}" is not a kind (lower case words joined by dots)`);
      if (targets.has(kind)) throw new Error(`outbox: kind "${kind}" already has a target`);
      targets.set(kind, { resolve, idHeader: (options.idHeader ?? 'x-minigate-event-id').toLowerCase() });
    },
    async enqueue(event) {
      if (!targets.has(event.kind)) throw new Error(`outbox: no target registered for kind "${event.kind}"`);
      if ('id' in event.payload) throw new Error('outbox: the payload has its own id; the delivery adds one');
      const dedupKey = storedKey(event.kind, event.dedupKey);
      if (dedupKey.length > DEDUP_KEY_MAX_CHARS) throw new Error(`outbox: the dedupKey of a ${event.kind} event is over ${DEDUP_KEY_MAX_CHARS - event.kind.length - 1} characters`);
      const id = event.id ?? randomBytes(12).toString('hex');
      const added = await store.outboxAdd({ id, kind: event.kind, appid: event.appid, dedupKey, payload: JSON.stringify(event.payload), now: clock.now() });
      if (!added) return null;
      kick();
      return id;
    },
    kick,
    async retryNow(id) {
      const changed = await store.outboxRetryNow(id, clock.now());
      if (changed) kick();
      return changed;
    },
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
