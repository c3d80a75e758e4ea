import { describe, expect, it } from 'vitest';
import { decodeRelayFrame, encodeRelayFrame, RELAY_FRAME_MAX_BYTES, RELAY_NAME_PATTERN } from './relay.js';

const bytes = (length: number, json: string) => {
  const body = new TextEncoder().encode(json);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, length);
  out.set(body, 4);
  return out;
};

describe('relay control frames', () => {
  it('round-trip, and what follows a frame is left for the next reader', () => {
    const hello = { type: 'hello', version: 1, name: 'alice', token: 'mgr_x', replace: false } as const;
    const encoded = encodeRelayFrame(hello);
    const withMore = new Uint8Array([...encoded, 1, 2, 3]);
    const decoded = decodeRelayFrame(withMore)!;
    expect(decoded.frame).toEqual(hello);
    expect([...decoded.rest]).toEqual([1, 2, 3]);
  });

  it('wait for more bytes while a frame is incomplete', () => {
    const encoded = encodeRelayFrame({ type: 'welcome', name: 'alice', maxStreams: 10 });
    for (const cut of [0, 3, 4, encoded.length - 1]) expect(decodeRelayFrame(encoded.subarray(0, cut))).toBeNull();
  });

  it('refuse a length over the limit before its bytes arrive', () => {
    expect(() => decodeRelayFrame(bytes(RELAY_FRAME_MAX_BYTES + 1, ''))).toThrow(RangeError);
    expect(() => decodeRelayFrame(new Uint8Array([0xff, 0xff, 0xff, 0xff]))).toThrow(RangeError);
  });

  it('refuse JSON that is not a known frame, and bytes that are not UTF-8 JSON', () => {
    for (const json of ['{}', '[]', 'null', '{"type":"hello","name":"a"}', '{"type":"refused","code":1,"message":"x"}', '{"type":"other"}']) {
      expect(() => decodeRelayFrame(bytes(json.length, json)), json).toThrow();
    }
    const invalid = new Uint8Array([0, 0, 0, 2, 0xc3, 0x28]);
    expect(() => decodeRelayFrame(invalid)).toThrow();
  });

  it('names: lower-case letters, digits and inner dashes, at most 32', () => {
    for (const good of ['a', 'alice', 'dev-1', 'a'.repeat(32)]) expect(RELAY_NAME_PATTERN.test(good), good).toBe(true);
    for (const bad of ['', 'Alice', '-a', 'a-', 'a_b', 'a.b', 'a'.repeat(33), 'a\n']) expect(RELAY_NAME_PATTERN.test(bad), bad).toBe(false);
  });
});
