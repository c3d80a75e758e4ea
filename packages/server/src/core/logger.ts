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

/**
 * Writes one kind of `info` line (the access line of every request) straight to the logger's
 * destination: the JSON line pino would write for `logger.info(fields, msg)` (level, time, the
 * fields, msg; undefined fields left out), without pino's per-call work (its serializer walk and
 * redaction pass, about 2 µs a line here). Only for fields whose names and values are fixed by
 * the caller and never secret: nothing is redacted. Asks the logger's level on every line.
 */
export function infoLineWriter(logger: Logger, msg: string): (fields: Record<string, unknown>) => void {
  const stream = (logger as unknown as Record<symbol, DestinationStream | undefined>)[pino.symbols.streamSym];
  const tail = `,"msg":${JSON.stringify(msg)}}\n`;
  if (!stream || typeof stream.write !== 'function') return (fields) => logger.info(fields, msg);
  return (fields) => {
    if (!logger.isLevelEnabled('info')) return;
    const body = JSON.stringify(fields);
    stream.write(`{"level":30,"time":${Date.now()}${body.length > 2 ? `,${body.slice(1, -1)}` : ''}${tail}`);
  };
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
