/**
 * The edge against an attacker, through the real CLI and raw sockets (clients like fetch would
 * clean the targets up before sending): request-target normalisation before routing, so that an
 * `auth: none` route never reaches an `auth: required` one at an upstream that resolves `..`
 * itself; the traversal corpus on a proxy and a static route; a property test over the wire;
 * upgrades other than a valid WebSocket handshake; `forwardAuthorization`.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type RunningCli } from './helpers/cli.js';
import { freePort } from './helpers/pebble.js';
import { makeCa, makeLeaf } from './helpers/pki.js';
import { HOSTILE_PIECES, HOSTILE_SEGMENTS, UPSTREAM_MODELS, under } from './helpers/upstream-models.js';

const APPID = 'wx0123456789abcdef';
const SECRET_MARKER = 'TOP-SECRET-OUTSIDE-THE-ROOT';

interface Seen {
  url: string;
  headers: IncomingMessage['headers'];
}

/** A business service that answers anything, records what reached it, and says 101 to any upgrade (as a careless one would). */
async function startUpstream() {
  const seen: Seen[] = [];
  const afterUpgrade: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, openid: req.headers['x-minigate-openid'] ?? null }));
  });
  const upgraded = new Set<Socket>();
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
    seen.push({ url: req.url ?? '', headers: req.headers });
    const key = String(req.headers['sec-websocket-key'] ?? '');
    const accept = req.url?.includes('bad-accept')
      ? 'not-the-accept'
      : createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade}\r\nconnection: upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
    socket.on('data', (d: Buffer) => afterUpgrade.push(d.toString('latin1')));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, seen, afterUpgrade, upgraded, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

interface RawAnswer {
  status: number;
  head: string;
  body: string;
  closed: boolean;
}

/** Sends bytes as they are and reads the first answer (and whether the server closed after it). */
function raw(port: number, data: string | Buffer, waitMs = 1500): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(data));
    let text = '';
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const [head = '', ...rest] = text.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body: rest.join('\r\n\r\n'), closed });
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      // One complete answer with a length: done unless we wait for a close.
      const length = /content-length: (\d+)/i.exec(text)?.[1];
      const split = text.indexOf('\r\n\r\n');
      if (length !== undefined && split !== -1 && text.length >= split + 4 + Number(length) && !/connection: close/i.test(text)) done();
    });
    socket.on('close', () => {
      closed = true;
      done();
    });
    socket.on('error', reject);
  });
}

const get = (port: number, target: string, headers = '') => raw(port, `GET ${target} HTTP/1.1\r\nHost: edge.test\r\n${headers}Connection: close\r\n\r\n`);

