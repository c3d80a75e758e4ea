/**
 * Reads an upstream's HTTP/1.1 answers off a keep-alive connection: the head (status line and
 * headers), then the body as its framing says (Content-Length, chunked, or until the connection
 * closes). Strict on purpose: anything a lenient parser would have to guess at — a bare LF, a
 * folded header, two Content-Lengths, Content-Length with Transfer-Encoding, a bad chunk size —
 * is an error, and the proxy answers 502 and drops the connection rather than pass on an answer
 * that two parsers could read two ways. Bytes are fed as they arrive, cut anywhere.
 */

/** An answer's head. Header names are lower case; a repeated header's values are an array, in order. */
export interface AnswerHead {
  status: number;
  statusText: string;
  headers: Record<string, string | string[]>;
  /** The connection may carry another request after this answer. */
  keepAlive: boolean;
  /** What the upstream's Keep-Alive: timeout=N said, in ms (undefined when it said nothing). */
  keepAliveMs: number | undefined;
}

export interface AnswerEvents {
  head(head: AnswerHead): void;
  /** `last`: these are the body's final bytes (known for a Content-Length body). */
  data(chunk: Buffer, last: boolean): void;
  end(): void;
}

/** Largest answer head (and trailer section) read; larger is an error. */
export const MAX_HEAD_BYTES = 16 * 1024;
const MAX_CHUNK_LINE_BYTES = 4 * 1024;

export class AnswerError extends Error {
  readonly code = 'UPSTREAM_PROTOCOL';
}

/**
 * The headers object: its prototype has no properties (so a header named `constructor` or
 * `toString` finds nothing inherited), yet unlike Object.create(null) objects it stays in V8's
 * fast mode, about twice as quick to fill and to walk. `__proto__` is refused all the same.
 */
const HeaderRecord = function HeaderRecord() {} as unknown as new () => Record<string, string | string[]>;
HeaderRecord.prototype = Object.create(null) as Record<string, string | string[]>;

