/**
 * The listeners of `minigate start` probed as an outsider would, over raw sockets: the TLS
 * handshake deadline, RSA and ECDSA certificates for one name, where listen.internal may bind,
 * and strict HTTP/1.1 (duplicate Host, malformed request lines, JSON bodies on parser errors).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenExposure } from '../src/core/address-scope.js';
import { TLS_HANDSHAKE_TIMEOUT_MS } from '../src/edge/listener.js';
import { runCli, startCli, type RunningCli } from './helpers/cli.js';
import { makeCa, makeLeaf, type TestCa, type TestLeaf } from './helpers/pki.js';

const APPID = 'wx00aa11bb22cc33ff';
const TOKEN = 'internal-token-0123456789abcdef0123456789';
let dir: string;
let ca: TestCa;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-listen-'));
  ca = makeCa();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(ca.dir, { recursive: true, force: true });
});

let configs = 0;
function config(lines: string[]): string {
  const name = `c${++configs}`;
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, [`dataDir: ./${name}`, 'apps:', `  - appid: ${APPID}`, '    secret: secret', 'log:', '  level: debug', ...lines, ''].join('\n'));
  return file;
}

const httpsLines = (certificates: TestLeaf[], extra: string[] = []) => [
  'listen:',
  '  http: 127.0.0.1:0',
  '  https: 127.0.0.1:0',
  ...extra,
  'tls:',
  '  checkDomains: false',
  '  certificates:',
  ...certificates.flatMap((leaf) => [`    - cert: ${leaf.fullchain}`, `      key: ${leaf.key}`]),
];

async function start(file: string): Promise<{ cli: RunningCli; url: string }> {
  const cli = startCli(['start', '-c', file]);
  const url = /listening on (\S+)/.exec(await cli.waitForLine(/^minigate listening on/))![1]!;
  return { cli, url };
}

/** Writes bytes, reads until the server closes (or `waitMs`); the answer and when it closed. */
function raw(port: number, bytes: string | Buffer, waitMs = 5_000): Promise<{ answer: string; closedAfterMs: number | null }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = netConnect(port, '127.0.0.1', () => bytes.length && socket.write(bytes));
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ answer, closedAfterMs: null });
    }, waitMs);
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, closedAfterMs: Date.now() - started });
    });
  });
}

describe('TLS handshake deadline', () => {
  let server: RunningCli;
  let port: number;
  beforeAll(async () => {
    const leaf = makeLeaf(ca, ['localhost'], { label: 'deadline' });
    const started = await start(config(httpsLines([leaf])));
    server = started.cli;
    port = Number(new URL(started.url).port);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('closes a connection that sends nothing, and one that sends half a ClientHello, within the deadline', { timeout: 30_000 }, async () => {
    // A TLS record header announcing 200 bytes of ClientHello, then only its first bytes.
    const halfHello = Buffer.from('16030100c8010000c40303', 'hex');
    const [silent, half] = await Promise.all([raw(port, '', 20_000), raw(port, halfHello, 20_000)]);
    for (const result of [silent, half]) {
      expect(result.closedAfterMs).not.toBeNull();
      expect(result.closedAfterMs!).toBeGreaterThanOrEqual(TLS_HANDSHAKE_TIMEOUT_MS - 500);
      expect(result.closedAfterMs!).toBeLessThan(TLS_HANDSHAKE_TIMEOUT_MS + 2_000);
    }
  });
});

describe('an RSA and an ECDSA certificate for one name', () => {
  /** The key type of the certificate the server chose for a client that offers only `options`' algorithms. */
  const served = (port: number, options: ConnectionOptions) =>
    new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ port, host: '127.0.0.1', servername: 'localhost', ca: readFileSync(ca.rootPem), ...options }, () => {
        resolve(socket.getPeerX509Certificate()!.publicKey.asymmetricKeyType!);
        socket.end();
      });
      socket.on('error', reject);
    });

  it('serves each client the certificate its signature algorithms can verify, with or without SNI', async () => {
    const ecdsa = makeLeaf(ca, ['localhost', '127.0.0.1'], { key: 'ec', label: 'dual-ec' });
    const rsa = makeLeaf(ca, ['localhost', '127.0.0.1'], { label: 'dual-rsa' });
    const { cli, url } = await start(config(httpsLines([ecdsa, rsa])));
    try {
      const port = Number(new URL(url).port);
      expect(await served(port, { sigalgs: 'RSA-PSS+SHA256:RSA+SHA256' })).toBe('rsa');
      expect(await served(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })).toBe('rsa');
      expect(await served(port, { sigalgs: 'ECDSA+SHA256' })).toBe('ec');
      expect(await served(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' })).toBe('ec');
      // No SNI (a client connecting by IP): the default is both as well.
      expect(await served(port, { servername: '', sigalgs: 'RSA-PSS+SHA256:RSA+SHA256' })).toBe('rsa');
      expect(await served(port, { servername: '', sigalgs: 'ECDSA+SHA256' })).toBe('ec');
      expect(cli.stderr()).not.toContain('certificates for "localhost"');
    } finally {
      await cli.stop();
    }
  });

  it('warns that a second certificate of the same key type for a name is never served', async () => {
    const one = makeLeaf(ca, ['localhost'], { label: 'same-1' });
    const two = makeLeaf(ca, ['localhost'], { label: 'same-2' });
    const { cli } = await start(config(httpsLines([one, two])));
    try {
      await cli.waitForStderr('two RSA certificates for \\"localhost\\"; only the first');
    } finally {
      await cli.stop();
    }
  });
});

