import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalStorage, WRITE_BUFFER_BYTES } from './local.js';

const root = mkdtempSync(path.join(tmpdir(), 'mg-local-storage-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const storage = createLocalStorage(root);
const temps = () => readdirSync(path.join(root, 'tmp'));

/** `data` cut in pieces cycling through these sizes: a TLS record's worth, and odd ones that straddle the buffer's edge. */
function pieces(data: Buffer, sizes = [16_384, 1, 8_191, 65_536, 3]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; at += sizes[i++ % sizes.length]!) out.push(data.subarray(at, at + sizes[i % sizes.length]!));
  return out;
}

describe('local storage writer (writes buffered up to WRITE_BUFFER_BYTES)', () => {
  it('stores files just under, at, just over and well over its write buffer byte for byte', async () => {
    for (const size of [WRITE_BUFFER_BYTES - 1, WRITE_BUFFER_BYTES, WRITE_BUFFER_BYTES + 1, 3 * WRITE_BUFFER_BYTES + 7]) {
      const data = randomBytes(size);
      const key = `f/${size.toString(16).padStart(8, '0')}`;
      const writer = storage.writer(key);
      for (const piece of pieces(data)) await writer.write(piece);
      expect(await writer.commit()).toBe(size);
      const stored = await buffer(await storage.read(key));
      expect([size, stored.length, stored.equals(data)]).toEqual([size, size, true]);
    }
    expect(temps()).toEqual([]);
  });

  it('writes a batch that is not full once no more comes for a moment (a paused client leaves no bytes in memory)', async () => {
    const writer = storage.writer('f/0dd1e000');
    const data = randomBytes(100_000);
    for (const piece of pieces(data)) await writer.write(piece);
    const temp = path.join(root, 'tmp', temps()[0]!);
    await expect.poll(() => statSync(temp).size, { timeout: 2_000 }).toBe(data.length);
    await writer.write(data.subarray(0, 10));
    expect(await writer.commit()).toBe(data.length + 10);
    expect(temps()).toEqual([]);
  });

  it('leaves nothing behind when aborted with bytes still in its buffer', async () => {
    const writer = storage.writer('f/0badc0de');
    // Less than the buffer: every write resolves at once, the bytes not yet all on disk.
    for (const piece of pieces(randomBytes(WRITE_BUFFER_BYTES - 100))) await writer.write(piece);
    await writer.abort();
    expect(temps()).toEqual([]);
    await expect(storage.read('f/0badc0de')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
