/**
 * `wss://…/channel`: the upgrade (Origin rule, session, per-user limit), the socket's frames,
 * server pings, and keeping connections in step with their sessions (revoked anywhere → closed
 * with 4001 within about a second; an open socket counts as use of the session).
 *
 * Authentication, in order: a Wafer tunnel ticket (`?wafer=`, from GET /weapp/tunnel; good for
 * one socket, recorded as used before the handshake completes),
 * `Authorization: Bearer` or `X-WX-Skey` (mini programs: wx.connectSocket's header), or the
 * subprotocol `minigate.token.<token>` next to `minigate` (browsers cannot set headers).
 * Never the session token in the URL.
 */
import { operations } from './schemas.js';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { CHANNEL_CLOSE, EVENT_NAME, parseClientFrame } from 'minigate-protocol';
import type { SessionService } from '../auth/index.js';
import { sessionOrThrow, tokenFromRequest } from '../auth/index.js';
import type { Bus, RoomState } from '../bus/index.js';
import { MEMBERSHIP_TTL_MS } from '../bus/index.js';
import type { ChannelConfig } from '../config/index.js';
import { AppError, every, type Clock, type Logger, type Random, type SharedRedis } from '../core/index.js';
import type { Limits } from '../limits/index.js';
import { Router, rejectUpgrade, type ClientInfo, type Service } from '../http/index.js';
import type { Store } from '../store/index.js';
import { createChannelHub, type ChannelHub, type Connection } from './hub.js';
import { channelMetrics, type ChannelMetrics } from './metrics.js';
import { createRoomRules } from './rules.js';
import { createTicketUses } from './ticket-uses.js';
import { createTickets, type Tickets } from './tickets.js';
import { createChannelWebhook } from './webhook.js';

export const SUBPROTOCOL = 'minigate';
const TOKEN_PROTOCOL = /^minigate\.token\.([A-Za-z0-9_-]{20,200})$/;
/** How often sessions revoked anywhere are looked for. */
export const REVOCATION_POLL_MS = 1_000;
const SWEEP_MS = 60_000;
/** Ended sessions are asked for this far back (instances' clocks differ a little). */
const CLOCK_MARGIN_MS = 5_000;
/** How often the store's record of used tunnel tickets drops those long expired. */
export const USED_TICKET_PURGE_MS = 5 * 60_000;

export interface ChannelServiceDeps {
  config: ChannelConfig;
  upstreamSecret: string | undefined;
  secretKey: Buffer;
  sessions: SessionService;
  /** The idle timeout of each app's sessions (an open socket renews them at a quarter of it). */
  idleOf: (appid: string) => number;
  bus: Bus;
  state: RoomState;
  /** Where used tunnel tickets are recorded: Redis when configured, else the store. */
  store: Store;
  redis?: SharedRedis;
  clock: Clock;
  random: Random;
  logger: Logger;
  /** Upgrades per client address (docs/limits.md). */
  limits?: Pick<Limits, 'channelUpgrade'>;
  /** Message and slow-consumer counters (docs/metrics.md). */
  metrics?: ChannelMetrics;
}

export interface ChannelService {
  readonly service: Service;
  readonly hub: ChannelHub;
  readonly tickets: Tickets;
  /** The Wafer tunnel URL for a session, as the client reached us (GET /weapp/tunnel). */
  tunnelUrl(client: { scheme: 'http' | 'https'; host: string }, tokenHash: string): string;
  start(): void;
  /** Closes every socket with 1001 and waits (briefly) for them to go. */
  close(): Promise<void>;
}

