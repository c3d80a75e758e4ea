/**
 * HTTPS as WeChat needs it (docs/wechat-api.md §9.2, docs/reliability.md#tls-and-listeners):
 * certificates from PEM, PFX and JKS made with openssl and keytool, TLS 1.2/1.3 only with ECDHE
 * AEAD suites, the chain sent, SNI, reload without restart, start-up checks, the 80 → 443 redirect,
 * HSTS and HTTP/2.
 */
import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StartError } from '../src/server.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { get, handshake } from './helpers/https.js';
import { makeCa, makeJks, makeLeaf, makePfx, type TestCa, type TestLeaf } from './helpers/pki.js';

let ca: TestCa;
let root: string;
let leaf: TestLeaf;

beforeAll(() => {
  ca = makeCa();
  root = readFileSync(ca.rootPem, 'utf8');
  leaf = makeLeaf(ca, ['localhost', '127.0.0.1', 'a.minigate.test'], { label: 'main' });
});
afterAll(() => {
  rmSync(ca.dir, { recursive: true, force: true });
});

const httpsConfig = (certificates: unknown[], extra: Record<string, unknown> = {}) => ({
  config: { listen: { https: '127.0.0.1:0', ...(extra.listen as object) }, tls: { certificates, checkDomains: false, ...(extra.tls as object) }, ...omit(extra, ['listen', 'tls']) },
});

function omit(source: Record<string, unknown>, keys: string[]) {
  return Object.fromEntries(Object.entries(source).filter(([k]) => !keys.includes(k)));
}

function portOf(h: Harness, name: 'https' | 'http'): number {
  return Number(new URL(h.server.urls[name]!).port);
}

/** openssl s_client against the server (in its own process: the server runs in this one). */
function sClient(port: number, args: string[]): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', ca.rootPem, ...args],
      { timeout: 10_000, encoding: 'utf8' },
      (_error, stdout, stderr) => {
        const out = `${stdout}${stderr}`;
        resolve({ ok: /Verify return code: 0 \(ok\)/.test(out) && !/:error:/.test(out), out });
      },
    );
    child.stdin?.end();
  });
}

