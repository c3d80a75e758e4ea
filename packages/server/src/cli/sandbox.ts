import { parseArgs } from 'node:util';
import { UsageError } from './shared.js';

export async function sandbox(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      app: { type: 'string', multiple: true, default: [] },
      'token-ttl': { type: 'string' },
    },
  });
  const ttl = values['token-ttl'] === undefined ? undefined : Number(values['token-ttl']);
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 10 || ttl > 7200)) throw new UsageError('--token-ttl is seconds, 10 to 7200');
  if (!/^\d{1,5}$/.test(values.port) || Number(values.port) > 65535) throw new UsageError('--port must be a port number');
  const apps = values.app.map((spec) => {
    const at = spec.indexOf(':');
    if (at <= 0 || at === spec.length - 1) throw new UsageError(`--app takes APPID:SECRET, got "${spec}"`);
    return { appid: spec.slice(0, at), secret: spec.slice(at + 1), ...(ttl ? { tokenTtlSeconds: ttl } : {}) };
  });
  const { createSandbox } = await import('minigate-sandbox');
  const server = createSandbox({ host: values.host, port: Number(values.port), apps });
  const url = await server.start().catch((error: NodeJS.ErrnoException) => {
    process.stderr.write(`minigate sandbox: cannot listen on ${values.host}:${values.port} (${error.code ?? error.message})\n`);
    process.exit(1);
  });
  process.stdout.write(`sandbox ${url}${apps.length ? `  apps: ${apps.map((a) => a.appid).join(', ')}` : ''}\n`);
  const stop = () => void server.close().then(() => (process.exitCode = 0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
