/**
 * Hand-off between workers (`workers: N`) and instances (sharing `redis`): each process listens on
 * a port of its own (on relay.handoffAddress); one that gets a tunnel route's request for a name
 * another process holds sends it there over HTTP/1.1, with the headers it already made (identity
 * included) and the hand-off key, and passes the answer back untouched. The key (random from the
 * primary for workers; derived from the secret key across instances) is what lets the receiver
 * trust the X-Minigate-* headers it is handed.
 */
import { timingSafeEqual } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { OutgoingHttpHeaders as H2Headers } from 'node:http2';
import { connect as tcpConnect, isIPv6, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { AppError, errorBody, requestId, type Logger } from '../core/index.js';
import { rejectUpgrade, sendJson } from '../http/index.js';
import { createTunnel, upstreamResponseHeaders, type Tunnel } from '../edge/index.js';
import type { RelayOwners } from './cluster.js';
import { offline, type Handoff, type SendOptions } from './forward.js';

const KEY_HEADER = 'x-minigate-relay-handoff';
const NAME_HEADER = 'x-minigate-relay-name';
const AUTHORITY_HEADER = 'x-minigate-relay-authority';
const TIMEOUT_HEADER = 'x-minigate-relay-timeout';
/** Headers of one HTTP/1.1 hop, never sent on over HTTP/2. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host', 'http2-settings']);

export interface HandoffReceiver {
  readonly address: string;
  close(): Promise<void>;
}

interface Senders {
  send(name: string, headers: H2Headers, req: IncomingMessage, res: ServerResponse, limits: SendOptions): Promise<void>;
  sendUpgrade(name: string, headers: H2Headers, key: string, socket: Duplex, head: Buffer): void;
}

/** The receiving side: a listener on `host` that sends what it is handed over this process's links. */
export async function startHandoffReceiver(key: string, host: string, senders: Senders, logger: Logger): Promise<HandoffReceiver> {
  const expected = Buffer.from(key);
  const trusted = (req: IncomingMessage) => {
    const given = Buffer.from(String(req.headers[KEY_HEADER] ?? ''));
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  /** The request as the sending worker made it, back in HTTP/2's shape. */
  const linkHeaders = (req: IncomingMessage): H2Headers => {
    const out: H2Headers = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP.has(name) || name.startsWith('x-minigate-relay-')) continue;
      out[name] = value;
    }
    return { ...out, ':method': req.method ?? 'GET', ':path': req.url ?? '/', ':authority': String(req.headers[AUTHORITY_HEADER] ?? ''), ':scheme': 'https' };
  };
  const server: Server = createServer((req, res) => {
    if (!trusted(req)) {
      res.writeHead(403, { 'content-length': 0 }).end();
      return;
    }
    const name = String(req.headers[NAME_HEADER]);
    senders.send(name, linkHeaders(req), req, res, { maxBodyBytes: Infinity, timeoutMs: Number(req.headers[TIMEOUT_HEADER]) || 60_000 }).catch((error: unknown) => {
      if (res.headersSent) return res.destroy();
      const { status, body } = errorBody(error, requestId());
      sendJson(res, status, body);
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (!trusted(req)) return socket.destroy();
    const headers = linkHeaders(req);
    delete headers[':method'];
    senders.sendUpgrade(String(req.headers[NAME_HEADER]), headers, String(req.headers['sec-websocket-key']), socket, head);
  });
  server.on('clientError', (_error, socket: Duplex) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // exclusive: a port of this worker's own (a cluster worker's listen(0) otherwise shares one port, spread over all workers).
    server.listen({ port: 0, host, exclusive: true }, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const address = `${isIPv6(host) ? `[${host}]` : host}:${port}`;
  logger.info({ address }, 'relay: hand-off listener for the other workers or instances');
  return {
    address,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The sending side: hands requests for names another worker holds to that worker. */
export function createHandoff(key: string, owners: RelayOwners, logger: Logger, track: (tunnel: Tunnel) => void): Handoff & { close(): void } {
  const agent = new Agent({ keepAlive: true });
  // Synchronous once the address is known: the phone's body must not start flowing before it is piped.
  const open = (address: string, name: string, headers: H2Headers, timeoutMs: number, extra: OutgoingHttpHeaders = {}) => {
    const { hostname, port } = new URL(`http://${address}`);
    const host = hostname.replace(/^\[|\]$/g, '');
    const plain: OutgoingHttpHeaders = {};
    for (const [field, value] of Object.entries(headers)) if (!field.startsWith(':') && value !== undefined) plain[field] = value;
    return httpRequest({
      host,
      port: Number(port),
      agent,
      method: String(headers[':method'] ?? 'GET'),
      path: String(headers[':path'] ?? '/'),
      headers: {
        ...plain,
        ...extra,
        [KEY_HEADER]: key,
        [NAME_HEADER]: name,
        [AUTHORITY_HEADER]: String(headers[':authority'] ?? ''),
        [TIMEOUT_HEADER]: String(timeoutMs),
      },
    });
  };
  return {
    locate: (name) => owners.elsewhere(name),
    request(address, name, headers, req, res, timeoutMs) {
      const out = open(address, name, headers, timeoutMs);
      return new Promise<void>((resolve, reject) => {
        out.once('response', (answer) => {
          res.writeHead(answer.statusCode ?? 502, upstreamResponseHeaders(answer.headers));
          answer.pipe(res);
          answer.once('end', () => resolve());
          answer.once('error', () => (res.destroy(), resolve()));
        });
        out.once('error', (error: NodeJS.ErrnoException) => {
          logger.warn({ relay: name, code: error.code }, 'relay: hand-off to the worker holding the link failed');
        });
        // Nothing listens where the owner was recorded: that process is gone (a crashed instance
        // whose record has not expired yet), and so is the link.
        const failure = (error: NodeJS.ErrnoException) => (error.code === 'ECONNREFUSED' ? offline(name) : new AppError('UPSTREAM_UNAVAILABLE', { cause: error, details: { tunnel: name } }));
        out.once('error', (error: NodeJS.ErrnoException) => (res.headersSent ? (res.destroy(), resolve()) : reject(failure(error))));
        res.once('close', () => {
          if (!res.writableFinished) out.destroy();
        });
        const declared = Number(req.headers['content-length'] ?? 0);
        if (declared > 0 || req.headers['transfer-encoding'] !== undefined) req.pipe(out);
        else out.end();
      });
    },
    upgrade(address, name, headers, socket, head) {
      let out: ReturnType<typeof open>;
      try {
        out = open(address, name, { ...headers, ':method': 'GET' }, 0, { connection: 'Upgrade', upgrade: 'websocket' });
      } catch (error) {
        return rejectUpgrade(socket, error);
      }
      out.once('upgrade', (answer, upstream, upstreamHead) => {
        const lines = [`HTTP/1.1 101 ${answer.statusMessage ?? 'Switching Protocols'}`];
        for (let i = 0; i < answer.rawHeaders.length; i += 2) lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (upstreamHead.length) socket.write(upstreamHead);
        if (head.length) upstream.write(head);
        // Frame by frame, so this process's shutdown ends it with 1001 rather than a cut.
        track(createTunnel(socket, upstream, { extensions: answer.headers['sec-websocket-extensions'] !== undefined }));
      });
      out.once('response', (answer) => {
        const lines = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage ?? ''}`];
        for (const [field, value] of Object.entries(upstreamResponseHeaders(answer.headers))) for (const one of [value].flat()) if (one !== undefined) lines.push(`${field}: ${one}`);
        lines.push('connection: close');
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        answer.pipe(socket);
      });
      out.once('error', (error: NodeJS.ErrnoException) => {
        logger.warn({ relay: name, code: error.code, err: error.message }, 'relay: hand-off of a WebSocket to the worker holding the link failed');
        rejectUpgrade(socket, offline(name));
      });
      out.end();
    },
    close: () => agent.destroy(),
  };
}

/** True when something accepts a connection at a hand-off address within `timeoutMs` (the recorded owner still runs). */
export function handoffReachable(address: string, timeoutMs = 2_000): Promise<boolean> {
  const { hostname, port } = new URL(`http://${address}`);
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port), timeout: timeoutMs });
    const done = (alive: boolean) => {
      socket.destroy();
      resolve(alive);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}