describe('where listen.internal may listen', () => {
  const internalLines = (address: string, extra: string[] = []) => ['listen:', '  http: 127.0.0.1:0', `  internal: ${JSON.stringify(address)}`, 'internal:', `  token: ${TOKEN}`, ...extra];

  it('refuses a public address in validate and start, saying what to set; internal.allowPublic lets it', async () => {
    const file = config(internalLines('8.8.8.8:9090'));
    const validated = await runCli(['validate', '-c', file]);
    expect(validated.code).toBe(1);
    expect(validated.stderr).toMatch(/listen\.internal: 8\.8\.8\.8 is a public address: the internal API would be reachable from the internet\. Bind a loopback or private address .*internal\.allowPublic: true/);
    const started = await runCli(['start', '-c', file]);
    expect(started.code).toBe(1);
    expect(started.stderr).toContain('internal.allowPublic: true');
    expect(started.stdout).not.toContain('listening');
    const allowed = await runCli(['validate', '-c', config(internalLines('8.8.8.8:9090', ['  allowPublic: true']))]);
    expect(allowed.code, allowed.stderr).toBe(0);
  });

  it('prints the address it bound: every interface, not 127.0.0.1, with a warning (or refuses on a host with a public interface)', async () => {
    const file = config(internalLines('0.0.0.0:0'));
    if (listenExposure('0.0.0.0', networkInterfaces()).scope === 'public') {
      const refused = await runCli(['start', '-c', file]);
      expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining('listens on every interface, and this host has public ones')]);
      return;
    }
    const { cli } = await start(file);
    try {
      const line = await cli.waitForLine(/^minigate internal API on/);
      expect(line).toMatch(/^minigate internal API on http:\/\/0\.0\.0\.0:\d+ \(every interface\)$/);
      await cli.waitForStderr('listen.internal: 0.0.0.0 listens on every interface (all of them loopback or private here)');
      // It does answer on loopback, behind its token.
      const port = /:(\d+) /.exec(line)![1]!;
      const answer = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(answer.status).toBe(200);
    } finally {
      await cli.stop();
    }
  });

  it('keeps a loopback address quiet and prints it as bound', async () => {
    const { cli } = await start(config(internalLines('127.0.0.1:0')));
    try {
      expect(await cli.waitForLine(/^minigate internal API on/)).toMatch(/^minigate internal API on http:\/\/127\.0\.0\.1:\d+$/);
      await cli.waitForStderr('"msg":"minigate started"');
      expect(cli.stderr()).not.toContain('listen.internal:');
    } finally {
      await cli.stop();
    }
  });
});

