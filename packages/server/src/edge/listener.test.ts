/**
 * The body deadline: a request whose body dribbles in is cut at the listener's deadline, unless
 * its route gave it longer (uploads) — and then it completes.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.js';
import { extendRequestDeadline } from '../http/index.js';
import { createListener } from './listener.js';

/** Sends a 20-byte body one byte every 75 ms (1.5 s in all); resolves with the status or 'cut'. */
function slowPost(port: number, path: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1] ?? 'cut'));
    socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\nConnection: close\r\n\r\n`);
    let sent = 0;
    const timer = setInterval(() => {
      if (socket.destroyed) return clearInterval(timer);
      socket.write('x');
      if (++sent === 20) clearInterval(timer);
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
      const [normal, upload] = await Promise.all([slowPost(port, '/other'), slowPost(port, '/upload')]);
      expect(normal).toBe('cut');
      expect(upload).toBe('200');
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
