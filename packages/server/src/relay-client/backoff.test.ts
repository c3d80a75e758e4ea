import { describe, expect, it } from 'vitest';
import { BACKOFF_MAX_MS, backoffMs } from './client.js';

describe('tunnel back-off', () => {
  it('doubles per attempt, is capped, and is jittered between half and all of it', () => {
    expect(backoffMs(0, 500, () => 1)).toBe(500);
    expect(backoffMs(0, 500, () => 0)).toBe(250);
    expect(backoffMs(3, 500, () => 1)).toBe(4000);
    expect(backoffMs(30, 500, () => 1)).toBe(BACKOFF_MAX_MS);
    expect(backoffMs(30, 500, () => 0)).toBe(BACKOFF_MAX_MS / 2);
  });
});
