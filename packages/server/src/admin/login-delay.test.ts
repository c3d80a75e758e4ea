import { describe, expect, it } from 'vitest';
import { createLoginDelay, loginDelayMs, LOGIN_DELAY_FORGET_MS, LOGIN_DELAY_MAX_MS } from './login-delay.js';

describe('the login delay', () => {
  it('grows 0.5 s, 1 s, 2 s … per (account, address), capped at 10 s, and is forgotten on success', async () => {
    let now = 0;
    const waits: number[] = [];
    const delay = createLoginDelay(() => now, async (ms) => void waits.push(ms));
    for (let i = 0; i < 7; i++) await delay.run('alice', '10.0.0.1', async () => false);
    expect(waits).toEqual([500, 1000, 2000, 4000, 8000, 10_000]);
    // Another address, or another account from the same address: not slowed.
    await delay.run('alice', '10.0.0.2', async () => false);
    await delay.run('bob', '10.0.0.1', async () => false);
    expect(waits).toHaveLength(6);
    // Names differ in case only: the same account.
    await delay.run('ALICE', '10.0.0.1', async () => true);
    expect(waits.at(-1)).toBe(LOGIN_DELAY_MAX_MS);
    await delay.run('alice', '10.0.0.1', async () => false);
    expect(waits).toHaveLength(7);
    now += LOGIN_DELAY_FORGET_MS + 1;
    await delay.run('alice', '10.0.0.1', async () => false);
    expect(waits).toHaveLength(7);
    expect(loginDelayMs(0)).toBe(0);
    expect(loginDelayMs(50)).toBe(LOGIN_DELAY_MAX_MS);
  });

  it('runs the attempts of one pair one after another, so parallel guesses queue behind the delay', async () => {
    const waits: number[] = [];
    const delay = createLoginDelay(() => 0, async (ms) => void waits.push(ms));
    await Promise.all(Array.from({ length: 4 }, () => delay.run('alice', '10.0.0.1', async () => false)));
    expect(waits).toEqual([500, 1000, 2000]);
  });
});
