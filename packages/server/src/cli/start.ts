import { parseArgs } from 'node:util';
import { createLogger } from '../core/index.js';
import { createServer } from '../server.js';
import { configFile, loadOrExit, runUntilSignal } from './shared.js';
import { EXIT_FAILURE } from './errors.js';
import { FOREIGN_CLUSTER_MESSAGE, isForeignClusterWorker, isWorker, joinsServingWorkers, reportToPrimary, runPrimary, workerCount } from './workers.js';

export async function start(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  if (isForeignClusterWorker()) {
    process.stderr.write(`minigate: ${FOREIGN_CLUSTER_MESSAGE}\n`);
    process.exit(EXIT_FAILURE);
  }
  const config = loadOrExit(configFile(values.config));
  const logger = createLogger({ level: config.log.level, pretty: config.log.format === undefined ? Boolean(process.stderr.isTTY) : config.log.format === 'pretty' });
  // One line on stdout for people and scripts, whatever the log level: the addresses as bound.
  const announce = (urls: Record<string, string>) =>
    process.stdout.write(`minigate listening on ${urls.https ?? urls.http}\n${urls.internal ? `minigate internal API on ${urls.internal}\n` : ''}`);
  if (workerCount(config) > 1 && !isWorker()) {
    await runPrimary(config, logger, announce);
    return;
  }
  const server = createServer(config, { logger, listenWhenReady: joinsServingWorkers() });
  if (isWorker()) {
    await runUntilSignal(server, {
      worker: true,
      onStarted: () => reportToPrimary({ type: 'listening', urls: server.boundUrls }),
      onStartFailure: (message) => reportToPrimary({ type: 'failed', message }),
    });
    return;
  }
  await runUntilSignal(server, { onStarted: () => announce(server.boundUrls) });
}
