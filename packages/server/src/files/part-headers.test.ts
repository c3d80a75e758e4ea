import { describe, expect, it } from 'vitest';
import { boundaryOf, partHeaderCounter } from './part-headers.js';

const B = 'Bound4ry';
const part = (headers: string[], data: string) => `--${B}\r\n${headers.join('\r\n')}\r\n\r\n${data}\r\n`;
const body = (...parts: string[]) => Buffer.from(`${parts.join('')}--${B}--\r\n`, 'latin1');
const extra = (n: number) => Array.from({ length: n }, (_, i) => `X-Extra-${i}: ${i}`);

/** The counter's verdict on `data` fed in pieces of `size` bytes. */
function verdict(data: Buffer, max: number, size = data.length): boolean {
  const push = partHeaderCounter(B, max);
  let over = false;
  for (let i = 0; i < data.length; i += size) over = push(data.subarray(i, i + size)) || over;
  return over;
}

describe('partHeaderCounter', () => {
  const within = body(part(['Content-Disposition: form-data; name="a"', ...extra(2)], 'x'), part(['Content-Disposition: form-data; name="file"; filename="a.jpg"', 'Content-Type: image/jpeg'], 'y'.repeat(3000)));
  const over = body(part(['Content-Disposition: form-data; name="a"'], 'x'), part(['Content-Disposition: form-data; name="b"', ...extra(3)], 'z'));

  it('counts each part on its own, whole or split at any byte', () => {
    for (const size of [within.length, 1, 2, 3, 7, 11, 64]) {
      expect([size, verdict(within, 3, size)]).toEqual([size, false]);
      expect([size, verdict(over, 3, size)]).toEqual([size, true]);
      expect([size, verdict(over, 4, size)]).toEqual([size, false]);
    }
  });

  it('does not count folded lines, data that looks like headers, or what follows the closing delimiter', () => {
    const folded = body(part(['Content-Disposition: form-data;', ' name="a"', '\tfilename="a.txt"'], 'x'));
    expect(verdict(folded, 1)).toBe(false);
    const lookalike = body(part(['Content-Disposition: form-data; name="a"'], `${extra(10).join('\r\n')}\r\n--${B}x`));
    expect(verdict(lookalike, 1)).toBe(false);
    const epilogue = Buffer.concat([body(part(['Content-Disposition: form-data; name="a"'], 'x')), Buffer.from(`--${B}\r\n${extra(10).join('\r\n')}\r\n\r\n`)]);
    expect(verdict(epilogue, 1)).toBe(false);
  });

  it('finds a delimiter split across chunks, and one right at the start', () => {
    const data = body(part(['Content-Disposition: form-data; name="a"'], 'q'.repeat(100)), part(['Content-Disposition: form-data; name="b"', ...extra(5)], 'z'));
    for (let cut = 1; cut < data.length; cut++) {
      const push = partHeaderCounter(B, 5);
      expect([cut, push(data.subarray(0, cut)) || push(data.subarray(cut))]).toEqual([cut, true]);
    }
  });
});

describe('boundaryOf', () => {
  it('reads plain and quoted boundaries', () => {
    expect(boundaryOf('multipart/form-data; boundary=abc123')).toBe('abc123');
    expect(boundaryOf('multipart/form-data; charset=utf-8; BOUNDARY="a b\\"c"')).toBe('a b"c');
    expect(boundaryOf('multipart/form-data')).toBeUndefined();
  });
});
