import { RateLimiterMemory } from 'rate-limiter-flexible';
import { describe, expect, it } from 'vitest';
import { parseRate } from '../config/index.js';
import { captureLogs } from '../../test/helpers/capture-logger.js';
import { createCounter, createLimitStore, retrySeconds, type LimitStore } from './counter.js';
import { addressKey, createLimits } from './index.js';
import { isAppError } from '../core/errors.js';

describe('parseRate', () => {
  it('reads <count>/<window>', () => {
    expect(parseRate('120/m')).toEqual({ points: 120, durationMs: 60_000 });
    expect(parseRate('30/10m')).toEqual({ points: 30, durationMs: 600_000 });
    expect(parseRate(' 5 / h ')).toEqual({ points: 5, durationMs: 3_600_000 });
  });
  it('refuses what is not a whole-second window of at least one point', () => {
    for (const bad of ['120', '0/s', '5/500ms', '5/1.5s', '/m', 'x/m', '5/minute', '-1/s']) expect(parseRate(bad), bad).toBeNull();
  });
});

describe('retrySeconds', () => {
  it('rounds up to whole seconds and is never 0', () => {
    expect(retrySeconds(0)).toBe(1);
    expect(retrySeconds(1)).toBe(1);
    expect(retrySeconds(1000)).toBe(1);
    expect(retrySeconds(1001)).toBe(2);
  });
});

describe('addressKey', () => {
  it('keeps IPv4 and counts IPv6 by its /64, however it is written', () => {
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0DB8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
    expect(addressKey('')).toBe('');
  });
});

/** The real store's bookkeeping, with a shared count that fails on demand (as Redis or the primary would). */
function flakyStore(logs: ReturnType<typeof captureLogs>, state: { down: boolean }): LimitStore {
  const real = createLimitStore({ kind: 'memory' }, logs.logger);
  return {
    ...real,
    kind: 'redis',
    limiters(name, rate) {
      const settings = { keyPrefix: name, points: rate.points, duration: rate.durationMs / 1000 };
      const shared = new RateLimiterMemory(settings);
      const flaky = new Proxy(shared, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver);
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => (state.down ? Promise.reject(new Error('connection refused')) : value.apply(target, args));
        },
      });
      return { shared: flaky, local: new RateLimiterMemory(settings) };
    },
  };
}

describe('a counter whose shared store fails', () => {
  it('counts in this process meanwhile, and the store logs the change once each way', async () => {
    const logs = captureLogs();
    const state = { down: false };
    const counter = createCounter(flakyStore(logs, state), 'test', { points: 2, durationMs: 60_000 }, logs.logger);
    expect(await counter.take('k')).toBe(0);
    state.down = true;
    expect(await counter.take('k')).toBe(0);
    expect(await counter.take('k')).toBe(0);
    expect(await counter.take('k')).toBeGreaterThan(0); // the local count holds the limit
    state.down = false;
    expect(await counter.take('k')).toBe(0); // the shared count had one
    expect(await counter.take('k')).toBeGreaterThan(0);
    expect(logs.lines.filter((l) => l.includes('limits: the shared count failed'))).toHaveLength(1);
    expect(logs.lines.filter((l) => l.includes('limits: the shared count answers again'))).toHaveLength(1);
  });
});

describe('createLimits', () => {
  const config = {
    enabled: true,
    login: { points: 2, durationMs: 60_000 },
    loginFailures: { points: 1, durationMs: 60_000 },
    appLoginFailures: null,
    phone: null,
    channelUpgrades: null,
    internalAuthFailures: null,
  };
  const limitOf = (error: unknown) => (isAppError(error, 'RATE_LIMITED') ? error.details : undefined);

  it('counts an IPv6 client by its /64, so rotating addresses inside it does not help', async () => {
    const limits = createLimits(config, { logger: captureLogs().logger, store: { kind: 'memory' } });
    await limits.beforeLogin('2001:db8:1:2::1', 'wx1');
    await limits.beforeLogin('2001:db8:1:2::2', 'wx1');
    const error = await limits.beforeLogin('2001:db8:1:2::3', 'wx1').catch((e: unknown) => e);
    expect(limitOf(error)).toMatchObject({ limit: 'limits.login' });
    await limits.beforeLogin('2001:db8:1:3::1', 'wx1');
  });

  it('blocks an address past its failed codes without taking a login point, and says when to come back', async () => {
    const limits = createLimits(config, { logger: captureLogs().logger, store: { kind: 'memory' } });
    await limits.beforeLogin('192.0.2.1', 'wx1');
    await limits.loginFailed('192.0.2.1', 'wx1');
    const error = await limits.beforeLogin('192.0.2.1', 'wx1').catch((e: unknown) => e);
    expect(limitOf(error)).toMatchObject({ limit: 'limits.loginFailures' });
    expect((limitOf(error) as { retryAfterS: number }).retryAfterS).toBeGreaterThanOrEqual(59);
  });

  it('with limits.enabled false never refuses', async () => {
    const limits = createLimits({ ...config, enabled: false }, { logger: captureLogs().logger, store: { kind: 'memory' } });
    for (let i = 0; i < 10; i++) await limits.beforeLogin('192.0.2.1', 'wx1');
    expect(limits.forRoute({ path: '/api', rateLimit: { rate: { points: 1, durationMs: 1000 }, burst: 0 } })).toBeUndefined();
  });
});
