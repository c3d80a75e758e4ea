/**
 * A channel: one SocketTask (never the global wx.onSocket* API, which allows one socket) to
 * minigate's /channel, with rooms joined again after every reconnect, publishes acknowledged,
 * a heartbeat that notices a dead link, reconnects with jittered back-off, a bounded queue while
 * disconnected, and a new login when the server says the session ended (close 4001).
 * The protocol is docs/channels.md.
 */
import { CHANNEL_CLOSE, ROOM_NAME, type ChannelMessage, type ClientFrame, type ServerFrame } from 'minigate-protocol';
import { MinigateError, sdkError } from './errors.js';
import type { Wx, WxSocketTask } from './wx.js';

export interface ChannelOptions {
  /** The channel's path on baseUrl. Default `/channel`. */
  path?: string;
  /** Rooms to be in from the start (joined on every connect). */
  rooms?: string[];
  /** A ping this often. Default 20 s. */
  heartbeatMs?: number;
  /** Nothing heard for this long: the link is taken as dead and redialled. Default 45 s. */
  deadAfterMs?: number;
  /** Frames kept while disconnected; beyond, publish fails with CHANNEL_QUEUE_FULL. Default 100. */
  maxQueue?: number;
  /** Reconnect delays grow from min to max (each with jitter). Default 500 ms to 30 s. */
  backoffMs?: { min: number; max: number };
  /** How long a publish waits for its ack. Default 10 s. */
  ackTimeoutMs?: number;
  /** Connect at once. Default true. */
  autoConnect?: boolean;
}

export type { ChannelMessage };

/** A server frame of one type, without its `type`: what the channel's events carry. */
type FrameBody<T extends ServerFrame['type']> = Omit<Extract<ServerFrame, { type: T }>, 'type'>;

export interface ChannelEvents {
  message: ChannelMessage;
  presence: FrameBody<'presence'>;
  joined: FrameBody<'joined'>;
  left: FrameBody<'left'>;
  open: { reconnect: boolean };
  close: { code: number; reason: string; willReconnect: boolean };
  error: MinigateError;
  state: ChannelState;
}

export type ChannelState = 'connecting' | 'open' | 'waiting' | 'closed';

export interface Channel {
  readonly state: ChannelState;
  /** Rooms this channel is in, or will join on connect. */
  readonly rooms: readonly string[];
  connect(): void;
  join(room: string): Promise<ChannelEvents['joined']>;
  leave(room: string): Promise<void>;
  /** Resolves when the server acknowledged the message. */
  publish(room: string, event: string, data?: unknown): Promise<void>;
  on<K extends keyof ChannelEvents>(type: K, handler: (payload: ChannelEvents[K]) => void): () => void;
  /** Closes for good (no reconnect). */
  close(): void;
}

export interface ChannelDeps extends ChannelOptions {
  wx: Wx;
  url: string;
  /** The session token (logging in when there is none). */
  token(): Promise<string>;
  /** The server ended this session (4001): forget it so that token() logs in again. */
  sessionEnded(token: string): void;
  /** After a connect that failed before opening: proves the session (re-login on 401). */
  verifySession?(): Promise<unknown>;
  onClose?(): void;
}

const { SESSION_ENDED } = CHANNEL_CLOSE;
const SEEN_IDS = 500;
/** A connection open this long counts as healthy: the next drop starts the back-off again from the minimum. */
const STABLE_MS = 10_000;

