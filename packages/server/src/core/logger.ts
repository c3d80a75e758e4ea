import { Writable } from 'node:stream';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import { createLogSink } from './log-sink.js';

export type Logger = PinoLogger;
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface LoggerOptions {
  level?: LogLevel;
  /** Where JSON lines go; stderr by default. Tests pass a stream to capture them. */
  destination?: DestinationStream;
  /** One readable line per event instead of JSON (for a terminal). */
  pretty?: boolean;
}

/** Field names whose values are never written, as a second line of defence: secrets are not passed to the logger in the first place. */
const REDACTED_KEYS = ['secret', 'session_key', 'sessionKey', 'token', 'password', 'authorization', 'access_token'];

/** JSON lines on stderr, one per event. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? (options.pretty ? prettyStream(process.stderr) : bufferedStderr());
  return pino(
    {
      level: options.level ?? 'info',
      base: undefined,
      // Top-level keys only: wildcard paths make every log call walk its objects.
      redact: { paths: REDACTED_KEYS, censor: '[redacted]' },
    },
    destination,
  );
}

/**
 * stderr through an in-process buffer (log-sink.ts): one write per request line would cost a
 * third of the throughput of a busy server. Lines wait at most a quarter of a second, and what
 * waits is written when the process exits.
 */
function bufferedStderr(): DestinationStream {
  return createLogSink({ fd: 2 });
}

/** A logger that drops everything. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** Turns pino's JSON lines into `12:00:01 info  message key=value …`. */
export function prettyStream(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        try {
          const { level, time, msg, ...rest } = JSON.parse(line) as Record<string, unknown>;
          const clock = new Date(Number(time)).toTimeString().slice(0, 8);
          const fields = Object.entries(rest)
            .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
            .join(' ');
          out.write(`${clock} ${(LEVEL_NAMES[Number(level)] ?? String(level)).padEnd(5)} ${String(msg ?? '')}${fields ? `  ${fields}` : ''}\n`);
        } catch {
          out.write(`${line}\n`);
        }
      }
      done();
    },
  });
}
