/**
 * The bus and room state on Redis, for instances on several machines.
 *
 * Bus: pub/sub on `minigate:bus:<topic>`, one subscription per topic this instance has listeners
 * for; each payload is prefixed with the sender's instance id so it skips its own. Redis pub/sub
 * keeps nothing: what is published while Redis is down, or while an instance is cut off from it,
 * is lost for the other instances (local delivery goes on) — docs/channels.md says so.
 *
 * Room state: per instance a set of the users it has in a room (`…:p:<room>:<instance>`, with a
 * TTL renewed by `refresh`, so a crashed instance's members fade out) and an index of instances
 * per room; history is a capped list.
 */
import type { Redis } from 'ioredis';
import type { Logger, SharedRedis } from '../core/index.js';
import type { Bus, RoomState } from './types.js';

const PREFIX = 'minigate:';
/** A member set outlives its last refresh by this much (refresh runs every third of it). */
export const MEMBERSHIP_TTL_MS = 60_000;
/** History of a room nobody writes to goes after a week. */
const HISTORY_TTL_MS = 7 * 86_400_000;

export function createRedisBus(redis: SharedRedis, instance: string, logger: Logger): Bus {
  const subscriber: Redis = redis.client.duplicate();
  const handlers = new Map<string, (payload: string) => void>();
  const channel = (topic: string) => `${PREFIX}bus:${topic}`;
  const mark = `${instance}|`;
  let publishFailing = false;

  subscriber.on('error', () => undefined); // the shared client logs outages
  subscriber.on('ready', () => {
    // Subscriptions made while Redis was away (and all of them after a reconnect).
    const topics = [...handlers.keys()].map(channel);
    for (let i = 0; i < topics.length; i += 500) subscriber.subscribe(...topics.slice(i, i + 500)).catch(() => undefined);
  });
  subscriber.on('message', (name: string, text: string) => {
    if (text.startsWith(mark)) return;
    const handler = handlers.get(name.slice(`${PREFIX}bus:`.length));
    const bar = text.indexOf('|');
    if (handler && bar > 0) handler(text.slice(bar + 1));
  });

  return {
    kind: 'redis',
    publish(topic, payload) {
      if (!redis.up) {
        if (!publishFailing) logger.warn({ topic }, 'bus: redis is down; messages reach this instance\'s clients only until it is back');
        publishFailing = true;
        return;
      }
      redis.client.publish(channel(topic), mark + payload).then(
        () => {
          if (publishFailing) logger.info('bus: redis is back; messages reach every instance again');
          publishFailing = false;
        },
        () => {
          if (!publishFailing) logger.warn({ topic }, 'bus: publish failed; messages reach this instance\'s clients only until redis is back');
          publishFailing = true;
        },
      );
    },
    subscribe(topic, handler) {
      const fresh = !handlers.has(topic);
      handlers.set(topic, handler);
      if (fresh && subscriber.status === 'ready') subscriber.subscribe(channel(topic)).catch(() => undefined);
    },
    unsubscribe(topic) {
      if (!handlers.delete(topic)) return;
      if (subscriber.status === 'ready') subscriber.unsubscribe(channel(topic)).catch(() => undefined);
    },
    async close() {
      handlers.clear();
      await subscriber.quit().catch(() => subscriber.disconnect());
    },
  };
}

/** Adds a member; returns 1 when no other (live) instance had the user in the room. */
const ADD_MEMBER = `
local others = 0
for _, inst in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if inst ~= ARGV[2] then
    local key = ARGV[4] .. inst
    if redis.call('EXISTS', key) == 0 then
      redis.call('SREM', KEYS[2], inst)
    elseif redis.call('SISMEMBER', key, ARGV[1]) == 1 then
      others = 1
    end
  end
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if others == 1 then return 0 end
return 1`;

/** Removes a member; returns 1 when no other instance has the user in the room. */
const REMOVE_MEMBER = `
redis.call('SREM', KEYS[1], ARGV[1])
for _, inst in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if inst ~= ARGV[2] and redis.call('SISMEMBER', ARGV[3] .. inst, ARGV[1]) == 1 then return 0 end
end
return 1`;

export function createRedisRoomState(redis: SharedRedis, instance: string): RoomState {
  const client = redis.client;
  const memberKey = (room: string, inst = instance) => `${PREFIX}room:p:${room}:${inst}`;
  const indexKey = (room: string) => `${PREFIX}room:pi:${room}`;
  const historyKey = (room: string) => `${PREFIX}room:h:${room}`;

  return {
    async addMember(room, openid) {
      const result = await client.eval(ADD_MEMBER, 2, memberKey(room), indexKey(room), openid, instance, String(MEMBERSHIP_TTL_MS), memberKey(room, ''));
      return result === 1;
    },
    async removeMember(room, openid) {
      const result = await client.eval(REMOVE_MEMBER, 2, memberKey(room), indexKey(room), openid, instance, memberKey(room, ''));
      return result === 1;
    },
    async members(room, limit) {
      const instances = await client.smembers(indexKey(room));
      if (instances.length === 0) return [];
      const all = await client.sunion(...instances.map((inst) => memberKey(room, inst)));
      return all.slice(0, limit);
    },
    async pushHistory(room, entry, keep) {
      await client.multi().rpush(historyKey(room), entry).ltrim(historyKey(room), -keep, -1).pexpire(historyKey(room), HISTORY_TTL_MS).exec();
    },
    async history(room, count) {
      return client.lrange(historyKey(room), -count, -1);
    },
    async refresh(memberships) {
      let batch = client.pipeline();
      let size = 0;
      for (const [room, users] of memberships) {
        const list = [...users];
        if (list.length === 0) continue;
        batch.sadd(memberKey(room), ...list).pexpire(memberKey(room), MEMBERSHIP_TTL_MS);
        batch.sadd(indexKey(room), instance).pexpire(indexKey(room), MEMBERSHIP_TTL_MS);
        if (++size % 500 === 0) {
          await batch.exec();
          batch = client.pipeline();
        }
      }
      await batch.exec();
    },
    close: async () => undefined,
  };
}
