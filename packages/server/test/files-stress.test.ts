/**
 * Files under stress, against the real CLI: a 1 GB upload with RSS held flat, a thousand
 * uploads cut off mid-body with file descriptors and memory back to where they were, a kill in
 * the middle of a write (no row, the temp file swept at the next start), and a full disk.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Storage } from '../src/files/index.js';
import { startCli, type RunningCli } from './helpers/cli.js';
import { startS3Server } from './helpers/s3.js';

const APPID = 'wx7e5700000000f001';
const SECRET = 'files-stress-app-secret-0123456789';
const BOUNDARY = 'StressBoundary7MA4YWxkTrZu0gW';
const JPEG_HEAD = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01]);

let dir: string;
let sandbox: RunningCli;
let sandboxUrl: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-files-stress-'));
  sandbox = startCli(['sandbox', '--port', '0', '--app', `${APPID}:${SECRET}`]);
  sandboxUrl = /(http:\/\/\S+)/.exec(await sandbox.waitForLine(/^sandbox http/))![1]!;
}, 30_000);
afterAll(async () => {
  await sandbox?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function configFile(name: string, files: string[]): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [`dataDir: ./${name}-data`, 'listen:', '  http: 127.0.0.1:0', `wechat:\n  apiBase: ${sandboxUrl}`, 'apps:', `  - appid: ${APPID}`, `    secret: ${SECRET}`, 'files:', ...files.map((l) => `  ${l}`), ''].join('\n'),
  );
  return file;
}

async function start(file: string): Promise<{ cli: RunningCli; url: string; port: number; pid: number }> {
  const cli = startCli(['start', '-c', file]);
  const url = /listening on (http:\S+)/.exec(await cli.waitForLine(/^minigate listening on/))![1]!;
  return { cli, url, port: Number(new URL(url).port), pid: cli.child.pid! };
}

async function login(url: string): Promise<string> {
  const code = (await (await fetch(`${sandboxUrl}/__sandbox/login`, { method: 'POST', body: JSON.stringify({ appid: APPID }) })).json()) as any;
  const answer = (await (await fetch(`${url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: code.code }) })).json()) as any;
  return answer.token;
}

const rssKiB = (pid: number) => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

const preamble = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`);
const epilogue = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);

/** Streams a multipart upload of `size` file bytes (a JPEG header, then a repeating pattern). */
function streamUpload(port: number, token: string, size: number, onProgress?: (sent: number) => void): Promise<{ status: number; body: any; sha256: string }> {
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
async function abortedUploads(port: number, token: string, o: { announced: number; bytes: number; count: number; atOnce: number; lingerMs: number }): Promise<void> {
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
function bytesUnder(dir: string): number {
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
function refusedUpload<T>(port: number, token: string, body: Buffer, pauseAt: number, pauseMs: number, measure: () => T): Promise<{ status: number; code: string; connection: string | undefined; measured: T }> {
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
const part = (headers: string[], data: Buffer | string) => Buffer.concat([Buffer.from(`--${BOUNDARY}\r\n${headers.join('\r\n')}\r\n\r\n`), Buffer.from(data), Buffer.from('\r\n')]);
const closing = Buffer.from(`--${BOUNDARY}--\r\n`);

describe('big and broken uploads to S3 (s3rver)', () => {
  it('takes a 1 GB upload with RSS growing by less than 64 MB, and 300 uploads cut off mid-body leave no object and no fds', { timeout: 180_000 }, async () => {
    const s3 = await startS3Server();
    const server = await start(
      configFile('s3', [
        'maxFileSize: 2GiB',
        `storage: { type: s3, endpoint: "${s3.endpoint}", region: ${s3.region}, bucket: ${s3.bucket}, accessKeyId: ${s3.accessKeyId}, secretAccessKey: ${s3.secretAccessKey}, forcePathStyle: true }`,
      ]),
    );
    try {
      const token = await login(server.url);
      await pause(500);
      const before = rssKiB(server.pid);
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(server.pid))), 50);
      const size = 1024 * 1024 * 1024;
      const answer = await streamUpload(server.port, token, size).finally(() => clearInterval(sampler));
      expect(answer.status).toBe(201);
      expect(answer.body).toMatchObject({ size, sha256: answer.sha256 });
      const growthMiB = (peak - before) / 1024;
      console.log(`1 GiB upload to S3: RSS ${(before / 1024).toFixed(0)} MiB before, peak ${(peak / 1024).toFixed(0)} MiB (+${growthMiB.toFixed(1)} MiB)`);
      expect(growthMiB).toBeLessThan(64);
      const back = await fetch(answer.body.url, { headers: { authorization: `Bearer ${token}`, range: 'bytes=1073741800-' } });
      expect(back.status).toBe(206);
      expect((await back.arrayBuffer()).byteLength).toBe(24);

      const fdBefore = fds(server.pid);
      await abortedUploads(server.port, token, { announced: 100_000_000, bytes: 6 * 1024 * 1024, count: 300, atOnce: 10, lingerMs: 20 }); // past one S3 part
      await expect.poll(() => fds(server.pid), { timeout: 15_000 }).toBeLessThanOrEqual(fdBefore + 4);
      const storage = createS3Storage({ endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true, prefix: '' });
      const keys: string[] = [];
      await expect
        .poll(
          async () => {
            keys.length = 0;
            for await (const o of storage.list('f/')) keys.push(o.key);
            return keys.length;
          },
          { timeout: 15_000 },
        )
        .toBe(1); // the 1 GiB file only
      await storage.close();
    } finally {
      await server.cli.stop();
      await s3.close();
    }
  });
});

describe('big and broken uploads against minigate start', () => {
  it('takes a 1 GB upload with RSS growing by less than 64 MB', { timeout: 120_000 }, async () => {
    const server = await start(configFile('big', ['maxFileSize: 2GiB']));
    try {
      const token = await login(server.url);
      await pause(500);
      const before = rssKiB(server.pid);
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(server.pid))), 50);
      const size = 1024 * 1024 * 1024;
      const answer = await streamUpload(server.port, token, size).finally(() => clearInterval(sampler));
      expect(answer.status).toBe(201);
      expect(answer.body).toMatchObject({ size, sha256: answer.sha256, contentType: 'image/jpeg' });
      const growthMiB = (peak - before) / 1024;
      console.log(`1 GiB upload: RSS ${(before / 1024).toFixed(0)} MiB before, peak ${(peak / 1024).toFixed(0)} MiB (+${growthMiB.toFixed(1)} MiB)`);
      expect(growthMiB).toBeLessThan(64);
    } finally {
      await server.cli.stop();
    }
  });

  it('leaves file descriptors, memory and the disk as they were after 1,000 uploads cut off mid-body', { timeout: 120_000 }, async () => {
    const server = await start(configFile('aborts', ['maxFileSize: 50MiB']));
    try {
      const token = await login(server.url);
      const run = (count: number) => abortedUploads(server.port, token, { announced: 10_000_000, bytes: 200_000, count, atOnce: 20, lingerMs: 5 });
      // Warm up with as many as are measured: V8 grows its heap in steps over the first
      // thousand or so, which under load read as +30-40 MiB of RSS; a leak grows on every run.
      await run(1_000);
      await pause(1_000);
      const fdBefore = fds(server.pid);
      const rssBefore = rssKiB(server.pid);
      await run(1_000);
      await expect.poll(() => fds(server.pid), { timeout: 10_000 }).toBeLessThanOrEqual(fdBefore + 2);
      const rssGrowthMiB = (rssKiB(server.pid) - rssBefore) / 1024;
      console.log(`1,000 aborted uploads: fds ${fdBefore} → ${fds(server.pid)}, RSS +${rssGrowthMiB.toFixed(1)} MiB`);
      expect(rssGrowthMiB).toBeLessThan(32);
      const filesDir = path.join(dir, 'aborts-data', 'files');
      await expect.poll(() => (existsSync(path.join(filesDir, 'tmp')) ? readdirSync(path.join(filesDir, 'tmp')) : []), { timeout: 5_000 }).toEqual([]);
      expect(existsSync(path.join(filesDir, 'f')) ? readdirSync(path.join(filesDir, 'f')) : []).toEqual([]);
      // Still serving.
      const ok = await streamUpload(server.port, token, 10_000);
      expect(ok.status).toBe(201);
    } finally {
      await server.cli.stop();
    }
  });

  it('refused uploads whose 19 MiB file part was complete (then a pause) leave the files dir as it was, by the time each answer arrives', { timeout: 60_000 }, async () => {
    const server = await start(configFile('refused', ['maxFileSize: 20MiB']));
    try {
      const token = await login(server.url);
      const filesDir = path.join(dir, 'refused-data', 'files');
      const kept = await streamUpload(server.port, token, 1000); // one file kept, so the directories exist
      expect(kept.status).toBe(201);
      const before = bytesUnder(filesDir);
      const file = part(['Content-Disposition: form-data; name="file"; filename="big.jpg"', 'Content-Type: image/jpeg'], Buffer.concat([JPEG_HEAD, Buffer.alloc(19 * 1024 * 1024, 0x5a)]));
      const field = (name: string, value: string) => part([`Content-Disposition: form-data; name="${name}"`], value);
      const cases: [string, Buffer, number, string][] = [
        ['a field over files.maxFieldSize after the file', Buffer.concat([file, field('note', 'x'.repeat(5000)), closing]), 413, 'UPLOAD_LIMIT'],
        ['a second file', Buffer.concat([file, part(['Content-Disposition: form-data; name="file"; filename="b.jpg"'], JPEG_HEAD), closing]), 413, 'UPLOAD_LIMIT'],
        ['more fields than files.maxFields after the file', Buffer.concat([file, ...Array.from({ length: 40 }, (_, i) => field(`f${i}`, 'x')), closing]), 413, 'UPLOAD_LIMIT'],
        ['no closing boundary', Buffer.concat([file, Buffer.from(`--${BOUNDARY}`)]), 400, 'UPLOAD_MALFORMED'],
        ['an access that is neither private nor public', Buffer.concat([file, field('access', 'everyone'), closing]), 400, 'BAD_REQUEST'],
        ['a later part with more headers than files.maxHeaderPairs', Buffer.concat([file, part(['Content-Disposition: form-data; name="note"', ...Array.from({ length: 40 }, (_, i) => `X-Extra-${i}: ${i}`)], 'x'), closing]), 413, 'UPLOAD_LIMIT'],
      ];
      const seen = [];
      for (const [what, body] of cases) {
        // The file part is complete (its closing delimiter sent) well before what gets it refused.
        const answer = await refusedUpload(server.port, token, body, file.length + `--${BOUNDARY}`.length, 300, () => bytesUnder(filesDir));
        seen.push([what, answer.status, answer.code, answer.connection, answer.measured]);
      }
      expect(seen).toEqual(cases.map(([what, , status, code]) => [what, status, code, 'close', before]));
      console.log(`${cases.length} refused 19 MiB uploads: files dir ${before} bytes before, ${bytesUnder(filesDir)} after`);
      const list = (await (await fetch(`${server.url}/files`, { headers: { authorization: `Bearer ${token}` } })).json()) as any;
      expect(list.files.length).toBe(1);
    } finally {
      await server.cli.stop();
    }
  });

  it('answers uploads still arriving at SIGTERM with 503 SHUTTING_DOWN and Connection: close, removes their bytes, and exits 0', { timeout: 60_000 }, async () => {
    const server = await start(configFile('drain', ['maxFileSize: 100MiB']));
    const token = await login(server.url);
    const filesDir = path.join(dir, 'drain-data', 'files');
    const created = (await (await fetch(`${server.url}/files/uploads`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' })).json()) as any;
    /** Sends a head and the first `sent` body bytes of a much longer body, then waits; resolves with what comes back once the server closes. */
    const slow = (head: string, body: Buffer) =>
      new Promise<{ text: string; at: number }>((resolve) => {
        const socket = netConnect(server.port, '127.0.0.1');
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve({ text, at: Date.now() }));
        socket.write(Buffer.concat([Buffer.from(head), body]));
      });
    const upload = slow(
      `POST /files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: 50000000\r\n\r\n`,
      Buffer.concat([preamble, JPEG_HEAD, Buffer.alloc(2 * 1024 * 1024, 1)]),
    );
    const part = slow(`PUT /files/uploads/${created.id}/parts/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Length: 10000000\r\n\r\n`, Buffer.alloc(1024 * 1024, 2));
    // Both are writing to temp files when the signal comes.
    await expect.poll(() => (existsSync(path.join(filesDir, 'tmp')) ? readdirSync(path.join(filesDir, 'tmp')).length : 0), { timeout: 5_000 }).toBe(2);
    await expect.poll(() => bytesUnder(filesDir), { timeout: 5_000 }).toBeGreaterThanOrEqual(3 * 1024 * 1024);
    const signalled = Date.now();
    server.cli.child.kill('SIGTERM');
    const answers = await Promise.all([upload, part]);
    for (const { text, at } of answers) {
      const [head = '', body = ''] = text.split('\r\n\r\n');
      const code = body ? JSON.parse(body).error?.code : '(no answer)';
      expect([/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1], /^connection: close$/im.test(head), code]).toEqual(['503', true, 'SHUTTING_DOWN']);
      expect(at - signalled).toBeLessThan(5_000); // well inside the 10 s drain grace
    }
    expect(await server.cli.exited()).toBe(0);
    const exitedMs = Date.now() - signalled;
    console.log(`SIGTERM with an upload and a part in flight: answered 503 in ${Math.max(...answers.map((a) => a.at - signalled))} ms (connection closed), exited after ${exitedMs} ms`);
    expect(exitedMs).toBeLessThan(10_000);
    expect(bytesUnder(filesDir)).toBe(0);
  });

  it('after a kill mid-write: no row, and the temp file is swept at the next start', { timeout: 60_000 }, async () => {
    const file = configFile('killed', ['maxFileSize: 1GiB']);
    let server = await start(file);
    const token = await login(server.url);
    const tmp = path.join(dir, 'killed-data', 'files', 'tmp');
    let killed = false;
    const upload = streamUpload(server.port, token, 512 * 1024 * 1024, (sent) => {
      if (!killed && sent > 64 * 1024 * 1024) {
        killed = true;
        server.cli.child.kill('SIGKILL');
      }
    }).catch((error: Error) => error);
    expect(await upload).toBeInstanceOf(Error);
    await server.cli.exited();
    const leftover = readdirSync(tmp);
    expect(leftover.length).toBe(1);
    // Made to look as old as a dead upload's temp file is by the time anyone restarts.
    const old = new Date(Date.now() - 10 * 60_000);
    utimesSync(path.join(tmp, leftover[0]!), old, old);

    server = await start(file);
    try {
      await expect.poll(() => readdirSync(tmp), { timeout: 5_000 }).toEqual([]);
      const list = (await (await fetch(`${server.url}/files`, { headers: { authorization: `Bearer ${token}` } })).json()) as any;
      expect(list.files).toEqual([]);
      await server.cli.waitForStderr('files: swept');
    } finally {
      await server.cli.stop();
    }
  });

  it('answers 507 when the disk fills, removes the partial file, and keeps serving', { timeout: 60_000 }, async () => {
    const mount = path.join(dir, 'small-disk');
    mkdirSync(mount);
    // A real full disk: a 16 MiB tmpfs (these machines run tests as root).
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mount]);
    try {
      const server = await start(configFile('full', ['maxFileSize: 100MiB', `storage: { dir: ${mount} }`]));
      try {
        const token = await login(server.url);
        const full = await streamUpload(server.port, token, 40 * 1024 * 1024).catch((error: Error) => error);
        if (full instanceof Error) throw full;
        expect([full.status, full.body.error.code]).toEqual([507, 'STORAGE_FULL']);
        expect(readdirSync(path.join(mount, 'tmp'))).toEqual([]);
        const small = await streamUpload(server.port, token, 1024 * 1024);
        expect(small.status).toBe(201);
        expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      } finally {
        await server.cli.stop();
      }
    } finally {
      execFileSync('umount', ['-l', mount]);
    }
  });
});
