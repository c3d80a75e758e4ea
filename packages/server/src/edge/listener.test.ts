/**
 * The body deadline: a request whose body dribbles in is cut at the listener's deadline, unless
 * its route gave it longer (uploads) — and then it completes.
 */
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.js';
import { extendRequestDeadline } from '../http/index.js';
import { createListener, DRAIN_QUIET_MS } from './listener.js';

/** Sends a 20-byte body one byte every 75 ms (1.5 s in all); resolves with the status or 'cut'. */
function slowPost(port: number, path: string, chunked = false): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1] ?? 'cut'));
    socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\n${chunked ? 'Transfer-Encoding: chunked' : 'Content-Length: 20'}\r\nConnection: close\r\n\r\n`);
    let sent = 0;
    const timer = setInterval(() => {
      if (socket.destroyed) return clearInterval(timer);
      socket.write(chunked ? '1\r\nx\r\n' : 'x');
      if (++sent === 20) {
        clearInterval(timer);
        if (chunked) socket.write('0\r\n\r\n');
      }
    }, 75);
  });
}

describe('request body deadline', () => {
  it('cuts a slow body at the deadline, and lets a route that asked for longer finish', async () => {
    const listener = createListener({
      name: 'test',
      address: { host: '127.0.0.1', port: 0 },
      logger: silentLogger(),
      requestTimeoutMs: 500,
      handler: (req, res) => {
        if (req.url === '/upload') extendRequestDeadline(req, 5_000);
        req.resume();
        req.on('end', () => res.end('ok'));
      },
    });
    const { port } = await listener.start();
    try {
      const [normal, upload, chunked] = await Promise.all([slowPost(port, '/other'), slowPost(port, '/upload'), slowPost(port, '/other', true)]);
      expect(normal).toBe('cut');
      expect(upload).toBe('200');
      // A body without a length (chunked) has the deadline too: only a request with neither header has no body.
      expect(chunked).toBe('cut');
    } finally {
      await listener.close(100);
    }
  });
});

describe('closing', () => {
  it('does not wait the grace for a connection that never sent a request', async () => {
    const listener = createListener({ name: 'test', address: { host: '127.0.0.1', port: 0 }, logger: silentLogger(), handler: (_req, res) => res.end('ok') });
    const { port } = await listener.start();
    const idle = connect(port, '127.0.0.1');
    await new Promise((r) => idle.once('connect', r));
    const closed = new Promise((r) => idle.once('close', r));
    const started = Date.now();
    await listener.close(5_000);
    expect(Date.now() - started).toBeLessThan(1_000);
    await closed;
  });
});

/** Reads one HTTP/1.1 answer (with a Content-Length body) from a socket; 'cut' if it closes first. */
function answer(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString();
      const head = text.indexOf('\r\n\r\n');
      const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? -1);
      if (head >= 0 && length >= 0 && text.length >= head + 4 + length) done(text);
    };
    const done = (value: string) => {
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(value);
    };
    const onClose = () => done(text || 'cut');
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

describe('draining keep-alive connections (a worker replaced in a rolling restart)', () => {
  const GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';

  it('answers a request sent on an idle keep-alive connection just after the drain began, with connection: close', async () => {
    const listener = createListener({ name: 'test', address: { host: '127.0.0.1', port: 0 }, logger: silentLogger(), handler: (_req, res) => res.end('ok') });
    const { port } = await listener.start();
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(GET);
    expect(await answer(socket)).toMatch(/^HTTP\/1\.1 200[\s\S]*keep-alive/i);
    // A busy client's next request, written as the server starts to close (Node's own close()
    // would reset this connection: it is idle at that moment).
    const closing = listener.close(5_000);
    socket.write(GET);
    const second = await answer(socket);
    expect(second).toMatch(/^HTTP\/1\.1 200/);
    expect(second).toMatch(/connection: close/i);
    await closing;
  });

  it('closes a keep-alive connection that stays quiet after the quiet period, not at the grace', async () => {
    const listener = createListener({ name: 'test', address: { host: '127.0.0.1', port: 0 }, logger: silentLogger(), handler: (_req, res) => res.end('ok') });
    const { port } = await listener.start();
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(GET);
    await answer(socket);
    const closed = new Promise((r) => socket.once('close', r));
    const started = Date.now();
    await listener.close(5_000);
    await closed;
    // It was already quiet for a moment before the drain; at most one quiet period more.
    expect(Date.now() - started).toBeLessThan(DRAIN_QUIET_MS + 500);
  });

  it('ends a request in progress when the drain begins with connection: close, then closes', async () => {
    const listener = createListener({
      name: 'test',
      address: { host: '127.0.0.1', port: 0 },
      logger: silentLogger(),
      handler: (_req, res) => void setTimeout(() => res.end('ok'), 300),
    });
    const { port } = await listener.start();
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const closed = new Promise((r) => socket.once('close', r));
    socket.write(GET);
    await new Promise((r) => setTimeout(r, 100));
    const closing = listener.close(5_000);
    const first = await answer(socket);
    expect(first).toMatch(/^HTTP\/1\.1 200/);
    expect(first).toMatch(/connection: close/i);
    await closed;
    await closing;
  });
});
