/**
 * The proxy's HTTP/1.1 client against raw TCP upstreams that answer byte for byte as each test
 * says: connection reuse, the keep-alive race, queueing, timeouts, request bodies, early answers,
 * back-pressure, and answers that break the protocol.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { makeCa, makeLeaf } from '../../test/helpers/pki.js';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamPool, type UpstreamFailure, type UpstreamPoolOptions, type UpstreamRequest } from './upstream-pool.js';

const servers: Server[] = [];
const pools: UpstreamPool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) p.close();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

interface Raw {
  port: number;
  /** Connections accepted so far. */
  connections: number;
  sockets: Socket[];
}

/** A TCP server calling `onRequest` with each request head it reads (bodies are not read). */
async function raw(onRequest: (socket: Socket, head: string, index: number) => void): Promise<Raw> {
  const state: Raw = { port: 0, connections: 0, sockets: [] };
  let index = 0;
  const server = createServer((socket) => {
    state.connections++;
    state.sockets.push(socket);
    let text = '';
    socket.on('error', () => undefined);
    socket.on('data', (d) => {
      text += d.toString('latin1');
      let end;
      while ((end = text.indexOf('\r\n\r\n')) >= 0) {
        const head = text.slice(0, end);
        text = text.slice(end + 4);
        onRequest(socket, head, index++);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

function pool(port: number, options: Partial<UpstreamPoolOptions> = {}): UpstreamPool {
  const p = new UpstreamPool({
    origin: new URL(`http://127.0.0.1:${port}`),
    maxConnections: 8,
    connectTimeoutMs: 2000,
    headersTimeoutMs: 2000,
    bodyTimeoutMs: 2000,
    keepAliveMs: 4000,
    ...options,
  });
  pools.push(p);
  return p;
}

interface Outcome {
  status?: number;
  headers?: Record<string, string | string[]>;
  body: string;
  error?: UpstreamFailure;
}

function send(p: UpstreamPool, request: Partial<UpstreamRequest> = {}, onData?: (chunk: Buffer) => boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { body: '' };
    p.request(
      { method: 'GET', path: '/', headers: {}, body: null, maxBodyBytes: 1 << 20, ...request },
      {
        onHead: (h) => Object.assign(out, { status: h.status, headers: h.headers }),
        onData: (chunk) => {
          out.body += chunk.toString();
          return onData ? onData(chunk) : true;
        },
        onEnd: () => resolve(out),
        onError: (error) => resolve({ ...out, error }),
      },
    );
  });
}

const ok = (body = 'ok', extra = '') => `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('UpstreamPool', () => {
  it('sends the head as given, with the host, and reuses one connection for requests in turn', async () => {
    const heads: string[] = [];
    const up = await raw((s, head) => (heads.push(head), s.write(ok(`#${heads.length}`))));
    const p = pool(up.port);
    for (let i = 1; i <= 3; i++) expect((await send(p, { path: `/a?i=${i}`, headers: { 'x-a': 'b', 'x-list': ['1', '2'] } })).body).toBe(`#${i}`);
    expect(up.connections).toBe(1);
    expect(heads[0]).toBe(`GET /a?i=1 HTTP/1.1\r\nhost: 127.0.0.1:${up.port}\r\nx-a: b\r\nx-list: 1\r\nx-list: 2`);
    expect(p.size).toBe(1);
  });

  it('sends a GET again on a new connection when the upstream closed the idle one as it went out', async () => {
    // The keep-alive race, made certain: the first connection takes its second request and closes
    // without a byte of answer (as an upstream does that timed the connection out at that moment).
    const perConnection = new Map<Socket, number>();
    const up = await raw((s) => {
      const n = (perConnection.get(s) ?? 0) + 1;
      perConnection.set(s, n);
      if (up.connections === 1 && n === 2) return void s.destroy();
      s.write(ok(`c${up.connections}`));
    });
    const p = pool(up.port);
    expect((await send(p)).body).toBe('c1');
    const second = await send(p);
    expect(second.error).toBeUndefined();
    expect(second.body).toBe('c2');
    expect(up.connections).toBe(2);
  });

  it('does not send a request with a body twice: a break before the answer is a reset', async () => {
    let n = 0;
    const up = await raw((s) => {
      if (n++ === 0) return void s.write(ok());
      s.destroy(); // takes the second request, then breaks
    });
    const p = pool(up.port);
    await send(p);
    const body = new PassThrough();
    const result = send(p, { method: 'POST', headers: { 'content-length': '3' }, body: body as unknown as IncomingMessage });
    body.end('abc');
    expect((await result).error).toMatchObject({ kind: 'reset' });
  });

  it('opens a new connection after Connection: close, and keeps none the upstream will close within a second', async () => {
    const up = await raw((s, _h, i) => s.write(ok('x', i === 0 ? 'Connection: close\r\n' : 'Keep-Alive: timeout=1\r\n')));
    const p = pool(up.port);
    await send(p);
    await send(p);
    await send(p);
    expect(up.connections).toBe(3);
  });

  it('closes an idle connection after keepAliveMs', async () => {
    const up = await raw((s) => s.write(ok()));
    const p = pool(up.port, { keepAliveMs: 100 });
    await send(p);
    expect(p.size).toBe(1);
    await wait(400);
    expect(p.size).toBe(0);
  });

  it('queues beyond maxConnections, and gives up on a request that waited longer than the head may take', async () => {
    const held: Socket[] = [];
    const up = await raw((s) => held.push(s));
    const p = pool(up.port, { maxConnections: 2, headersTimeoutMs: 300 });
    const results = [send(p), send(p), send(p)];
    await wait(100);
    expect(up.connections).toBe(2);
    held[0]!.write(ok('first'));
    // The queued third takes the freed connection.
    await wait(50);
    held[0]!.write(ok('third'));
    const [first, second, third] = await Promise.all(results);
    expect(first!.body).toBe('first');
    expect(third!.body).toBe('third');
    expect(second!.error).toMatchObject({ kind: 'timeout' });
    expect(up.connections).toBe(2);

    const queued = pool(up.port, { maxConnections: 1, headersTimeoutMs: 200 });
    const [a, b] = await Promise.all([send(queued), send(queued)]);
    expect(a!.error).toMatchObject({ kind: 'timeout' });
    expect(b!.error).toMatchObject({ kind: 'timeout', message: expect.stringContaining('came free') });
  });

  it('tells a refused connection (connect) from a break after sending (reset)', async () => {
    const closed = await raw(() => undefined);
    const port = closed.port;
    await new Promise((r) => servers.pop()!.close(r));
    expect((await send(pool(port))).error).toMatchObject({ kind: 'connect', code: 'ECONNREFUSED' });
    const up = await raw((s) => s.destroy());
    expect((await send(pool(up.port))).error).toMatchObject({ kind: 'reset' });
  });

  it('streams a body by its Content-Length, or chunked without one, and refuses one over the limit', async () => {
    const got: { headers: IncomingMessage['headers']; body: string }[] = [];
    const server = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        got.push({ headers: req.headers, body });
        res.end('done');
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const p = pool((server.address() as AddressInfo).port);

    const sized = new PassThrough();
    const a = send(p, { method: 'POST', headers: { 'content-length': '10' }, body: sized as unknown as IncomingMessage });
    sized.write('01234');
    sized.end('56789');
    expect((await a).body).toBe('done');

    const unsized = new PassThrough();
    const b = send(p, { method: 'POST', headers: {}, body: unsized as unknown as IncomingMessage });
    unsized.write('abc');
    await wait(20);
    unsized.end('defg');
    expect((await b).body).toBe('done');
    expect(got[0]).toMatchObject({ body: '0123456789', headers: { 'content-length': '10' } });
    expect(got[1]).toMatchObject({ body: 'abcdefg', headers: { 'transfer-encoding': 'chunked' } });

    const big = new PassThrough();
    const c = send(p, { method: 'POST', headers: {}, body: big as unknown as IncomingMessage, maxBodyBytes: 100 });
    big.write(Buffer.alloc(60));
    big.write(Buffer.alloc(60));
    expect((await c).error).toMatchObject({ kind: 'too-large' });
  });

  it('takes an answer that comes before the body is sent, then drops that connection', async () => {
    const up = await raw((s) => s.write(ok('early')));
    const p = pool(up.port);
    const body = new PassThrough();
    const result = await send(p, { method: 'POST', headers: { 'content-length': '1000' }, body: body as unknown as IncomingMessage });
    expect(result.body).toBe('early');
    await send(p);
    expect(up.connections).toBe(2);
  });

  it('times out a silent upstream (timeout before the head, reset after it)', async () => {
    const silent = await raw(() => undefined);
    expect((await send(pool(silent.port, { headersTimeoutMs: 150 }))).error).toMatchObject({ kind: 'timeout' });
    const stalls = await raw((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome'));
    const stalled = await send(pool(stalls.port, { bodyTimeoutMs: 150 }));
    expect(stalled).toMatchObject({ status: 200, body: 'some', error: { kind: 'reset' } });
  });

  it('stops reading while the consumer is full, without timing out, and goes on when resumed', async () => {
    const up = await raw((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc');
      setTimeout(() => s.write('def'), 50);
    });
    const p = pool(up.port, { bodyTimeoutMs: 100 });
    let exchange: { resume(): void } | undefined;
    const result = new Promise<Outcome>((resolve) => {
      const out: Outcome = { body: '' };
      exchange = p.request(
        { method: 'GET', path: '/', headers: {}, body: null, maxBodyBytes: 0 },
        {
          onHead: () => undefined,
          onData: (chunk) => {
            out.body += chunk.toString();
            return false; // always full
          },
          onEnd: () => resolve(out),
          onError: (error) => resolve({ ...out, error }),
        },
      );
    });
    await wait(400); // past bodyTimeoutMs, paused
    expect(p.size).toBe(1);
    exchange!.resume();
    expect(await result).toEqual({ body: 'abcdef' });
  });

  it('drops a connection whose answer is malformed or followed by stray bytes, and the next request gets a new one', async () => {
    const up = await raw((s, _h, i) => s.write(i === 0 ? 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab' : i === 1 ? `${ok()}junk` : ok('fine')));
    const p = pool(up.port);
    expect((await send(p)).error).toMatchObject({ kind: 'protocol' });
    expect((await send(p)).body).toBe('ok'); // its answer was whole; the junk only costs the connection
    expect((await send(p)).body).toBe('fine');
    expect(up.connections).toBe(3);
  });

  it('speaks TLS to an https: upstream, checking its certificate against the CA given (or Node\'s roots)', async () => {
    const ca = makeCa('Upstream');
    const leaf = makeLeaf(ca, ['localhost'], { key: 'ec' });
    const server = createHttpsServer({ cert: readFileSync(leaf.fullchain), key: readFileSync(leaf.key) }, (req, res) => res.end(`tls ${req.headers.host}`));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const https = (options: Partial<UpstreamPoolOptions>) => {
      const p = new UpstreamPool({ origin: new URL(`https://localhost:${port}`), maxConnections: 4, connectTimeoutMs: 2000, headersTimeoutMs: 2000, bodyTimeoutMs: 2000, keepAliveMs: 4000, ...options });
      pools.push(p);
      return p;
    };
    const trusted = https({ ca: readFileSync(ca.rootPem, 'utf8') });
    expect((await send(trusted)).body).toBe(`tls localhost:${port}`);
    expect((await send(trusted)).body).toBe(`tls localhost:${port}`);
    expect(trusted.size).toBe(1);
    // Not signed by a CA Node trusts: no connection, nothing sent.
    expect((await send(https({}))).error).toMatchObject({ kind: 'connect', code: expect.stringMatching(/CERT|VERIFY|ISSUER/) });
  });

  it('abort drops the connection and calls nothing back', async () => {
    const up = await raw(() => undefined);
    const p = pool(up.port);
    let called = false;
    const ex = p.request(
      { method: 'GET', path: '/', headers: {}, body: null, maxBodyBytes: 0 },
      { onHead: () => (called = true), onData: () => (called = true), onEnd: () => (called = true), onError: () => (called = true) },
    );
    await wait(50);
    ex.abort();
    await wait(50);
    expect(called).toBe(false);
    expect(p.size).toBe(0);
    expect(up.sockets[0]!.destroyed || up.sockets[0]!.readableEnded).toBe(true);
  });
});
