/**
 * Channel frames: JSON text frames over the WebSocket at /channel (docs/channels.md). Shared by
 * the server and the SDK; no Node or wx APIs here.
 */
import type { ErrorCode } from './errors.js';

/** Close codes the server uses (1000–1011 are RFC 6455's own). */
export const CHANNEL_CLOSE = {
  /** The client said goodbye, or the server is done with it. */
  NORMAL: 1000,
  /** The server is shutting down (SIGTERM); reconnect, to another instance. */
  GOING_AWAY: 1001,
  /** A binary frame: this protocol is text (JSON) only. */
  UNSUPPORTED_DATA: 1003,
  /** A frame over channel.maxFrameBytes. */
  TOO_BIG: 1009,
  /** The session ended (revoked, logged out, expired): log in again before reconnecting. */
  SESSION_ENDED: 4001,
  /** The client did not read, and its outbound queue passed channel.maxQueueBytes. */
  SLOW: 4008,
  /** The client kept sending far over channel.messagesPerSecond. */
  FLOOD: 4029,
} as const;

/** Room names: letters, digits and `_ - : . @`, at most 200 characters. */
export const ROOM_NAME = /^[A-Za-z0-9_\-:.@]{1,200}$/;
/** Event names: as room names, at most 64 characters. */
export const EVENT_NAME = /^[A-Za-z0-9_\-:.@]{1,64}$/;
/** Client correlation ids (for `ack`). */
export const FRAME_ID = /^[A-Za-z0-9_\-:.]{1,64}$/;

export type ClientFrame =
  | { type: 'join'; room: string }
  | { type: 'leave'; room: string }
  | { type: 'publish'; room: string; event: string; data?: unknown; id?: string }
  | { type: 'ping' };

/** Who sent a message: a user, or the server (internal API or webhook). */
// Each side names the other's key as absent, so `from.openid` and `from.server` read on either.
export type MessageSender = { openid: string; server?: undefined } | { server: true; openid?: undefined };

export interface ChannelMessage {
  type: 'message';
  room: string;
  event: string;
  data: unknown;
  from: MessageSender;
  /** Unique per message (server-made). */
  id: string;
  /** Epoch ms when the server took it. */
  ts: number;
}

export type ServerFrame =
  | { type: 'joined'; room: string; presence?: string[]; history?: ChannelMessage[] }
  | { type: 'left'; room: string }
  | ChannelMessage
  | { type: 'presence'; room: string; joins: string[]; leaves: string[] }
  | { type: 'ack'; id: string }
  | { type: 'error'; code: ErrorCode; message: string; id?: string; room?: string }
  | { type: 'pong' };

export type ParsedFrame = { ok: true; frame: ClientFrame } | { ok: false; code: ErrorCode; message: string; id?: string };

const bad = (message: string, id?: string): ParsedFrame => ({ ok: false, code: 'CHANNEL_BAD_FRAME', message, ...(id ? { id } : {}) });

/** Reads one client frame, or says what is wrong with it (never throws). */
export function parseClientFrame(text: string): ParsedFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return bad('The frame is not JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('The frame must be a JSON object with a "type".');
  const frame = value as Record<string, unknown>;
  const id = typeof frame.id === 'string' && FRAME_ID.test(frame.id) ? frame.id : undefined;
  if (frame.id !== undefined && id === undefined) return bad('id: 1 to 64 letters, digits or _ - : .');
  const room = frame.room;
  const roomOk = typeof room === 'string' && ROOM_NAME.test(room);
  switch (frame.type) {
    case 'ping':
      return { ok: true, frame: { type: 'ping' } };
    case 'join':
    case 'leave':
      if (!roomOk) return bad('room: 1 to 200 letters, digits or _ - : . @', id);
      return { ok: true, frame: { type: frame.type, room: room as string } };
    case 'publish': {
      if (!roomOk) return bad('room: 1 to 200 letters, digits or _ - : . @', id);
      if (typeof frame.event !== 'string' || !EVENT_NAME.test(frame.event)) return bad('event: 1 to 64 letters, digits or _ - : . @', id);
      return {
        ok: true,
        frame: { type: 'publish', room: room as string, event: frame.event, ...(frame.data !== undefined ? { data: frame.data } : {}), ...(id ? { id } : {}) },
      };
    }
    default:
      return {
        ok: false,
        code: 'CHANNEL_UNKNOWN_FRAME',
        message: `Unknown frame type ${JSON.stringify(typeof frame.type === 'string' ? frame.type.slice(0, 32) : frame.type)}: join, leave, publish or ping.`,
        ...(id ? { id } : {}),
      };
  }
}

/** The private room every user is in. */
export const userRoom = (openid: string): string => `user:${openid}`;
