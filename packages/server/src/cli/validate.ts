import { parseArgs } from 'node:util';
import { redactUrl } from '../core/index.js';
import { configFile, loadOrExit } from './shared.js';

export function validate(argv: string[]): void {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  const file = configFile(values.config);
  const config = loadOrExit(file);
  process.stdout.write(
    `${file}: ok — ${config.apps.length} app${config.apps.length === 1 ? '' : 's'} (${config.apps.map((a) => a.appid).join(', ')}), ` +
      `store ${redactUrl(config.store)}, ` +
      `http ${config.listen.http.host}:${config.listen.http.port}\n`,
  );
}
