/**
 * The bus and room state for `workers` on one machine without Redis: workers talk to the
 * primary over the cluster IPC channel; the primary forwards bus messages to the other workers
 * and keeps the room state for all of them (and forgets a worker's members when it dies).
 */
import cluster, { type Worker } from 'node:cluster';
import { MemoryRooms } from './memory.js';
import type { Bus, RoomState } from './types.js';

type ToPrimary =
  | { mg: 'bus'; topic: string; payload: string }
  | { mg: 'rooms'; id: number; op: 'add' | 'remove' | 'members' | 'push' | 'history'; room: string; arg?: string; n?: number };
type ToWorker = { mg: 'bus'; topic: string; payload: string } | { mg: 'rooms-reply'; id: number; result: unknown };

const isOurs = (message: unknown): message is { mg: string } =>
  typeof message === 'object' && message !== null && typeof (message as { mg?: unknown }).mg === 'string';

/** In a worker: the bus through the primary. */
export function createClusterBus(): Bus {
  const handlers = new Map<string, (payload: string) => void>();
  const onMessage = (message: unknown) => {
    if (isOurs(message) && message.mg === 'bus') {
      const { topic, payload } = message as Extract<ToWorker, { mg: 'bus' }>;
      handlers.get(topic)?.(payload);
    }
  };
  process.on('message', onMessage);
  return {
    kind: 'cluster',
    publish(topic, payload) {
      process.send?.({ mg: 'bus', topic, payload } satisfies ToPrimary);
    },
    subscribe(topic, handler) {
      handlers.set(topic, handler);
    },
    unsubscribe(topic) {
      handlers.delete(topic);
    },
    async close() {
      handlers.clear();
      process.off('message', onMessage);
    },
  };
}

/** In a worker: room state kept by the primary. */
export function createClusterRoomState(): RoomState {
  let next = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  const onMessage = (message: unknown) => {
    if (isOurs(message) && message.mg === 'rooms-reply') {
      const { id, result } = message as Extract<ToWorker, { mg: 'rooms-reply' }>;
      waiting.get(id)?.(result);
      waiting.delete(id);
    }
  };
  process.on('message', onMessage);
  const ask = <T>(request: Omit<Extract<ToPrimary, { mg: 'rooms' }>, 'mg' | 'id'>): Promise<T> =>
    new Promise((resolve, reject) => {
      const id = ++next;
      waiting.set(id, resolve as (result: unknown) => void);
      if (!process.send?.({ mg: 'rooms', id, ...request } satisfies ToPrimary)) {
        waiting.delete(id);
        reject(new Error('the primary is not reachable'));
      }
    });
  return {
    addMember: (room, openid) => ask<boolean>({ op: 'add', room, arg: openid }),
    removeMember: (room, openid) => ask<boolean>({ op: 'remove', room, arg: openid }),
    members: (room, limit) => ask<string[]>({ op: 'members', room, n: limit }),
    pushHistory: (room, entry, keep) => ask<void>({ op: 'push', room, arg: entry, n: keep }),
    history: (room, count) => ask<string[]>({ op: 'history', room, n: count }),
    refresh: async () => undefined, // the primary sees a worker die; nothing lingers
    async close() {
      process.off('message', onMessage);
    },
  };
}

/** In the primary: serves the workers' bus and room state. */
export function serveClusterHub(): void {
  const rooms = new MemoryRooms();
  cluster.on('message', (worker: Worker, message: unknown) => {
    if (!isOurs(message)) return;
    const request = message as ToPrimary;
    if (request.mg === 'bus') {
      for (const other of Object.values(cluster.workers ?? {})) {
        if (other && other.id !== worker.id && other.isConnected()) other.send(request satisfies ToWorker);
      }
      return;
    }
    if (request.mg !== 'rooms') return;
    const instance = String(worker.id);
    const result =
      request.op === 'add'
        ? rooms.add(request.room, request.arg!, instance)
        : request.op === 'remove'
          ? rooms.remove(request.room, request.arg!, instance)
          : request.op === 'members'
            ? rooms.list(request.room, request.n ?? 1000)
            : request.op === 'push'
              ? rooms.push(request.room, request.arg!, request.n ?? 0)
              : rooms.recent(request.room, request.n ?? 0);
    if (worker.isConnected()) worker.send({ mg: 'rooms-reply', id: request.id, result: result ?? null } satisfies ToWorker);
  });
  cluster.on('exit', (worker) => rooms.dropInstance(String(worker.id)));
}
