import { parseArgs } from 'node:util';
import { redactUrl } from '../store/index.js';
import { configFile, loadOrExit } from './shared.js';

export const help = `minigate validate [-c FILE]

Checks a config file without starting: prints every problem (file:line, key path, what to do)
and exits 1, or prints a summary and exits 0.`;

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