export function createChannelService(deps: ChannelServiceDeps): ChannelService {
  const { config, sessions, clock, logger } = deps;
  const instance = randomBytes(4).toString('hex');
  const counts = deps.metrics ?? channelMetrics();
  const webhook = config.webhook ? createChannelWebhook(config.webhook, deps.upstreamSecret, clock, logger) : undefined;
  const hub = createChannelHub({
    config,
    rules: createRoomRules(config.rooms, config.wafer.room),
    bus: deps.bus,
    state: deps.state,
    webhook,
    clock,
    logger,
    instance,
    metrics: counts,
  });
  const tickets = createTickets(deps.secretKey, deps.random);
  const ticketUses = createTicketUses({ store: deps.store, ...(deps.redis ? { redis: deps.redis } : {}), logger });
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: config.maxFrameBytes,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  const touched = new Map<string, number>();
  const stops: (() => void)[] = [];
  let connSeq = 0;
  let closing = false;

  // ---- the upgrade --------------------------------------------------------------------------

  async function authenticate(req: IncomingMessage): Promise<{ tokenHash?: string; token?: string; wafer: boolean }> {
    const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
    const ticket = query.get('wafer');
    if (ticket !== null) {
      const checked = tickets.check(ticket, clock.now());
      if (!checked) throw new AppError('SESSION_INVALID', { message: 'The tunnel URL has expired or is not valid; ask GET /weapp/tunnel for a new one.' });
      // Only a ticket we signed gets this far, so forged ones cannot fill the record of uses.
      if (!(await ticketUses.claim(checked.id, checked.expiresAt, clock.now()))) {
        logger.info('channel: a tunnel URL was offered again and refused');
        throw new AppError('CHANNEL_TICKET_USED');
      }
      return { tokenHash: checked.tokenHash, wafer: true };
    }
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim());
    const fromProtocol = offered.map((p) => TOKEN_PROTOCOL.exec(p)?.[1]).find(Boolean);
    return { token: tokenFromRequest(req) ?? fromProtocol, wafer: false };
  }

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, _rest: string, client: ClientInfo): void {
    if (closing) return rejectUpgrade(socket, new AppError('NOT_FOUND', { message: 'The server is shutting down; reconnect.' }));
    const origin = req.headers.origin;
    if (config.origins && origin !== undefined && !config.origins.includes(origin)) {
      return rejectUpgrade(socket, new AppError('CHANNEL_ORIGIN_FORBIDDEN'));
    }
    // The limit first: a refused upgrade costs no session lookup, and is answered before the handshake.
    Promise.resolve(deps.limits?.channelUpgrade(client.ip))
      .then(() => authenticate(req))
      .then(async ({ tokenHash, token, wafer }) => {
        const session = sessionOrThrow(tokenHash ? await sessions.checkHash(tokenHash) : await sessions.check(token));
        if (hub.connectionsOf(session.openid) >= config.maxConnectionsPerUser) throw new AppError('CHANNEL_TOO_MANY_CONNECTIONS');
        if (socket.destroyed) return;
        wss.handleUpgrade(req, socket, head, (ws) => {
          const conn = hub.accept(
            ws,
            { tokenHash: session.tokenHash, appid: session.appid, openid: session.openid, endsAt: session.absoluteExpiresAt },
            { id: `${instance}-${(++connSeq).toString(36)}`, wafer },
          );
          wire(conn);
          if (wafer) {
            ws.send(`timeout:${Math.round(config.wafer.timeout / 1000)}`);
            void hub.join(conn, config.wafer.room);
          }
        });
      })
      .catch((error: unknown) => {
        if (!(error instanceof AppError) || error.status >= 500) logger.warn({ err: (error as Error).message }, 'channel: upgrade failed');
        rejectUpgrade(socket, error);
      });
  }

  // ---- a socket -----------------------------------------------------------------------------

  function wire(conn: Connection): void {
    const ws = conn.ws;
    ws.on('pong', () => {
      conn.seenAt = performance.now();
    });
    ws.on('error', () => undefined); // 'close' follows; oversize frames end here too (1009)
    ws.on('close', (code) => hub.remove(conn, code));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      conn.seenAt = performance.now();
      if (conn.closed || !hub.allow(conn)) return;
      counts.messageIn.inc();
      if (isBinary) {
        conn.closed = true;
        ws.close(CHANNEL_CLOSE.UNSUPPORTED_DATA, 'text frames only');
        return;
      }
      const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : data.toString('utf8');
      if (conn.wafer) return waferPacket(conn, text);
      const parsed = parseClientFrame(text);
      if (!parsed.ok) {
        hub.sendFrame(conn, { type: 'error', code: parsed.code, message: parsed.message, ...(parsed.id ? { id: parsed.id } : {}) });
        return;
      }
      hub.handle(conn, parsed.frame).catch((error: unknown) => {
        logger.error({ conn: conn.id, err: (error as Error).message }, 'channel: frame failed');
        hub.sendFrame(conn, { type: 'error', code: 'INTERNAL', message: new AppError('INTERNAL').message });
      });
    });
  }

  /** Wafer's packets: `type` or `type:content` (docs/channels.md). */
  function waferPacket(conn: Connection, text: string): void {
    const colon = text.indexOf(':');
    const type = colon === -1 ? text : text.slice(0, colon);
    const content = colon === -1 ? '' : text.slice(colon + 1);
    switch (type) {
      case 'ping':
        conn.ws.send('pong');
        return;
      case 'pong':
        return;
      case 'close':
        conn.closed = true;
        conn.ws.close(CHANNEL_CLOSE.NORMAL, 'bye');
        return;
      case 'message': {
        let message: { type?: unknown; content?: unknown } | null;
        try {
          const value: unknown = JSON.parse(content);
          message = typeof value === 'object' && value !== null ? (value as { type?: unknown; content?: unknown }) : null;
        } catch {
          message = null;
        }
        if (!message || typeof message.type !== 'string' || !EVENT_NAME.test(message.type)) {
          hub.sendFrame(conn, { type: 'error', code: 'CHANNEL_BAD_FRAME', message: 'Expected message:{"type":"<event>","content":…}.' });
          return;
        }
        void hub.publish(conn, config.wafer.room, message.type, message.content ?? null);
        return;
      }
      default:
        hub.sendFrame(conn, { type: 'error', code: 'CHANNEL_UNKNOWN_FRAME', message: 'Wafer packets: message, ping, pong or close.' });
    }
  }

  // ---- keeping up with sessions, pings, room state -----------------------------------------------

  async function pollRevocations(): Promise<void> {
    if (hub.connections.size === 0) return;
    const ended = await sessions.endedSince(clock.now() - REVOCATION_POLL_MS - CLOCK_MARGIN_MS);
    if (ended.length) hub.endSessions(ended.map((e) => e.tokenHash), 'session ended');
  }

  function sweep(): void {
    const now = clock.now();
    for (const conn of hub.connections) {
      const session = conn.session;
      if (now >= session.endsAt) {
        hub.endSessions([session.tokenHash], 'session expired');
        continue;
      }
      const last = touched.get(session.tokenHash) ?? 0;
      if (now - last >= Math.max(60_000, deps.idleOf(session.appid) / 4)) {
        touched.set(session.tokenHash, now);
        sessions.keepAlive(session);
      }
    }
    const open = new Set([...hub.connections].map((c) => c.session.tokenHash));
    for (const hash of touched.keys()) if (!open.has(hash)) touched.delete(hash);
  }

  function ping(): void {
    // Each round judges by its own ping: with pingTimeout ≥ pingInterval the next round's ping
    // goes out before this round's check, and must not make a live client look dead.
    const sentAt = performance.now();
    for (const conn of hub.connections) {
      try {
        conn.ws.ping();
      } catch {
        // closing already
      }
    }
    const reap = setTimeout(() => {
      for (const conn of hub.connections) {
        if (conn.seenAt < sentAt) {
          conn.closed = true;
          conn.ws.terminate(); // 'close' follows: out of rooms and presence
        }
      }
    }, config.pingTimeout);
    reap.unref();
  }

  const router = new Router();
  router.route('GET', '/', operations.socket, () => {
    throw new AppError('BAD_REQUEST', { message: 'This is a WebSocket endpoint: connect with wss:// and a session (docs/channels.md).' });
  });

  return {
    service: { name: 'channel', defaultPath: config.path, router, upgrade },
    hub,
    tickets,
    tunnelUrl: (client, tokenHash) =>
      `${client.scheme === 'https' ? 'wss' : 'ws'}://${client.host}${config.path}?wafer=${tickets.issue(tokenHash, clock.now())}`,
    start() {
      sessions.onEnded((hashes) => hub.endSessions(hashes, 'session ended'));
      const repeat = (ms: number, run: () => unknown, what: string) =>
        stops.push(every(ms, run, (error) => logger.warn({ code: (error as AppError).code, err: (error as Error).message }, `channel: ${what} failed`)));
      repeat(REVOCATION_POLL_MS, pollRevocations, 'looking for ended sessions');
      repeat(SWEEP_MS, sweep, 'session sweep');
      repeat(config.pingInterval, ping, 'ping');
      repeat(MEMBERSHIP_TTL_MS / 3, () => deps.state.refresh(hub.memberships()), 'room state refresh');
      repeat(
        USED_TICKET_PURGE_MS,
        async () => {
          const n = await ticketUses.purge(clock.now());
          if (n) logger.debug({ deleted: n }, 'channel: forgot expired tunnel tickets');
        },
        'purging used tunnel tickets',
      );
    },
    async close() {
      closing = true;
      for (const stop of stops) stop();
      hub.close(CHANNEL_CLOSE.GOING_AWAY, 'server shutting down');
      const deadline = Date.now() + 3_000;
      while (hub.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      for (const conn of hub.connections) conn.ws.terminate();
      await webhook?.close();
      wss.close();
    },
  };
}
