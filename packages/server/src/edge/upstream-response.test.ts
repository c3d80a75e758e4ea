import { describe, expect, it } from 'vitest';
import { AnswerError, AnswerParser, MAX_HEAD_BYTES, type AnswerHead } from './upstream-response.js';

interface Read {
  heads: AnswerHead[];
  body: string;
  lasts: number;
  ended: number;
}

/** Feeds `pieces` to a parser expecting an answer to `method`; what it reported. */
function read(pieces: (string | Buffer)[], method = 'GET', close = false): Read {
  const r: Read = { heads: [], body: '', lasts: 0, ended: 0 };
  const parser = new AnswerParser({
    head: (h) => r.heads.push(h),
    data: (chunk, last) => {
      r.body += chunk.toString('latin1');
      if (last) r.lasts++;
    },
    end: () => r.ended++,
  });
  parser.expect(method);
  for (const p of pieces) parser.feed(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
  if (close) parser.close();
  return r;
}

/** The same answer cut in two at every position, and in single bytes: the same result each time. */
function everyCut(text: string, method = 'GET', close = false): Read {
  const whole = read([text], method, close);
  for (let i = 1; i < text.length; i++) {
    expect(read([text.slice(0, i), text.slice(i)], method, close), `cut at ${i}`).toEqual({ ...whole, lasts: expect.any(Number) });
  }
  expect(read([...text], method, close)).toEqual({ ...whole, lasts: expect.any(Number) });
  return whole;
}

const fails = (pieces: string[], method = 'GET', close = false) => () => read(pieces, method, close);

describe('AnswerParser', () => {
  it('reads a Content-Length answer however its bytes are cut, and marks the last bytes', () => {
    const r = everyCut('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nX-Empty:\r\n\r\n{"ok":true}');
    expect(r.heads).toHaveLength(1);
    expect(r.heads[0]).toMatchObject({ status: 200, statusText: 'OK', keepAlive: true, keepAliveMs: undefined });
    expect(r.heads[0]!.headers).toEqual({ 'content-type': 'application/json', 'content-length': '11', 'x-empty': '' });
    expect(r).toMatchObject({ body: '{"ok":true}', ended: 1 });
    // In one read, the body's bytes come as one piece marked last (the proxy ends with them).
    expect(read(['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi']).lasts).toBe(1);
  });

  it('decodes a chunked answer with extensions and trailers, however cut', () => {
    const r = everyCut('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1 \r\n,\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n');
    expect(r).toMatchObject({ body: 'hello,0123456789', ended: 1 });
    expect(r.heads[0]!.keepAlive).toBe(true);
  });

  it('skips 1xx answers, reads until close when there is no framing, and has no body for HEAD, 204 and 304', () => {
    const early = everyCut('HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok');
    expect(early.heads.map((h) => h.status)).toEqual([201]);
    expect(early.body).toBe('ok');

    const untilClose = everyCut('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it', 'GET', true);
    expect(untilClose).toMatchObject({ body: 'all of it', ended: 1 });
    expect(untilClose.heads[0]!.keepAlive).toBe(false);
    // A transfer coding other than chunked last: also until close (RFC 9112 §6.3).
    expect(read(['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz'], 'GET', true)).toMatchObject({ body: 'zz', ended: 1 });

    expect(read(['HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n'], 'HEAD')).toMatchObject({ body: '', ended: 1 });
    expect(read(['HTTP/1.1 204 No Content\r\n\r\n'])).toMatchObject({ body: '', ended: 1 });
    expect(read(['HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n'])).toMatchObject({ body: '', ended: 1 });
  });

  it('says whether the connection stays open, and the upstream Keep-Alive timeout', () => {
    const head = (text: string) => read([`${text}\r\nContent-Length: 0\r\n\r\n`]).heads[0]!;
    expect(head('HTTP/1.1 200 OK\r\nConnection: close').keepAlive).toBe(false);
    expect(head('HTTP/1.1 200 OK\r\nConnection: Upgrade, Close').keepAlive).toBe(false);
    expect(head('HTTP/1.0 200 OK').keepAlive).toBe(false);
    expect(head('HTTP/1.0 200 OK\r\nConnection: keep-alive').keepAlive).toBe(true);
    expect(head('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100').keepAliveMs).toBe(5000);
    expect(head('HTTP/1.1 200').statusText).toBe('');
  });

  it('keeps repeated headers as an array, in order, and lets no header name reach the prototype', () => {
    const h = read(['HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nSET-COOKIE: c=3\r\nX-Constructor: x\r\nconstructor: y\r\nContent-Length: 0\r\n\r\n']).heads[0]!;
    expect(h.headers['set-cookie']).toEqual(['a=1', 'b=2', 'c=3']);
    expect(h.headers.constructor).toBe('y');
    expect(fails(['HTTP/1.1 200 OK\r\n__proto__: polluted\r\nContent-Length: 0\r\n\r\n'])).toThrow(AnswerError);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses every malformed or ambiguous answer', () => {
    const bad: [string, string][] = [
      ['bare LF ending a line', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n'],
      ['bare CR in a value', 'HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n'],
      ['LF in a value', 'HTTP/1.1 200 OK\r\nX-A: a\nb: c\r\nContent-Length: 0\r\n\r\n'],
      ['NUL in a value', 'HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n'],
      ['DEL in a value', 'HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\nContent-Length: 0\r\n\r\n'],
      ['folded header', 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n'],
      ['no colon', 'HTTP/1.1 200 OK\r\nX-A a\r\nContent-Length: 0\r\n\r\n'],
      ['empty name', 'HTTP/1.1 200 OK\r\n: a\r\nContent-Length: 0\r\n\r\n'],
      ['space in a name', 'HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello'],
      ['non-token name', 'HTTP/1.1 200 OK\r\nX(A): a\r\nContent-Length: 0\r\n\r\n'],
      ['two Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello'],
      ['Content-Length and Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
      ['signed Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello'],
      ['list Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello'],
      ['hex Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello'],
      ['huge Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999\r\n\r\n'],
      ['HTTP/2 status line', 'HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n'],
      ['two-digit status', 'HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n'],
      ['status below 100', 'HTTP/1.1 099 OK\r\nContent-Length: 0\r\n\r\n'],
      ['no status', 'HTTP/1.1\r\nContent-Length: 0\r\n\r\n'],
      ['not HTTP', 'SSH-2.0-OpenSSH_9.2\r\n\r\n'],
      ['101 to a plain request', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n'],
      ['chunked twice', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n'],
      ['non-hex chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\ng\r\nx\r\n0\r\n\r\n'],
      ['negative chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n'],
      ['empty chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nx\r\n0\r\n\r\n'],
      ['huge chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000\r\n'],
      ['chunk size with a bare LF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n'],
      ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n'],
      ['malformed trailer', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon here\r\n\r\n'],
      ['bytes after the answer', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n'],
    ];
    for (const [what, text] of bad) {
      expect(fails([text]), what).toThrow(AnswerError);
      // Cut anywhere, the same refusal.
      for (let i = 1; i < text.length; i += 7) expect(fails([text.slice(0, i), text.slice(i)]), `${what}, cut at ${i}`).toThrow(AnswerError);
    }
  });

  it('refuses a head or trailer section over the limit, and a chunk size line without end', () => {
    const long = `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES)}\r\nContent-Length: 0\r\n\r\n`;
    expect(fails([long])).toThrow(/over/);
    // Fed in small reads, the head is refused once it passes the limit, before its end arrives.
    const parser = new AnswerParser({ head: () => undefined, data: () => undefined, end: () => undefined });
    parser.expect('GET');
    expect(() => {
      for (let i = 0; i < 100; i++) parser.feed(Buffer.from(i === 0 ? 'HTTP/1.1 200 OK\r\nX-Big: ' : 'a'.repeat(1024)));
    }).toThrow(/over/);
    const trailers = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${'X-T: a\r\n'.repeat(3000)}\r\n`;
    expect(fails([trailers])).toThrow(/over/);
    expect(fails([`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(5000)}`])).toThrow(/over/);
  });

  it('says an answer cut by the connection closing was cut, and reads the next answer after one ends', () => {
    expect(fails(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf'], 'GET', true)).toThrow(/closed/);
    expect(fails(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'], 'GET', true)).toThrow(/closed/);
    expect(fails(['HTTP/1.1 200 OK\r\nContent-'], 'GET', true)).toThrow(/closed/);

    const bodies: string[] = [];
    const parser = new AnswerParser({ head: () => undefined, data: (c) => bodies.push(c.toString()), end: () => bodies.push('|') });
    for (const text of ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n']) {
      parser.expect('GET');
      parser.feed(Buffer.from(text));
      expect(parser.done).toBe(true);
    }
    expect(bodies.join('')).toBe('a|b|');
    // Nothing expected: any byte is one too many.
    expect(() => parser.feed(Buffer.from('x'))).toThrow(/after its answer/);
  });
});