/** The characters of a token (a header name): RFC 9110 §5.6.2. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;
// Any control character but HTAB, in a header value (CR and LF included: lines are split on CRLF).
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: (.*))?$/;
const HEX = /^[0-9a-fA-F]{1,12}$/;
const DIGITS = /^\d{1,15}$/;

type State = 'idle' | 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'until-close' | 'done';

export class AnswerParser {
  private state: State = 'idle';
  private method = 'GET';
  /** Head or line bytes not yet complete. */
  private pending: Buffer | undefined;
  private remaining = 0;
  private trailerBytes = 0;

  constructor(private readonly events: AnswerEvents) {}

  /** Starts reading the answer to a request of `method` (a HEAD request's answer has no body). */
  expect(method: string): void {
    if (this.state !== 'idle' && this.state !== 'done') throw new Error(`answer parser busy (${this.state})`);
    this.method = method;
    this.state = 'head';
    this.pending = undefined;
  }

  /** True once the answer expected has ended. */
  get done(): boolean {
    return this.state === 'done';
  }

  /** The connection closed: ends an answer that runs until close, or says the answer was cut. */
  close(): void {
    if (this.state === 'until-close') {
      this.state = 'done';
      this.events.end();
      return;
    }
    if (this.state !== 'idle' && this.state !== 'done') throw new AnswerError('the upstream closed the connection before the answer ended');
  }

  /** Reads `chunk`. Throws AnswerError on anything malformed, or on bytes after the answer. */
  feed(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      switch (this.state) {
        case 'head':
          at = this.readHead(chunk, at);
          break;
        case 'length':
          at = this.readBody(chunk, at, true);
          if (this.remaining === 0) this.finish();
          break;
        case 'chunk-size':
          at = this.readChunkSize(chunk, at);
          break;
        case 'chunk-data':
          at = this.readBody(chunk, at, false);
          if (this.remaining === 0) {
            this.state = 'chunk-end';
            this.remaining = 2;
          }
          break;
        case 'chunk-end':
          // The CRLF after a chunk's data, possibly split between reads.
          if (chunk[at] !== (this.remaining === 2 ? 0x0d : 0x0a)) throw new AnswerError('a chunk did not end with CRLF');
          at++;
          if (--this.remaining === 0) this.state = 'chunk-size';
          break;
        case 'trailers':
          at = this.readTrailers(chunk, at);
          break;
        case 'until-close':
          this.events.data(at === 0 ? chunk : chunk.subarray(at), false);
          at = chunk.length;
          break;
        default:
          // 'idle' or 'done': nothing was asked, so these bytes answer nothing.
          throw new AnswerError('the upstream sent bytes after its answer');
      }
    }
  }

  /** Passes on up to `remaining` body bytes from `at`; `sized`: a Content-Length body (its last bytes are marked). */
  private readBody(chunk: Buffer, at: number, sized: boolean): number {
    const n = Math.min(this.remaining, chunk.length - at);
    this.remaining -= n;
    this.events.data(chunk.subarray(at, at + n), sized && this.remaining === 0);
    return at + n;
  }

  /** Collects bytes up to a line end (CRLF); returns [line, next offset] or undefined when incomplete. */
  private line(chunk: Buffer, at: number, limit: number, what: string): [string, number] | undefined {
    const lf = chunk.indexOf(0x0a, at);
    if (lf < 0) {
      const piece = chunk.subarray(at);
      this.pending = this.pending ? Buffer.concat([this.pending, piece]) : Buffer.from(piece);
      if (this.pending.length > limit) throw new AnswerError(`${what} over ${limit} bytes`);
      return undefined;
    }
    const piece = chunk.subarray(at, lf + 1);
    const bytes = this.pending ? Buffer.concat([this.pending, piece]) : piece;
    this.pending = undefined;
    if (bytes.length > limit) throw new AnswerError(`${what} over ${limit} bytes`);
    if (bytes.length < 2 || bytes[bytes.length - 2] !== 0x0d) throw new AnswerError(`a bare LF in ${what}`);
    return [bytes.toString('latin1', 0, bytes.length - 2), lf + 1];
  }

  private readHead(chunk: Buffer, at: number): number {
    // The whole head at once: search for its end, across the bytes kept from earlier reads.
    const before = this.pending?.length ?? 0;
    const bytes = before ? Buffer.concat([this.pending!, chunk.subarray(at)]) : chunk.subarray(at);
    const end = bytes.indexOf('\r\n\r\n', Math.max(0, before - 3), 'latin1');
    if (end < 0) {
      if (bytes.length > MAX_HEAD_BYTES) throw new AnswerError(`an answer head over ${MAX_HEAD_BYTES} bytes`);
      // A copy when these are the read's own bytes: a slice would hold the whole read buffer.
      this.pending = before ? bytes : Buffer.from(bytes);
      return chunk.length;
    }
    if (end + 4 > MAX_HEAD_BYTES) throw new AnswerError(`an answer head over ${MAX_HEAD_BYTES} bytes`);
    this.pending = undefined;
    const next = at + end + 4 - before;
    checkHeadBytes(bytes, end);
    this.onHead(bytes.toString('latin1', 0, end));
    return next;
  }

  /** The head's text, its bytes already checked (checkHeadBytes). */
  private onHead(text: string): void {
    const lines = text.split('\r\n');
    const status = STATUS_LINE.exec(lines[0]!);
    if (!status) throw new AnswerError('a malformed status line');
    const code = Number(status[2]);
    const headers = new HeaderRecord();
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      // No colon, or a line that starts with whitespace (obsolete folding), or an empty name.
      if (colon <= 0) throw new AnswerError('a malformed header line');
      const name = line.slice(0, colon);
      for (let c = 0; c < colon; c++) if (!TCHAR[name.charCodeAt(c)]) throw new AnswerError('a malformed header name');
      const key = name.toLowerCase();
      if (key === '__proto__') throw new AnswerError('a header named __proto__');
      const value = trimSpace(line, colon + 1);
      const seen = headers[key];
      headers[key] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
    }
    // 1xx (100 Continue, 103 Early Hints): informational; the answer follows.
    if (code < 200) {
      if (code === 101) throw new AnswerError('101 Switching Protocols to a request that asked for no upgrade');
      return;
    }
    const connection = String(headers.connection ?? '').toLowerCase();
    const http10 = status[1] === '0';
    const keepAlive = http10 ? /(^|,)\s*keep-alive\s*(,|$)/.test(connection) : !/(^|,)\s*close\s*(,|$)/.test(connection);
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    if (Array.isArray(cl)) throw new AnswerError('more than one Content-Length');
    if (te !== undefined && cl !== undefined) throw new AnswerError('both Content-Length and Transfer-Encoding');
    const head: AnswerHead = { status: code, statusText: status[3] ?? '', headers, keepAlive, keepAliveMs: keepAliveHint(headers['keep-alive']) };
    if (this.method === 'HEAD' || code === 204 || code === 304) {
      this.events.head(head);
      this.finish();
      return;
    }
    if (te !== undefined) {
      const codings = (Array.isArray(te) ? te.join(',') : te).toLowerCase().split(',').map((s) => s.trim());
      if (codings[codings.length - 1] === 'chunked') {
        if (codings.indexOf('chunked') !== codings.length - 1) throw new AnswerError('chunked applied twice');
        this.state = 'chunk-size';
      } else {
        // Not chunked last: the body runs until the connection closes (RFC 9112 §6.3).
        this.state = 'until-close';
        head.keepAlive = false;
      }
      this.events.head(head);
      return;
    }
    if (cl !== undefined) {
      if (!DIGITS.test(cl)) throw new AnswerError('a malformed Content-Length');
      this.remaining = Number(cl);
      this.events.head(head);
      if (this.remaining === 0) this.finish();
      else this.state = 'length';
      return;
    }
    this.state = 'until-close';
    head.keepAlive = false;
    this.events.head(head);
  }

  private readChunkSize(chunk: Buffer, at: number): number {
    const read = this.line(chunk, at, MAX_CHUNK_LINE_BYTES, 'a chunk size line');
    if (!read) return chunk.length;
    const [text, next] = read;
    const semicolon = text.indexOf(';');
    const hex = (semicolon < 0 ? text : text.slice(0, semicolon)).replace(/[ \t]+$/, '');
    if (!HEX.test(hex)) throw new AnswerError('a malformed chunk size');
    const size = parseInt(hex, 16);
    if (size === 0) {
      this.state = 'trailers';
      this.trailerBytes = 0;
    } else {
      this.state = 'chunk-data';
      this.remaining = size;
    }
    return next;
  }

  private readTrailers(chunk: Buffer, at: number): number {
    // Trailer fields are read and dropped (a proxy may; Node's server would not send them on anyway).
    const read = this.line(chunk, at, MAX_HEAD_BYTES, 'the trailer section');
    if (!read) return chunk.length;
    const [text, next] = read;
    this.trailerBytes += text.length + 2;
    if (this.trailerBytes > MAX_HEAD_BYTES) throw new AnswerError(`the trailer section over ${MAX_HEAD_BYTES} bytes`);
    if (text === '') this.finish();
    else if (text.indexOf(':') <= 0 || BAD_VALUE.test(text)) throw new AnswerError('a malformed trailer line');
    return next;
  }

  private finish(): void {
    this.state = 'done';
    this.events.end();
  }
}

