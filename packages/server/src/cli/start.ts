import { parseArgs } from 'node:util';
import { createLogger } from '../core/logger.js';
import { createServer } from '../server.js';
import { configFile, loadOrExit, runUntilSignal } from './shared.js';

export async function start(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  const config = loadOrExit(configFile(values.config));
  const logger = createLogger({ level: config.log.level, pretty: process.stderr.isTTY });
  const server = createServer(config, { logger });
  // One line on stdout for people and scripts, whatever the log level.
  await runUntilSignal(server, () => process.stdout.write(`minigate listening on ${server.url}\n`));
}
