/**
 * How instances share channel traffic: a `Bus` carries frames between instances, a `RoomState`
 * holds what a room needs deployment-wide (who is in it, its recent messages).
 *
 * Three implementations of each: local (one process), cluster (workers on one machine, through
 * the primary) and Redis (any number of instances).
 */
export interface Bus {
  readonly kind: 'local' | 'cluster' | 'redis';
  /** Sends to every other instance subscribed to the topic (this one delivers locally itself). */
  publish(topic: string, payload: string): void;
  /** Receives what other instances publish on the topic; one handler per topic. */
  subscribe(topic: string, handler: (payload: string) => void): void;
  unsubscribe(topic: string): void;
  close(): Promise<void>;
}

/**
 * Room state shared by the instances. Membership is per instance: `addMember` is called when a
 * user's first connection on this instance joins, `removeMember` when its last one leaves.
 * Methods may throw when the backing store is down; callers fall back to what they know locally.
 */
export interface RoomState {
  /** True when the user was in the room on no instance before (a presence join). */
  addMember(room: string, openid: string): Promise<boolean>;
  /** True when the user is now in the room on no instance (a presence leave). */
  removeMember(room: string, openid: string): Promise<boolean>;
  /** Who is in the room, on any instance (at most `limit`). */
  members(room: string, limit: number): Promise<string[]>;
  /** Keeps the last `keep` entries of the room's history. */
  pushHistory(room: string, entry: string, keep: number): Promise<void>;
  /** The last `count` entries, oldest first. */
  history(room: string, count: number): Promise<string[]>;
  /** Says again which users this instance has in which rooms (a heartbeat, and repair after an outage). */
  refresh(memberships: ReadonlyMap<string, Iterable<string>>): Promise<void>;
  close(): Promise<void>;
}