describe('strict HTTP/1.1 on the listeners', () => {
  let server: RunningCli;
  let port: number;
  beforeAll(async () => {
    const started = await start(config(['listen:', '  http: 127.0.0.1:0']));
    server = started.cli;
    port = Number(new URL(started.url).port);
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** The status, headers and JSON body of a raw answer. */
  function parse(answer: string) {
    const [head, body = ''] = answer.split('\r\n\r\n', 2);
    const [statusLine, ...headerLines] = head!.split('\r\n');
    const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    return { status: Number(statusLine!.split(' ')[1]), headers, body: body ? JSON.parse(body) : undefined };
  }

  const refusedWith = async (bytes: string, status: number, code: string) => {
    const { answer, closedAfterMs } = await raw(port, bytes);
    const parsed = parse(answer);
    expect(parsed.status, JSON.stringify(bytes)).toBe(status);
    expect(parsed.headers.connection).toBe('close');
    expect(parsed.headers['content-type']).toMatch(/^application\/json/);
    expect(parsed.body.error).toMatchObject({ code, message: expect.any(String), requestId: parsed.headers['x-request-id'] });
    expect(closedAfterMs, 'the server closes the connection').not.toBeNull();
    return parsed.body.error.message as string;
  };

  it('answers a duplicate Host with 400 before any routing', async () => {
    expect(await refusedWith('GET /healthz HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n', 400, 'BAD_REQUEST')).toContain('more than one Host');
    expect(await refusedWith('GET /healthz HTTP/1.1\r\nhost: a.example\r\nHOST: a.example\r\n\r\n', 400, 'BAD_REQUEST')).toContain('more than one Host');
    expect(await refusedWith('GET /healthz HTTP/1.1\r\n\r\n', 400, 'BAD_REQUEST')).toContain('needs a Host header');
  });

  it('answers request lines without an HTTP/1 version with 400', async () => {
    for (const line of ['GET /healthz', 'GET /healthz HTTP/2.0']) {
      expect(await refusedWith(`${line}\r\nHost: x\r\n\r\n`, 400, 'BAD_REQUEST'), line).toContain('request line');
    }
    expect(await refusedWith('GET /healthz\r\n\r\n', 400, 'BAD_REQUEST')).toContain('request line');
  });

  it('answers what the parser refuses in the JSON shape too: 400 and 431', async () => {
    await refusedWith('GET /healthz HTTP/1.1\nHost: x\n\n', 400, 'BAD_REQUEST');
    await refusedWith('POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400, 'BAD_REQUEST');
    await refusedWith(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE');
  });

  /** Sends requests one after another on one connection, each after the previous answer; their statuses. */
  function sequence(requests: string[]): Promise<number[]> {
    return new Promise((resolve) => {
      const statuses: number[] = [];
      let buffer = '';
      const socket = netConnect(port, '127.0.0.1', () => socket.write(requests[0]!));
      socket.on('data', (d: Buffer) => {
        buffer += d.toString('latin1');
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        const length = Number(/content-length: (\d+)/i.exec(buffer.slice(0, end))?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        statuses.push(Number(buffer.split(' ')[1]));
        buffer = buffer.slice(end + 4 + length);
        if (statuses.length < requests.length) socket.write(requests[statuses.length]!);
        else socket.end();
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(statuses));
    });
  }

  it('checks every request on a keep-alive connection, and lets well-formed ones (bodies, a stray CRLF) through', async () => {
    const get = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
    const post = 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}';
    expect(await sequence([get, post, `\r\n${get}`, get])).toEqual([200, 400, 200, 200]);
    expect(await sequence([get, 'GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n'])).toEqual([200, 400]);
  });

  it('reads text/plain and an unlabelled body as JSON on JSON routes; another type gets 415', async () => {
    const login = (type: string | null) =>
      raw(port, `POST /auth/login HTTP/1.1\r\nHost: x\r\n${type ? `Content-Type: ${type}\r\n` : ''}Content-Length: 2\r\nConnection: close\r\n\r\n{}`).then((r) => parse(r.answer));
    for (const type of ['text/plain', null, 'application/json']) {
      const answer = await login(type);
      // Read as JSON: the missing "code" field is named.
      expect([answer.status, answer.body.error.code, answer.body.error.message], String(type)).toEqual([400, 'BAD_REQUEST', expect.stringMatching(/code/)]);
    }
    expect((await login('application/xml')).body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });
});