export function createChannel(deps: ChannelDeps): Channel {
  const heartbeatMs = deps.heartbeatMs ?? 20_000;
  const deadAfterMs = deps.deadAfterMs ?? 45_000;
  const maxQueue = deps.maxQueue ?? 100;
  const backoff = deps.backoffMs ?? { min: 500, max: 30_000 };
  const ackTimeoutMs = deps.ackTimeoutMs ?? 10_000;

  let state: ChannelState = 'closed';
  let socket: WxSocketTask | null = null;
  let socketToken = '';
  let attempts = 0;
  /** When the current socket opened: back-off resets only after a connection that lasted. */
  let openedAt = 0;
  let opened = false;
  let everOpened = false;
  let stopped = false;
  let lastHeard = 0;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let nextId = 0;
  const rooms = new Set<string>(deps.rooms ?? []);
  const queue: string[] = [];
  const acks = new Map<string, { resolve: () => void; reject: (e: MinigateError) => void; timer: ReturnType<typeof setTimeout> }>();
  const joins = new Map<string, { resolve: (v: ChannelEvents['joined']) => void; reject: (e: MinigateError) => void }[]>();
  const leaves = new Map<string, (() => void)[]>();
  const seen: string[] = [];
  const seenSet = new Set<string>();
  const handlers = new Map<keyof ChannelEvents, Set<(payload: never) => void>>();

  function emit<K extends keyof ChannelEvents>(type: K, payload: ChannelEvents[K]): void {
    const set = handlers.get(type) as Set<(p: ChannelEvents[K]) => void> | undefined;
    if (!set) return;
    for (const handler of Array.from(set)) {
      try {
        handler(payload);
      } catch (error) {
        // A handler's bug must not break the channel; it is reported on the side.
        setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  }

  function setState(next: ChannelState): void {
    if (state === next) return;
    state = next;
    emit('state', next);
  }

  function send(frame: ClientFrame): boolean {
    if (!socket || !opened) return false;
    socket.send({ data: JSON.stringify(frame) });
    return true;
  }

  /** Sends now, or keeps it for after the reconnect (bounded). */
  function sendOrQueue(frame: ClientFrame): void {
    if (send(frame)) return;
    if (queue.length >= maxQueue) throw sdkError('CHANNEL_QUEUE_FULL', `${maxQueue} frames are already waiting for the connection`);
    queue.push(JSON.stringify(frame));
  }

  function remember(id: string): boolean {
    if (seenSet.has(id)) return false;
    seenSet.add(id);
    seen.push(id);
    if (seen.length > SEEN_IDS) seenSet.delete(seen.shift()!);
    return true;
  }

  function onFrame(text: string): void {
    lastHeard = Date.now();
    // Trusted as the protocol's shape: minigate is the only sender on this socket.
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    switch (frame.type) {
      case 'message':
        if (remember(frame.id)) emit('message', frame);
        return;
      case 'presence':
        emit('presence', { room: frame.room, joins: frame.joins ?? [], leaves: frame.leaves ?? [] });
        return;
      case 'joined': {
        const joined: FrameBody<'joined'> = { room: frame.room, ...(frame.presence ? { presence: frame.presence } : {}), ...(frame.history ? { history: frame.history } : {}) };
        for (const m of frame.history ?? []) remember(m.id);
        emit('joined', joined);
        for (const waiter of joins.get(frame.room) ?? []) waiter.resolve(joined);
        joins.delete(frame.room);
        return;
      }
      case 'left':
        emit('left', { room: frame.room });
        for (const done of leaves.get(frame.room) ?? []) done();
        leaves.delete(frame.room);
        return;
      case 'ack': {
        const pending = acks.get(frame.id);
        if (pending) {
          clearTimeout(pending.timer);
          acks.delete(frame.id);
          pending.resolve();
        }
        return;
      }
      case 'error': {
        const error = new MinigateError(frame.code, frame.message ?? frame.code);
        const pending = frame.id ? acks.get(frame.id) : undefined;
        if (pending) {
          clearTimeout(pending.timer);
          acks.delete(frame.id!);
          pending.reject(error);
          return;
        }
        // Publishes carry an id (joins do not), so an error naming a room being joined, without an
        // id, answers the join whatever its code (CHANNEL_ROOM_FORBIDDEN, CHANNEL_UNAVAILABLE…).
        if (!frame.id && frame.room && joins.has(frame.room)) {
          rooms.delete(frame.room);
          for (const waiter of joins.get(frame.room)!) waiter.reject(error);
          joins.delete(frame.room);
          return;
        }
        emit('error', error);
        return;
      }
      default:
        return; // pong and anything newer
    }
  }

  function connect(): void {
    if (stopped || socket) return;
    clearTimeout(retry);
    setState('connecting');
    deps.token().then(
      (token) => {
        if (stopped || socket) return;
        socketToken = token;
        opened = false;
        // A socket WeChat will not open (a 6th one, a URL not in the domain list) gets `fail` and
        // perhaps onError, never onClose: without this the channel would wait forever.
        const failed = (errMsg: string) => {
          if (socket === task && !opened) lost(task, 1006, errMsg);
        };
        const task: WxSocketTask = deps.wx.connectSocket({
          url: deps.url,
          header: { Authorization: `Bearer ${token}` },
          fail: (err) => setTimeout(() => failed(err.errMsg), 0),
        });
        socket = task;
        task.onOpen(() => {
          if (socket !== task) return;
          opened = true;
          openedAt = Date.now();
          lastHeard = Date.now();
          setState('open');
          emit('open', { reconnect: everOpened });
          everOpened = true;
          for (const room of rooms) send({ type: 'join', room });
          // Queued frames after the joins, so publishes land in rooms already joined.
          for (const text of queue.splice(0)) task.send({ data: text });
          heartbeat = setInterval(() => {
            if (Date.now() - lastHeard > deadAfterMs) return lost(task, 1006, 'no answer to heartbeat');
            send({ type: 'ping' });
          }, heartbeatMs);
        });
        task.onMessage((res) => {
          if (socket === task && typeof res.data === 'string') onFrame(res.data);
        });
        task.onError((res) => failed(res.errMsg)); // after the open, onClose follows
        task.onClose((res) => {
          if (socket === task) lost(task, res.code, res.reason);
        });
      },
      (error: unknown) => {
        // No session and the login failed (offline, WeChat busy): try again later.
        emit('error', error instanceof MinigateError ? error : sdkError('LOGIN_FAILED', String(error)));
        schedule();
      },
    );
  }

  function lost(task: WxSocketTask, code: number, reason: string): void {
    const wasOpen = opened;
    // A server that accepts and then closes at once (4029, 1009, a crash loop) must not be redialled at full speed.
    if (wasOpen && Date.now() - openedAt >= STABLE_MS) attempts = 0;
    socket = null;
    opened = false;
    clearInterval(heartbeat);
    try {
      task.close({ code: 1000 });
    } catch {
      // already closed
    }
    for (const [id, pending] of acks) {
      // Sent, outcome unknown: the caller decides whether to send it again.
      clearTimeout(pending.timer);
      pending.reject(sdkError('CHANNEL_CLOSED', 'the connection closed before the server acknowledged the message'));
      acks.delete(id);
    }
    if (code === SESSION_ENDED) deps.sessionEnded(socketToken);
    emit('close', { code, reason: reason || '', willReconnect: !stopped });
    if (stopped) return;
    if (!wasOpen && code !== SESSION_ENDED && deps.verifySession) {
      // A refused upgrade shows no status to a mini program: ask whether the session is the cause
      // (a 401 there logs in again by itself).
      deps.verifySession().then(schedule, schedule);
      return;
    }
    schedule();
  }

  function schedule(): void {
    if (stopped) return;
    setState('waiting');
    const ceiling = Math.min(backoff.max, backoff.min * Math.pow(2, attempts++));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2); // jitter: a fleet does not redial in step
    clearTimeout(retry);
    retry = setTimeout(connect, delay);
  }

  const channel: Channel = {
    get state() {
      return state;
    },
    get rooms() {
      return Array.from(rooms);
    },
    connect() {
      stopped = false;
      connect();
    },
    join(room) {
      // The server could not say which join a bad name was (no room in its error): refuse it here.
      if (!ROOM_NAME.test(room)) return Promise.reject(sdkError('CHANNEL_BAD_FRAME', `not a room name: ${room}`));
      rooms.add(room);
      return new Promise((resolve, reject) => {
        const list = joins.get(room) ?? [];
        list.push({ resolve, reject });
        joins.set(room, list);
        send({ type: 'join', room }); // when not open, the connect joins every room
      });
    },
    leave(room) {
      rooms.delete(room);
      return new Promise((resolve) => {
        if (!send({ type: 'leave', room })) return resolve();
        const list = leaves.get(room) ?? [];
        list.push(resolve);
        leaves.set(room, list);
      });
    },
    publish(room, event, data) {
      if (stopped) return Promise.reject(sdkError('CHANNEL_CLOSED', 'the channel is closed'));
      const id = `c${++nextId}`;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          acks.delete(id);
          reject(sdkError('TIMEOUT', `no ack within ${ackTimeoutMs} ms`));
        }, ackTimeoutMs + (opened ? 0 : backoff.max));
        acks.set(id, { resolve, reject, timer });
        try {
          sendOrQueue({ type: 'publish', room, event, data: data === undefined ? null : data, id });
        } catch (error) {
          clearTimeout(timer);
          acks.delete(id);
          reject(error);
        }
      });
    },
    on(type, handler) {
      let set = handlers.get(type);
      if (!set) handlers.set(type, (set = new Set()));
      set.add(handler as (payload: never) => void);
      return () => {
        set!.delete(handler as (payload: never) => void);
      };
    },
    close() {
      if (stopped) return;
      stopped = true;
      clearTimeout(retry);
      clearInterval(heartbeat);
      const task = socket;
      socket = null;
      opened = false;
      queue.length = 0;
      for (const [, pending] of acks) {
        clearTimeout(pending.timer);
        pending.reject(sdkError('CHANNEL_CLOSED', 'the channel was closed'));
      }
      acks.clear();
      for (const [, list] of joins) for (const waiter of list) waiter.reject(sdkError('CHANNEL_CLOSED', 'the channel was closed'));
      joins.clear();
      if (task) {
        try {
          task.close({ code: 1000, reason: 'closed by the client' });
        } catch {
          // already closed
        }
      }
      setState('closed');
      emit('close', { code: 1000, reason: 'closed by the client', willReconnect: false });
      deps.onClose?.();
    },
  };
  if (deps.autoConnect !== false) setTimeout(connect, 0);
  return channel;
}
