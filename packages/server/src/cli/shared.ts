/** What every CLI command shares: config loading with readable errors, and the run loop. */
import cluster from 'node:cluster';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config/index.js';
import { filesConfigIssues } from '../files/index.js';
import { certificateConfigIssues } from '../tls/index.js';
import { payConfigIssues } from '../pay/index.js';
import type { MinigateServer } from '../server.js';
import { EXIT_FAILURE, UsageError } from './errors.js';

export { EXIT_FAILURE, EXIT_USAGE, UsageError } from './errors.js';

export const DEFAULT_CONFIG_FILE = 'minigate.yaml';

/** The config file a command uses: -c, else $MINIGATE_CONFIG, else ./minigate.yaml. */
export function configFile(given: string | undefined): string {
  const file = given ?? process.env.MINIGATE_CONFIG ?? DEFAULT_CONFIG_FILE;
  if (!given && !process.env.MINIGATE_CONFIG && !existsSync(file)) {
    throw new UsageError(`no ${DEFAULT_CONFIG_FILE} here; pass -c FILE (or try \`minigate dev\`, which needs no config)`);
  }
  return file;
}

/** Config checks that need a feature's knowledge: the features run them at start too. */
const FEATURE_CHECKS = [filesConfigIssues, certificateConfigIssues, payConfigIssues];

/**
 * The environment a config file sees: process.env over the `.env` file beside it (if any). systemd's
 * EnvironmentFile= and compose's env_file read the same file, so one file serves `minigate start`
 * by hand, under systemd and in a container; a variable already set wins, as it does there.
 */
export function configEnv(file: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const envFile = path.join(path.dirname(path.resolve(file)), '.env');
  let text: string;
  try {
    text = readFileSync(envFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return env;
    throw new ConfigError([{ where: envFile, path: '', message: `cannot read the file (${(error as NodeJS.ErrnoException).code})` }]);
  }
  return { ...parseEnv(text), ...env };
}

/** Loads the config, or prints every problem and exits 1. */
export function loadOrExit(file: string): Config {
  try {
    return loadConfig({ file, env: configEnv(file), checks: FEATURE_CHECKS });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${file}: ${error.problems.length} problem${error.problems.length === 1 ? '' : 's'}\n${error.message}\n`);
      process.exit(EXIT_FAILURE);
    }
    throw error;
  }
}

export interface RunOptions {
  onStarted?: () => void;
  /** Called with the message of a start failure before the process exits 1. */
  onStartFailure?: (message: string) => void;
  /** More to close after the server (the dev sandbox). */
  extraClose?: () => Promise<void>;
  /** A cluster worker: the primary decides when to stop, so the terminal's SIGINT is ignored. */
  worker?: boolean;
}

/**
 * Starts the server and keeps it until SIGINT/SIGTERM, which close it gracefully (a second
 * signal exits at once). A failure to start prints one readable line and exits 1.
 */
export async function runUntilSignal(server: MinigateServer, options: RunOptions = {}): Promise<void> {
  // Imported here, not at the top, so `validate` and `check` do not load the whole server.
  const { StartError } = await import('../server.js');
  try {
    await server.start();
  } catch (error) {
    if (error instanceof StartError) {
      server.logger.flush?.();
      options.onStartFailure?.(error.message);
      process.stderr.write(`minigate: ${error.message}\n`);
      await options.extraClose?.();
      process.exit(EXIT_FAILURE);
    }
    throw error;
  }
  options.onStarted?.();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(EXIT_FAILURE);
    stopping = true;
    server.logger.info({ signal }, 'stopping');
    server
      .close()
      .then(() => options.extraClose?.())
      .then(
        () => {
          server.logger.flush?.();
          process.exitCode = 0;
          // A cluster worker's IPC channel would keep it alive. cluster's disconnect, not the bare
          // process.disconnect(): it waits for the primary's answer, so a connection the primary
          // handed over just before our listeners closed is received (and handed back) first,
          // not left open in the primary with no worker to answer it.
          if (options.worker) cluster.worker?.disconnect();
        },
        (error: unknown) => {
          process.stderr.write(`minigate: error while stopping: ${(error as Error).message}\n`);
          process.exitCode = EXIT_FAILURE;
        },
      );
  };
  if (options.worker) process.on('SIGINT', () => undefined);
  else process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  // SIGHUP: load the certificate files again (after a renewal outside minigate).
  process.on('SIGHUP', () => server.reloadCertificates('SIGHUP'));
}
