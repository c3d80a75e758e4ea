import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogSink } from './log-sink.js';

// The built module (npm test builds first), run in a process of its own.
const BUILT = new URL('../../dist/core/log-sink.js', import.meta.url).pathname;
const dir = mkdtempSync(path.join(tmpdir(), 'mg-log-sink-'));
const opened: number[] = [];
afterAll(() => {
  for (const fd of opened) closeSync(fd);
});
const line = (i: number) => `{"level":30,"n":${i},"msg":"request ${'x'.repeat(i % 50)}"}\n`;
const flushed = (sink: ReturnType<typeof createLogSink>) => new Promise<Error | undefined>((resolve) => sink.flush(resolve));

/** A pipe whose reading end the test drains by hand; both ends non-blocking. */
function pipe() {
  const fifo = path.join(dir, `fifo-${opened.length}`);
  execFileSync('mkfifo', [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  opened.push(writer);
  const drain = () => {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      try {
        const n = readSync(reader, buf);
        if (n === 0) break;
        chunks.push(Buffer.from(buf.subarray(0, n)));
      } catch {
        break; // EAGAIN: empty for now
      }
    }
    return Buffer.concat(chunks).toString();
  };
  return { reader, writer, drain };
}

describe('log sink', () => {
  it('writes every line once, whole and in order, in pieces', async () => {
    const file = path.join(dir, 'lines.log');
    const fd = openSync(file, 'w');
    opened.push(fd);
    const sink = createLogSink({ fd, pieceBytes: 4096 });
    for (let i = 0; i < 50_000; i++) sink.write(line(i));
    expect(await flushed(sink)).toBeUndefined();
    const text = readFileSync(file, 'utf8');
    expect(text).toBe(Array.from({ length: 50_000 }, (_, i) => line(i)).join(''));
  });

  it('writes a line that waits less than a piece within the interval, with no flush asked', async () => {
    const file = path.join(dir, 'timer.log');
    const fd = openSync(file, 'w');
    opened.push(fd);
    const sink = createLogSink({ fd, intervalMs: 20 });
    sink.write(line(1));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(readFileSync(file, 'utf8')).toBe(line(1));
  });

  it('keeps serving while the reader stalls: bounded memory, dropped lines counted, then said once the reader reads again', async () => {
    const { writer, drain } = pipe();
    const sink = createLogSink({ fd: writer, pieceBytes: 8192, maxPendingBytes: 256 * 1024 });
    // Far more than the pipe (64 KiB) and the bound (256 KiB) hold; write() never blocks or throws.
    for (let i = 0; i < 20_000; i++) sink.write(line(i));
    expect(sink.dropped).toBeGreaterThan(0);
    const dropped = sink.dropped;
    let text = '';
    for (let i = 0; i < 200 && !text.includes('"dropped"'); i++) {
      text += drain();
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    sink.write(line(99_999));
    await new Promise<void>((resolve) => {
      const poll = () => {
        text += drain();
        if (text.endsWith(line(99_999))) resolve();
        else setTimeout(poll, 10);
      };
      poll();
    });
    const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { dropped?: number; level: number; msg: string; n?: number });
    const notices = lines.filter((l) => l.dropped !== undefined);
    expect(notices[0]).toMatchObject({ level: 40, msg: expect.stringContaining('dropped') });
    expect(notices.reduce((sum, l) => sum + l.dropped!, 0)).toBe(dropped);
    // Every line that went out is whole and in order, and every line is either out or counted.
    const kept = lines.filter((l) => l.dropped === undefined).map((l) => l.n!);
    expect(kept.every((n, i) => i === 0 || n > kept[i - 1]!)).toBe(true);
    expect(kept.length - 1 + dropped).toBe(20_000);
    expect(kept.at(-1)).toBe(99_999);
  });

  it('stops writing, without throwing, once the reader has gone (EPIPE)', async () => {
    const { reader, writer } = pipe();
    closeSync(reader);
    const sink = createLogSink({ fd: writer });
    sink.write(line(1));
    expect(await flushed(sink)).toBeInstanceOf(Error);
    sink.write(line(2)); // ignored, no throw
    expect(await flushed(sink)).toBeInstanceOf(Error);
  });

  it('writes what waits when the process exits at once', () => {
    const file = path.join(dir, 'exit.log');
    const script = `
      const { createLogSink } = await import(${JSON.stringify(BUILT)});
      const sink = createLogSink({ fd: 2 });
      for (let i = 0; i < 1000; i++) sink.write('{"n":' + i + '}\\n');
      process.exit(0);
    `;
    const fd = openSync(file, 'w');
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', fd] });
    closeSync(fd);
    expect(run.status).toBe(0);
    const text = readFileSync(file, 'utf8');
    expect(text).toBe(Array.from({ length: 1000 }, (_, i) => `{"n":${i}}\n`).join(''));
  });
});
