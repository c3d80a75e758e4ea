/**
 * The channel hub: this instance's connections and rooms, and the traffic between them and
 * the other instances (through the bus).
 *
 * Delivery serialises a frame once and writes the same bytes to every connection in the room;
 * a connection whose unsent bytes pass maxQueueBytes is closed (4008) instead of slowing the
 * others. Presence changes are gathered for 50 ms per room, so a crowd joining at once costs a
 * few frames, not one per pair of users.
 */
import type { WebSocket } from 'ws';
import { CHANNEL_CLOSE, userRoom, type ChannelMessage, type ClientFrame, type ErrorCode, type MessageSender, type ServerFrame } from 'minigate-protocol';
import type { Bus, RoomState } from '../bus/index.js';
import type { ChannelConfig } from '../config/index.js';
import { AppError, type Clock, type Logger } from '../core/index.js';
import { channelMetrics, type ChannelMetrics } from './metrics.js';
import type { RoomPolicy, RoomRules } from './rules.js';
import type { ChannelWebhook } from './webhook.js';

const PRESENCE_BATCH_MS = 50;
/** Members listed in `joined` and by the room query. */
export const PRESENCE_LIST_MAX = 1000;
/** A rate-limited connection gets at most one error frame per this long. */
const RATE_ERROR_EVERY_MS = 1000;

export interface ChannelSession {
  tokenHash: string;
  appid: string;
  openid: string;
  /** When the session ends at the latest (its absolute end). */
  endsAt: number;
}

export interface Connection {
  readonly id: string;
  readonly ws: WebSocket;
  readonly session: ChannelSession;
  /** Speaks Wafer's text packets instead of JSON frames. */
  readonly wafer: boolean;
  /** Rooms it is in, its user room included. */
  readonly rooms: Set<string>;
  /** Rooms being joined: what arrives meanwhile waits here until `joined` is sent. */
  joining: Map<string, { id?: string; text: string; frame: ServerFrame | null }[]> | undefined;
  /** When it last showed life (a pong or a frame; performance.now()). */
  seenAt: number;
  closed: boolean;
  allowance: number;
  allowanceAt: number;
  /** Frames dropped since droppedSince (a one-second window). */
  dropped: number;
  droppedSince: number;
  errorAt: number;
}

interface LocalRoom {
  readonly name: string;
  readonly policy: RoomPolicy | null;
  readonly conns: Set<Connection>;
  /** openid → connections of that user here. */
  readonly users: Map<string, number>;
  waferConns: number;
}

export interface ChannelHubDeps {
  config: ChannelConfig;
  rules: RoomRules;
  bus: Bus;
  state: RoomState;
  webhook: ChannelWebhook | undefined;
  clock: Clock;
  logger: Logger;
  /** This instance's id (prefix of message ids). */
  instance: string;
  metrics?: ChannelMetrics;
}

export interface PublishResult {
  id: string;
  ts: number;
  /** Connections on this instance it was written to. */
  local: number;
}

export interface ChannelHub {
  /** Takes a new, authenticated connection (it is put in its user room). */
  accept(ws: WebSocket, session: ChannelSession, options: { id: string; wafer: boolean }): Connection;
  /** A frame from the client. */
  handle(conn: Connection, frame: ClientFrame): Promise<void>;
  /** Sends a frame to one connection (JSON or Wafer form). */
  sendFrame(conn: Connection, frame: ServerFrame): void;
  /** Counts a frame against the rate limit; false (and an error frame at most once a second) when over. */
  allow(conn: Connection): boolean;
  /** Publishes as a member (Wafer packets use this too). */
  publish(conn: Connection, room: string, event: string, data: unknown, id?: string): Promise<void>;
  /** The server publishes (internal API). */
  serverPublish(room: string, event: string, data: unknown): Promise<PublishResult>;
  /** Joins a room for a connection (Wafer connections are joined to theirs at once). */
  join(conn: Connection, room: string, id?: string): Promise<void>;
  /** Who is in a room, deployment-wide, and how many connections here. */
  describe(room: string): Promise<{ room: string; members: string[]; connections: number; policy: RoomPolicy | null }>;
  /** The connection is gone: out of its rooms. */
  remove(conn: Connection, code: number): void;
  /** Closes every connection of these sessions (ended elsewhere). */
  endSessions(tokenHashes: Iterable<string>, reason: string): number;
  connectionsOf(openid: string): number;
  /** All connections here (for pings, expiry and shutdown). */
  readonly connections: ReadonlySet<Connection>;
  /** Memberships here, for the room state's heartbeat. */
  memberships(): Map<string, string[]>;
  /** Rooms with a connection here. */
  roomCount(): number;
  close(code: number, reason: string): void;
}

