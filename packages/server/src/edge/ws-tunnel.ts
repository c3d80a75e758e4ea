/**
 * A WebSocket connection passed through to an upstream, byte for byte, that can still be ended
 * cleanly: both directions are followed frame by frame (RFC 6455 §5.2 headers only), so on
 * shutdown a close frame (1001 "going away") is put between frames instead of cutting one.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';

/** How long a closing tunnel waits for the peers' close frames before cutting the sockets. */
export const TUNNEL_CLOSE_GRACE_MS = 1_000;

/** What a direction's frames must look like (RFC 6455 §5.2); anything else ends the tunnel. */
export interface FrameRules {
  /** Client-to-server frames are masked, server-to-client frames never. */
  masked: boolean;
  /** An extension was negotiated (permessage-deflate sets RSV1). */
  extensions: boolean;
}

/** Thrown by FrameBoundary.feed when a frame breaks the rules: the stream is not WebSocket. */
export class FrameViolation extends Error {}

const OPCODES = new Set([0x0, 0x1, 0x2, 0x8, 0x9, 0xa]);

/** Follows frame boundaries in a byte stream, and (with rules) checks each frame header. */
export class FrameBoundary {
  private header = Buffer.alloc(0);
  private remaining = 0;

  constructor(private readonly rules?: FrameRules) {}

  /** True between frames. */
  get atBoundary(): boolean {
    return this.remaining === 0 && this.header.length === 0;
  }

  /** Consumes a chunk; returns the offset just after the last frame that ended in it, or -1. */
  feed(chunk: Buffer): number {
    let offset = 0;
    let lastEnd = -1;
    while (offset < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - offset);
        this.remaining -= take;
        offset += take;
        if (this.remaining === 0) lastEnd = offset;
        continue;
      }
      // Collecting a header (2 to 14 bytes), possibly across chunks.
      const before = this.header.length;
      const take = Math.min(14 - before, chunk.length - offset);
      const candidate = Buffer.concat([this.header, chunk.subarray(offset, offset + take)]);
      const need = FrameBoundary.headerLength(candidate);
      if (need === undefined || candidate.length < need) {
        this.header = candidate;
        offset += take;
        continue;
      }
      offset += need - before;
      if (this.rules) FrameBoundary.check(candidate, this.rules);
      this.remaining = FrameBoundary.payloadLength(candidate.subarray(0, need));
      this.header = Buffer.alloc(0);
      if (this.remaining === 0) lastEnd = offset;
    }
    return lastEnd;
  }

  private static check(header: Buffer, rules: FrameRules): void {
    const opcode = header[0]! & 0x0f;
    const rsv = header[0]! & 0x70;
    const masked = (header[1]! & 0x80) !== 0;
    const length7 = header[1]! & 0x7f;
    if (!OPCODES.has(opcode)) throw new FrameViolation(`opcode ${opcode}`);
    if (rsv !== 0 && !(rules.extensions && rsv === 0x40)) throw new FrameViolation('reserved bits');
    if (masked !== rules.masked) throw new FrameViolation(rules.masked ? 'unmasked client frame' : 'masked server frame');
    if (opcode >= 0x8 && (length7 > 125 || (header[0]! & 0x80) === 0)) throw new FrameViolation('bad control frame');
    if (length7 === 127 && (header[2]! & 0x80) !== 0) throw new FrameViolation('length over 2^63');
  }

  private static headerLength(header: Buffer): number | undefined {
    if (header.length < 2) return undefined;
    const length7 = header[1]! & 0x7f;
    const masked = (header[1]! & 0x80) !== 0;
    return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + (masked ? 4 : 0);
  }

  private static payloadLength(header: Buffer): number {
    const length7 = header[1]! & 0x7f;
    if (length7 === 126) return header.readUInt16BE(2);
    if (length7 === 127) return Number(header.readBigUInt64BE(2));
    return length7;
  }
}

/** A close frame with a status code; masked when it goes from a client to a server. */
export function closeFrame(code: number, masked: boolean): Buffer {
  const payload = Buffer.from([code >> 8, code & 0xff]);
  if (!masked) return Buffer.concat([Buffer.from([0x88, payload.length]), payload]);
  const mask = randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x88, 0x80 | payload.length]), mask, body]);
}

export interface Tunnel {
  /** Sends 1001 both ways at the next frame boundaries and ends the connection. */
  close(code?: number): void;
  readonly closed: Promise<void>;
}

/** Connects a client socket and an upstream socket that have both switched to WebSocket. */
export function createTunnel(client: Duplex, upstream: Duplex, options: { extensions: boolean } = { extensions: false }): Tunnel {
  let closing = false;
  let onClosed!: () => void;
  const closed = new Promise<void>((resolve) => (onClosed = resolve));
  const finish = () => {
    client.destroy();
    upstream.destroy();
    onClosed();
  };
  client.once('close', finish);
  upstream.once('close', finish);
  client.on('error', finish);
  upstream.on('error', finish);

  /** One direction: forwards bytes, honours back-pressure, and stops at a boundary when closing. */
  const direction = (from: Duplex, to: Duplex, closeWith: (code: number) => Buffer, rules: FrameRules) => {
    const boundary = new FrameBoundary(rules);
    let stopped = false;
    let code = 1001;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      from.pause();
      if (to.writable) to.write(closeWith(code));
    };
    from.on('data', (chunk: Buffer) => {
      if (stopped) return;
      try {
        if (closing) {
          if (boundary.atBoundary) return stop();
          const end = boundary.feed(chunk);
          if (end === -1) return void to.write(chunk);
          to.write(chunk.subarray(0, end));
          return stop();
        }
        boundary.feed(chunk);
      } catch (error) {
        // Not WebSocket (smuggled HTTP after a 101, a broken peer): nothing of it crosses.
        if (error instanceof FrameViolation) return finish();
        throw error;
      }
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => !stopped && from.resume());
    return {
      requestStop(closeCode: number) {
        code = closeCode;
        if (boundary.atBoundary) stop();
      },
    };
  };

  const down = direction(upstream, client, (code) => closeFrame(code, false), { masked: false, extensions: options.extensions });
  const up = direction(client, upstream, (code) => closeFrame(code, true), { masked: true, extensions: options.extensions });

  return {
    closed,
    close(code = 1001) {
      if (closing) return;
      closing = true;
      down.requestStop(code);
      up.requestStop(code);
      setTimeout(finish, TUNNEL_CLOSE_GRACE_MS).unref();
    },
  };
}
