/**
 * `workers: N | auto`: one primary that prepares the store and supervises, and N worker
 * processes (node:cluster) that each run a whole minigate and share the listeners. Signals go
 * to the primary: SIGTERM/SIGINT drain every worker, SIGHUP reloads their certificates. A worker
 * that dies is started again, with a pause that grows when it keeps dying. SIGUSR2 replaces the
 * workers one at a time (each new one listening before the old one drains): the zero-downtime
 * reload, also what `pm2 sendSignal SIGUSR2` does under pm2's fork mode.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Config } from '../config/index.js';
import type { Logger } from '../core/index.js';
import { serveClusterHub } from '../bus/index.js';
import { serveLimitsInPrimary } from '../limits/index.js';
import { serveClusterMetrics } from '../core/index.js';
import { serveRelayOwners } from '../relay/index.js';
import { StartError } from '../feature/index.js';
import { createStoreFeature } from '../startup/index.js';
import { EXIT_FAILURE } from './errors.js';

/** How long the primary waits for workers to drain before it kills them. */
export const WORKER_STOP_GRACE_MS = 20_000;
const RESTART_DELAYS_MS = [100, 1_000, 5_000, 30_000];
/** How long a rolling restart waits for a new worker to listen before it gives up (keeping the old). */
export const WORKER_START_TIMEOUT_MS = 60_000;
/** Set in the environment of the workers this primary forks, to tell them from other cluster workers. */
// Not MINIGATE_…: those name config keys, and an unknown one is a config error.
const WORKER_MARK = 'MG_CLUSTER_WORKER';
/** Set for workers forked once the others serve: they listen only when ready (no 503 while starting). */
const LATE_MARK = 'MG_LISTEN_WHEN_READY';

export function workerCount(config: Config): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

/** Messages a worker sends the primary. */
export type WorkerMessage = { type: 'listening'; urls: Record<string, string> } | { type: 'failed'; message: string };

/** Runs the primary: migrates once, forks, supervises; resolves when everything has stopped. */
export async function runPrimary(config: Config, logger: Logger, onListening: (urls: Record<string, string>) => void): Promise<void> {
  const count = workerCount(config);
  // Migrate (and make the secret key) before the workers start, so they do not race to: the
  // store step of the workers' own start-up, run once here.
  const prepare = createStoreFeature(config, { logger });
  try {
    await prepare.start();
  } catch (error) {
    await prepare.close().catch(() => undefined);
    if (!(error instanceof StartError)) throw error;
    process.stderr.write(`minigate: ${error.message}\n`);
    process.exit(EXIT_FAILURE);
  }
  await prepare.close();

  let stopping = false;
  let announced = false;
  let failures = 0;
  const listening = new Set<number>();
  // Workers stopped on purpose by a rolling restart: their exit is not a death to make up for.
  const retiring = new Set<number>();
  let rolling = false;

  const fork = (): Worker => {
    const worker = cluster.fork({ [WORKER_MARK]: '1', ...(announced ? { [LATE_MARK]: '1' } : {}) });
    // A reply sent to a worker that has just died (the limits' count answers without asking
    // whether it is still connected) is an 'error' here; without a listener it would end the primary.
    worker.on('error', (error: NodeJS.ErrnoException) => logger.debug({ pid: worker.process.pid, code: error.code }, 'worker: message not delivered'));
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'listening') {
        listening.add(worker.id);
        failures = 0;
        if (!announced && listening.size === count) {
          announced = true;
          logger.info({ workers: count, urls: message.urls }, 'minigate started with workers');
          onListening(message.urls);
        }
      } else if (message.type === 'failed' && !announced) {
        // A configuration that cannot start will not start in the next worker either.
        process.stderr.write(`minigate: ${message.message}\n`);
        stopping = true;
        for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
        process.exitCode = EXIT_FAILURE;
      }
    });
    return worker;
  };

  // Without Redis, the workers' channel rooms meet here.
  if (!config.redis && config.channel.enabled) serveClusterHub();
  // Without Redis, the workers' limits are counted here (rate-limiter-flexible's own IPC
  // messages, marked channel: 'rate_limiter_flexible'; ours are marked mg: or type:).
  if (!config.redis && config.limits.enabled) serveLimitsInPrimary();
  // One scrape of any worker's /metrics is answered with every worker's figures added up here.
  if (config.metrics.enabled) serveClusterMetrics();
  // Which worker holds each relay link: a request that lands on another is handed to it.
  if (config.relay) serveRelayOwners();
  for (let i = 0; i < count; i++) fork();

  return new Promise((resolve) => {
    cluster.on('exit', (worker, code, signal) => {
      listening.delete(worker.id);
      if (retiring.delete(worker.id)) return;
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve();
        return;
      }
      const delay = RESTART_DELAYS_MS[Math.min(failures++, RESTART_DELAYS_MS.length - 1)]!;
      logger.error({ pid: worker.process.pid, code, signal, restartInMs: delay }, 'worker died; starting another');
      setTimeout(() => !stopping && fork(), delay);
    });
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
        return;
      }
      stopping = true;
      logger.info({ signal }, 'stopping workers');
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      setTimeout(() => {
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
      }, WORKER_STOP_GRACE_MS).unref();
      if (Object.keys(cluster.workers ?? {}).length === 0) resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGUSR2', () => {
      if (rolling || stopping || !announced) {
        logger.warn({ rolling, stopping }, 'SIGUSR2 ignored: a rolling restart, a stop or the start is under way');
        return;
      }
      rolling = true;
      rollWorkers(fork, retiring, logger, () => stopping).finally(() => (rolling = false));
    });
    process.on('SIGHUP', () => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
    });
  });
}

