/**
 * `workers: N | auto`: one primary that prepares the store and supervises, and N worker
 * processes (node:cluster) that each run a whole minigate and share the listeners. Signals go
 * to the primary: SIGTERM/SIGINT drain every worker, SIGHUP reloads their certificates. A worker
 * that dies is started again, with a pause that grows when it keeps dying.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Config } from '../config/index.js';
import type { Logger } from '../core/index.js';
import { serveClusterHub } from '../bus/index.js';
import { serveLimitsInPrimary } from '../limits/index.js';
import { serveClusterMetrics } from '../core/index.js';
import { StartError } from '../feature/index.js';
import { createStoreFeature } from '../startup/index.js';
import { EXIT_FAILURE } from './errors.js';

/** How long the primary waits for workers to drain before it kills them. */
export const WORKER_STOP_GRACE_MS = 20_000;
const RESTART_DELAYS_MS = [100, 1_000, 5_000, 30_000];

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

  const fork = (): Worker => {
    const worker = cluster.fork();
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
  for (let i = 0; i < count; i++) fork();

  return new Promise((resolve) => {
    cluster.on('exit', (worker, code, signal) => {
      listening.delete(worker.id);
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
    process.on('SIGHUP', () => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
    });
  });
}

/** In a worker: tells the primary how starting went. */
export function reportToPrimary(message: WorkerMessage): void {
  process.send?.(message);
}

export function isWorker(): boolean {
  return cluster.isWorker;
}