describe('HTTPS with a PEM chain (nginx format)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(httpsConfig([{ cert: leaf.fullchain, key: leaf.key }], { tls: { hsts: true } }));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('serves HTTPS that verifies with only the root: the intermediate is sent', async () => {
    const answer = await get(`${h.server.urls.https}/healthz`, { ca: root });
    expect(answer.status).toBe(200);
    const shake = await handshake(portOf(h, 'https'), { ca: root });
    expect(shake.authorized).toBe(true);
    const sent = (await sClient(portOf(h, 'https'), ['-showcerts'])).out.match(/-----BEGIN CERTIFICATE-----/g) ?? [];
    expect(sent.length).toBe(2);
  });

  it('speaks TLS 1.2 and 1.3 and refuses TLS 1.0/1.1 (openssl s_client)', async () => {
    const port = portOf(h, 'https');
    const tls12 = await sClient(port, ['-tls1_2']);
    expect(tls12.out).toMatch(/Protocol\s*:\s*TLSv1\.2/);
    expect(tls12.ok).toBe(true);
    expect((await sClient(port, ['-tls1_3'])).out).toMatch(/TLSv1\.3/);
    for (const old of ['-tls1_1', '-tls1']) {
      const attempt = await sClient(port, [old, '-cipher', 'DEFAULT:@SECLEVEL=0']);
      expect(attempt.out).toMatch(/alert protocol version|no protocols available|wrong version|unsupported protocol/i);
    }
  });

  it('negotiates only ECDHE AEAD suites on TLS 1.2: CBC, RSA key exchange and 3DES are refused', async () => {
    const port = portOf(h, 'https');
    expect((await sClient(port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES256-GCM-SHA384'])).out).toMatch(/Cipher is ECDHE-RSA-AES256-GCM-SHA384/);
    for (const weak of ['AES128-SHA', 'AES256-GCM-SHA384', 'ECDHE-RSA-AES128-SHA', 'DES-CBC3-SHA:@SECLEVEL=0']) {
      expect((await sClient(port, ['-tls1_2', '-cipher', weak])).out, weak).toMatch(/handshake failure|no cipher|alert/i);
    }
  });

  it('sends HSTS on HTTPS answers', async () => {
    const answer = await get(`${h.server.urls.https}/healthz`, { ca: root });
    expect(answer.headers['strict-transport-security']).toBe('max-age=63072000');
  });

  it('redirects plain HTTP to HTTPS with 308, keeping path and query', async () => {
    const answer = await get(`${h.server.urls.http}/auth/session?x=1&y=2`, { headers: { host: 'a.minigate.test' } });
    expect(answer.status).toBe(308);
    expect(answer.headers.location).toBe(`https://a.minigate.test:${portOf(h, 'https')}/auth/session?x=1&y=2`);
    expect((await get(`${h.server.urls.http}/healthz`)).status).toBe(200);
  });

  it('serves the login over HTTPS', async () => {
    const { code } = await h.code();
    const answer = await get(`${h.server.urls.https}/auth/login`, {
      ca: root,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    });
    expect(answer.status).toBe(200);
    expect(answer.json().token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('the same certificate as PFX and as JKS', () => {
  const fingerprintOf = async (certificates: unknown[]) => {
    const h = await startHarness(httpsConfig(certificates));
    try {
      const shake = await handshake(portOf(h, 'https'), { ca: root });
      expect(shake.authorized).toBe(true);
      return shake.chain[0]!.fingerprint256;
    } finally {
      await h.close();
    }
  };

  it('serves identically from PEM, PFX (modern and legacy encryption) and JKS', async () => {
    const pem = await fingerprintOf([{ cert: leaf.fullchain, key: leaf.key }]);
    expect(await fingerprintOf([{ pfx: makePfx(leaf, 'pfx-pass'), passphrase: 'pfx-pass' }])).toBe(pem);
    expect(await fingerprintOf([{ pfx: makePfx(leaf, 'pfx-pass', { legacy: true }), passphrase: 'pfx-pass' }])).toBe(pem);
    expect(await fingerprintOf([{ jks: makeJks(leaf, 'changeit'), password: 'changeit' }])).toBe(pem);
  });

  it('serves an ECDSA certificate from PFX (modern and legacy) and JKS, as from PEM', async () => {
    const ec = makeLeaf(ca, ['localhost', '127.0.0.1'], { key: 'ec', label: 'ecdsa-stores' });
    const pem = await fingerprintOf([{ cert: ec.fullchain, key: ec.key }]);
    const served = async (certificates: unknown[]) => {
      const h = await startHarness(httpsConfig(certificates));
      try {
        const shake = await handshake(portOf(h, 'https'), { ca: root });
        expect(shake.authorized).toBe(true);
        expect(new X509Certificate(shake.chain[0]!.raw).publicKey.asymmetricKeyType).toBe('ec');
        expect(shake.chain).toHaveLength(3);
        return shake.chain[0]!.fingerprint256;
      } finally {
        await h.close();
      }
    };
    expect(await served([{ pfx: makePfx(ec, 'ec-pass'), passphrase: 'ec-pass' }])).toBe(pem);
    expect(await served([{ pfx: makePfx(ec, 'ec-pass', { legacy: true }), passphrase: 'ec-pass' }])).toBe(pem);
    expect(await served([{ jks: makeJks(ec, 'changeit'), password: 'changeit' }])).toBe(pem);
  });

  it('refuses to start with a wrong password, naming the file', async () => {
    const pfx = makePfx(leaf, 'right');
    const pfxError = await startHarness(httpsConfig([{ pfx, passphrase: 'wrong' }])).catch((e: unknown) => e);
    expect(pfxError).toBeInstanceOf(StartError);
    expect((pfxError as Error).message).toContain(`${pfx}: wrong passphrase`);
    const jksLeaf = makeLeaf(ca, ['localhost'], { label: 'jkspw' });
    const jks = makeJks(jksLeaf, 'right-pass');
    const jksError = await startHarness(httpsConfig([{ jks, password: 'wrong-pass' }])).catch((e: unknown) => e);
    expect((jksError as Error).message).toContain(`${jks}: wrong keystore password`);
  });
});

describe('start-up checks', () => {
  const startError = async (certificates: unknown[]) => {
    const error = await startHarness(httpsConfig(certificates)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StartError);
    return (error as Error).message;
  };

  it('names a missing file, a key that does not match, and an expired certificate', async () => {
    expect(await startError([{ cert: path.join(ca.dir, 'nope.pem'), key: leaf.key }])).toContain(`${path.join(ca.dir, 'nope.pem')}: no such file`);
    const other = makeLeaf(ca, ['localhost'], { label: 'other' });
    expect(await startError([{ cert: leaf.cert, key: other.key }])).toContain('the private key does not match the certificate');
    const expired = makeLeaf(ca, ['localhost'], { days: -1, label: 'expired' });
    expect(await startError([{ cert: expired.cert, key: expired.key }])).toMatch(/expired on .*2020/);
  });

  it('warns, naming the WeChat rule, about a missing intermediate, wrong names and a weak key', async () => {
    const weak = makeLeaf(ca, ['weak.minigate.test'], { key: 'rsa:1024', label: 'weak' });
    const h = await startHarness(
      httpsConfig([
        { cert: leaf.cert, key: leaf.key },
        { cert: weak.fullchain, key: weak.key, names: ['other.minigate.test'] },
      ]),
    );
    try {
      const warnings = h.logs.entries().filter((e) => e.level === 40).map((e) => String(e.msg));
      expect(warnings.some((w) => w.includes('the intermediate is missing (WeChat -202'))).toBe(true);
      expect(warnings.some((w) => w.includes('does not cover "other.minigate.test"') && w.includes('ERR_CERT_COMMON_NAME_INVALID'))).toBe(true);
      expect(warnings.some((w) => w.includes('RSA key of 1024 bits (iOS ATS'))).toBe(true);
    } finally {
      await h.close();
    }
  });
});

describe('SNI and reload', () => {
  it('chooses the certificate by server name, with the first as default', async () => {
    const b = makeLeaf(ca, ['b.minigate.test', '*.wild.minigate.test'], { label: 'sni-b' });
    const h = await startHarness(httpsConfig([{ cert: leaf.fullchain, key: leaf.key }, { cert: b.fullchain, key: b.key }]));
    try {
      const port = portOf(h, 'https');
      const serial = (file: string) => new X509Certificate(readFileSync(file)).serialNumber;
      const served = async (servername: string) => (await handshake(port, { servername, ca: root })).chain[0]!.serialNumber.toUpperCase();
      expect(await served('b.minigate.test')).toBe(serial(b.cert));
      expect(await served('x.wild.minigate.test')).toBe(serial(b.cert));
      expect(await served('a.minigate.test')).toBe(serial(leaf.cert));
      expect(await served('unknown.example')).toBe(serial(leaf.cert));
    } finally {
      await h.close();
    }
  });

  it('picks up a replaced certificate file without a restart, and refuses a broken one', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mg-reload-'));
    const first = makeLeaf(ca, ['localhost'], { label: 'reload-1' });
    const second = makeLeaf(ca, ['localhost'], { label: 'reload-2' });
    copyFileSync(first.fullchain, path.join(dir, 'cert.pem'));
    copyFileSync(first.key, path.join(dir, 'key.pem'));
    const h = await startHarness(httpsConfig([{ cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') }]));
    const port = portOf(h, 'https');
    const servedSerial = async () => (await handshake(port, { ca: root })).chain[0]!.serialNumber.toUpperCase();
    const waitFor = async (want: string) => {
      const deadline = Date.now() + 10_000;
      while ((await servedSerial()) !== want) {
        if (Date.now() > deadline) throw new Error('the new certificate was not picked up');
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    try {
      const serial = (file: string) => new X509Certificate(readFileSync(file)).serialNumber;
      expect(await servedSerial()).toBe(serial(first.cert));
      copyFileSync(second.key, path.join(dir, 'key.pem'));
      copyFileSync(second.fullchain, path.join(dir, 'cert.pem'));
      await waitFor(serial(second.cert));
      // A certificate without its key: refused, the working one stays.
      writeFileSync(path.join(dir, 'cert.pem'), readFileSync(first.fullchain));
      await new Promise((r) => setTimeout(r, 2_500));
      expect(await servedSerial()).toBe(serial(second.cert));
      expect(h.logs.text()).toContain('new certificate refused; the previous one stays in use');
      // SIGHUP's path: an explicit reload once the files agree again.
      copyFileSync(first.key, path.join(dir, 'key.pem'));
      h.server.reloadCertificates('test');
      await waitFor(serial(first.cert));
    } finally {
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('options', () => {
  it('lets TLS 1.1 in only when asked, with a warning', async () => {
    const h = await startHarness(httpsConfig([{ cert: leaf.fullchain, key: leaf.key }], { tls: { minVersion: 'TLSv1.1' } }));
    try {
      expect(h.logs.text()).toContain('TLS 1.0/1.1 are enabled for very old Android clients');
      const attempt = await sClient(portOf(h, 'https'), ['-tls1_1', '-cipher', 'ECDHE-RSA-AES128-SHA:@SECLEVEL=0']);
      expect(attempt.out).toMatch(/Protocol\s*:\s*TLSv1\.1/);
    } finally {
      await h.close();
    }
  });

  it('offers HTTP/2 by ALPN when enabled, keeping HTTP/1.1', async () => {
    const h = await startHarness(httpsConfig([{ cert: leaf.fullchain, key: leaf.key }], { tls: { http2: true } }));
    try {
      const port = portOf(h, 'https');
      expect((await handshake(port, { ca: root, alpn: ['h2', 'http/1.1'] })).alpn).toBe('h2');
      const session = http2Connect(`https://localhost:${port}`, { ca: root });
      const body = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': '/healthz' });
        let text = '';
        stream.on('data', (d: Buffer) => (text += d));
        stream.on('end', () => resolve(text));
        stream.on('error', reject);
      });
      session.close();
      expect(JSON.parse(body)).toEqual({ ok: true });
      expect((await get(`${h.server.urls.https}/healthz`, { ca: root })).status).toBe(200);
    } finally {
      await h.close();
    }
  });

  it('serves CA file validation over plain HTTP, and plain HTTP fully when httpRedirect is off', async () => {
    const pki = mkdtempSync(path.join(tmpdir(), 'mg-pki-validation-'));
    writeFileSync(path.join(pki, 'fileauth.txt'), '202611220000001abcdef');
    mkdirSync(path.join(pki, 'sub'));
    const h = await startHarness(httpsConfig([{ cert: leaf.fullchain, key: leaf.key }], { pkiValidationDir: pki }));
    const open = await startHarness(httpsConfig([{ cert: leaf.fullchain, key: leaf.key }], { listen: { httpRedirect: false } }));
    try {
      const file = await get(`${h.server.urls.http}/.well-known/pki-validation/fileauth.txt`);
      expect(file.status).toBe(200);
      expect(file.body).toBe('202611220000001abcdef');
      expect((await get(`${h.server.urls.http}/.well-known/pki-validation/missing.txt`)).status).toBe(404);
      expect((await get(`${open.server.urls.http}/auth/session`)).status).toBe(401);
    } finally {
      await h.close();
      await open.close();
      rmSync(pki, { recursive: true, force: true });
    }
  });

  it('serves plain HTTP to a trusted proxy that terminated TLS instead of redirecting it', async () => {
    const h = await startHarness(httpsConfig([{ cert: leaf.fullchain, key: leaf.key }], { trustedProxies: ['127.0.0.0/8'] }));
    try {
      const answer = await get(`${h.server.urls.http}/auth/session`, { headers: { 'x-forwarded-proto': 'https' } });
      expect(answer.status).toBe(401);
      expect(answer.json().error.code).toBe('SESSION_MISSING');
    } finally {
      await h.close();
    }
  });

  it('passes WebSockets through over wss', async () => {
    const upstream = createServer();
    const wss = new WebSocketServer({ server: upstream });
    wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`wss-echo:${data.toString()}`)));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const h = await startHarness(
      httpsConfig([{ cert: leaf.fullchain, key: leaf.key }], { routes: [{ path: '/ws', proxy: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` }] }),
    );
    try {
      const ws = new WebSocket(`wss://localhost:${portOf(h, 'https')}/ws/x`, { ca: root });
      const answer = await new Promise<string>((resolve, reject) => {
        ws.on('open', () => ws.send('hi'));
        ws.on('message', (data) => resolve(data.toString()));
        ws.on('error', reject);
      });
      ws.close();
      expect(answer).toBe('wss-echo:hi');
    } finally {
      await h.close();
      wss.close();
      upstream.close();
    }
  });

  it('makes a dev CA and a localhost certificate that verify against it', async () => {
    const h = await startHarness({ config: { listen: { https: '127.0.0.1:0' }, tls: { devCa: true } } });
    try {
      expect(h.server.devCaFile).toMatch(/dev-ca\/ca\.pem$/);
      const devRoot = readFileSync(h.server.devCaFile!, 'utf8');
      expect((await handshake(portOf(h, 'https'), { ca: devRoot, servername: 'localhost' })).authorized).toBe(true);
      expect((await get(`${h.server.urls.https}/healthz`, { ca: devRoot })).status).toBe(200);
      const openssl = execFileSync('openssl', ['verify', '-CAfile', h.server.devCaFile!, path.join(path.dirname(h.server.devCaFile!), 'localhost.pem')], { encoding: 'utf8' });
      expect(openssl).toContain(': OK');
    } finally {
      await h.close();
    }
  });
});
