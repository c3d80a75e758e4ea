/**
 * The network side of `minigate check`: DNS, a TCP connect, TLS handshakes (one per protocol
 * version, and one that validates the chain exactly as the server sends it — Node, like a phone,
 * never fetches a missing intermediate), and an HTTP request or WebSocket upgrade. Every step
 * has its own timeout. The handshakes accept anything (security level 0) so that what is weak
 * can be seen and named, not just refused.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { request } from 'node:https';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, rootCertificates, type SecureVersion } from 'node:tls';

export interface ProbeOptions {
  timeoutMs: number;
  /** Extra trusted roots (--ca), besides Node's store. */
  ca: string[];
  /** host → address, instead of DNS (--resolve). */
  resolve: ReadonlyMap<string, string>;
}

export async function resolveHost(host: string, options: ProbeOptions): Promise<{ addresses: string[]; pinned: boolean } | { error: string }> {
  const pinned = options.resolve.get(host);
  if (pinned) return { addresses: [pinned], pinned: true };
  try {
    const found = await withTimeout(lookup(host, { all: true, verbatim: true }), options.timeoutMs, 'DNS lookup');
    return { addresses: found.map((a) => a.address), pinned: false };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { error: code === 'ENOTFOUND' ? `${host} has no A/AAAA record` : `lookup failed (${code ?? (error as Error).message})` };
  }
}

export function tcpConnect(address: string, port: number, timeoutMs: number): Promise<{ ms: number } | { error: string }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = netConnect({ host: address, port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve({ ms: Date.now() - started });
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve({ error: `no answer from ${address}:${port} within ${timeoutMs} ms` });
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ error: `${address}:${port}: ${error.code ?? error.message}` }));
  });
}

export interface Handshake {
  protocol: string;
  cipher: string;
  authorized: boolean;
  authorizationError: string | null;
  leaf: X509Certificate | null;
  /** DER of each certificate the verified chain holds, leaf first. */
  chain: Buffer[];
}

export function handshake(
  address: string,
  port: number,
  servername: string,
  options: ProbeOptions & { min?: SecureVersion; max?: SecureVersion },
): Promise<Handshake | { error: string }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: address,
      port,
      servername,
      minVersion: options.min ?? 'TLSv1',
      maxVersion: options.max ?? 'TLSv1.3',
      ciphers: 'DEFAULT@SECLEVEL=0',
      ca: [...rootCertificates, ...options.ca],
      rejectUnauthorized: false,
      // The hostname is its own check; here only the chain speaks.
      checkServerIdentity: () => undefined,
      timeout: options.timeoutMs,
    });
    const done = (value: Handshake | { error: string }) => {
      socket.destroy();
      resolve(value);
    };
    socket.once('secureConnect', () => {
      const chain: Buffer[] = [];
      let cert = socket.getPeerCertificate(true) as { raw?: Buffer; issuerCertificate?: unknown } | null;
      while (cert?.raw && chain.length < 10) {
        chain.push(cert.raw);
        const next = cert.issuerCertificate as typeof cert;
        if (!next || next === cert) break;
        cert = next;
      }
      done({
        protocol: socket.getProtocol() ?? '',
        cipher: socket.getCipher()?.name ?? '',
        authorized: socket.authorized,
        authorizationError: socket.authorizationError ? String((socket.authorizationError as unknown as { code?: string }).code ?? socket.authorizationError) : null,
        leaf: socket.getPeerX509Certificate() ?? null,
        chain,
      });
    });
    socket.once('timeout', () => done({ error: `no TLS answer within ${options.timeoutMs} ms` }));
    socket.once('error', (error: NodeJS.ErrnoException) => done({ error: tlsErrorText(error) }));
  });
}

function tlsErrorText(error: NodeJS.ErrnoException): string {
  const reason = /:([a-z0-9 ]+):[^:]*$/i.exec(error.message)?.[1] ?? error.message;
  return error.code && error.code !== 'ERR_SSL_' ? `${reason.trim()} (${error.code})` : reason.trim();
}

export interface HttpAnswer {
  status: number;
  location?: string;
}

/** One request as the mini program would make it (GET, or a WebSocket upgrade for sockets). */
export function httpProbe(address: string, port: number, host: string, path: string, upgrade: boolean, timeoutMs: number): Promise<HttpAnswer | { error: string }> {
  return new Promise((resolve) => {
    const req = request({
      host: address,
      port,
      servername: host,
      path,
      method: 'GET',
      headers: {
        host: port === 443 ? host : `${host}:${port}`,
        'user-agent': 'minigate-check',
        ...(upgrade ? { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') } : {}),
      },
      rejectUnauthorized: false,
      ciphers: 'DEFAULT@SECLEVEL=0',
      minVersion: 'TLSv1',
      timeout: timeoutMs,
      agent: false,
    });
    req.once('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, ...(res.headers.location ? { location: res.headers.location } : {}) });
      req.destroy();
    });
    req.once('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 101 });
    });
    req.once('timeout', () => {
      req.destroy();
      resolve({ error: `no HTTP answer within ${timeoutMs} ms` });
    });
    req.once('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
    req.end();
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`${what} timed out after ${ms} ms`), { code: 'ETIMEOUT' })), ms);
    }),
  ]);
}
