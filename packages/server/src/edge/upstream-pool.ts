/**
 * HTTP/1.1 to one upstream over pooled keep-alive connections: the proxy's own client, leaner
 * than a general one. The request head is written as one string from headers Node's server has
 * already parsed and checked; the answer is read by AnswerParser; bodies stream both ways with
 * back-pressure. Each connection has one deadline, whose meaning follows its state: connecting,
 * waiting for the answer's head, between body reads, or idle in the pool; one sweep per pool
 * (a few times a second, only while it has connections) closes those past theirs. No timers,
 * listeners or promises per request on the common path: moving a deadline is an assignment,
 * where a socket's setTimeout() would allocate a timer and a bound function each time.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { AnswerParser, type AnswerHead } from './upstream-response.js';

export interface UpstreamPoolOptions {
  /** http: or https: origin. */
  origin: URL;
  maxConnections: number;
  connectTimeoutMs: number;
  /** Time for the answer's head to arrive once the request is sent. */
  headersTimeoutMs: number;
  /** Longest silence between two reads of an answer's body. */
  bodyTimeoutMs: number;
  /** An idle connection is closed after this (less when the upstream's Keep-Alive says so). */
  keepAliveMs: number;
  /** CA certificates (PEM) an https: upstream's chain must lead to, instead of Node's roots. */
  ca?: string;
}

/**
 * Why an exchange failed. connect: no connection (refused, unreachable, timed out; nothing was
 * sent). timeout: no answer head in time. reset: the connection broke or timed out after the
 * request went out. protocol: the answer was malformed. too-large: the request body passed its limit.
 */
export type FailureKind = 'connect' | 'timeout' | 'reset' | 'protocol' | 'too-large';

export class UpstreamFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface ExchangeHandler {
  onHead(head: AnswerHead): void;
  /**
   * Returns false when the consumer is full: reading stops until Exchange.resume(). `last`: the
   * body's final bytes (a Content-Length body), so the consumer may end with them in one write.
   */
  onData(chunk: Buffer, last: boolean): boolean;
  onEnd(): void;
  /** At most once, and never after onEnd. After onHead, only 'reset' or 'protocol'. */
  onError(error: UpstreamFailure): void;
}

export interface UpstreamRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  /** Lower-case names; values already checked (Node's parser, or checked by the caller). */
  headers: Record<string, string | string[]>;
  /** A request body to stream (framed by its Content-Length header, or chunked), or null. */
  body: IncomingMessage | null;
  maxBodyBytes: number;
}

export interface Exchange {
  /** Reading the answer again after onData returned false. */
  resume(): void;
  /** The client went away: the connection is dropped, and no handler method runs again. */
  abort(): void;
}

class Pending implements Exchange {
  conn: Connection | undefined;
  /** The head string, made once (a retry sends it again). */
  head: string;
  finished = false;
  /** Some answer byte arrived (a request whose connection broke before that may be retried). */
  answered = false;
  headSeen = false;
  bodySent: boolean;
  retried = false;
  queueTimer: NodeJS.Timeout | undefined;
  sentBytes = 0;
  /** Stops reading the client's body into this exchange (set while it streams). */
  detachBody: (() => void) | undefined;
  chunked: boolean;

  constructor(
    readonly pool: UpstreamPool,
    readonly request: UpstreamRequest,
    readonly handler: ExchangeHandler,
    host: string,
  ) {
    const { headers, body } = request;
    this.chunked = body !== null && headers['content-length'] === undefined;
    this.bodySent = body === null;
    let head = `${request.method} ${request.path} HTTP/1.1\r\nhost: ${host}\r\n`;
    for (const name in headers) {
      const value = headers[name]!;
      if (typeof value === 'string') head += `${name}: ${value}\r\n`;
      else for (const v of value) head += `${name}: ${v}\r\n`;
    }
    this.head = this.chunked ? `${head}transfer-encoding: chunked\r\n\r\n` : `${head}\r\n`;
  }

  resume(): void {
    this.conn?.resumeReading();
  }

