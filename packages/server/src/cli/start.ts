import { parseArgs } from 'node:util';
import { createLogger } from '../core/logger.js';
import { createServer } from '../server.js';
import { configFile, loadOrExit, runUntilSignal } from './shared.js';

export const help = `minigate start [-c FILE]

Runs minigate from a config file (default: $MINIGATE_CONFIG, else ./minigate.yaml). Every key
can be overridden by an environment variable MINIGATE_<KEY_PATH>, e.g. MINIGATE_STORE,
MINIGATE_LISTEN_HTTP, MINIGATE_APPS_0_SECRET. SIGTERM drains and exits.`;

export async function start(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  const config = loadOrExit(configFile(values.config));
  const logger = createLogger({ level: config.log.level, pretty: process.stderr.isTTY });
  await runUntilSignal(createServer(config, { logger }));
}
