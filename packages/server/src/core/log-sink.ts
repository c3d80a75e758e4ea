/**
 * Where JSON log lines go: a file descriptor (stderr) through an in-process buffer written in
 * large pieces, off the event loop.
 *
 * Why not pino's own destination (sonic-boom): with an access line per request it cost 5–7 µs of
 * CPU per line here (it measures the byte length of its joined pending string again on every
 * write, and encodes each piece twice), the largest single item of a session check; this buffer
 * keeps the lines as they come and joins them once per piece, well under 1 µs a line.
 *
 * A reader that stops reading (a full pipe) must not stop the server or eat its memory: writes
 * happen on libuv's thread pool, a piece that would block (EAGAIN) is retried a little later, and
 * past `maxPendingBytes` new lines are dropped and counted; the next piece that goes out starts
 * with one line saying how many.
 */
import { write, writeSync } from 'node:fs';

export interface LogSinkOptions {
  /** Default 2 (stderr). */
  fd?: number;
  /** A piece is written once this many bytes wait; default 64 KiB. */
  pieceBytes?: number;
  /** Lines waiting at most this long before they are written; default 250 ms. */
  intervalMs?: number;
  /** Beyond this many bytes waiting, new lines are dropped; default 16 MiB. */
  maxPendingBytes?: number;
}

export interface LogSink {
  /** One or more complete lines, each ending in a newline. */
  write(lines: string): void;
  /** Starts writing what waits; `done` once it is out (or could not be). */
  flush(done?: (error?: Error) => void): void;
  /** Writes what waits before returning (process exit). */
  flushSync(): void;
  /** Lines dropped so far because the reader did not keep up. */
  readonly dropped: number;
}

const RETRY_MS = 20;
const sinks = new Set<LogSink>();
let exitHooked = false;

export function createLogSink(options: LogSinkOptions = {}): LogSink {
  const fd = options.fd ?? 2;
  const pieceBytes = options.pieceBytes ?? 64 * 1024;
  const maxPendingBytes = options.maxPendingBytes ?? 16 * 1024 * 1024;
  let lines: string[] = [];
  let pendingBytes = 0; // string lengths of `lines` (close enough to bytes for a bound)
  let piece: Buffer | undefined; // being written, from `offset`
  let offset = 0;
  let dropped = 0;
  let droppedReported = 0;
  let broken = false; // the descriptor refused a write for good (closed pipe): nothing more is written
  let waiters: ((error?: Error) => void)[] = [];

  const take = (): Buffer => {
    let text = lines.join('');
    if (dropped > droppedReported) {
      text = `${JSON.stringify({ level: 40, time: Date.now(), dropped: dropped - droppedReported, msg: 'log: lines dropped, the reader of the log did not keep up' })}\n${text}`;
      droppedReported = dropped;
    }
    lines = [];
    pendingBytes = 0;
    return Buffer.from(text);
  };

  const settle = (error?: Error) => {
    if (piece !== undefined || (lines.length > 0 && !broken)) return;
    const list = waiters;
    waiters = [];
    for (const done of list) done(error);
  };

  const next = (): void => {
    if (broken) {
      lines = [];
      pendingBytes = 0;
      piece = undefined;
      return settle(new Error('log destination closed'));
    }
    if (piece === undefined) {
      if (lines.length === 0) return settle();
      piece = take();
      offset = 0;
    }
    const current = piece;
    write(fd, current, offset, current.length - offset, null, (error, written) => {
      if (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
          setTimeout(next, RETRY_MS).unref();
          return;
        }
        broken = true;
        return next();
      }
      offset += written;
      if (offset >= current.length) piece = undefined;
      // More waiting than a piece, or a flush asked for: keep going; otherwise the timer or the next full piece starts it.
      if (piece !== undefined || pendingBytes >= pieceBytes || (waiters.length > 0 && lines.length > 0)) next();
      else settle();
    });
  };

  const sink: LogSink = {
    write(text) {
      if (broken) return;
      if (pendingBytes + text.length > maxPendingBytes) {
        dropped++;
        return;
      }
      lines.push(text);
      pendingBytes += text.length;
      if (pendingBytes >= pieceBytes && piece === undefined) next();
    },
    flush(done) {
      if (done) waiters.push(done);
      if (piece === undefined) next();
    },
    flushSync() {
      // A piece the thread pool is writing goes on by itself; what waits behind it is written here.
      if (broken || lines.length === 0) return;
      const rest = take();
      let at = 0;
      for (let tries = 0; at < rest.length && tries < 1000; tries++) {
        try {
          at += writeSync(fd, rest, at, rest.length - at);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') return;
        }
      }
    },
    get dropped() {
      return dropped;
    },
  };

  setInterval(() => {
    if (piece === undefined && lines.length > 0) next();
  }, options.intervalMs ?? 250).unref();
  sinks.add(sink);
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', () => {
      for (const s of sinks) s.flushSync();
    });
  }
  return sink;
}
