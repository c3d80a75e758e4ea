/**
 * Static sites (an admin site on the same domain) and redirects: validators, ranges, SPA
 * fallback, sessions, and no way out of the root whatever raw path a client sends
 * (path traversal; sent over a socket, not through a client that normalises paths).
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './helpers/harness.js';
import { get } from './helpers/https.js';

let dir: string;
let h: Harness;
const SECRET = 'TOP-SECRET-CONTENT-7d1f';

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-static-'));
  const site = path.join(dir, 'site');
  mkdirSync(path.join(site, 'sub'), { recursive: true });
  writeFileSync(path.join(site, 'index.html'), '<!doctype html><title>admin</title>');
  writeFileSync(path.join(site, 'app.js'), 'console.log("app")');
  writeFileSync(path.join(site, 'sub', 'index.html'), '<p>sub</p>');
  writeFileSync(path.join(site, 'data.bin'), Buffer.alloc(10_000, 7));
  // Things that must never be served: a sibling whose name starts like the root, and a symlink out.
  mkdirSync(path.join(dir, 'site-secret'));
  writeFileSync(path.join(dir, 'site-secret', 'secret.txt'), SECRET);
  writeFileSync(path.join(dir, 'outside.txt'), SECRET);
  symlinkSync(path.join(dir, 'outside.txt'), path.join(site, 'link.txt'));
  h = await startHarness({
    config: {
      routes: [
        { path: '/admin-site', static: site },
        { path: '/spa', static: site, spa: true },
        { path: '/private', static: site, auth: 'required' },
        { path: '/later', static: path.join(dir, 'later') },
        { path: '/go', redirect: 'https://example.com/new/' },
        { path: '/exact', redirect: 'https://example.com/landing' },
      ],
    },
  });
});

afterAll(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Sends a raw request target over a socket and returns the status line and body. */
function raw(target: string): Promise<{ status: number; text: string }> {
  const port = Number(new URL(h.url).port);
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.on('data', (d) => (text += d));
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
    socket.on('error', () => resolve({ status: 0, text }));
  });
}

describe('static files', () => {
  it('serves index.html with its type, validators and nosniff', async () => {
    const r = await get(`${h.url}/admin-site/`);
    expect(r.status).toBe(200);
    expect(r.body).toContain('<title>admin</title>');
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers.etag).toMatch(/^W\/"/);
    expect(r.headers['last-modified']).toBeDefined();
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect((await get(`${h.url}/admin-site/app.js`)).headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect((await get(`${h.url}/admin-site/sub/`)).body).toBe('<p>sub</p>');
  });

  it('redirects a directory without its slash', async () => {
    const r = await get(`${h.url}/admin-site`);
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe('/admin-site/');
    expect((await get(`${h.url}/admin-site/sub?x=1`)).headers.location).toBe('/admin-site/sub/?x=1');
  });

  it('answers 304 to a matching If-None-Match or If-Modified-Since', async () => {
    const first = await get(`${h.url}/admin-site/app.js`);
    expect((await get(`${h.url}/admin-site/app.js`, { headers: { 'if-none-match': String(first.headers.etag) } })).status).toBe(304);
    expect((await get(`${h.url}/admin-site/app.js`, { headers: { 'if-modified-since': String(first.headers['last-modified']) } })).status).toBe(304);
    expect((await get(`${h.url}/admin-site/app.js`, { headers: { 'if-none-match': 'W/"other"' } })).status).toBe(200);
  });

  it('serves byte ranges and refuses ones outside the file with 416', async () => {
    const part = await get(`${h.url}/admin-site/data.bin`, { headers: { range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe('bytes 100-199/10000');
    expect(part.headers['content-length']).toBe('100');
    const tail = await get(`${h.url}/admin-site/data.bin`, { headers: { range: 'bytes=-10' } });
    expect(tail.headers['content-range']).toBe('bytes 9990-9999/10000');
    const outside = await get(`${h.url}/admin-site/data.bin`, { headers: { range: 'bytes=20000-' } });
    expect(outside.status).toBe(416);
    expect(outside.headers['content-range']).toBe('bytes */10000');
    expect(outside.json().error.code).toBe('RANGE_NOT_SATISFIABLE');
    // Several ranges are answered with the whole file (allowed), never a blow-up.
    expect((await get(`${h.url}/admin-site/data.bin`, { headers: { range: 'bytes=0-1,5-6,9-10' } })).status).toBe(200);
  });

  it('never serves anything outside the root, whatever the raw path', async () => {
    const attempts = [
      '/admin-site/../site-secret/secret.txt',
      '/admin-site/..%2fsite-secret/secret.txt',
      '/admin-site/%2e%2e/site-secret/secret.txt',
      '/admin-site/%2e%2e%2fsite-secret%2fsecret.txt',
      '/admin-site/%252e%252e/site-secret/secret.txt',
      '/admin-site/..%5csite-secret%5csecret.txt',
      '/admin-site/..\\site-secret\\secret.txt',
      '/admin-site/....//site-secret/secret.txt',
      '/admin-site/app.js%00.html',
      '/admin-site/%00',
      '/admin-site/link.txt',
      '/admin-site//etc/passwd',
      '/admin-site/%2fetc%2fpasswd',
      '/admin-site-secret/secret.txt',
      '/spa/../site-secret/secret.txt',
      'admin-site/app.js',
      '../../etc/passwd',
    ];
    for (const target of attempts) {
      const r = await raw(target);
      expect(r.status, target).not.toBe(200);
      expect(r.status, target).toBeGreaterThanOrEqual(400);
      expect(r.status, target).toBeLessThan(500);
      expect(r.text, target).not.toContain(SECRET);
      expect(r.text, target).not.toContain('root:');
    }
  });

  it('answers index.html for unknown paths in SPA mode, but 404 for missing files', async () => {
    const route = await get(`${h.url}/spa/orders/42`);
    expect(route.status).toBe(200);
    expect(route.body).toContain('<title>admin</title>');
    expect((await get(`${h.url}/spa/missing.js`)).status).toBe(404);
  });

  it('asks for a session on auth: required static routes', async () => {
    expect((await get(`${h.url}/private/app.js`)).status).toBe(401);
    const { code } = await h.code();
    const { token } = (await h.login({ code })).body;
    expect((await get(`${h.url}/private/app.js`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  });

  it('answers 404 while a route\'s directory is missing, and serves it once it exists', async () => {
    expect((await get(`${h.url}/later/x.txt`)).status).toBe(404);
    mkdirSync(path.join(dir, 'later'));
    writeFileSync(path.join(dir, 'later', 'x.txt'), 'here now');
    const r = await get(`${h.url}/later/x.txt`);
    expect([r.status, r.body.toString()]).toEqual([200, 'here now']);
  });

  it('refuses other methods with 405 and Allow', async () => {
    const r = await get(`${h.url}/admin-site/app.js`, { method: 'POST' });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, HEAD');
  });
});

describe('redirect routes', () => {
  it('answers 308, appending the rest of the path to a URL that ends in /', async () => {
    const r = await get(`${h.url}/go/a/b?c=d`);
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe('https://example.com/new/a/b?c=d');
    expect((await get(`${h.url}/exact/anything`)).headers.location).toBe('https://example.com/landing');
  });
});
