import cluster from 'node:cluster';
import { createClusterBus, createClusterRoomState, createLocalBus, createMemoryRoomState, createRedisBus, createRedisRoomState } from '../bus/index.js';
import type { Config } from '../config/index.js';
import type { SharedRedis } from '../core/index.js';
import type { Router } from '../http/index.js';
import type { Feature, SharedDeps } from '../feature/index.js';
import type { Limits } from '../limits/index.js';
import type { SessionService } from '../auth/index.js';
import type { Store } from '../store/index.js';
import { channelGauges, channelMetrics } from './metrics.js';
import { registerChannelRoutes } from './routes.js';
import { createChannelService, type ChannelService } from './service.js';

export interface ChannelFeature extends Feature {
  tunnelUrl: ChannelService['tunnelUrl'];
  /** Publishes from the server side (pushes to a user's sockets). */
  publish(room: string, event: string, data: unknown): Promise<unknown>;
  /** What the admin console shows: connections and rooms here, a room's members and history. */
  inspect: ChannelInspect;
}

export interface ChannelInspect {
  /** Connections on this instance. */
  connections(): number;
  /** Rooms with members on this instance. */
  rooms(): { room: string; users: number }[];
  /** Members (every instance), connections here, the room's rule and its recent history. */
  room(name: string): Promise<{ room: string; members: string[]; connections: number; policy: unknown; history: unknown[] }>;
}

/** History entries the console shows at most. */
const CONSOLE_HISTORY = 50;

export interface ChannelFeatureDeps extends SharedDeps {
  store: Store;
  redis?: SharedRedis | undefined;
  sessions: SessionService;
  secretKey: Buffer;
  limits: Limits;
}

/** WebSocket rooms (channel.enabled): the hub, its bus and room state, the routes. */
export function createChannelFeature(config: Config, deps: ChannelFeatureDeps): ChannelFeature {
  const { redis, apps } = deps;
  // Redis for instances on several machines; the primary for workers on one; else this process.
  const busId = `${process.pid.toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const bus = redis ? createRedisBus(redis, busId, deps.logger) : cluster.isWorker ? createClusterBus() : createLocalBus();
  const state = redis ? createRedisRoomState(redis, busId) : cluster.isWorker ? createClusterRoomState() : createMemoryRoomState();
  const channel = createChannelService({
    config: config.channel,
    upstreamSecret: config.upstreamSecret,
    secretKey: deps.secretKey,
    sessions: deps.sessions,
    idleOf: (appid) => apps.get(appid)?.session.idle ?? 86_400_000,
    bus,
    state,
    store: deps.store,
    ...(redis ? { redis } : {}),
    clock: deps.clock,
    random: deps.random,
    logger: deps.logger,
    limits: deps.limits,
    metrics: channelMetrics(deps.metrics),
  });
  channelGauges(deps.metrics, { connections: () => channel.hub.connections.size, rooms: () => channel.hub.roomCount() });
  let closed: Promise<void> | undefined;
  // Sockets get 1001 while the listeners drain (drain), or when a start failed (close).
  const closeSockets = () => (closed ??= channel.close());
  return {
    name: 'channel',
    tunnelUrl: channel.tunnelUrl,
    publish: (room, event, data) => channel.hub.serverPublish(room, event, data),
    inspect: {
      connections: () => channel.hub.connections.size,
      rooms: () => [...channel.hub.memberships()].map(([room, users]) => ({ room, users: users.length })),
      async room(name) {
        const described = await channel.hub.describe(name);
        const entries = await state.history(name, CONSOLE_HISTORY).catch(() => [] as string[]);
        return { ...described, history: entries.map((e) => JSON.parse(e) as unknown) };
      },
    },
    services: () => [channel.service],
    internalRoutes: (router: Router) => registerChannelRoutes(router, channel.hub),
    async start() {
      channel.start();
    },
    drain: closeSockets,
    async close() {
      await closeSockets();
      await bus.close();
      await state.close();
    },
  };
}
