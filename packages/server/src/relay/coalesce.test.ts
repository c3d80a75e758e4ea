import { Readable, Writable } from 'node:stream';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { pipeCoalesced } from './coalesce.js';

const PIECE = 16 * 1024;
const piece = (n: number) => Buffer.alloc(PIECE, n);

/** A destination that records each write it is handed (a batch = the chunks of one writev) and holds its callback when told to. */
function destination(hold = false) {
  const writes: Buffer[][] = [];
  const held: (() => void)[] = [];
  const res = new Writable({
    highWaterMark: PIECE,
    writev(chunks, done) {
      writes.push(chunks.map((c) => c.chunk as Buffer));
      if (hold) held.push(() => done());
      else done();
    },
  });
  return { res, writes, held };
}

describe('pipeCoalesced', () => {
  it('writes the pieces that arrive in one turn as one write, a later turn\'s as the next', async () => {
    const source = new Readable({ read() {} });
    const { res, writes } = destination();
    pipeCoalesced(source, res);
    for (let i = 0; i < 4; i++) source.push(piece(i));
    await turn();
    await turn();
    expect(writes.map((w) => w.length)).toEqual([4]);
    source.push(piece(4));
    source.push(piece(5));
    await turn();
    await turn();
    expect(writes.map((w) => w.length)).toEqual([4, 2]);
    source.push(null);
    await new Promise((resolve) => res.once('finish', resolve));
    expect(Buffer.concat(writes.flat())).toEqual(Buffer.concat([0, 1, 2, 3, 4, 5].map(piece)));
  });

  it('pauses the source while the destination is over its high-water mark, resumes it on drain', async () => {
    const source = new Readable({ read() {}, highWaterMark: 1024 * 1024 });
    const { res, writes, held } = destination(true);
    pipeCoalesced(source, res);
    for (let i = 0; i < 8; i++) source.push(piece(i));
    await turn();
    await turn();
    expect(writes.map((w) => w.length)).toEqual([8]);
    expect(source.isPaused()).toBe(true);
    // What comes now stays in the source (and, on a relay stream, behind HTTP/2 flow control).
    for (let i = 8; i < 16; i++) source.push(piece(i));
    await turn();
    await turn();
    expect(writes).toHaveLength(1);
    expect(res.writableLength).toBe(8 * PIECE);
    expect(source.readableLength).toBe(8 * PIECE);
    // Drained: the source resumes, its eight pieces go as the next batch, and it pauses again.
    held.shift()!();
    await turn();
    await turn();
    expect(writes.map((w) => w.length)).toEqual([8, 8]);
    expect(source.readableLength).toBe(0);
    source.push(null);
    while (held.length) held.shift()!();
    await new Promise((resolve) => res.once('finish', resolve));
    expect(Buffer.concat(writes.flat())).toEqual(Buffer.concat(Array.from({ length: 16 }, (_, i) => piece(i))));
  });

  it('ends the destination with the source, its last pieces with the end', async () => {
    const source = new Readable({ read() {} });
    const { res, writes } = destination();
    pipeCoalesced(source, res);
    source.push(piece(0));
    source.push(null);
    await new Promise((resolve) => res.once('finish', resolve));
    expect(writes.flat()).toHaveLength(1);
  });
});
