import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createBucket } from './throttle.js';

async function pass(bytes: number, through: NodeJS.ReadWriteStream): Promise<number> {
  const chunks = Array.from({ length: bytes / 16_384 }, () => Buffer.alloc(16_384));
  let got = 0;
  await pipeline(Readable.from(chunks), through, new Writable({ write: (c: Buffer, _e, done) => ((got += c.length), done()) }));
  return got;
}

describe('relay bandwidth bucket', () => {
  it('lets a second\'s worth through at once, then holds a name to its rate across its streams', async () => {
    const bucket = createBucket(1024 * 1024);
    let started = performance.now();
    expect(await pass(1024 * 1024, bucket.through())).toBe(1024 * 1024);
    expect(performance.now() - started).toBeLessThan(400);
    // The bucket is empty now: two streams of 256 KiB share it and need about half a second together.
    started = performance.now();
    const both = await Promise.all([pass(256 * 1024, bucket.through()), pass(256 * 1024, bucket.through())]);
    expect(both).toEqual([256 * 1024, 256 * 1024]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(450);
  });

  it('refills with time (clock injected), never beyond one second\'s worth', async () => {
    let t = 0;
    const bucket = createBucket(1000, () => t);
    const through = bucket.through();
    const out: Buffer[] = [];
    through.on('data', (c: Buffer) => out.push(c));
    through.write(Buffer.alloc(1000));
    await new Promise((r) => setImmediate(r));
    expect(out).toHaveLength(1);
    t = 60_000; // a minute idle: still only one second's worth
    through.write(Buffer.alloc(1000));
    through.write(Buffer.alloc(500));
    await new Promise((r) => setImmediate(r));
    expect(out).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 600));
    expect(out).toHaveLength(3);
  });
});