describe('the edge against hostile request targets and upgrades (minigate start)', () => {
  let dir: string;
  let cli: RunningCli;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let httpPort: number;
  let httpsPort: number;
  let rootPem: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    dir = mkdtempSync(path.join(tmpdir(), 'mg-edge-sec-'));
    // A static root, a file beside it that must never be served, and a sibling with a longer name.
    mkdirSync(path.join(dir, 'site', 'sub'), { recursive: true });
    mkdirSync(path.join(dir, 'site-private'));
    writeFileSync(path.join(dir, 'site', 'index.html'), '<h1>site</h1>');
    writeFileSync(path.join(dir, 'site', 'sub', 'a.txt'), 'inside');
    writeFileSync(path.join(dir, 'secret.txt'), SECRET_MARKER);
    writeFileSync(path.join(dir, 'site-private', 'secret.txt'), SECRET_MARKER);
    const ca = makeCa('Edge Security');
    rootPem = ca.rootPem;
    const leaf = makeLeaf(ca, ['localhost', '127.0.0.1']);
    httpPort = await freePort();
    httpsPort = await freePort();
    writeFileSync(
      path.join(dir, 'minigate.yaml'),
      [
        'dataDir: ./data',
        'listen:',
        `  http: 127.0.0.1:${httpPort}`,
        `  https: 127.0.0.1:${httpsPort}`,
        '  httpRedirect: false',
        'tls:',
        '  http2: true',
        '  checkDomains: false',
        '  certificates:',
        `    - cert: ${leaf.fullchain}`,
        `      key: ${leaf.key}`,
        'wechat:',
        '  apiBase: http://127.0.0.1:9',
        'apps:',
        `  - appid: ${APPID}`,
        '    secret: edge-security-test-secret-0011223344',
        'upstreamSecret: edge-security-upstream-secret-0123456789',
        'routes:',
        `  - { path: /open, proxy: "${upstream.url}", auth: none }`,
        `  - { path: /api, proxy: "${upstream.url}", auth: required }`,
        `  - { path: /n/int, proxy: "${upstream.url}/internal/", auth: none }`,
        `  - { path: /quiet, proxy: "${upstream.url}", auth: none, forwardAuthorization: false }`,
        `  - { path: /site, static: ./site }`,
        '',
      ].join('\n'),
    );
    cli = startCli(['start', '-c', path.join(dir, 'minigate.yaml')], { cwd: dir });
    await cli.waitForLine(/^minigate listening on/);
  });

  afterAll(async () => {
    await cli?.stop();
    for (const socket of upstream?.upgraded ?? []) socket.destroy();
    upstream?.server.closeAllConnections();
    await new Promise((resolve) => upstream?.server.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** What reached the upstream during `fn`. */
  async function reached<T>(fn: () => Promise<T>): Promise<{ answer: T; seen: Seen[] }> {
    const before = upstream.seen.length;
    const answer = await fn();
    await new Promise((r) => setTimeout(r, 20));
    return { answer, seen: upstream.seen.slice(before) };
  }

  describe('request targets', () => {
    it.each(['/open/../api/x', '/open/%2e%2e/api/x', '/open/.%2E/api/x', '/open//../api/x', '/open/./../api/x'])(
      '%s is routed as /api/x: 401 without a session, nothing upstream',
      async (target) => {
        const { answer, seen } = await reached(() => get(httpPort, target));
        expect(answer.status).toBe(401);
        expect(JSON.parse(answer.body).error.code).toBe('SESSION_MISSING');
        expect(seen).toEqual([]);
      },
    );

    it('a proxy route with a path cannot climb out of it: /n/int/../admin never reaches /admin', async () => {
      const { answer, seen } = await reached(() => get(httpPort, '/n/int/../admin'));
      expect(answer.status).toBe(404);
      expect(seen).toEqual([]);
      const inside = await reached(() => get(httpPort, '/n/int/a/./b/../c?q=../x'));
      expect(inside.answer.status).toBe(200);
      expect(inside.seen.map((s) => s.url)).toEqual(['/internal/a/c?q=../x']);
    });

    it.each([
      ['/open/..;/api/x', ';'],
      ['/open/%2fapi/x', '"/"'],
      ['/open/%252e%252e/api/x', 'double-encoded'],
      ['/open/%c0%ae%c0%ae/api/x', 'UTF-8'],
      ['/open/a\\..\\api', '"\\"'],
      ['/..', 'above the root'],
    ])('%s is refused with 400 REQUEST_TARGET_INVALID', async (target, why) => {
      const { answer, seen } = await reached(() => get(httpPort, target));
      expect(answer.status).toBe(400);
      const error = JSON.parse(answer.body).error;
      expect(error.code).toBe('REQUEST_TARGET_INVALID');
      expect(error.message).toContain(why);
      expect(error.requestId).toMatch(/^[0-9a-f]{16}$/);
      expect(seen).toEqual([]);
    });

    it('HTTP/2 :path is normalised the same way', async () => {
      const session = http2Connect(`https://localhost:${httpsPort}`, { ca: readFileSync(rootPem) });
      const ask = (p: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const stream = session.request({ ':path': p, ':method': 'GET' });
          let body = '';
          let status = 0;
          stream.on('response', (h) => (status = Number(h[':status'])));
          stream.on('data', (d: Buffer) => (body += d));
          stream.on('end', () => resolve({ status, body }));
          stream.on('error', reject);
        });
      try {
        const { answer, seen } = await reached(() => ask('/open/%2e%2e/api/x'));
        expect(answer.status).toBe(401);
        expect(seen).toEqual([]);
        expect((await ask('/open/..;/api/x')).status).toBe(400);
        const ok = await reached(() => ask('/open//a/./b'));
        expect(ok.answer.status).toBe(200);
        expect(ok.seen.map((s) => s.url)).toEqual(['/open/a/b']);
      } finally {
        session.close();
      }
    });

    it('absolute-form targets are served with their authority as Host; CONNECT gets a JSON 405', async () => {
      const { answer, seen } = await reached(() => get(httpPort, 'http://Other.Example:8080/open/a/../b?x=%2e%2e'));
      expect(answer.status).toBe(200);
      expect(seen.map((s) => s.url)).toEqual(['/open/b?x=%2e%2e']);
      expect(seen[0]!.headers['x-forwarded-host']).toBe('other.example:8080');
      expect((await get(httpPort, 'http://other.example/open/../api/x')).status).toBe(401);
      const connectAnswer = await raw(httpPort, 'CONNECT upstream.example:443 HTTP/1.1\r\nHost: upstream.example:443\r\n\r\n');
      expect(connectAnswer.status).toBe(405);
      expect(JSON.parse(connectAnswer.body).error.code).toBe('METHOD_NOT_ALLOWED');
      expect(connectAnswer.head).toMatch(/allow: GET/i);
    });

    // The corpus: every piece of disguise, after each kind of route, over the wire.
    const suffixes = [
      '../api/x', '..%2fapi%2fx', '%2e%2e/api/x', '%2E%2E/api/x', '.%2e/api/x', '%2e./api/x', '%252e%252e/api/x', '%25%32%65%25%32%65/api/x',
      '..;/api/x', '.;/../api/x', '..;jsessionid=1/api/x', '%2e%2e;/api/x', '..%3b/api/x', 'x/..;/..;/api/x', '..\\api\\x', '%5c..%5capi',
      '..%5capi', '%2e%2e%5capi', '//../api/x', '///..//..//api/x', './/../api/x', 'a/b/../../../api/x', 'a/%2e%2e/%2e%2e/api/x',
      '%c0%ae%c0%ae/api/x', '%c0%af../api', '%e0%80%ae%e0%80%ae/api', '%c1%9c', '%ff%fe', '%00../api', '..%00/api', '%0a../api',
      '%0d%0a', 'a%2fb', '%2F', '%252f', '..%252f..%252fapi', 'a#/../../api', '%23/../api', '?/../../api', '%3f/../../api',
      'A/../../API/x', '..%2F..%2Fapi', '%2e%2e%2f%2e%2e%2fapi', '....//api', '.../api', 'a/.../../api', '%u002e%u002e/api',
      '..../api', '%%32%65%%32%65/api', '%2', '%zz', 'caf%c3%a9/../../api', 'sub/a.txt', 'sub/./a.txt', 'sub//a.txt', '../secret.txt',
      '..%2fsecret.txt', '../site-private/secret.txt', '%2e%2e/site-private/secret.txt', 'sub/../../secret.txt', 'sub/%2e%2e/%2e%2e/secret.txt',
    ];
    const corpus = ['/open/', '/n/int/', '/site/'].flatMap((prefix) => suffixes.map((s) => prefix + s));

    it(`a corpus of ${corpus.length} hostile targets: refused, or served without reaching /api, /admin or a file outside the root`, async () => {
      expect(corpus.length).toBeGreaterThanOrEqual(100);
      for (const target of corpus) {
        const { answer, seen } = await reached(() => get(httpPort, target));
        const where = `${target} → ${answer.status} ${seen.map((s) => s.url).join(' ')}`;
        expect(answer.status, where).toBeGreaterThan(0);
        expect(answer.status, where).toBeLessThan(500);
        expect(answer.body, where).not.toContain(SECRET_MARKER);
        if (answer.status === 400) expect(JSON.parse(answer.body).error.code, where).toMatch(/^(REQUEST_TARGET_INVALID|BAD_REQUEST)$/);
        for (const s of seen) {
          expect(s.headers['x-minigate-openid'], where).toBeUndefined();
          for (const [name, model] of Object.entries(UPSTREAM_MODELS)) {
            const p = model(s.url);
            if (p === null) continue;
            expect(under(p, '/api'), `${where} (${name}: ${p})`).toBe(false);
            expect(under(p, '/admin'), `${where} (${name}: ${p})`).toBe(false);
            if (target.startsWith('/n/int/')) expect(under(p, '/internal'), `${where} (${name}: ${p})`).toBe(true);
          }
        }
      }
      // The static route still serves what is inside.
      expect((await get(httpPort, '/site/sub/./a.txt')).body).toBe('inside');
    });

    it('property: no target sent to an auth: none prefix reaches /api at a WHATWG, nginx or Tomcat upstream', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('/open/', '/open', '/n/int/', '/'),
          fc.array(fc.constantFrom(...HOSTILE_SEGMENTS), { minLength: 1, maxLength: 6 }),
          fc.constantFrom('/', '//'),
          fc.array(fc.constantFrom(...HOSTILE_PIECES), { maxLength: 3 }),
          async (start, segments, separator, tail) => {
            const target = start + segments.join(separator) + tail.join('');
            if (/[\s]/.test(target)) return;
            const { answer, seen } = await reached(() => get(httpPort, target));
            expect(answer.status, target).toBeLessThan(500);
            for (const s of seen) {
              expect(s.headers['x-minigate-openid']).toBeUndefined();
              for (const [name, model] of Object.entries(UPSTREAM_MODELS)) {
                const p = model(s.url);
                if (p !== null) expect(under(p, '/api'), `${target} → ${s.url} (${name}: ${p})`).toBe(false);
              }
            }
          },
        ),
        { numRuns: 200 },
      );
    });
  });

  describe('upgrades', () => {
    const wsKey = 'dGhlIHNhbXBsZSBub25jZQ==';

    it('an h2c upgrade is answered as a plain request and the connection closed: a smuggled request never arrives', async () => {
      const { answer, seen } = await reached(() =>
        raw(
          httpPort,
          'GET /open/x HTTP/1.1\r\nHost: edge.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n' +
            'GET /api/secret HTTP/1.1\r\nHost: edge.test\r\nX-Minigate-OpenId: forged\r\n\r\n',
        ),
      );
      expect(answer.status).toBe(200);
      expect(answer.head).toMatch(/connection: close/i);
      expect(answer.closed).toBe(true);
      expect(seen.map((s) => s.url)).toEqual(['/open/x']);
      expect(seen[0]!.headers.upgrade).toBeUndefined();
      expect(upstream.seen.some((s) => s.url.includes('secret') || s.headers['x-minigate-openid'] === 'forged')).toBe(false);
    });

    it.each([
      ['Upgrade: websocket without a key', `GET /open/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n`],
      ['a bad version', `GET /open/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: ${wsKey}\r\n\r\n`],
      ['POST', `POST /open/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${wsKey}\r\nContent-Length: 0\r\n\r\n`],
      ['two Upgrade headers', `GET /open/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${wsKey}\r\n\r\n`],
      ['an h2c upgrade with a body', 'POST /open/x HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 5\r\n\r\nhello'],
    ])('refuses %s with 400 UPGRADE_REFUSED, nothing upstream', async (_name, request) => {
      const { answer, seen } = await reached(() => raw(httpPort, request));
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.body).error.code).toBe('UPGRADE_REFUSED');
      expect(seen).toEqual([]);
    });

    const handshake = (target: string) =>
      `GET ${target} HTTP/1.1\r\nHost: edge.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${wsKey}\r\n\r\n`;

    it('a 101 from the upstream without the right Sec-WebSocket-Accept is a 502', async () => {
      const answer = await raw(httpPort, handshake('/open/bad-accept'));
      expect(answer.status).toBe(502);
      expect(JSON.parse(answer.body).error.code).toBe('UPSTREAM_UNAVAILABLE');
    });

    it('after a valid 101 only WebSocket frames flow: HTTP bytes end the tunnel and never reach the upstream', async () => {
      const before = upstream.afterUpgrade.length;
      const socket = connect(httpPort, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write(handshake('/open/ws'));
      const head = await new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString())));
      expect(head).toMatch(/^HTTP\/1\.1 101/);
      // A masked text frame "hi" passes.
      socket.write(Buffer.from([0x81, 0x82, 1, 2, 3, 4, 'h'.charCodeAt(0) ^ 1, 'i'.charCodeAt(0) ^ 2]));
      await new Promise((r) => setTimeout(r, 100));
      socket.write('GET /api/secret HTTP/1.1\r\nHost: h\r\nX-Minigate-OpenId: forged\r\n\r\n');
      const closed = await new Promise<boolean>((resolve) => {
        socket.once('close', () => resolve(true));
        setTimeout(() => resolve(false), 2000);
      });
      expect(closed).toBe(true);
      const received = upstream.afterUpgrade.slice(before).join('');
      expect(received.length).toBe(8);
      expect(received).not.toContain('GET /api');
    });
  });

  it('forwardAuthorization: false keeps a client Bearer token from an auth: none upstream', async () => {
    const bearer = 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\r\n';
    const open = await reached(() => get(httpPort, '/open/t', bearer));
    expect(open.seen[0]!.headers.authorization).toMatch(/^Bearer /);
    const quiet = await reached(() => get(httpPort, '/quiet/t', `${bearer}X-WX-Skey: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\r\n`));
    expect(quiet.answer.status).toBe(200);
    expect(quiet.seen[0]!.headers.authorization).toBeUndefined();
    expect(quiet.seen[0]!.headers['x-wx-skey']).toBeUndefined();
  });
});