  abort(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.queueTimer) this.pool.unqueue(this);
    this.conn?.drop();
  }

  fail(error: UpstreamFailure): void {
    if (this.finished) return;
    this.finished = true;
    this.detachBody?.();
    this.handler.onError(error);
  }
}

class Connection {
  readonly socket: Socket;
  readonly parser: AnswerParser;
  exchange: Pending | undefined;
  connected = false;
  /** Has carried an answer before (a break before any answer byte may be the keep-alive race). */
  reused = false;
  keepAlive = true;
  idleMs: number;
  paused = false;
  /** When this connection has waited too long (performance.now() ms) for what its state awaits. */
  deadline: number;
  private ended = false;
  private error: (Error & { code?: string }) | undefined;

  constructor(private readonly pool: UpstreamPool) {
    const { origin } = pool.options;
    this.idleMs = pool.options.keepAliveMs;
    const host = origin.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(origin.port) || (origin.protocol === 'https:' ? 443 : 80);
    this.socket =
      origin.protocol === 'https:'
        ? tlsConnect({ host, port, servername: isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'], ...(pool.options.ca ? { ca: pool.options.ca } : {}) })
        : netConnect({ host, port });
    this.socket.setNoDelay(true);
    this.deadline = performance.now() + pool.options.connectTimeoutMs;
    this.socket.once(origin.protocol === 'https:' ? 'secureConnect' : 'connect', () => this.onConnect());
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (error) => (this.error ??= error));
    this.socket.on('close', () => this.onClose());
    this.socket.on('drain', () => this.exchange?.request.body?.resume());
    this.parser = new AnswerParser({
      head: (head) => this.onHead(head),
      data: (chunk, last) => {
        const ex = this.exchange!;
        if (!ex.handler.onData(chunk, last) && !last && !this.paused) {
          this.paused = true;
          this.socket.pause();
          // A slow client is not a silent upstream.
          this.deadline = Infinity;
        }
      },
      end: () => (this.ended = true),
    });
  }

  start(ex: Pending): void {
    this.exchange = ex;
    ex.conn = this;
    this.ended = false;
    if (this.paused) {
      // Left paused by the last answer's consumer, which has finished.
      this.paused = false;
      this.socket.resume();
    }
    this.parser.expect(ex.request.method);
    if (this.connected) this.deadline = performance.now() + this.pool.options.headersTimeoutMs;
    this.socket.write(ex.head, 'latin1');
    const body = ex.request.body;
    if (!body) return;
    const onChunk = (chunk: Buffer) => {
      if (ex.finished || this.exchange !== ex) return;
      ex.sentBytes += chunk.length;
      if (ex.sentBytes > ex.request.maxBodyBytes) {
        cleanup();
        this.drop();
        ex.fail(new UpstreamFailure('too-large', `The body is over ${ex.request.maxBodyBytes} bytes.`));
        return;
      }
      // The answer's time starts again with each piece of a body that is still coming.
      if (this.connected) this.deadline = performance.now() + this.pool.options.headersTimeoutMs;
      const flowing = ex.chunked ? this.writeChunk(chunk) : this.socket.write(chunk);
      if (!flowing) body.pause();
    };
    const onEnd = () => {
      cleanup();
      if (ex.finished || this.exchange !== ex) return;
      if (ex.chunked) this.socket.write('0\r\n\r\n', 'latin1');
      ex.bodySent = true;
    };
    // The client's request ended early (it went away mid-body): nothing whole can go upstream.
    const onAborted = () => {
      cleanup();
      if (ex.finished || this.exchange !== ex) return;
      this.drop();
      ex.fail(new UpstreamFailure('reset', 'the client went away mid-body'));
    };
    const cleanup = () => {
      ex.detachBody = undefined;
      body.off('data', onChunk);
      body.off('end', onEnd);
      body.off('aborted', onAborted);
    };
    ex.detachBody = cleanup;
    body.on('data', onChunk);
    body.once('end', onEnd);
    body.once('aborted', onAborted);
  }

  private writeChunk(chunk: Buffer): boolean {
    this.socket.cork();
    this.socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    this.socket.write(chunk);
    const flowing = this.socket.write('\r\n', 'latin1');
    this.socket.uncork();
    return flowing;
  }

  resumeReading(): void {
    if (!this.paused || this.socket.destroyed) return;
    this.paused = false;
    this.deadline = performance.now() + this.pool.options.bodyTimeoutMs;
    this.socket.resume();
  }

  /** Closes the connection; its exchange (if any) is not told. */
  drop(): void {
    this.keepAlive = false;
    this.socket.destroy();
  }

  private onConnect(): void {
    this.connected = true;
    this.deadline = performance.now() + (this.exchange ? this.pool.options.headersTimeoutMs : this.idleMs);
  }

  private onHead(head: AnswerHead): void {
    const ex = this.exchange!;
    ex.headSeen = true;
    this.keepAlive = head.keepAlive;
    if (head.keepAliveMs !== undefined) {
      // Close before the upstream does (a second's margin), or do not keep it at all.
      this.idleMs = Math.min(this.pool.options.keepAliveMs, head.keepAliveMs - 1000);
      if (this.idleMs <= 0) this.keepAlive = false;
    }
    this.deadline = performance.now() + this.pool.options.bodyTimeoutMs;
    ex.handler.onHead(head);
  }

  private onData(chunk: Buffer): void {
    const ex = this.exchange;
    if (!ex || ex.finished) {
      // Bytes nobody asked for (or for an exchange given up): this connection cannot be trusted.
      this.drop();
      return;
    }
    ex.answered = true;
    if (!this.paused) this.deadline = performance.now() + (ex.headSeen ? this.pool.options.bodyTimeoutMs : this.pool.options.headersTimeoutMs);
    try {
      this.parser.feed(chunk);
    } catch (error) {
      this.drop();
      if (this.ended) this.complete(ex, false);
      else ex.fail(new UpstreamFailure('protocol', (error as Error).message));
      return;
    }
    if (this.ended) this.complete(ex, true);
  }

  /** The answer ended: the handler hears it, and the connection goes back to the pool or away. */
  private complete(ex: Pending, reusable: boolean): void {
    this.exchange = undefined;
    this.reused = true;
    ex.finished = true;
    // A request body still going up (the answer came early) leaves the connection mid-message;
    // the rest of it is read and dropped, so the client's connection can carry its next request.
    if (!ex.bodySent && ex.detachBody) {
      ex.detachBody();
      ex.request.body!.resume();
    }
    if (reusable && this.keepAlive && ex.bodySent && !this.socket.destroyed) this.pool.release(this);
    else this.drop();
    ex.handler.onEnd();
  }

  /** Back in the pool, idle. */
  idle(): void {
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    this.deadline = performance.now() + this.idleMs;
  }

  /** Past its deadline (the pool's sweep): closed, and its exchange told why. */
  onTimeout(): void {
    const ex = this.exchange;
    this.drop();
    if (!ex || ex.finished) return;
    if (!this.connected) ex.fail(new UpstreamFailure('connect', 'upstream connect timeout', 'UPSTREAM_CONNECT_TIMEOUT'));
    else if (!ex.headSeen) ex.fail(new UpstreamFailure('timeout', 'the upstream did not answer in time'));
    else ex.fail(new UpstreamFailure('reset', 'the upstream stopped sending its answer'));
  }

  private onClose(): void {
    this.pool.closed(this);
    const ex = this.exchange;
    this.exchange = undefined;
    if (!ex || ex.finished) return;
    try {
      this.parser.close();
    } catch {
      // Cut before the answer ended: handled below.
    }
    if (this.ended) {
      ex.finished = true;
      ex.handler.onEnd();
      return;
    }
    const code = this.error?.code;
    if (!this.connected) return ex.fail(new UpstreamFailure('connect', this.error?.message ?? 'upstream connection failed', code));
    // The keep-alive race: the upstream closed an idle connection as this request went out on it.
    // Nothing was answered and no body was taken from the client, so it can go again on a new one.
    if (this.reused && !ex.answered && ex.request.body === null && !ex.retried) {
      ex.retried = true;
      ex.conn = undefined;
      this.pool.retry(ex);
      return;
    }
    ex.fail(new UpstreamFailure('reset', this.error?.message ?? 'the upstream closed the connection', code));
  }
}

export class UpstreamPool {
  private readonly free: Connection[] = [];
  private readonly all = new Set<Connection>();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly sweepMs: number;
  private readonly queue: Pending[] = [];
  private closing = false;
  private readonly host: string;

