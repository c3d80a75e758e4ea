/**
 * The relay's owner records in Redis (src/relay/instances.ts), on the real Redis: what another
 * instance sees, a takeover told on the bus, a drop that removes only its own record, and values
 * in the key that are not a record.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisBus } from '../src/bus/index.js';
import { createRedis, type SharedRedis } from '../src/core/redis.js';
import { silentLogger } from '../src/core/logger.js';
import { joinRedisOwners } from '../src/relay/instances.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = silentLogger();
let redis: SharedRedis;

beforeAll(async () => {
  redis = createRedis(REDIS_URL, logger);
  expect(await redis.ready(5_000)).toBe(true);
});
afterAll(async () => redis?.close());

/** Two instances' views on one Redis; `lost` records the names each was told it lost. */
function twoInstances() {
  const lost: Record<'a' | 'b', string[]> = { a: [], b: [] };
  const join = (id: 'a' | 'b', address: string) => {
    const instance = `${id}-${randomBytes(4).toString('hex')}`;
    const bus = createRedisBus(redis, instance, logger);
    const owners = joinRedisOwners(redis, bus, instance, address, (name) => lost[id].push(name), logger);
    return { owners, bus };
  };
  return { a: join('a', '10.0.0.1:4001'), b: join('b', '[fd00::2]:4002'), lost };
}

const until = async (check: () => Promise<boolean> | boolean) => {
  for (let i = 0; i < 50 && !(await check()); i++) await new Promise((r) => setTimeout(r, 20));
};

describe('relay owners in Redis', () => {
  it('the holder is elsewhere for the other instance only; --replace elsewhere is told on the bus; a late drop leaves the new record', async () => {
    const { a, b, lost } = twoInstances();
    const name = `t-${randomBytes(4).toString('hex')}`;
    try {
      a.owners.own(name);
      await until(async () => (await b.owners.elsewhere(name)) !== undefined);
      expect(await b.owners.elsewhere(name)).toBe('10.0.0.1:4001');
      expect(await a.owners.elsewhere(name)).toBeUndefined();
      expect(await redis.client.pttl(`minigate:relay:owner:${name}`)).toBeGreaterThan(10_000);
      // B takes the name over: A is told (and B's record stays when A then drops the name).
      await new Promise((r) => setTimeout(r, 100)); // both subscriptions are up
      b.owners.own(name);
      await until(() => lost.a.includes(name));
      expect(lost.a).toEqual([name]);
      a.owners.drop(name);
      await new Promise((r) => setTimeout(r, 50));
      expect(await a.owners.elsewhere(name)).toBe('[fd00::2]:4002');
      expect(lost.b).toEqual([]);
      b.owners.drop(name);
      await until(async () => (await a.owners.elsewhere(name)) === undefined);
      expect(await redis.client.exists(`minigate:relay:owner:${name}`)).toBe(0);
    } finally {
      for (const side of [a, b]) {
        side.owners.close();
        await side.bus.close();
      }
    }
  });

  it('a key that does not hold a record is not an owner', async () => {
    const { a, b } = twoInstances();
    const name = `t-${randomBytes(4).toString('hex')}`;
    try {
      for (const value of ['not json', '{"instance":1,"address":"x"}', '[]', 'null']) {
        await redis.client.set(`minigate:relay:owner:${name}`, value, 'PX', 5_000);
        expect(await a.owners.elsewhere(name), value).toBeUndefined();
      }
    } finally {
      await redis.client.del(`minigate:relay:owner:${name}`);
      for (const side of [a, b]) {
        side.owners.close();
        await side.bus.close();
      }
    }
  });
});
