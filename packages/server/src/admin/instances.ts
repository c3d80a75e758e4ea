/**
 * Which instances run, for the overview: with Redis each instance writes a heartbeat into one
 * hash every HEARTBEAT_MS; an entry not renewed for three beats is an instance gone. Without
 * Redis an instance knows only itself (workers of one process group are not listed apart).
 */
import { hostname } from 'node:os';
import type { SharedRedis } from '../core/index.js';
import type { InstanceInfo } from './services.js';

export const HEARTBEAT_MS = 10_000;
const KEY = 'minigate:instances';

export function createInstanceList(redis: SharedRedis, startedAt: number, now: () => number) {
  const id = `${hostname()}:${process.pid}:${startedAt.toString(36)}`;
  const me = { id, host: hostname(), pid: process.pid, startedAt };
  let timer: NodeJS.Timeout | undefined;
  const beat = () => redis.client.hset(KEY, id, JSON.stringify({ ...me, seenAt: now() })).catch(() => undefined);
  return {
    start() {
      void beat();
      timer = setInterval(() => void beat(), HEARTBEAT_MS);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await redis.client.hdel(KEY, id).catch(() => undefined);
    },
    async list(): Promise<InstanceInfo[]> {
      const all = await redis.client.hgetall(KEY).catch(() => ({}) as Record<string, string>);
      const out: InstanceInfo[] = [];
      for (const [key, value] of Object.entries(all)) {
        let seen: InstanceInfo & { seenAt: number };
        try {
          seen = JSON.parse(value) as InstanceInfo & { seenAt: number };
        } catch {
          continue;
        }
        if (now() - seen.seenAt > HEARTBEAT_MS * 3) {
          void redis.client.hdel(KEY, key).catch(() => undefined);
          continue;
        }
        out.push({ id: seen.id, host: seen.host, pid: seen.pid, startedAt: seen.startedAt, self: key === id });
      }
      if (!out.some((i) => i.self)) out.push({ ...me, self: true });
      return out.sort((a, b) => a.startedAt - b.startedAt);
    },
  };
}
