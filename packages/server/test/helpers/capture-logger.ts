import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/core/logger.js';

export interface CapturedLogs {
  logger: Logger;
  /** Every line written so far (JSON text). */
  lines: string[];
  /** All lines joined, for searching. */
  text(): string;
  /** Parsed entries. */
  entries(): Record<string, unknown>[];
}

/** A logger at the most verbose level whose lines are kept in memory. */
export function captureLogs(): CapturedLogs {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(line);
      done();
    },
  });
  const logger = createLogger({ level: 'trace', destination });
  return {
    logger,
    lines,
    text: () => lines.join('\n'),
    entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
