import { parseArgs } from 'node:util';
import type { Config } from '../config/index.js';
import { formatHostPort } from '../config/index.js';
import { redactUrl } from '../core/index.js';
import { configFile, loadOrExit } from './shared.js';

export function validate(argv: string[]): void {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  const file = configFile(values.config);
  const config = loadOrExit(file);
  process.stdout.write(
    `${file}: ok — ${config.apps.length} app${config.apps.length === 1 ? '' : 's'} (${config.apps.map((a) => a.appid).join(', ')}), ` +
      `store ${redactUrl(config.store)}, ` +
      `${listeners(config)}\n`,
  );
}

/** The listeners start binds, as `http 127.0.0.1:8080, https 0.0.0.0:443`. */
function listeners(config: Config): string {
  const { http, https, internal } = config.listen;
  return Object.entries({ http, https, internal })
    .filter(([, address]) => address !== undefined)
    .map(([name, address]) => `${name} ${formatHostPort(address!)}`)
    .join(', ');
}
