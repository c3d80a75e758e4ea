/** HTTP(S) requests with a custom CA and SNI, and raw TLS facts, for the edge tests. */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type PeerCertificate } from 'node:tls';

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json(): any;
}

export function get(url: string, options: { ca?: string | Buffer; servername?: string; headers?: Record<string, string>; method?: string; body?: string | Buffer } = {}): Promise<Answer> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method: options.method ?? 'GET',
        headers: options.headers,
        ...(target.protocol === 'https:' ? { ca: options.ca, servername: options.servername ?? target.hostname, agent: false } : { agent: false }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface Handshake {
  protocol: string | null;
  cipher: string;
  authorized: boolean;
  authorizationError?: string;
  chain: PeerCertificate[];
  alpn: string | false;
}

/** Connects with TLS and reports what was negotiated and the chain the server sent. */
export function handshake(port: number, options: { servername?: string; ca?: string | Buffer; alpn?: string[]; host?: string } = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: options.host ?? '127.0.0.1',
      port,
      servername: options.servername ?? 'localhost',
      ca: options.ca,
      rejectUnauthorized: false,
      ALPNProtocols: options.alpn,
    });
    socket.once('secureConnect', () => {
      const chain: PeerCertificate[] = [];
      let cert = socket.getPeerCertificate(true) as PeerCertificate & { issuerCertificate?: PeerCertificate };
      const seen = new Set<string>();
      while (cert && cert.fingerprint256 && !seen.has(cert.fingerprint256)) {
        seen.add(cert.fingerprint256);
        chain.push(cert);
        cert = (cert as { issuerCertificate?: PeerCertificate }).issuerCertificate as PeerCertificate;
      }
      resolve({
        protocol: socket.getProtocol(),
        cipher: socket.getCipher().name,
        authorized: socket.authorized,
        authorizationError: socket.authorizationError ? String(socket.authorizationError) : undefined,
        chain,
        alpn: socket.alpnProtocol ?? false,
      });
      socket.end();
    });
    socket.once('error', reject);
  });
}
