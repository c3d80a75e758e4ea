/**
 * The relay's control exchange (the dev tunnel: a laptop's server reached through minigate).
 *
 * The client dials one TLS connection to minigate's HTTPS listener with ALPN {@link RELAY_ALPN}.
 * Before anything else, each side sends one control frame: the client a {@link RelayHello}, then
 * minigate a {@link RelayWelcome} or a {@link RelayRefused} (and closes). After a welcome the same
 * connection carries HTTP/2 in reverse: the client is the HTTP/2 *server* (it answers requests for
 * its local service), minigate is the HTTP/2 *client*. WebSockets travel as extended CONNECT
 * streams (RFC 8441). The relay server and its client share nothing but this file.
 *
 * A control frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
 */

/** The ALPN protocol id the relay client offers (and the only one). */
export const RELAY_ALPN = 'minigate-relay';

/** The version of this exchange; a hello with another is refused. */
export const RELAY_VERSION = 1;

/** The largest control frame either side accepts (bytes of JSON). */
export const RELAY_FRAME_MAX_BYTES = 4096;

/** Relay names: what routes' `tunnel:` and `minigate relay add` accept. */
export const RELAY_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

/** Client → minigate, first thing on the connection. */
export interface RelayHello {
  type: 'hello';
  version: number;
  /** The relay name the client wants to serve. */
  name: string;
  /** The token `minigate relay add NAME` printed (never logged). */
  token: string;
  /** Take the name over from a client already connected with it (its link is closed). */
  replace: boolean;
}

/** minigate → client: the link is up; HTTP/2 (client: server side) starts right after this frame. */
export interface RelayWelcome {
  type: 'welcome';
  name: string;
  /** Streams minigate opens at once on this link at most. */
  maxStreams: number;
}

/** Why minigate refuses a hello; the client retries only on RELAY_NAME_TAKEN with --replace or later. */
export type RelayRefusalCode = 'RELAY_AUTH_FAILED' | 'RELAY_NAME_TAKEN' | 'RELAY_BAD_HELLO';

/** minigate → client: no link; the connection closes after this frame. */
export interface RelayRefused {
  type: 'refused';
  code: RelayRefusalCode;
  message: string;
}

export type RelayControlFrame = RelayHello | RelayWelcome | RelayRefused;

/** Encodes a control frame (length prefix and JSON). */
export function encodeRelayFrame(frame: RelayControlFrame): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(frame));
  if (json.length > RELAY_FRAME_MAX_BYTES) throw new RangeError('relay control frame too large');
  const out = new Uint8Array(4 + json.length);
  new DataView(out.buffer).setUint32(0, json.length);
  out.set(json, 4);
  return out;
}

/**
 * Reads one control frame from the start of `bytes`: the frame and the bytes after it, or null
 * when more bytes are needed. Throws on a frame too large or not JSON of a known type.
 */
export function decodeRelayFrame(bytes: Uint8Array): { frame: RelayControlFrame; rest: Uint8Array } | null {
  if (bytes.length < 4) return null;
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  if (length > RELAY_FRAME_MAX_BYTES) throw new RangeError('relay control frame too large');
  if (bytes.length < 4 + length) return null;
  const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(4, 4 + length)));
  if (!isControlFrame(value)) throw new TypeError('not a relay control frame');
  return { frame: value, rest: bytes.subarray(4 + length) };
}

function isControlFrame(value: unknown): value is RelayControlFrame {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  switch (v.type) {
    case 'hello':
      return typeof v.version === 'number' && typeof v.name === 'string' && typeof v.token === 'string' && typeof v.replace === 'boolean';
    case 'welcome':
      return typeof v.name === 'string' && typeof v.maxStreams === 'number';
    case 'refused':
      return typeof v.code === 'string' && typeof v.message === 'string';
    default:
      return false;
  }
}
