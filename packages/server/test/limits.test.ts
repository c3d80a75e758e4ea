/**
 * Limits a server on the internet needs (docs/reliability.md#tls-and-listeners): slow-header
 * clients are cut at the header deadline while others are served, oversized headers are refused,
 * and a certificate replaced under load (new handshake per request) drops nothing (needs wrk).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS_TIMEOUT_MS } from '../src/edge/listener.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { makeCa, makeLeaf } from './helpers/pki.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const port = () => Number(new URL(h.url).port);

function rawRequest(text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port(), '127.0.0.1', () => socket.write(text));
    let answer = '';
    socket.on('data', (d) => (answer += d));
    socket.on('close', () => resolve(answer));
    socket.on('error', () => resolve(answer));
  });
}

describe('header limits', () => {
  it('cuts slow-header clients at the deadline and keeps serving others', { timeout: 40_000 }, async () => {
    const sockets: Socket[] = [];
    const closedAt: number[] = [];
    const started = Date.now();
    for (let i = 0; i < 50; i++) {
      const socket = connect(port(), '127.0.0.1', () => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'));
      socket.on('error', () => undefined);
      socket.resume(); // read what the server sends (its 408 and FIN), as a real client would
      socket.on('close', () => closedAt.push(Date.now() - started));
      sockets.push(socket);
    }
    // One header byte every two seconds: never a complete request.
    const drip = setInterval(() => sockets.forEach((s) => s.writable && s.write('X')), 2_000);
    // And a request line without a version that is never followed by anything: its answer is read.
    const stalled = rawRequest('GET /healthz\r\n');
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      const healthy = await fetch(`${h.url}/healthz`);
      expect(healthy.status).toBe(200);
      const deadline = Date.now() + HEADERS_TIMEOUT_MS + 10_000;
      while (closedAt.length < sockets.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
      expect(closedAt).toHaveLength(50);
      expect(Math.max(...closedAt)).toBeLessThan(HEADERS_TIMEOUT_MS + 2_500);
      expect(Math.min(...closedAt)).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 1_000);
      const answer = await stalled;
      expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(answer).toMatch(/\r\nconnection: close\r\n/);
      expect(JSON.parse(answer.split('\r\n\r\n')[1]!).error).toMatchObject({ code: 'REQUEST_TIMEOUT', requestId: expect.any(String) });
    } finally {
      clearInterval(drip);
      sockets.forEach((s) => s.destroy());
    }
  });

  it('refuses a 100 KB header and ten thousand headers with 431 HEADERS_TOO_LARGE', async () => {
    expect(await rawRequest(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431[^]*"code":"HEADERS_TOO_LARGE"/);
    const many = Array.from({ length: 10_000 }, (_, i) => `X-${i}: 1`).join('\r\n');
    expect(await rawRequest(`GET /healthz HTTP/1.1\r\nHost: x\r\n${many}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431[^]*"code":"HEADERS_TOO_LARGE"/);
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
  });

  it('refuses malformed requests with 400 (bare LF, CR in a value, obs-fold Transfer-Encoding)', async () => {
    for (const bad of [
      'GET /healthz HTTP/1.1\nHost: x\n\n',
      'GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n',
      'POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n',
      'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    ]) {
      expect(await rawRequest(bad), JSON.stringify(bad)).toMatch(/^HTTP\/1\.1 400[^]*"code":"BAD_REQUEST"/);
    }
  });
});

describe('certificate replaced under load', () => {
  it('drops no request while the certificate file changes (wrk, a new handshake per request)', { timeout: 60_000 }, async () => {
    const ca = makeCa();
    const dir = mkdtempSync(path.join(tmpdir(), 'mg-load-reload-'));
    const leaves = [makeLeaf(ca, ['localhost', '127.0.0.1'], { label: 'l1' }), makeLeaf(ca, ['localhost', '127.0.0.1'], { label: 'l2' })];
    const place = (i: number) => {
      copyFileSync(leaves[i]!.key, path.join(dir, 'key.pem'));
      copyFileSync(leaves[i]!.fullchain, path.join(dir, 'cert.pem'));
    };
    place(0);
    const tls = await startHarness({ config: { listen: { https: '127.0.0.1:0' }, tls: { certificates: [{ cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') }] } } });
    try {
      const script = path.join(dir, 'close.lua');
      writeFileSync(script, 'wrk.headers["Connection"] = "close"\n');
      const run = new Promise<string>((resolve, reject) =>
        execFile('wrk', ['-t', '1', '-c', '8', '-d', '6s', '-s', script, `${tls.server.urls.https}/healthz`], (error, stdout, stderr) =>
          error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
        ),
      );
      for (let i = 1; i <= 4; i++) {
        await new Promise((r) => setTimeout(r, 1_200));
        place(i % 2);
      }
      const out = await run;
      const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
      expect(requests).toBeGreaterThan(100);
      expect(out).not.toMatch(/Socket errors|Non-2xx/);
      expect(tls.logs.text()).toContain('tls: new certificate in use');
      expect(readFileSync(path.join(dir, 'cert.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');
    } finally {
      await tls.close();
      rmSync(dir, { recursive: true, force: true });
      rmSync(ca.dir, { recursive: true, force: true });
    }
  });
});
