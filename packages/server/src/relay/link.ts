/**
 * One relay link, minigate's side: a TLS socket that chose ALPN minigate-relay, its hello read and
 * checked, then HTTP/2 in reverse over it (minigate is the HTTP/2 client, the laptop the server).
 * Liveness is an HTTP/2 PING every pingInterval; one not answered by the next is a dead link.
 */
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { decodeRelayFrame, encodeRelayFrame, RELAY_NAME_PATTERN, RELAY_VERSION, type RelayHello, type RelayRefusalCode } from 'minigate-protocol';

/** Flow-control windows minigate offers the laptop: big enough for a fast download, per stream and per link. */
export const RELAY_STREAM_WINDOW_BYTES = 1024 * 1024;
export const RELAY_LINK_WINDOW_BYTES = 16 * 1024 * 1024;
/**
 * The largest DATA frame minigate accepts from the laptop (HTTP/2's default is 16 KiB): a
 * download then crosses the link in fewer frames and TLS records; measured with bench/tunnel.mjs,
 * 141 → 195 MB/s for a 100 MiB download. Flow control still works per stream, within the window.
 */
export const RELAY_MAX_FRAME_BYTES = 1024 * 1024;

export interface Link {
  readonly name: string;
  readonly session: ClientHttp2Session;
  /** Requests and WebSockets in flight. */
  streams: number;
  /** Ends the link (GOAWAY, then the socket); in-flight streams are cut when `now`. */
  close(now?: boolean): void;
}

export interface HelloResult {
  hello: RelayHello;
  /** Sends a refusal and closes the socket. */
  refuse(code: RelayRefusalCode, message: string): void;
  /** Sends the welcome and starts HTTP/2 over the socket. */
  open(maxStreams: number, pingIntervalMs: number, onClose: (link: Link, reason: string) => void): Promise<Link>;
}

/** Reads the client's hello within `timeoutMs`: null when none came (the socket is then closed, after a refusal if it sent something else). */
export function readHello(socket: TLSSocket, timeoutMs: number): Promise<HelloResult | null> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0);
    const refuse = (code: RelayRefusalCode, message: string) => {
      socket.end(encodeRelayFrame({ type: 'refused', code, message }));
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    const stop = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
    };
    const badHello = (message: string) => {
      stop();
      refuse('RELAY_BAD_HELLO', message);
      resolve(null);
    };
    const timer = setTimeout(() => {
      stop();
      socket.destroy();
      resolve(null);
    }, timeoutMs);
    const onClose = () => {
      stop();
      resolve(null);
    };
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      let decoded: ReturnType<typeof decodeRelayFrame>;
      try {
        decoded = decodeRelayFrame(buffered);
      } catch {
        return badHello('The first frame is not a relay hello.');
      }
      if (!decoded) return;
      const { frame, rest } = decoded;
      // Nothing may follow the hello before the welcome: the client waits for it.
      if (frame.type !== 'hello' || rest.length) return badHello('The first frame is not a valid relay hello.');
      if (frame.version !== RELAY_VERSION) return badHello(`This server speaks relay version ${RELAY_VERSION}, not ${frame.version}.`);
      if (!RELAY_NAME_PATTERN.test(frame.name)) return badHello('The name is not a relay name.');
      stop();
      resolve({ hello: frame, refuse, open: (maxStreams, pingIntervalMs, onLinkClose) => openLink(socket, frame.name, maxStreams, pingIntervalMs, onLinkClose) });
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.on('error', () => socket.destroy());
  });
}

async function openLink(socket: TLSSocket, name: string, maxStreams: number, pingIntervalMs: number, onClose: (link: Link, reason: string) => void): Promise<Link> {
  // HTTP/2 takes the socket over only once the welcome is written: Node's HTTP/2 may not start
  // on a socket with a write of its own still in progress.
  await new Promise<void>((resolve, reject) => socket.write(encodeRelayFrame({ type: 'welcome', name, maxStreams }), (error) => (error ? reject(error) : resolve())));
  const session = http2Connect('https://relay.invalid', {
    createConnection: () => socket,
    // No push: the laptop (the HTTP/2 server here) can open no stream towards minigate at all, so
    // it can only answer what minigate asks of it, never reach another name or route.
    settings: { enablePush: false, initialWindowSize: RELAY_STREAM_WINDOW_BYTES, maxFrameSize: RELAY_MAX_FRAME_BYTES },
    peerMaxConcurrentStreams: maxStreams,
  });
  session.once('connect', () => session.setLocalWindowSize(RELAY_LINK_WINDOW_BYTES));
  let reason = 'closed by the client';
  session.on('error', (error: NodeJS.ErrnoException) => {
    reason = `link error: ${error.code ?? error.message}`;
  });
  session.on('goaway', () => {
    reason = 'the client went away';
  });
  // A ping still unanswered at the next one: the link is dead (a laptop asleep, a NAT that forgot it).
  let waiting = false;
  const pinger = setInterval(() => {
    if (waiting) {
      reason = 'no answer to ping';
      session.destroy();
      return;
    }
    waiting = true;
    session.ping((error) => {
      if (!error) waiting = false;
    });
  }, pingIntervalMs);
  pinger.unref();
  const link: Link = {
    name,
    session,
    streams: 0,
    close(now = false) {
      reason = 'closed by this server';
      if (now) session.destroy();
      else session.close();
      // A graceful close that hangs (a stream that never ends) is cut after a while.
      setTimeout(() => session.destroy(), 10_000).unref();
    },
  };
  session.once('close', () => {
    clearInterval(pinger);
    socket.destroy();
    onClose(link, reason);
  });
  return link;
}