  constructor(readonly options: UpstreamPoolOptions) {
    this.host = options.origin.host;
    // A deadline is kept to within a quarter of the shortest wait (and 250 ms at most).
    const shortest = Math.min(options.connectTimeoutMs, options.headersTimeoutMs, options.bodyTimeoutMs, options.keepAliveMs);
    this.sweepMs = Math.max(10, Math.min(250, Math.floor(shortest / 4)));
  }

  private sweep(): void {
    const now = performance.now();
    for (const conn of this.all) if (now >= conn.deadline) conn.onTimeout();
  }

  request(request: UpstreamRequest, handler: ExchangeHandler): Exchange {
    const ex = new Pending(this, request, handler, this.host);
    this.dispatch(ex, false);
    return ex;
  }

  private dispatch(ex: Pending, fresh: boolean): void {
    if (this.closing) return ex.fail(new UpstreamFailure('connect', 'the proxy is closing'));
    let conn: Connection | undefined;
    while (!fresh && !conn && this.free.length) {
      // One the sweep dropped for idleness is destroyed at once, but leaves the list on its 'close'.
      const candidate = this.free.pop()!;
      if (!candidate.socket.destroyed) conn = candidate;
    }
    if (!conn && this.all.size < this.options.maxConnections) {
      conn = new Connection(this);
      this.all.add(conn);
      this.sweeper ??= setInterval(() => this.sweep(), this.sweepMs).unref();
    }
    if (conn) return conn.start(ex);
    // All connections busy: wait for one, at most as long as the answer may take.
    ex.queueTimer = setTimeout(() => {
      this.unqueue(ex);
      ex.fail(new UpstreamFailure('timeout', 'no upstream connection came free in time'));
    }, this.options.headersTimeoutMs);
    this.queue.push(ex);
  }

