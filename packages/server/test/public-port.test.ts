/**
 * listen.publicHttpsPort: behind a port mapping (a container publishing 443 as 8443 inside, NAT),
 * the HTTP→HTTPS redirect points at the port clients reach, not the one minigate bound; the Host
 * header gives the name only (its port is the HTTP one the client dialled), and a hostile Host
 * never becomes the target of a redirect.
 */
import { connect } from 'node:net';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { get } from './helpers/https.js';
import { makeCa, makeLeaf, type TestCa, type TestLeaf } from './helpers/pki.js';

let ca: TestCa;
let leaf: TestLeaf;

beforeAll(() => {
  ca = makeCa();
  leaf = makeLeaf(ca, ['localhost', 'a.minigate.test'], { label: 'public-port' });
});
afterAll(() => {
  rmSync(ca.dir, { recursive: true, force: true });
});

const withHttps = (listen: Record<string, unknown>) => ({
  config: { listen: { https: '127.0.0.1:0', ...listen }, tls: { certificates: [{ cert: leaf.fullchain, key: leaf.key }], checkDomains: false } },
});

/** One raw HTTP/1.1 request, so that Host can carry what a real client library would refuse. */
function rawGet(url: string, host: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`GET /auth/session HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('listen.publicHttpsPort set to 443 (443 mapped to another port inside)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(withHttps({ publicHttpsPort: 443 }));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('redirects to the public port (none in the URL), not to the bound one', async () => {
    const bound = new URL(h.server.urls.https!).port;
    expect(bound).not.toBe('443');
    const answer = await get(`${h.server.urls.http}/auth/session?x=1`, { headers: { host: 'a.minigate.test:8080' } });
    expect(answer.status).toBe(308);
    expect(answer.headers.location).toBe('https://a.minigate.test/auth/session?x=1');
  });

  it('refuses a Host that would move the redirect elsewhere: 400, no Location', async () => {
    for (const host of ['evil.example@a.minigate.test', 'a.minigate.test@evil.example', 'evil.example/a', 'evil.example\\a', 'a b', '']) {
      const text = await rawGet(h.server.urls.http!, host);
      expect(text, host).toMatch(/^HTTP\/1\.1 400 /);
      expect(text, host).not.toMatch(/^location:/im);
    }
    // A second Host header is refused before routing (strict HTTP).
    const twice = await new Promise<string>((resolve, reject) => {
      const { port } = new URL(h.server.urls.http!);
      const s = connect(Number(port), '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: a.minigate.test\r\nHost: evil.example\r\nConnection: close\r\n\r\n'));
      let t = '';
      s.setEncoding('latin1').on('data', (c: string) => (t += c)).on('end', () => resolve(t)).on('error', reject);
    });
    expect(twice).toMatch(/^HTTP\/1\.1 400 /);
    expect(twice).not.toMatch(/^location:/im);
  });

  it('still serves /healthz on plain HTTP (container health checks)', async () => {
    expect((await get(`${h.server.urls.http}/healthz`)).status).toBe(200);
  });
});

describe('listen.publicHttpsPort set to another port', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(withHttps({ publicHttpsPort: 8443 }));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('names that port in the redirect, and brackets an IPv6 Host', async () => {
    const named = await get(`${h.server.urls.http}/x`, { headers: { host: 'a.minigate.test' } });
    expect(named.headers.location).toBe('https://a.minigate.test:8443/x');
    const v6 = await rawGet(h.server.urls.http!, '[::1]:80');
    expect(v6).toMatch(/^location: https:\/\/\[::1\]:8443\/auth\/session$/im);
  });
});

describe('the config key', () => {
  const base = 'apps: [{appid: wx0123456789abcdef, secret: s}]\n';

  it('needs listen.https', () => {
    expect(() => loadConfig({ text: `${base}listen: {publicHttpsPort: 443}\n`, file: '/tmp/minigate.yaml', env: {} })).toThrow(/publicHttpsPort[\s\S]*needs listen\.https/);
  });

  it('is a port number, also from MINIGATE_LISTEN_PUBLICHTTPSPORT', () => {
    const text = `${base}listen: {https: 8443}\ntls: {devCa: true}\n`;
    expect(() => loadConfig({ text: text.replace('8443}', '8443, publicHttpsPort: 70000}'), file: '/tmp/minigate.yaml', env: {} })).toThrow(/publicHttpsPort/);
    expect(() => loadConfig({ text: text.replace('8443}', '8443, publicHttpsPort: "x"}'), file: '/tmp/minigate.yaml', env: {} })).toThrow(/publicHttpsPort/);
    const config = loadConfig({ text, file: '/tmp/minigate.yaml', env: { MINIGATE_LISTEN_PUBLICHTTPSPORT: '443' } });
    expect(config.listen.publicHttpsPort).toBe(443);
  });
});