/**
 * Replaces the workers running now, one at a time: a new one is forked and must report
 * 'listening' before the old one gets SIGTERM (it closes its listeners, so the primary hands new
 * connections to the others, and drains); the next waits until the old one has exited. A new
 * worker that fails to start is stopped and the roll ends, keeping the remaining old workers.
 */
async function rollWorkers(fork: () => Worker, retiring: Set<number>, logger: Logger, stopping: () => boolean): Promise<void> {
  const old = Object.values(cluster.workers ?? {}).filter((w): w is Worker => Boolean(w));
  logger.info({ workers: old.length }, 'rolling restart: replacing the workers one at a time');
  for (const previous of old) {
    if (stopping()) return;
    const fresh = fork();
    if (!(await listeningOrGone(fresh))) {
      retiring.add(fresh.id);
      fresh.process.kill('SIGKILL');
      logger.error({ pid: fresh.process.pid }, 'rolling restart: a new worker did not start; the old workers keep serving');
      return;
    }
    if (previous.isDead()) continue;
    retiring.add(previous.id);
    const gone = new Promise<void>((resolve) => previous.once('exit', () => resolve()));
    previous.process.kill('SIGTERM');
    const killer = setTimeout(() => previous.process.kill('SIGKILL'), WORKER_STOP_GRACE_MS);
    await gone;
    clearTimeout(killer);
  }
  logger.info('rolling restart: done');
}

function listeningOrGone(worker: Worker): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('exit', onExit);
      resolve(ok);
    };
    const onMessage = (message: WorkerMessage) => {
      if (message.type === 'listening') done(true);
      else if (message.type === 'failed') done(false);
    };
    const onExit = () => done(false);
    const timer = setTimeout(() => done(false), WORKER_START_TIMEOUT_MS);
    worker.on('message', onMessage);
    worker.once('exit', onExit);
  });
}

/** In a worker: tells the primary how starting went. */
export function reportToPrimary(message: WorkerMessage): void {
  process.send?.(message);
}

/** A worker forked after the first ones were serving (a rolling restart, a dead worker replaced). */
export function joinsServingWorkers(): boolean {
  return isWorker() && process.env[LATE_MARK] === '1';
}

/** A worker forked by minigate's own primary. */
export function isWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_MARK] === '1';
}

/**
 * A cluster worker some other program forked: pm2's cluster mode (exec_mode: 'cluster'). minigate
 * would take it for one of its own and wait for a primary that is not there, so start refuses.
 */
export function isForeignClusterWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_MARK] !== '1';
}

export const FOREIGN_CLUSTER_MESSAGE =
  "started as a cluster worker by another program (pm2's cluster mode?). minigate runs its own workers " +
  "(`workers:` in the config) and cannot share a primary: run it in pm2's fork mode (exec_mode: 'fork', " +
  'as deploy/ecosystem.config.cjs does) and reload with `pm2 sendSignal SIGUSR2 <name>`';
