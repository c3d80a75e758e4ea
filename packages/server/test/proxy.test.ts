/**
 * The reverse proxy (docs/reliability.md#proxy): identity headers an upstream can verify, nothing a
 * client forges getting through, X-Forwarded-* only from trusted proxies, upstream failures as
 * 502/504 with minigate staying up, round robin, body limits, and WebSockets passed through.
 */
import { createHmac } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, createServer as createNetServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { startHarness, type Harness } from './helpers/harness.js';
import { get } from './helpers/https.js';

const SECRET = 'upstream-shared-secret-for-tests';
const BIG_BYTES = 48 * 1024 * 1024;
/** Times the upstream's /big had to wait for minigate to take more (back-pressure reaching it). */
let bigWaits = 0;

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A business service: echoes what it received; /crash, /slow and /big misbehave on purpose. */
async function startUpstream(name: string) {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const record = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
      seen.push(record);
      if (req.url?.endsWith('/crash')) {
        res.writeHead(200, { 'content-length': 1000 });
        res.write('partial');
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      if (req.url?.endsWith('/big')) {
        // BIG_BYTES in 64 KiB writes, honouring back-pressure; counts the times it had to wait.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG_BYTES });
        const chunk = Buffer.alloc(64 * 1024, 7);
        let sent = 0;
        const pump = () => {
          while (sent < BIG_BYTES) {
            sent += chunk.length;
            if (!res.write(chunk)) {
              bigWaits++;
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      if (req.url?.endsWith('/slow')) {
        setTimeout(() => res.end('late'), 3000);
        return;
      }
      res.writeHead(201, { 'content-type': 'application/json', 'x-upstream': name, connection: 'keep-alive, x-secret-hop', 'x-secret-hop': 'hidden' });
      res.end(JSON.stringify({ name, ...record }));
    });
  });
  const wss = new WebSocketServer({ server });
  const closeCodes: number[] = [];
  wss.on('connection', (socket, req) => {
    socket.send(JSON.stringify({ hello: name, openid: req.headers['x-minigate-openid'] ?? null }));
    socket.on('message', (data) => socket.send(`echo:${data.toString().slice(0, 100)}`));
    socket.on('close', (code) => closeCodes.push(code));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    closeCodes,
    last: () => seen[seen.length - 1]!,
    close: () =>
      new Promise<void>((resolve) => {
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type Upstream = Awaited<ReturnType<typeof startUpstream>>;

/** Answers written byte for byte, by path: what a broken or unusual upstream sends. */
const RAW_ANSWERS: Record<string, string> = {
  '/raw/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Kind: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
  '/raw/smuggle': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!',
  '/raw/split': 'HTTP/1.1 200 OK\r\nX-A: a\nSet-Cookie: injected=1\r\nContent-Length: 2\r\n\r\nok',
  '/raw/garbage': 'SSH-2.0-OpenSSH_9.2\r\n\r\n',
};

/** A TCP upstream answering RAW_ANSWERS (the request's body, if any, is not read). */
async function startRawUpstream() {
  const server = createNetServer((socket) => {
    let text = '';
    socket.on('error', () => undefined);
    socket.on('data', (d) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const path = text.slice(0, end).split(' ')[1] ?? '';
      text = '';
      socket.write(RAW_ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

let a: Upstream;
let b: Upstream;
let rawUpstream: Awaited<ReturnType<typeof startRawUpstream>>;
let h: Harness;
let token: string;
let openid: string;

beforeAll(async () => {
  a = await startUpstream('a');
  b = await startUpstream('b');
  rawUpstream = await startRawUpstream();
  h = await startHarness({
    config: {
      upstreamSecret: SECRET,
      routes: [
        { path: '/api', proxy: a.url, auth: 'required', maxBodyBytes: 1000 },
        { path: '/open', proxy: a.url },
        { path: '/maybe', proxy: a.url, auth: 'optional' },
        { path: '/rr', proxy: [a.url, b.url] },
        { path: '/down', proxy: 'http://127.0.0.1:1' },
        { path: '/half-down', proxy: ['http://127.0.0.1:1', b.url] },
        { path: '/timeout', proxy: a.url, timeout: '500ms' },
        { path: '/rewrite', proxy: `${a.url}/internal/v1/` },
        { path: '/raw', proxy: rawUpstream.url },
      ],
    },
  });
  const code = await h.code();
  openid = code.openid;
  token = (await h.login({ code: code.code })).body.token;
});

afterAll(async () => {
  await h?.close();
  await a?.close();
  await b?.close();
  await rawUpstream?.close();
});

async function call(path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const response = await fetch(h.url + path, init);
  const text = await response.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, headers: response.headers, body };
}

describe('identity to upstreams', () => {
  it('answers 401 itself on an auth: required route without a session', async () => {
    const before = a.seen.length;
    const r = await call('/api/orders');
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('SESSION_MISSING');
    expect(a.seen.length).toBe(before);
  });

  it('sends signed X-Minigate-* headers that verify with the shared secret, and no token', async () => {
    const r = await call('/api/orders?page=2', { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(201);
    const seen = a.last();
    expect(seen.url).toBe('/api/orders?page=2');
    const hdr = seen.headers;
    expect(hdr['x-minigate-openid']).toBe(openid);
    expect(hdr['x-minigate-appid']).toBe(h.config.apps[0]!.appid);
    expect(hdr['x-minigate-session']).toMatch(/^[0-9a-f]{64}$/);
    expect(hdr.authorization).toBeUndefined();
    // What docs/upstream-identity.md tells an upstream to do:
    const payload = ['v1', hdr['x-minigate-timestamp'], hdr['x-minigate-appid'], hdr['x-minigate-openid'], hdr['x-minigate-unionid'] ?? '', hdr['x-minigate-session']].join('\n');
    const expected = createHmac('sha256', SECRET).update(payload).digest('hex');
    expect(hdr['x-minigate-signature']).toBe(`v1=${expected}`);
    expect(Math.abs(Number(hdr['x-minigate-timestamp']) - Date.now() / 1000)).toBeLessThan(5);
  });

  it('never lets a client-sent identity header through, in any spelling', async () => {
    await call('/open/x', {
      headers: {
        'x-minigate-openid': 'o-forged',
        'X-Minigate-Signature': 'v1=forged',
        'x-wx-openid': 'o-forged',
        'x-wx-skey': 'forged',
        x_minigate_openid: 'o-forged',
      },
    });
    const headers = a.last().headers;
    expect(JSON.stringify(headers)).not.toContain('forged');
    // auth: optional without a session: no identity at all; with one: identity.
    await call('/maybe/x', { headers: { 'x-minigate-openid': 'o-forged' } });
    expect(a.last().headers['x-minigate-openid']).toBeUndefined();
    await call('/maybe/x', { headers: { authorization: `Bearer ${token}` } });
    expect(a.last().headers['x-minigate-openid']).toBe(openid);
  });

  it('sets X-Forwarded-* from the socket, ignoring what an untrusted client claims', async () => {
    await get(`${h.url}/open/ip`, { headers: { 'x-forwarded-for': '1.2.3.4', 'x-real-ip': '1.2.3.4', forwarded: 'for=1.2.3.4', 'x-forwarded-proto': 'https', host: 'shop.example' } });
    const headers = a.last().headers;
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(headers['x-real-ip']).toBe('127.0.0.1');
    expect(headers['x-forwarded-proto']).toBe('http');
    expect(headers['x-forwarded-host']).toBe('shop.example');
    expect(headers.forwarded).toBeUndefined();
  });

  it('appends to the chain of a trusted proxy and takes the client address from it', async () => {
    const trusted = await startHarness({ config: { trustedProxies: ['127.0.0.0/8'], routes: [{ path: '/open', proxy: a.url }] } });
    try {
      await fetch(`${trusted.url}/open/ip`, { headers: { 'x-forwarded-for': '203.0.113.7, 10.1.1.1', 'x-forwarded-proto': 'https' } });
      const headers = a.last().headers;
      expect(headers['x-forwarded-for']).toBe('203.0.113.7, 10.1.1.1, 127.0.0.1');
      expect(headers['x-real-ip']).toBe('10.1.1.1');
      expect(headers['x-forwarded-proto']).toBe('https');
    } finally {
      await trusted.close();
    }
  });

  it('drops hop-by-hop headers both ways, including those named in Connection', async () => {
    const r = await get(`${h.url}/open/hop`, { headers: { connection: 'keep-alive, x-private', 'x-private': 'no', 'keep-alive': 'timeout=5', te: 'trailers' } });
    const headers = a.last().headers;
    expect(headers['x-private']).toBeUndefined();
    expect(headers.te).toBeUndefined();
    expect(r.headers['x-secret-hop']).toBeUndefined();
    expect(r.headers['x-upstream']).toBe('a');
  });
});

describe('routing to upstreams', () => {
  it('replaces the route prefix with the path of the upstream URL', async () => {
    await call('/rewrite/users/7?x=1');
    expect(a.last().url).toBe('/internal/v1/users/7?x=1');
  });

  it('round-robins over upstreams and skips one that is down', async () => {
    const names = [];
    for (let i = 0; i < 4; i++) names.push((await call('/rr/x')).body.name);
    expect(names.sort()).toEqual(['a', 'a', 'b', 'b']);
    for (let i = 0; i < 3; i++) expect((await call('/half-down/x')).body.name).toBe('b');
  });

  it('streams a request body through, and refuses one over maxBodyBytes with 413', async () => {
    const ok = await call('/api/echo', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' }, body: 'x'.repeat(900) });
    expect(ok.status).toBe(201);
    expect(a.last().body).toHaveLength(900);
    const before = a.seen.length;
    const big = await call('/api/echo', { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'x'.repeat(5000) });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('BODY_TOO_LARGE');
    expect(a.seen.length).toBe(before);
  });

  it('streams a large answer to a slow client with back-pressure: the upstream is made to wait, and every byte arrives', async () => {
    bigWaits = 0;
    const received = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${h.url}/open/big`, { agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve(bytes));
        res.on('error', reject);
        // The client reads nothing for a while: minigate must stop reading from the upstream.
        res.pause();
        setTimeout(() => res.resume(), 500);
      });
      req.on('error', reject);
      req.end();
    });
    expect(received).toBe(BIG_BYTES);
    expect(bigWaits).toBeGreaterThan(0);
  });
});

describe('upstream failures', () => {
  it('answers 502 UPSTREAM_UNAVAILABLE for an upstream that refuses, and stays up', async () => {
    const r = await call('/down/x');
    expect(r.status).toBe(502);
    expect(r.body.error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', requestId: expect.any(String) });
    expect((await call('/open/x')).status).toBe(201);
  });

  it('answers 504 UPSTREAM_TIMEOUT when the upstream is slower than the route timeout', async () => {
    const started = performance.now();
    const r = await call('/timeout/slow');
    expect(r.status).toBe(504);
    expect(r.body.error.code).toBe('UPSTREAM_TIMEOUT');
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('cuts the client connection when the upstream dies mid-answer, and serves the next request', async () => {
    await expect(call('/open/crash')).rejects.toThrow();
    expect((await call('/open/x')).status).toBe(201);
    expect((await call('/healthz')).status).toBe(200);
  });

  it('passes a chunked answer on, and answers 502 for one that could be read two ways, a split header or no HTTP at all', async () => {
    const chunked = await call('/raw/chunked');
    expect(chunked).toMatchObject({ status: 200, body: 'hello world' });
    expect(chunked.headers.get('x-kind')).toBe('chunked');
    for (const path of ['/raw/smuggle', '/raw/split', '/raw/garbage']) {
      const r = await call(path);
      expect(r.status, path).toBe(502);
      expect(r.body.error.code, path).toBe('UPSTREAM_UNAVAILABLE');
      expect(r.headers.get('set-cookie'), path).toBeNull();
    }
    expect((await call('/raw/chunked')).body).toBe('hello world');
    expect(h.logs.text()).not.toContain('evil!');
  });

  it('sends a request body without a length upstream chunked, whole', async () => {
    const port = Number(new URL(h.url).port);
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write('POST /open/chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n');
        setTimeout(() => socket.write('4\r\ndefg\r\n0\r\n\r\n'), 50);
      });
      let text = '';
      socket.on('data', (d) => (text += d));
      socket.on('close', () => resolve(text));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 201/);
    expect(a.last()).toMatchObject({ url: '/open/chunks', body: 'abcdefg', headers: { 'transfer-encoding': 'chunked' } });
  });

  it('never forwards a smuggling attempt (Content-Length with Transfer-Encoding)', async () => {
    const before = a.seen.length;
    const port = new URL(h.url).port;
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write('POST /open/x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /open/smuggled HTTP/1.1\r\nHost: x\r\n\r\n');
      });
      let text = '';
      socket.on('data', (d) => (text += d));
      socket.on('close', () => resolve(text));
      setTimeout(() => socket.destroy(), 1000);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    expect(a.seen.slice(before).some((s) => s.url.includes('smuggled'))).toBe(false);
  });
});

describe('WebSocket through the proxy', () => {
  it('passes frames both ways, with the identity headers on the upgrade', async () => {
    const ws = new WebSocket(`${h.url.replace('http', 'ws')}/api/socket`, { headers: { authorization: `Bearer ${token}` } });
    const messages: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (data) => {
        messages.push(data.toString());
        if (messages.length === 1) ws.send('ping-1');
        if (messages.length === 2) resolve();
      });
      ws.on('error', reject);
    });
    ws.close();
    expect(JSON.parse(messages[0]!)).toEqual({ hello: 'a', openid });
    expect(messages[1]).toBe('echo:ping-1');
  });

  it('closes proxied WebSockets with 1001 both ways when minigate stops', async () => {
    const own = await startUpstream('own');
    const stopping = await startHarness({ config: { routes: [{ path: '/ws', proxy: own.url }] } });
    try {
      const ws = new WebSocket(`${stopping.url.replace('http', 'ws')}/ws/socket`);
      await new Promise((resolve, reject) => {
        ws.once('message', resolve);
        ws.once('error', reject);
      });
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      // Keep frames flowing while the server stops: the close must land between frames.
      const pump = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('x'.repeat(10_000)), 1);
      await new Promise((r) => setTimeout(r, 50));
      await stopping.stop();
      clearInterval(pump);
      expect(await closed).toBe(1001);
      await new Promise((r) => setTimeout(r, 100));
      expect(own.closeCodes).toEqual([1001]);
    } finally {
      await stopping.close();
      await own.close();
    }
  });

  it('refuses the upgrade with 401 without a session, and 502 when the upstream is down', async () => {
    const status = (path: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${h.url.replace('http', 'ws')}${path}`);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
        ws.on('error', () => undefined);
      });
    expect(await status('/api/socket')).toBe(401);
    expect(await status('/down/socket')).toBe(502);
    expect(await status('/nowhere')).toBe(404);
  });
});