export function createChannelHub(deps: ChannelHubDeps): ChannelHub {
  const { config, rules, bus, state, webhook, clock, logger } = deps;
  const counts = deps.metrics ?? channelMetrics();
  const connections = new Set<Connection>();
  const rooms = new Map<string, LocalRoom>();
  const bySession = new Map<string, Set<Connection>>();
  const perUser = new Map<string, number>();
  const presence = new Map<string, { joins: Set<string>; leaves: Set<string> }>();
  let presenceTimer: NodeJS.Timeout | undefined;
  let seq = 0;
  const topic = (room: string) => `room:${room}`;
  const nextId = () => `${deps.instance}${(++seq).toString(36)}`;

  // ---- writing ------------------------------------------------------------------------------

  /** Wafer's packets for what JSON clients get as frames (docs/channels.md, Wafer section). */
  function waferText(frame: ServerFrame): string | null {
    switch (frame.type) {
      case 'message':
        return `message:${JSON.stringify({ type: frame.event, content: frame.data, from: frame.from, id: frame.id, ts: frame.ts })}`;
      case 'presence':
        return `message:${JSON.stringify({ type: 'presence', content: { joins: frame.joins, leaves: frame.leaves } })}`;
      case 'pong':
        return 'pong';
      case 'error':
        return `message:${JSON.stringify({ type: 'error', content: { code: frame.code, message: frame.message } })}`;
      default:
        return null;
    }
  }

  function slow(conn: Connection): void {
    if (conn.closed) return;
    logger.warn({ conn: conn.id, openid: conn.session.openid, queued: conn.ws.bufferedAmount }, 'channel: a client stopped reading; closed');
    counts.slowClose.inc();
    closeConn(conn, CHANNEL_CLOSE.SLOW, 'slow');
    // Its close frame waits behind what it does not read: cut the connection soon after.
    setTimeout(() => conn.ws.terminate(), 2_000).unref();
  }

  function write(conn: Connection, data: Buffer | string): void {
    if (conn.closed) return;
    if (conn.ws.bufferedAmount > config.maxQueueBytes) return slow(conn);
    conn.ws.send(data, { binary: false });
    counts.messageOut.inc();
  }

  function sendFrame(conn: Connection, frame: ServerFrame): void {
    if (conn.wafer) {
      const text = waferText(frame);
      if (text !== null) write(conn, text);
    } else write(conn, JSON.stringify(frame));
  }

  /** Writes a frame to everyone in the room here; `text` is its JSON, `frame` parsed when known. */
  function deliver(room: LocalRoom, text: string, frame: ServerFrame | null, id?: string): number {
    const bytes = Buffer.from(text);
    let wafer: string | null | undefined;
    let count = 0;
    for (const conn of room.conns) {
      const waiting = conn.joining?.get(room.name);
      if (waiting) {
        // Messages end with their id and ts (see message()), so the id is found without parsing.
        id ??= /"id":"([A-Za-z0-9]+)","ts":\d+\}$/.exec(text)?.[1];
        waiting.push({ ...(id ? { id } : {}), text, frame });
        continue;
      }
      if (conn.wafer) {
        if (wafer === undefined) wafer = waferText(frame ?? (JSON.parse(text) as ServerFrame));
        if (wafer !== null) write(conn, wafer);
      } else write(conn, bytes);
      count++;
    }
    return count;
  }

  // ---- rooms ----------------------------------------------------------------------------------

  function localRoom(name: string, policy: RoomPolicy | null): LocalRoom {
    let room = rooms.get(name);
    if (!room) {
      room = { name, policy, conns: new Set(), users: new Map(), waferConns: 0 };
      rooms.set(name, room);
      const target = room;
      bus.subscribe(topic(name), (payload) => deliver(target, payload, null));
    }
    return room;
  }

  function queuePresence(room: string, openid: string, kind: 'joins' | 'leaves'): void {
    let pending = presence.get(room);
    if (!pending) presence.set(room, (pending = { joins: new Set(), leaves: new Set() }));
    const other = kind === 'joins' ? pending.leaves : pending.joins;
    // A join and a leave of the same user in one batch cancel out.
    if (!other.delete(openid)) pending[kind].add(openid);
    presenceTimer ??= setTimeout(flushPresence, PRESENCE_BATCH_MS);
  }

  function flushPresence(): void {
    presenceTimer = undefined;
    for (const [name, pending] of presence) {
      if (pending.joins.size === 0 && pending.leaves.size === 0) continue;
      const frame: ServerFrame = { type: 'presence', room: name, joins: [...pending.joins], leaves: [...pending.leaves] };
      const text = JSON.stringify(frame);
      const room = rooms.get(name);
      if (room) deliver(room, text, frame);
      bus.publish(topic(name), text);
    }
    presence.clear();
  }

  /** Puts the connection in the room here; `first` when it is the user's first connection in it here. */
  function enter(conn: Connection, name: string, policy: RoomPolicy | null): { room: LocalRoom; first: boolean } {
    const room = localRoom(name, policy);
    room.conns.add(conn);
    if (conn.wafer) room.waferConns++;
    conn.rooms.add(name);
    const n = room.users.get(conn.session.openid) ?? 0;
    room.users.set(conn.session.openid, n + 1);
    return { room, first: n === 0 };
  }

  /** Takes it out; true when it was the user's last connection in the room here. */
  function exit(conn: Connection, name: string): boolean {
    const room = rooms.get(name);
    conn.rooms.delete(name);
    conn.joining?.delete(name);
    if (!room || !room.conns.delete(conn)) return false;
    if (conn.wafer) room.waferConns--;
    const n = (room.users.get(conn.session.openid) ?? 1) - 1;
    if (n > 0) room.users.set(conn.session.openid, n);
    else room.users.delete(conn.session.openid);
    if (room.conns.size === 0) {
      rooms.delete(name);
      bus.unsubscribe(topic(name));
    }
    return n === 0;
  }

  function memberLeft(name: string, policy: RoomPolicy | null, openid: string): void {
    state.removeMember(name, openid).then(
      (gone) => gone && policy?.presence && queuePresence(name, openid, 'leaves'),
      (error: unknown) => {
        logger.debug({ room: name, err: (error as Error).message }, 'channel: room state unavailable; presence told locally');
        if (policy?.presence) queuePresence(name, openid, 'leaves');
      },
    );
  }

  function fail(conn: Connection, code: ErrorCode, id?: string, room?: string, message = new AppError(code).message): void {
    sendFrame(conn, { type: 'error', code, message, ...(id ? { id } : {}), ...(room ? { room } : {}) });
  }

  // ---- the frames --------------------------------------------------------------------------

  async function join(conn: Connection, name: string, id?: string): Promise<void> {
    const openid = conn.session.openid;
    const policy = rules.policy(name, openid);
    // Tell a developer whose config lacks the rule apart from a user the rule keeps out.
    if (!policy && !rules.policy(name)) return fail(conn, 'CHANNEL_ROOM_FORBIDDEN', id, name, 'No channel.rooms rule covers this room.');
    if (!policy || (policy.apps && !policy.apps.includes(conn.session.appid))) return fail(conn, 'CHANNEL_ROOM_FORBIDDEN', id, name);
    if (!conn.rooms.has(name)) {
      if (conn.rooms.size - 1 >= config.maxRoomsPerConnection) return fail(conn, 'CHANNEL_TOO_MANY_ROOMS', id, name);
      if (policy.join === 'ask') {
        let yes: boolean;
        try {
          yes = webhook ? await webhook.ask({ connection: conn.id, appid: conn.session.appid, openid, room: name }) : false;
        } catch (error) {
          return fail(conn, error instanceof AppError ? error.code : 'CHANNEL_UNAVAILABLE', id, name);
        }
        if (!yes) return fail(conn, 'CHANNEL_ROOM_FORBIDDEN', id, name);
        if (conn.closed || conn.rooms.has(name)) return;
      }
    }
    // A join of this room already under way answers this one too (a second one would take over
    // its queue of what arrives meanwhile, and messages could be lost or doubled).
    if (conn.joining?.has(name)) return;
    const again = conn.rooms.has(name);
    conn.joining ??= new Map();
    conn.joining.set(name, []);
    const entered = again ? { room: rooms.get(name)!, first: false } : enter(conn, name, policy);
    const room = entered.room;
    const frame: Extract<ServerFrame, { type: 'joined' }> = { type: 'joined', room: name };
    try {
      if (entered.first) {
        const first = await state.addMember(name, openid).catch((error: unknown) => {
          logger.debug({ room: name, err: (error as Error).message }, 'channel: room state unavailable; presence told locally');
          return true;
        });
        if (first && policy.presence) queuePresence(name, openid, 'joins');
      }
      if (policy.presence) {
        frame.presence = await state.members(name, PRESENCE_LIST_MAX).catch(() => [...room.users.keys()]);
        if (!frame.presence.includes(openid)) frame.presence.push(openid);
      }
      if (policy.history > 0) {
        const entries = await state.history(name, policy.history).catch(() => [] as string[]);
        frame.history = entries.map((e) => JSON.parse(e) as ChannelMessage);
      }
    } finally {
      const waiting = conn.joining?.get(name) ?? [];
      conn.joining?.delete(name);
      if (conn.joining?.size === 0) conn.joining = undefined;
      if (!conn.closed && conn.rooms.has(name)) {
        sendFrame(conn, frame);
        const seen = new Set((frame.history ?? []).map((m) => m.id));
        for (const entry of waiting) {
          if (entry.id && seen.has(entry.id)) continue;
          if (conn.wafer) sendFrame(conn, entry.frame ?? (JSON.parse(entry.text) as ServerFrame));
          else write(conn, entry.text);
        }
      }
    }
  }

  function leave(conn: Connection, name: string): void {
    if (name === userRoom(conn.session.openid) || !conn.rooms.has(name)) {
      sendFrame(conn, { type: 'left', room: name });
      return;
    }
    const policy = rooms.get(name)?.policy ?? null;
    if (exit(conn, name)) memberLeft(name, policy, conn.session.openid);
    sendFrame(conn, { type: 'left', room: name });
  }

  function message(room: string, event: string, data: unknown, from: MessageSender): ChannelMessage {
    return { type: 'message', room, event, data: data ?? null, from, id: nextId(), ts: clock.now() };
  }

  /** Delivers here and to the other instances; keeps history. */
  function broadcast(name: string, policy: RoomPolicy | null, msg: ChannelMessage): number {
    const text = JSON.stringify(msg);
    const room = rooms.get(name);
    const local = room ? deliver(room, text, msg, msg.id) : 0;
    bus.publish(topic(name), text);
    if (policy && policy.history > 0) {
      state.pushHistory(name, text, policy.history).catch((error: unknown) => logger.debug({ room: name, err: (error as Error).message }, 'channel: history not kept'));
    }
    return local;
  }

  async function publish(conn: Connection, name: string, event: string, data: unknown, id?: string): Promise<void> {
    if (!conn.rooms.has(name)) return fail(conn, 'CHANNEL_NOT_JOINED', id, name);
    const policy = rooms.get(name)?.policy ?? null;
    if (!policy || policy.publish !== 'members') return fail(conn, 'CHANNEL_PUBLISH_FORBIDDEN', id, name);
    const msg = message(name, event, data, { openid: conn.session.openid });
    broadcast(name, policy, msg);
    webhook?.event('message', {
      connection: conn.id,
      appid: conn.session.appid,
      openid: conn.session.openid,
      room: name,
      message: { event, data: msg.data, id: msg.id, ts: msg.ts },
    });
    if (id) sendFrame(conn, { type: 'ack', id });
  }

  function closeConn(conn: Connection, code: number, reason: string): void {
    if (conn.closed) return;
    conn.closed = true;
    try {
      conn.ws.close(code, reason);
    } catch {
      conn.ws.terminate();
    }
  }

  return {
    connections,

    accept(ws, session, options) {
      const conn: Connection = {
        id: options.id,
        ws,
        session,
        wafer: options.wafer,
        rooms: new Set(),
        joining: undefined,
        seenAt: performance.now(),
        closed: false,
        allowance: config.messagesPerSecond * 2,
        allowanceAt: clock.now(),
        dropped: 0,
        droppedSince: clock.now(),
        errorAt: 0,
      };
      connections.add(conn);
      let same = bySession.get(session.tokenHash);
      if (!same) bySession.set(session.tokenHash, (same = new Set()));
      same.add(conn);
      perUser.set(session.openid, (perUser.get(session.openid) ?? 0) + 1);
      const own = userRoom(session.openid);
      if (enter(conn, own, rules.policy(own, session.openid)).first) {
        state.addMember(own, session.openid).catch(() => undefined);
      }
      webhook?.event('connect', { connection: conn.id, appid: session.appid, openid: session.openid });
      return conn;
    },

    async handle(conn, frame) {
      switch (frame.type) {
        case 'ping':
          return sendFrame(conn, { type: 'pong' });
        case 'join':
          return join(conn, frame.room);
        case 'leave':
          return leave(conn, frame.room);
        case 'publish':
          return publish(conn, frame.room, frame.event, frame.data, frame.id);
      }
    },

    sendFrame,

    allow(conn) {
      const now = clock.now();
      const rate = config.messagesPerSecond;
      conn.allowance = Math.min(rate * 2, conn.allowance + ((now - conn.allowanceAt) * rate) / 1000);
      conn.allowanceAt = now;
      // Drops are counted per second, not reset by the next frame that passes: a flood read by a
      // busy process in slices (the bucket refilling between them) is still a flood.
      if (now - conn.droppedSince >= 1000) {
        conn.dropped = 0;
        conn.droppedSince = now;
      }
      if (conn.allowance >= 1) {
        conn.allowance -= 1;
        return true;
      }
      conn.dropped++;
      if (conn.dropped > rate * 10) {
        logger.warn({ conn: conn.id, openid: conn.session.openid }, 'channel: a client kept flooding; closed');
        closeConn(conn, CHANNEL_CLOSE.FLOOD, 'flood');
      } else if (now - conn.errorAt >= RATE_ERROR_EVERY_MS) {
        conn.errorAt = now;
        fail(conn, 'CHANNEL_RATE_LIMITED');
      }
      return false;
    },

    publish,
    join,

    async serverPublish(name, event, data) {
      const msg = message(name, event, data, { server: true });
      const local = broadcast(name, rooms.get(name)?.policy ?? rules.policy(name), msg);
      return { id: msg.id, ts: msg.ts, local };
    },

    async describe(name) {
      const room = rooms.get(name);
      const members = await state.members(name, PRESENCE_LIST_MAX).catch(() => [...(room?.users.keys() ?? [])]);
      return { room: name, members, connections: room?.conns.size ?? 0, policy: rules.policy(name) };
    },

    remove(conn, code) {
      if (!connections.delete(conn)) return;
      conn.closed = true;
      for (const name of [...conn.rooms]) {
        const policy = rooms.get(name)?.policy ?? null;
        if (exit(conn, name)) memberLeft(name, policy, conn.session.openid);
      }
      const same = bySession.get(conn.session.tokenHash);
      same?.delete(conn);
      if (same?.size === 0) bySession.delete(conn.session.tokenHash);
      const n = (perUser.get(conn.session.openid) ?? 1) - 1;
      if (n > 0) perUser.set(conn.session.openid, n);
      else perUser.delete(conn.session.openid);
      webhook?.event('close', { connection: conn.id, appid: conn.session.appid, openid: conn.session.openid, code });
    },

    endSessions(hashes, reason) {
      let closed = 0;
      for (const hash of hashes) {
        for (const conn of bySession.get(hash) ?? []) {
          closeConn(conn, CHANNEL_CLOSE.SESSION_ENDED, reason);
          closed++;
        }
      }
      return closed;
    },

    connectionsOf: (openid) => perUser.get(openid) ?? 0,

    memberships() {
      const out = new Map<string, string[]>();
      for (const [name, room] of rooms) out.set(name, [...room.users.keys()]);
      return out;
    },

    roomCount: () => rooms.size,

    close(code, reason) {
      clearTimeout(presenceTimer);
      for (const conn of connections) closeConn(conn, code, reason);
    },
  };
}
