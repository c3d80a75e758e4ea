import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FrameBoundary, closeFrame } from './ws-tunnel.js';

/** A frame as RFC 6455 lays it out, with a payload of `length` bytes. */
function frame(length: number, masked: boolean): Buffer {
  const lengthBytes = length < 126 ? Buffer.from([length]) : length < 65536 ? Buffer.from([126, length >> 8, length & 255]) : (() => {
    const b = Buffer.alloc(9);
    b[0] = 127;
    b.writeBigUInt64BE(BigInt(length), 1);
    return b;
  })();
  if (masked) lengthBytes[0]! |= 0x80;
  return Buffer.concat([Buffer.from([0x82]), lengthBytes, masked ? randomBytes(4) : Buffer.alloc(0), randomBytes(length)]);
}

describe('FrameBoundary', () => {
  it('finds every frame end however the stream is cut', () => {
    for (let round = 0; round < 200; round++) {
      const masked = round % 2 === 0;
      const sizes = Array.from({ length: 1 + (round % 6) }, (_, i) => [0, 1, 125, 126, 127, 300, 65535, 65536, 70000][(round + i * 3) % 9]!);
      const frames = sizes.map((n) => frame(n, masked));
      const stream = Buffer.concat(frames);
      const ends = new Set<number>();
      let total = 0;
      for (const f of frames) ends.add((total += f.length));
      const boundary = new FrameBoundary();
      let offset = 0;
      while (offset < stream.length) {
        const size = 1 + Math.floor(Math.random() * (round % 3 === 0 ? 7 : 5000));
        const chunk = stream.subarray(offset, offset + size);
        const end = boundary.feed(chunk);
        if (end !== -1) expect(ends.has(offset + end), `round ${round}`).toBe(true);
        offset += chunk.length;
        // Between chunks, atBoundary is true exactly at frame ends.
        expect(boundary.atBoundary).toBe(ends.has(offset));
      }
    }
  });

  it('makes close frames with the code, masked for the upstream', () => {
    expect([...closeFrame(1001, false)]).toEqual([0x88, 0x02, 0x03, 0xe9]);
    const masked = closeFrame(1001, true);
    expect(masked[1]).toBe(0x82);
    const mask = masked.subarray(2, 6);
    expect([masked[6]! ^ mask[0]!, masked[7]! ^ mask[1]!]).toEqual([0x03, 0xe9]);
  });
});