/**
 * The head's bytes before `end` have no control character but HTAB, and every CR is followed by
 * an LF and every LF preceded by a CR. One pass over the bytes (cheaper than a regular expression
 * over the text); lines and values need no check of their own after it.
 */
function checkHeadBytes(bytes: Buffer, end: number): void {
  for (let i = 0; i < end; i++) {
    const b = bytes[i]!;
    if (b >= 0x20 && b !== 0x7f) continue;
    if (b === 0x09) continue;
    if (b === 0x0d && bytes[i + 1] === 0x0a) {
      i++;
      continue;
    }
    throw new AnswerError('a control character or a bare CR or LF in the answer head');
  }
}

/** `line` from `from` on, without leading and trailing spaces and tabs (only those: RFC 9110 §5.5). */
function trimSpace(line: string, from: number): string {
  let start = from;
  let end = line.length;
  while (start < end && (line.charCodeAt(start) === 0x20 || line.charCodeAt(start) === 0x09)) start++;
  while (end > start && (line.charCodeAt(end - 1) === 0x20 || line.charCodeAt(end - 1) === 0x09)) end--;
  return line.slice(start, end);
}

/** Keep-Alive: timeout=N (seconds), in ms. */
function keepAliveHint(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /(?:^|[,;\s])timeout\s*=\s*(\d{1,6})/i.exec(Array.isArray(value) ? value.join(',') : value);
  return m ? Number(m[1]) * 1000 : undefined;
}
