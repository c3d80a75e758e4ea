/**
 * Files under faults, against the real CLI: refused uploads leave nothing behind by the time the
 * answer arrives, uploads in flight at SIGTERM, a kill in the middle of a write (no row, the temp
 * file swept at the next start), and a full disk. (The stress half, big and many uploads, is
 * test/slow/files-stress.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, utimesSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BOUNDARY, bytesUnder, closing, JPEG_HEAD, part, preamble, refusedUpload, start, streamUpload, useUploadSetup } from './helpers/uploads.js';

const suite = useUploadSetup();
const { configFile, login } = suite;

describe('uploads refused, cut by SIGTERM or a kill, and a full disk, against minigate start', () => {
  it('refused uploads whose 19 MiB file part was complete (then a pause) leave the files dir as it was, by the time each answer arrives', { timeout: 60_000 }, async () => {
    const server = await start(configFile('refused', ['maxFileSize: 20MiB']));
    try {
      const token = await login(server.url);
      const filesDir = path.join(suite.dir, 'refused-data', 'files');
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

  it('a client still sending its refused body reads the answer and is not reset while the bytes keep coming (lingering close)', { timeout: 60_000 }, async () => {
    const server = await start(configFile('linger', ['maxFileSize: 1MiB']));
    try {
      const token = await login(server.url);
      // 40 MiB announced (over the limit: refused before the body is read), then sent in 64 KiB
      // pieces every 250 ms for 3.5 s, as a slow phone would go on sending what it started.
      const outcome = await new Promise<{ text: string; error?: string; sentAfterAnswer: number }>((resolve) => {
        // Half-open allowed: the server's FIN after its answer does not stop this side sending.
        const socket = netConnect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true });
        let text = '';
        let sentAfterAnswer = 0;
        let error: string | undefined;
        socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
        socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
        socket.on('close', () => resolve({ text, error, sentAfterAnswer }));
        socket.write(`POST /files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${40 * 1024 * 1024}\r\n\r\n`);
        socket.write(preamble);
        let pieces = 0;
        const timer = setInterval(() => {
          if (socket.destroyed) return clearInterval(timer);
          if (text.includes('\r\n\r\n')) sentAfterAnswer++;
          if (++pieces > 14) {
            clearInterval(timer);
            socket.end();
            return;
          }
          socket.write(Buffer.alloc(64 * 1024, 0x5a));
        }, 250);
      });
      expect(/^HTTP\/1\.1 (\d{3})/.exec(outcome.text)?.[1]).toBe('413');
      expect(outcome.text).toContain('"code":"FILE_TOO_LARGE"');
      expect(outcome.text.toLowerCase()).toContain('connection: close');
      // Still sending well past the old fixed 2 s linger, never reset: the connection ends cleanly.
      expect(outcome.sentAfterAnswer).toBeGreaterThan(10);
      expect(outcome.error).toBeUndefined();
    } finally {
      await server.cli.stop();
    }
  });

  it('answers uploads still arriving at SIGTERM with 503 SHUTTING_DOWN and Connection: close, removes their bytes, and exits 0', { timeout: 60_000 }, async () => {
    const server = await start(configFile('drain', ['maxFileSize: 100MiB']));
    const token = await login(server.url);
    const filesDir = path.join(suite.dir, 'drain-data', 'files');
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
    const tmp = path.join(suite.dir, 'killed-data', 'files', 'tmp');
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
    const mount = path.join(suite.dir, 'small-disk');
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
