export type { Bus, RoomState } from './types.js';
export { createMemoryRoomState, MemoryRooms } from './memory.js';
export { createRedisBus, createRedisRoomState, MEMBERSHIP_TTL_MS } from './redis.js';
export { createClusterBus, createClusterRoomState, serveClusterHub } from './cluster.js';
export { createLocalBus } from './local.js';
