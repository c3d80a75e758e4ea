/** `minigate check URL… | -c FILE`: does a domain satisfy WeChat's server-domain rules? (docs/check.md) */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { configuredUrls, formatReport, runChecks, CHECK_TIMEOUT_MS, type CheckType } from '../doctor/index.js';
import { EXIT_USAGE, UsageError } from './errors.js';
import { configFile, loadOrExit } from './shared.js';

const TYPES: CheckType[] = ['request', 'socket', 'upload', 'download'];

export async function check(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      type: { type: 'string', short: 't' },
      ca: { type: 'string', multiple: true },
      resolve: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      timeout: { type: 'string' },
      config: { type: 'string', short: 'c' },
    },
  });
  const type = (values.type ?? 'request') as CheckType;
  if (!TYPES.includes(type)) throw new UsageError(`--type is one of ${TYPES.join(', ')}`);
  const timeoutS = values.timeout === undefined ? CHECK_TIMEOUT_MS / 1000 : Number(values.timeout);
  if (!(timeoutS > 0 && timeoutS <= 60)) throw new UsageError('--timeout: seconds per step, 1 to 60');
  const resolve = new Map<string, string>();
  for (const entry of values.resolve ?? []) {
    // NAME:IP, or curl's NAME:PORT:IP (the port is not needed: each URL has its own).
    const match = /^([^:]+):(?:\d+:)?(\[[0-9a-f:]+\]|[0-9a-f.:]+)$/i.exec(entry);
    if (!match) throw new UsageError(`--resolve ${entry}: expected NAME:IP (or NAME:PORT:IP)`);
    resolve.set(match[1]!.toLowerCase(), match[2]!.replace(/^\[|\]$/g, ''));
  }
  const ca: string[] = [];
  for (const file of values.ca ?? []) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`--ca ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
    if (!pems) throw new UsageError(`--ca ${file}: no PEM certificate in it`);
    ca.push(...pems);
  }

  let urls: { url: string; type: CheckType }[];
  if (values.config !== undefined || positionals.length === 0) {
    if (positionals.length) throw new UsageError('give URLs or -c FILE, not both');
    const file = configFile(values.config);
    urls = configuredUrls(loadOrExit(file));
    if (!urls.length) {
      process.stderr.write(`${file}: no domain to check (tls.acme.domains, tls.certificates[].names or routes[].host); give URLs instead\n`);
      process.exit(EXIT_USAGE);
    }
  } else urls = positionals.map((url) => ({ url: withScheme(url, type), type }));

  const report = await runChecks(urls, { timeoutMs: timeoutS * 1000, ca, resolve });
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report, Boolean(process.stdout.isTTY) && !process.env.NO_COLOR));
  process.exitCode = report.exitCode;
}

/** `api.example.com` means its HTTPS (or WSS) origin: WeChat allows nothing else. */
function withScheme(url: string, type: CheckType): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url;
  return `${type === 'socket' ? 'wss' : 'https'}://${url}`;
}
