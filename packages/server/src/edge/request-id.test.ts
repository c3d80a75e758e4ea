import { describe, expect, it } from 'vitest';
import { MAX_REQUEST_ID_LENGTH, trustedRequestId } from './request-id.js';

describe('trustedRequestId', () => {
  it('keeps plain ids of letters, digits and ._:-', () => {
    for (const id of ['a', 'Z', '0', 'abc-DEF_123.x:y', '4bf92f3577b34da6a3ce929d0e0e4736', '1-67891233-abcdef012345678912345678', 'x'.repeat(MAX_REQUEST_ID_LENGTH)]) {
      expect(trustedRequestId(id)).toBe(id);
    }
  });

  it('takes the first of a repeated header', () => {
    expect(trustedRequestId(['first', 'second'])).toBe('first');
    expect(trustedRequestId(['bad value', 'second'])).toBeUndefined();
  });

  it('refuses empty, long and hostile values', () => {
    const hostile = [
      undefined,
      '',
      'x'.repeat(MAX_REQUEST_ID_LENGTH + 1),
      'a'.repeat(10_000),
      'abc\r\nset-cookie: x=1',
      'abc\n',
      'a b',
      'a/b',
      'a;b',
      'a=b',
      'id"',
      'é',
      'a\u0000',
      'a\u2028',
      '😀',
      '[',
      '@',
      '`',
      '{',
      '/',
    ];
    for (const value of hostile) expect(trustedRequestId(value), JSON.stringify(value)).toBeUndefined();
  });

  it('agrees with the pattern it replaced on every single character', () => {
    const pattern = /^[A-Za-z0-9._:-]{1,128}$/;
    for (let c = 0; c < 0x300; c++) {
      const id = `a${String.fromCharCode(c)}b`;
      expect(trustedRequestId(id) !== undefined, `char ${c}`).toBe(pattern.test(id));
    }
  });

  it('answers a 1 MB hostile value at once', () => {
    const t = performance.now();
    const long = 'a'.repeat(1_000_000);
    for (let i = 0; i < 1000; i++) trustedRequestId(long);
    expect(performance.now() - t).toBeLessThan(1000);
  });
});
