/**
 * With several instances sharing `redis`: which instance (or worker: each process counts as one)
 * holds each relay name's link. The holder keeps `minigate:relay:owner:<name>` in Redis, its value
 * saying how to reach its hand-off listener, with a TTL it renews while the link lives (so a
 * crashed instance's names fade out) and deletes when the link ends. An instance that gets a
 * request for a name it does not hold reads the key and hands the request there (handoff.ts).
 * A takeover (--replace) on another instance is published on the bus: the old holder closes its
 * link at once.
 */
import type { Bus } from '../bus/index.js';
import type { Logger, SharedRedis } from '../core/index.js';
import type { RelayOwners } from './cluster.js';

/** An owner's key outlives its last renewal by this much (renewed every third of it). */
export const RELAY_OWNER_TTL_MS = 15_000;
const key = (name: string) => `minigate:relay:owner:${name}`;
const TOPIC = 'relay-owner';

interface Owner {
  instance: string;
  address: string;
}

/** Renews the key when it is still ours; 0 when another instance took the name. */
const RENEW = `
local value = redis.call('GET', KEYS[1])
if not value then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
if string.find(value, ARGV[1], 1, true) ~= 1 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;

/** Deletes the key when it is still ours. */
const DROP = `
local value = redis.call('GET', KEYS[1])
if value and string.find(value, ARGV[1], 1, true) == 1 then redis.call('DEL', KEYS[1]) end
return 0`;

function parse(text: string | null): Owner | undefined {
  if (!text) return undefined;
  try {
    const owner = JSON.parse(text) as Partial<Owner>;
    return typeof owner.instance === 'string' && typeof owner.address === 'string' ? (owner as Owner) : undefined;
  } catch {
    return undefined;
  }
}

/** `lost` is called for a name of ours another instance took over. */
export function joinRedisOwners(redis: SharedRedis, bus: Bus, instance: string, address: string, lost: (name: string) => void, logger: Logger): RelayOwners {
  const mine = new Set<string>();
  // The value starts with the instance id, so the Lua scripts can tell "ours" by a prefix.
  const value = JSON.stringify({ instance, address } satisfies Owner);
  const prefix = `{"instance":${JSON.stringify(instance)},`;
  const take = (name: string) => {
    mine.delete(name);
    lost(name);
  };
  bus.subscribe(TOPIC, (payload) => {
    const said = parse(payload.slice(payload.indexOf('|') + 1));
    const name = payload.slice(0, payload.indexOf('|'));
    if (said && said.instance !== instance && mine.has(name)) take(name);
  });
  const renewer = setInterval(() => {
    for (const name of mine) {
      redis.client.eval(RENEW, 1, key(name), prefix, value, RELAY_OWNER_TTL_MS).then(
        (kept) => {
          if (kept === 0 && mine.has(name)) take(name);
        },
        (error: Error) => logger.warn({ relay: name, err: error.message }, 'relay: cannot renew the name\'s owner in redis'),
      );
    }
  }, RELAY_OWNER_TTL_MS / 3);
  renewer.unref();
  return {
    own(name) {
      mine.add(name);
      redis.client.set(key(name), value, 'PX', RELAY_OWNER_TTL_MS).then(
        () => bus.publish(TOPIC, `${name}|${value}`),
        (error: Error) => logger.warn({ relay: name, err: error.message }, 'relay: cannot record the name\'s owner in redis; other instances answer TUNNEL_OFFLINE for it'),
      );
    },
    drop(name) {
      if (!mine.delete(name)) return;
      redis.client.eval(DROP, 1, key(name), prefix).catch(() => undefined);
    },
    async elsewhere(name) {
      let owner: Owner | undefined;
      try {
        owner = parse(await redis.client.get(key(name)));
      } catch {
        return undefined; // Redis down: this instance's own links still serve
      }
      return owner && owner.instance !== instance ? owner.address : undefined;
    },
    close() {
      clearInterval(renewer);
      bus.unsubscribe(TOPIC);
      for (const name of mine) redis.client.eval(DROP, 1, key(name), prefix).catch(() => undefined);
      mine.clear();
    },
  };
}
