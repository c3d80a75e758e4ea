import { parseArgs } from 'node:util';
import { createLogger } from '../core/index.js';
import { createStore, redactUrl } from '../store/index.js';
import { EXIT_FAILURE, configFile, loadOrExit } from './shared.js';

export async function migrate(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  const config = loadOrExit(configFile(values.config));
  const logger = createLogger({ level: 'warn' });
  let store;
  try {
    store = await createStore({ url: config.store, logger });
    const report = await store.migrate();
    process.stdout.write(
      `${redactUrl(config.store)}: ${report.applied.length ? `applied ${report.applied.join(', ')}` : 'up to date'} (${report.current.length} migrations)\n`,
    );
  } catch (error) {
    const cause = (error as { cause?: { message?: string; code?: string } }).cause;
    process.stderr.write(`minigate: cannot migrate ${redactUrl(config.store)}: ${redactUrl(cause?.message ?? (error as Error).message)}\n`);
    process.exitCode = EXIT_FAILURE;
  } finally {
    await store?.close();
  }
}
