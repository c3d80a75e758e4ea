/**
 * `minigate tunnel`: serves a local HTTP service to phones through a minigate you run (the relay,
 * docs/relay.md). The token comes from --token-file F, --token T or MINIGATE_TUNNEL_TOKEN.
 */
import { readFileSync } from 'node:fs';
import { setDefaultHighWaterMark } from 'node:stream';
import { parseArgs } from 'node:util';
import { RELAY_NAME_PATTERN } from 'minigate-protocol';
import { startTunnel } from '../relay-client/index.js';
import { EXIT_FAILURE, UsageError } from './errors.js';

/**
 * How much each stream of this process buffers before it pushes back (Node's default: 16 KiB).
 * The tunnel only moves bytes: with 16 KiB, every 64 KiB read from the local service overfilled
 * the HTTP/2 stream, paused the service's socket and waited a turn of the event loop for 'drain'
 * (one read, one TLS write and four epoll_ctl per 64 KiB). With the size of a stream's HTTP/2
 * window, what arrives in a turn leaves in one write. Back-pressure is unchanged in kind: a stream
 * whose phone stalls holds at most this much here before the local service is paused.
 */
const TUNNEL_HIGH_WATER_MARK = 1024 * 1024;

function url(text: string | undefined, flag: string, protocols: string[]): URL {
  if (!text) throw new UsageError(`${flag} is required`);
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new UsageError(`${flag}: not a URL: ${text}`);
  }
  if (!protocols.includes(parsed.protocol)) throw new UsageError(`${flag}: expected ${protocols.map((p) => p.replace(':', '://')).join(' or ')}…, got ${text}`);
  return parsed;
}

export async function tunnel(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      server: { type: 'string' },
      name: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      to: { type: 'string' },
      ca: { type: 'string' },
      replace: { type: 'boolean', default: false },
    },
  });
  const server = url(values.server, '--server', ['https:']);
  const to = url(values.to, '--to', ['http:', 'https:']);
  const name = values.name ?? '';
  if (!RELAY_NAME_PATTERN.test(name)) throw new UsageError('--name: expected a relay name (lower-case letters, digits and -; at most 32)');
  const token = (values['token-file'] ? readFileSync(values['token-file'], 'utf8').trim().split(/\r?\n/).at(-1)?.trim() : (values.token ?? process.env.MINIGATE_TUNNEL_TOKEN)) ?? '';
  if (!token) throw new UsageError('give the token: --token-file F, --token T or MINIGATE_TUNNEL_TOKEN (from `minigate relay add NAME` on the server)');
  const ca = values.ca ? readFileSync(values.ca) : undefined;
  const print = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  setDefaultHighWaterMark(false, TUNNEL_HIGH_WATER_MARK);
  const link = startTunnel({ server, name, token, to, ca, replace: values.replace, print });
  const stop = () => void link.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const message = await link.fatal;
  process.stderr.write(`minigate tunnel: ${message}\n`);
  process.exitCode = EXIT_FAILURE;
}
