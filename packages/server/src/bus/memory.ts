/**
 * Room state in memory, per instance id: the whole state of a single process, and the state the
 * cluster primary keeps for its workers.
 */
import type { RoomState } from './types.js';

/** Rooms whose history is kept; clients can make up room names, so the least recently used go. */
export const MAX_HISTORY_ROOMS = 10_000;

export class MemoryRooms {
  /** room → openid → instances that have the user in the room. */
  private readonly members = new Map<string, Map<string, Set<string>>>();
  private readonly histories = new Map<string, string[]>();

  add(room: string, openid: string, instance: string): boolean {
    let users = this.members.get(room);
    if (!users) this.members.set(room, (users = new Map()));
    let instances = users.get(openid);
    const first = !instances || instances.size === 0;
    if (!instances) users.set(openid, (instances = new Set()));
    instances.add(instance);
    return first;
  }

  remove(room: string, openid: string, instance: string): boolean {
    const users = this.members.get(room);
    const instances = users?.get(openid);
    if (!users || !instances) return false;
    instances.delete(instance);
    if (instances.size > 0) return false;
    users.delete(openid);
    if (users.size === 0) this.members.delete(room);
    return true;
  }

  list(room: string, limit: number): string[] {
    const users = this.members.get(room);
    if (!users) return [];
    const out: string[] = [];
    for (const openid of users.keys()) {
      if (out.length >= limit) break;
      out.push(openid);
    }
    return out;
  }

  /** Forgets an instance (a worker that died); returns the [room, openid] pairs that are now gone. */
  dropInstance(instance: string): [string, string][] {
    const gone: [string, string][] = [];
    for (const [room, users] of this.members) {
      for (const [openid, instances] of users) {
        if (instances.delete(instance) && instances.size === 0) {
          users.delete(openid);
          gone.push([room, openid]);
        }
      }
      if (users.size === 0) this.members.delete(room);
    }
    return gone;
  }

  push(room: string, entry: string, keep: number): void {
    let list = this.histories.get(room);
    if (list) this.histories.delete(room); // re-inserted below: the map's order is least recently used first
    else list = [];
    this.histories.set(room, list);
    if (this.histories.size > MAX_HISTORY_ROOMS) this.histories.delete(this.histories.keys().next().value!);
    list.push(entry);
    if (list.length > keep) list.splice(0, list.length - keep);
  }

  recent(room: string, count: number): string[] {
    const list = this.histories.get(room) ?? [];
    return list.slice(Math.max(0, list.length - count));
  }
}

/** One process: the state is this process's own. */
export function createMemoryRoomState(): RoomState {
  const rooms = new MemoryRooms();
  const self = 'local';
  return {
    addMember: async (room, openid) => rooms.add(room, openid, self),
    removeMember: async (room, openid) => rooms.remove(room, openid, self),
    members: async (room, limit) => rooms.list(room, limit),
    pushHistory: async (room, entry, keep) => rooms.push(room, entry, keep),
    history: async (room, count) => rooms.recent(room, count),
    refresh: async () => undefined,
    close: async () => undefined,
  };
}
