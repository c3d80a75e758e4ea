/**
 * What the files stress suite (test/slow/files-stress.test.ts) and the files faults suite
 * (files-faults.test.ts) share: a sandbox and a scratch directory, config files, the real CLI,
 * and uploads streamed, cut off or refused mid-body.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startCli, type RunningCli } from './cli.js';

export const APPID = 'wx7e5700000000f001';
const SECRET = 'files-stress-app-secret-0123456789';
export const BOUNDARY = 'StressBoundary7MA4YWxkTrZu0gW';
export const JPEG_HEAD = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01]);

export interface Setup {
  dir: string;
  sandbox: RunningCli;
  sandboxUrl: string;
}

/** A scratch directory and a sandbox playing WeChat; `stop` removes both. */
async function setUp(): Promise<Setup & { stop(): Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mg-files-stress-'));
  const sandbox = startCli(['sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`]);
  const sandboxUrl = /(http:\/\/\S+)/.exec(await sandbox.waitForLine(/^sandbox http/))![1]!;
  return {
    dir,
    sandbox,
    sandboxUrl,
    async stop() {
      await sandbox.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A suite's scratch directory and sandbox, made before its tests and removed after them, with a
 * config file writer (`files:` lines given) and a login for a server under test.
 */
export function useUploadSetup() {
  let setup: Awaited<ReturnType<typeof setUp>> | undefined;
  beforeAll(async () => {
    setup = await setUp();
  }, 30_000);
  afterAll(async () => {
    await setup?.stop();
  });
  const current = (): Setup => {
    if (!setup) throw new Error('the upload set-up is made in beforeAll');
    return setup;
  };
  return {
    get dir(): string {
      return current().dir;
    },
    configFile: (name: string, files: string[]) => configFile(current(), name, files),
    login: (url: string) => login(current(), url),
  };
}

function configFile(setup: Setup, name: string, files: string[]): string {
  const { dir, sandboxUrl } = setup;
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [`dataDir: ./${name}-data`, 'listen:', '  http: 127.0.0.1:0', `wechat:\n  apiBase: ${sandboxUrl}`, 'apps:', `  - appid: ${APPID}`, `    secret: ${SECRET}`, 'files:', ...files.map((l) => `  ${l}`), ''].join('\n'),
  );
  return file;
}

export async function start(file: string): Promise<{ cli: RunningCli; url: string; port: number; pid: number }> {
  const cli = startCli(['start', '-c', file]);
  const url = /listening on (http:\S+)/.exec(await cli.waitForLine(/^minigate listening on/))![1]!;
  return { cli, url, port: Number(new URL(url).port), pid: cli.child.pid! };
}

async function login(setup: Setup, url: string): Promise<string> {
  const { sandboxUrl } = setup;
  const code = (await (await fetch(`${sandboxUrl}/__sandbox/login`, { method: 'POST', body: JSON.stringify({ appid: APPID }) })).json()) as any;
  const answer = (await (await fetch(`${url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: code.code }) })).json()) as any;
  return answer.token;
}

export const rssKiB = (pid: number) => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
export const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
export const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const preamble = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`);
export const epilogue = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);

/** Streams a multipart upload of `size` file bytes (a JPEG header, then a repeating pattern). */
export function streamUpload(port: number, token: string, size: number, onProgress?: (sent: number) => void): Promise<{ status: number; body: any; sha256: string }> {
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const hash = createHash('sha256');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/files',
        headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': preamble.length + size + epilogue.length },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text), sha256: hash.digest('hex') }));
      },
    );
    req.on('error', reject);
    let sent = 0;
    const write = () => {
      while (sent < size) {
        const piece = sent === 0 ? Buffer.concat([JPEG_HEAD, chunk.subarray(JPEG_HEAD.length)]) : chunk;
        const part = piece.subarray(0, Math.min(piece.length, size - sent));
        hash.update(part);
        sent += part.length;
        onProgress?.(sent);
        if (!req.write(sent === part.length ? Buffer.concat([preamble, part]) : part)) return void req.once('drain', write);
      }
      req.end(epilogue);
    };
    write();
  });
}

/**
 * `count` uploads (`atOnce` at a time) that announce `announced` bytes (under the limit, so the
 * body is read), send `bytes` of a JPEG, and go away `lingerMs` after the last write.
 */
export async function abortedUploads(port: number, token: string, o: { announced: number; bytes: number; count: number; atOnce: number; lingerMs: number }): Promise<void> {
  const body = Buffer.concat([preamble, JPEG_HEAD, Buffer.alloc(o.bytes, 1)]);
  const head = Buffer.from(
    `POST /files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${o.announced}\r\n\r\n`,
  );
  const abortOne = () =>
    new Promise<void>((resolve) => {
      const socket = netConnect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
      socket.write(Buffer.concat([head, body]), () => setTimeout(() => socket.destroy(), o.lingerMs));
    });
  for (let i = 0; i < o.count; i += o.atOnce) await Promise.all(Array.from({ length: Math.min(o.atOnce, o.count - i) }, abortOne));
}

/** Bytes in regular files under `dir` (the temp directory included), 0 when it does not exist. */
export function bytesUnder(dir: string): number {
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const at = path.join(dir, entry.name);
    if (entry.isDirectory()) total += bytesUnder(at);
    else if (entry.isFile()) total += statSync(at).size;
  }
  return total;
}

/**
 * Sends `body` as a multipart upload, its first `pauseAt` bytes, then the rest after `pauseMs`
 * (a phone's network), and resolves the moment the answer's head arrives, with `measure()`
 * taken right then (before anything else can run in this process).
 */
export function refusedUpload<T>(port: number, token: string, body: Buffer, pauseAt: number, pauseMs: number, measure: () => T): Promise<{ status: number; code: string; connection: string | undefined; measured: T }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/files',
        headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': body.length },
      },
      (res) => {
        const measured = measure();
        let text = '';
        res.on('data', (d: Buffer) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, code: JSON.parse(text).error?.code, connection: res.headers.connection, measured }));
      },
    );
    req.on('error', reject);
    req.write(body.subarray(0, pauseAt));
    setTimeout(() => req.end(body.subarray(pauseAt)), pauseMs);
  });
}

/** A multipart part: its headers (Content-Disposition first) and its data. */
export const part = (headers: string[], data: Buffer | string) => Buffer.concat([Buffer.from(`--${BOUNDARY}\r\n${headers.join('\r\n')}\r\n\r\n`), Buffer.from(data), Buffer.from('\r\n')]);
export const closing = Buffer.from(`--${BOUNDARY}--\r\n`);