  retry(ex: Pending): void {
    this.dispatch(ex, true);
  }

  unqueue(ex: Pending): void {
    clearTimeout(ex.queueTimer);
    ex.queueTimer = undefined;
    const at = this.queue.indexOf(ex);
    if (at >= 0) this.queue.splice(at, 1);
  }

  /** The request that has waited longest for a connection, its wait ended. */
  private nextQueued(): Pending | undefined {
    const next = this.queue.shift();
    if (next) {
      clearTimeout(next.queueTimer);
      next.queueTimer = undefined;
    }
    return next;
  }

  release(conn: Connection): void {
    if (this.closing) return conn.drop();
    const next = this.nextQueued();
    if (next) return conn.start(next);
    conn.idle();
    this.free.push(conn);
  }

  closed(conn: Connection): void {
    this.all.delete(conn);
    if (this.all.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
    const at = this.free.indexOf(conn);
    if (at >= 0) this.free.splice(at, 1);
    // A queued request takes the place that came free.
    const next = this.closing ? undefined : this.nextQueued();
    if (next) this.dispatch(next, true);
  }

  /** Connections open (busy or idle). */
  get size(): number {
    return this.all.size;
  }

  /** Closes the idle connections now and each busy one when its answer ends. */
  close(): void {
    this.closing = true;
    for (const conn of this.free.splice(0)) conn.drop();
    for (const ex of this.queue.splice(0)) {
      clearTimeout(ex.queueTimer);
      ex.fail(new UpstreamFailure('connect', 'the proxy is closing'));
    }
  }
}
