/**
 * Files as a mini program and curl use them, on local storage and on S3 (s3rver): upload with
 * curl -F, download byte for byte with ranges and ETags, who may read what, refusals that leave
 * nothing behind, raw path tricks, and resumable uploads.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalStorage, createS3Storage, type FileStorage } from '../src/files/index.js';
import { silentLogger } from '../src/core/logger.js';
import { createTestDatabase, type TestDatabase } from './helpers/databases.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { startS3Server, type S3Server } from './helpers/s3.js';

const JPEG_HEAD = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01]);
const PNG_HEAD = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
const jpeg = (size: number) => Buffer.concat([JPEG_HEAD, randomBytes(size - JPEG_HEAD.length)]);
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

const work = mkdtempSync(path.join(tmpdir(), 'mg-files-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function curl(args: string[]): Promise<{ status: number; body: any; raw: Buffer }> {
  return new Promise((resolve, reject) =>
    execFile('curl', ['-s', '-w', '\n%{http_code}', ...args], { maxBuffer: 64 << 20, encoding: 'buffer' }, (error, stdout) => {
      if (error && !stdout.length) return reject(error);
      const cut = stdout.lastIndexOf(0x0a);
      const raw = stdout.subarray(0, cut);
      let body: unknown = raw;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        // bytes
      }
      resolve({ status: Number(stdout.subarray(cut + 1).toString()), body, raw });
    }),
  );
}

/** Sends bytes over a raw socket and returns the status line and body (for what curl would fix up). */
function raw(port: number, request: Buffer | string, opts: { endAfterMs?: number; destroyAfterWrite?: boolean } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
    socket.write(request, () => {
      if (opts.destroyAfterWrite) setTimeout(() => socket.destroy(), 50);
    });
    setTimeout(() => socket.destroy(), opts.endAfterMs ?? 5_000);
  });
}

function multipart(boundary: string, parts: { name: string; filename?: string; data: Buffer | string }[], close = `--${boundary}--\r\n`): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"${part.filename ? `; filename="${part.filename}"` : ''}\r\n${part.filename ? 'Content-Type: application/octet-stream\r\n' : ''}\r\n`));
    chunks.push(Buffer.isBuffer(part.data) ? part.data : Buffer.from(part.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(close));
  return Buffer.concat(chunks);
}

function post(pathname: string, token: string, body: Buffer, boundary: string, extraHeaders = ''): Buffer {
  return Buffer.concat([
    Buffer.from(`POST ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n${extraHeaders}\r\n`),
    body,
  ]);
}

describe.each([
  ['local', 'sqlite'],
  ['s3', 'sqlite'],
  ['local', 'mysql'],
  ['local', 'postgres'],
] as const)('files on %s storage, metadata in %s', (backend, dialect) => {
  let database: TestDatabase;
  let h: Harness;
  let s3: S3Server | undefined;
  let storage: FileStorage;
  let base: string;
  let port: number;
  let alice: { token: string; openid: string };
  let bob: { token: string; openid: string };

  const login = async () => {
    const { code, openid } = await h.code();
    return { token: (await h.login({ code })).body.token as string, openid };
  };
  const auth = (who: { token: string }) => ['-H', `authorization: Bearer ${who.token}`];
  /** Every stored object (files and parts), and for local storage the temp files too. */
  const leftovers = async () => {
    const keys: string[] = [];
    for (const prefix of ['f/', 'p/']) for await (const o of storage.list(prefix)) keys.push(o.key);
    const tmp = path.join(h.config.dataDir, 'files', 'tmp');
    if (backend === 'local' && existsSync(tmp)) keys.push(...readdirSync(tmp).map((n) => `tmp/${n}`));
    return keys.sort();
  };

  beforeAll(async () => {
    let storageConfig: Record<string, unknown> = {};
    if (backend === 's3') {
      s3 = await startS3Server();
      storageConfig = { type: 's3', endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true };
    }
    database = await createTestDatabase(dialect);
    h = await startHarness({
      store: database.url,
      config: {
        listen: { internal: '127.0.0.1:0' },
        internal: { token: 'files-internal-token-0123456789abcdef' },
        files: {
          storage: storageConfig,
          maxFileSize: '8MiB',
          types: ['image/jpeg', 'image/png', 'application/pdf'],
          quota: '120MiB',
          linkTtl: '10m',
          resumable: { maxPartSize: '6MiB', maxSize: '100MiB' },
        },
      },
    });
    storage =
      backend === 's3'
        ? createS3Storage({ endpoint: s3!.endpoint, region: s3!.region, bucket: s3!.bucket, accessKeyId: s3!.accessKeyId, secretAccessKey: s3!.secretAccessKey, forcePathStyle: true, prefix: '', logger: silentLogger() })
        : createLocalStorage(path.join(h.config.dataDir, 'files'));
    base = `${h.url}/files`;
    port = Number(new URL(h.url).port);
    alice = await login();
    bob = await login();
  }, 30_000);
  afterAll(async () => {
    await storage?.close();
    await h?.close();
    await s3?.close();
    await database?.drop();
  });

  it('takes a 5 MB upload from curl -F, and gives the same bytes back, whole and in ranges', { timeout: 30_000 }, async () => {
    const data = jpeg(5_000_000);
    const file = path.join(work, `${backend}-${dialect}-photo.jpg`);
    writeFileSync(file, data);
    const up = await curl([...auth(alice), '-F', `file=@${file}`, '-F', 'album=summer', base]);
    expect(up.status).toBe(201);
    expect(up.body).toMatchObject({ size: 5_000_000, sha256: sha(data), contentType: 'image/jpeg', name: `${backend}-${dialect}-photo.jpg`, access: 'private', meta: { album: 'summer' } });
    expect(up.body.id).toMatch(/^[a-f0-9]{32}$/);
    expect(up.body.url).toBe(`${base}/${up.body.id}`);

    const whole = await fetch(up.body.url, { headers: { authorization: `Bearer ${alice.token}` } });
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('image/jpeg');
    expect(whole.headers.get('x-content-type-options')).toBe('nosniff');
    expect(whole.headers.get('content-disposition')).toMatch(/^inline; /);
    expect(sha(Buffer.from(await whole.arrayBuffer()))).toBe(sha(data));
    const etag = whole.headers.get('etag')!;
    expect(etag).toBe(`"${sha(data)}"`);

    const ranged = await fetch(up.body.url, { headers: { authorization: `Bearer ${alice.token}`, range: 'bytes=1000-1999' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe('bytes 1000-1999/5000000');
    expect(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(1000, 2000))).toBe(true);
    const tail = await fetch(up.body.url, { headers: { authorization: `Bearer ${alice.token}`, range: 'bytes=-10' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(data.subarray(-10))).toBe(true);
    const outside = await fetch(up.body.url, { headers: { authorization: `Bearer ${alice.token}`, range: 'bytes=6000000-' } });
    expect(outside.status).toBe(416);
    expect(outside.headers.get('content-range')).toBe('bytes */5000000');
    const many = await fetch(up.body.url, { headers: { authorization: `Bearer ${alice.token}`, range: `bytes=${Array.from({ length: 500 }, (_, i) => `${i}-${i}`).join(',')}` } });
    expect(many.status).toBe(200); // several ranges: the whole file, not 500 parts
    await many.arrayBuffer();
    const cached = await fetch(up.body.url, { headers: { authorization: `Bearer ${alice.token}`, 'if-none-match': etag } });
    expect(cached.status).toBe(304);
    const head = await fetch(up.body.url, { method: 'HEAD', headers: { authorization: `Bearer ${alice.token}` } });
    expect(head.headers.get('content-length')).toBe('5000000');
  });

  it('keeps private files to their owner; public files and signed links open without a session', async () => {
    const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(2000)]);
    const file = path.join(work, `${backend}-${dialect}-doc.pdf`);
    writeFileSync(file, pdf);
    const priv = (await curl([...auth(alice), '-F', `file=@${file};filename=../../etc/报告.pdf`, base])).body;
    expect(priv.name).toBe('报告.pdf');
    expect((await curl([priv.url])).status).toBe(401);
    const other = await curl([...auth(bob), priv.url]);
    expect([other.status, other.body.error.code]).toEqual([403, 'FILE_FORBIDDEN']);
    const mine = await fetch(priv.url, { headers: { authorization: `Bearer ${alice.token}` } });
    expect(mine.headers.get('content-disposition')).toBe(`attachment; filename="__.pdf"; filename*=UTF-8''${encodeURIComponent('报告.pdf')}`);
    await mine.arrayBuffer();

    const link = await curl([...auth(alice), '-X', 'POST', `${priv.url}/link`, '-H', 'content-type: application/json', '-d', '{"ttl":60}']);
    expect(link.status).toBe(200);
    const viaLink = await curl([link.body.url]);
    expect([viaLink.status, sha(viaLink.raw)]).toEqual([200, sha(pdf)]);
    const forged = link.body.url.replace(/sig=(.)/, (_: string, c: string) => `sig=${c === 'A' ? 'B' : 'A'}`);
    expect((await curl([forged])).body.error.code).toBe('FILE_LINK_INVALID');
    expect((await curl([...auth(bob), '-X', 'POST', `${priv.url}/link`])).status).toBe(403);
    expect((await curl([...auth(alice), '-X', 'POST', `${priv.url}/link`, '-H', 'content-type: application/json', '-d', '{"ttl":3600}'])).status).toBe(400);
    h.clock.advance(61_000);
    expect((await curl([link.body.url])).body.error.code).toBe('FILE_LINK_INVALID');

    const pub = (await curl([...auth(alice), '-F', `file=@${file}`, '-F', 'access=public', base])).body;
    expect(pub.access).toBe('public');
    expect((await curl([pub.url])).status).toBe(200);

    const list = await curl([...auth(alice), base]);
    expect(list.body.files.map((f: any) => f.id)).toEqual(expect.arrayContaining([priv.id, pub.id]));
    expect((await curl([...auth(bob), base])).body.files.map((f: any) => f.id)).not.toContain(priv.id);

    expect((await curl([...auth(bob), '-X', 'DELETE', pub.url])).status).toBe(403);
    expect((await curl([...auth(alice), '-X', 'DELETE', pub.url])).body).toEqual({ deleted: true });
    expect((await curl([pub.url])).status).toBe(404);
    expect(await leftovers()).not.toContain(`f/${pub.id}`);
  });

  it('refuses bad uploads with clear 4xx answers, keeps nothing, and stays up', { timeout: 60_000 }, async () => {
    const before = await leftovers();
    const rows = async () => (await h.server.store.db.selectFrom('files').select('id').execute()).length;
    const rowsBefore = await rows();
    const big = path.join(work, `${backend}-${dialect}-big.jpg`);
    writeFileSync(big, jpeg(9 * 1024 * 1024));
    const php = path.join(work, `${backend}-${dialect}-shell.jpg`);
    writeFileSync(php, '<?php echo shell_exec($_GET["c"]); ?>');
    const svg = path.join(work, `${backend}-${dialect}-x.png`);
    writeFileSync(svg, '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>');
    const small = path.join(work, `${backend}-${dialect}-small.jpg`);
    writeFileSync(small, jpeg(1000));

    const cases: [string, string[], number, string][] = [
      ['over the size (Content-Length)', ['-F', `file=@${big}`], 413, 'FILE_TOO_LARGE'],
      ['over the size (chunked, no length)', ['-H', 'transfer-encoding: chunked', '-F', `file=@${big}`], 413, 'FILE_TOO_LARGE'],
      ['a PHP script named .jpg', ['-F', `file=@${php}`], 415, 'FILE_TYPE_NOT_ALLOWED'],
      ['SVG named .png', ['-F', `file=@${svg};type=image/png`], 415, 'FILE_TYPE_NOT_ALLOWED'],
      ['the file under another field', ['-F', `photo=@${small}`], 400, 'UPLOAD_NO_FILE'],
      ['two files', ['-F', `file=@${small}`, '-F', `file=@${small}`], 413, 'UPLOAD_LIMIT'],
      ['too many fields', ['-F', `file=@${small}`, ...Array.from({ length: 40 }, (_, i) => ['-F', `f${i}=x`]).flat()], 413, 'UPLOAD_LIMIT'],
      ['a field over 4 KiB', ['-F', `note=${'x'.repeat(5000)}`, '-F', `file=@${small}`], 413, 'UPLOAD_LIMIT'],
      ['not multipart', ['-H', 'content-type: application/json', '-d', '{}'], 400, 'UPLOAD_MALFORMED'],
    ];
    for (const [what, args, status, code] of cases) {
      const answer = await curl([...auth(alice), ...args, base]);
      expect([what, answer.status, answer.body?.error?.code]).toEqual([what, status, code]);
    }

    const boundary = 'XyZ0123456789';
    const file = jpeg(20_000);
    const rawCases: [string, Buffer, number, string][] = [
      ['an empty field name', multipart(boundary, [{ name: '', data: 'v' }, { name: 'file', filename: 'a.jpg', data: file }]), 400, 'UPLOAD_MALFORMED'],
      ['a truncated closing boundary', multipart(boundary, [{ name: 'file', filename: 'a.jpg', data: file }], `--${boundary.slice(0, 5)}`), 400, 'UPLOAD_MALFORMED'],
      ['a part header followed by the closing boundary', Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n--${boundary}--\r\n`), 400, 'UPLOAD_MALFORMED'],
      ['too many parts', multipart(boundary, Array.from({ length: 40 }, (_, i) => ({ name: `p${i}`, data: '' }))), 413, 'UPLOAD_LIMIT'],
    ];
    for (const [what, body, status, code] of rawCases) {
      const answer = await raw(port, post('/files', alice.token, body, boundary));
      expect([what, answer.status, answer.text.includes(`"code":"${code}"`)]).toEqual([what, status, true]);
    }

    // A client that goes away mid-body.
    const partial = multipart(boundary, [{ name: 'file', filename: 'a.jpg', data: jpeg(3_000_000) }]);
    const request = post('/files', alice.token, partial, boundary);
    await raw(port, request.subarray(0, request.length - 1_000_000), { destroyAfterWrite: true });

    await expect.poll(leftovers, { timeout: 5_000 }).toEqual(before);
    expect(await rows()).toBe(rowsBefore);
    // Still serving.
    expect((await curl([...auth(alice), '-F', `file=@${small}`, base])).status).toBe(201);
  });

  it('removes a file part already stored when a later part gets the upload refused, before answering', { timeout: 60_000 }, async () => {
    const before = await leftovers();
    const rows = async () => (await h.server.store.db.selectFrom('files').select('id').execute()).length;
    const rowsBefore = await rows();
    const boundary = 'Later0123456789';
    // Past one S3 part (5 MiB), so the S3 writer has a multipart upload under way.
    const file = { name: 'file', filename: 'a.jpg', data: jpeg(7 * 1024 * 1024) };
    const fileEnds = multipart(boundary, [file], '').length + `--${boundary}`.length;
    const headers = (n: number) => Array.from({ length: n }, (_, i) => `X-Extra-${i}: ${i}`).join('\r\n');
    const cases: [string, Buffer, number, string][] = [
      ['a field over files.maxFieldSize', multipart(boundary, [file, { name: 'note', data: 'x'.repeat(5000) }]), 413, 'UPLOAD_LIMIT'],
      ['a second file', multipart(boundary, [file, { name: 'file', filename: 'b.jpg', data: JPEG_HEAD }]), 413, 'UPLOAD_LIMIT'],
      ['more fields than files.maxFields', multipart(boundary, [file, ...Array.from({ length: 40 }, (_, i) => ({ name: `f${i}`, data: 'x' }))]), 413, 'UPLOAD_LIMIT'],
      ['no closing boundary', multipart(boundary, [file], `--${boundary}`), 400, 'UPLOAD_MALFORMED'],
      ['an access that is neither private nor public', multipart(boundary, [file, { name: 'access', data: 'everyone' }]), 400, 'BAD_REQUEST'],
      ['a part with more headers than files.maxHeaderPairs', Buffer.concat([multipart(boundary, [file], ''), Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n${headers(40)}\r\n\r\nx\r\n--${boundary}--\r\n`)]), 413, 'UPLOAD_LIMIT'],
    ];
    for (const [what, body, status, code] of cases) {
      const request = post('/files', alice.token, body, boundary);
      const cut = request.length - body.length + fileEnds;
      // The file part complete, then a pause (a phone's network) before what gets it refused.
      const answer = await new Promise<{ status: number; text: string }>((resolve) => {
        const socket = netConnect(port, '127.0.0.1');
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
        socket.write(request.subarray(0, cut));
        setTimeout(() => socket.write(request.subarray(cut)), 300);
        setTimeout(() => socket.destroy(), 10_000);
      });
      // Not polled: gone by the time the answer is.
      expect([what, answer.status, answer.text.includes(`"code":"${code}"`), await leftovers()]).toEqual([what, status, true, before]);
    }
    expect(await rows()).toBe(rowsBefore);
  });

  it('refuses a part with more header lines than files.maxHeaderPairs, keeping nothing', async () => {
    const before = await leftovers();
    const boundary = 'Headers0123456789';
    const extra = Array.from({ length: 33 }, (_, i) => `X-Extra-${i}: ${i}`).join('\r\n');
    const manyOnFile = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n${extra}\r\n\r\n`),
      jpeg(50_000),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const manyOnField = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n${extra}\r\n\r\nx\r\n`), multipart(boundary, [{ name: 'file', filename: 'a.jpg', data: jpeg(50_000) }])]);
    for (const body of [manyOnFile, manyOnField]) {
      const answer = await raw(port, post('/files', alice.token, body, boundary));
      expect([answer.status, /"code":"UPLOAD_LIMIT"/.test(answer.text), /maxHeaderPairs/.test(answer.text)]).toEqual([413, true, true]);
      expect(await leftovers()).toEqual(before);
    }
    // 32 header lines (the default files.maxHeaderPairs) are fine.
    const fine = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n${Array.from({ length: 31 }, (_, i) => `X-Extra-${i}: ${i}`).join('\r\n')}\r\n\r\n`),
      jpeg(1000),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    expect((await raw(port, post('/files', alice.token, fine, boundary))).status).toBe(201);
  });

  it('answers an upload without a session with 401 and closes, instead of reading a big body to its end', async () => {
    const boundary = 'NoSession0123';
    const answer = await new Promise<{ status: number; closedMs: number }>((resolve) => {
      const socket = netConnect(port, '127.0.0.1');
      let text = '';
      const started = Date.now();
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), closedMs: Date.now() - started }));
      socket.write(`POST /files HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 100000000\r\n\r\n`);
      socket.write(Buffer.alloc(1 << 20, 1)); // then nothing more: a server that drains would wait for the rest
    });
    expect(answer.status).toBe(401);
    expect(answer.closedMs).toBeLessThan(4_000);
  });

  it('refuses raw path tricks on download without leaking anything', async () => {
    const targets = [
      '/files/../../etc/passwd',
      '/files/..%2f..%2fetc%2fpasswd',
      '/files/%2e%2e/%2e%2e/etc/passwd',
      '/files/%252e%252e/etc/passwd',
      '/files/..\\..\\etc\\passwd',
      '/files//etc/passwd',
      `/files/${'a'.repeat(32)}%00.jpg`,
      'files/../etc/passwd',
      '/files/../files/../../../../etc/passwd',
    ];
    for (const target of targets) {
      const answer = await raw(port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${alice.token}\r\nConnection: close\r\n\r\n`);
      expect([target, answer.status >= 400 && answer.status < 500]).toEqual([target, true]);
      expect(answer.text).not.toContain('root:');
    }
  });

  it('assembles a 50 MB resumable upload from 5 MB parts, one sent twice, and checks its SHA-256', { timeout: 60_000 }, async () => {
    const data = jpeg(50 * 1024 * 1024);
    const partSize = 5 * 1024 * 1024;
    const json = { 'content-type': 'application/json', authorization: `Bearer ${alice.token}` };
    const created = await fetch(`${base}/uploads`, { method: 'POST', headers: json, body: JSON.stringify({ name: 'video-cover.jpg', size: data.length }) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const put = (n: number, body: Buffer) =>
      fetch(`${base}/uploads/${id}/parts/${n}`, { method: 'PUT', headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/octet-stream' }, body });
    const count = Math.ceil(data.length / partSize);
    const part = (n: number) => data.subarray((n - 1) * partSize, n * partSize);

    // All but the last, with part 3 first sent with wrong bytes and then sent again (a retry).
    expect((await put(3, randomBytes(partSize))).status).toBe(200);
    for (let n = 1; n < count; n++) {
      const answer = await put(n, part(n));
      expect(answer.status).toBe(200);
      expect(((await answer.json()) as any).sha256).toBe(sha(part(n)));
    }
    const early = await fetch(`${base}/uploads/${id}/complete`, { method: 'POST', headers: json, body: JSON.stringify({ sha256: sha(data) }) });
    expect([early.status, ((await early.json()) as any).error.code]).toEqual([409, 'UPLOAD_INCOMPLETE']);
    // The last part, twice at once (a retry racing the original).
    const [x, y] = await Promise.all([put(count, part(count)), put(count, part(count))]);
    expect([x.status, y.status]).toEqual([200, 200]);
    const status = (await (await fetch(`${base}/uploads/${id}`, { headers: json })).json()) as any;
    expect(status.parts.map((p: any) => p.n)).toEqual(Array.from({ length: count }, (_, i) => i + 1));

    const wrong = await fetch(`${base}/uploads/${id}/complete`, { method: 'POST', headers: json, body: JSON.stringify({ sha256: sha(Buffer.from('other')) }) });
    expect([wrong.status, ((await wrong.json()) as any).error.code]).toEqual([422, 'UPLOAD_CHECKSUM_MISMATCH']);
    const done = await fetch(`${base}/uploads/${id}/complete`, { method: 'POST', headers: json, body: JSON.stringify({ sha256: sha(data) }) });
    expect(done.status).toBe(201);
    const file = (await done.json()) as any;
    expect(file).toMatchObject({ size: data.length, sha256: sha(data), contentType: 'image/jpeg', name: 'video-cover.jpg' });
    const back = await fetch(file.url, { headers: { authorization: `Bearer ${alice.token}` } });
    expect(sha(Buffer.from(await back.arrayBuffer()))).toBe(sha(data));
    // The upload and its parts are gone.
    expect((await fetch(`${base}/uploads/${id}`, { headers: json })).status).toBe(404);
    expect((await leftovers()).filter((k) => k.startsWith(`p/${id}`))).toEqual([]);

    // Aborting one removes its parts; another user cannot touch it.
    const second = (await (await fetch(`${base}/uploads`, { method: 'POST', headers: json, body: '{}' })).json()) as { id: string };
    await fetch(`${base}/uploads/${second.id}/parts/1`, { method: 'PUT', headers: { authorization: `Bearer ${alice.token}` }, body: part(1) });
    expect((await fetch(`${base}/uploads/${second.id}`, { headers: { authorization: `Bearer ${bob.token}` } })).status).toBe(404);
    expect((await fetch(`${base}/uploads/${second.id}`, { method: 'DELETE', headers: json })).status).toBe(200);
    expect((await leftovers()).filter((k) => k.startsWith(`p/${second.id}`))).toEqual([]);
    // Parts over the size are refused.
    const third = (await (await fetch(`${base}/uploads`, { method: 'POST', headers: json, body: '{}' })).json()) as { id: string };
    const huge = await fetch(`${base}/uploads/${third.id}/parts/1`, { method: 'PUT', headers: { authorization: `Bearer ${alice.token}` }, body: Buffer.alloc(7 * 1024 * 1024) });
    expect(huge.status).toBe(413);
  });

  it('lets business services look a file up, link to it and delete it (internal API)', async () => {
    const file = path.join(work, `${backend}-${dialect}-svc.png`);
    writeFileSync(file, Buffer.concat([PNG_HEAD, randomBytes(500)]));
    const up = (await curl([...auth(bob), '-F', `file=@${file}`, '-F', 'order=A17', base])).body;
    const info = await h.internal('GET', `/v1/files/${up.id}`);
    expect(info.body).toMatchObject({ id: up.id, openid: bob.openid, contentType: 'image/png', meta: { order: 'A17' }, url: `/files/${up.id}` });
    const link = await h.internal('POST', `/v1/files/${up.id}/link`, { ttl: 30 });
    expect((await curl([`${h.url}${link.body.path}`])).status).toBe(200);
    expect((await h.internal('DELETE', `/v1/files/${up.id}`)).body).toEqual({ deleted: true });
    expect((await h.internal('GET', `/v1/files/${up.id}`)).status).toBe(404);
    expect((await h.internal('GET', '/v1/files/not-an-id')).body.error.code).toBe('FILE_NOT_FOUND');
  });

  it('holds each user to the quota', { timeout: 90_000 }, async () => {
    const carol = await login();
    const file = path.join(work, `${backend}-${dialect}-7m.jpg`);
    writeFileSync(file, jpeg(7 * 1024 * 1024));
    const usage = async () => ((await curl([...auth(carol), base])).body.files as any[]).reduce((s, f) => s + f.size, 0);
    let last = 0;
    for (let i = 0; i < 20; i++) {
      const answer = await curl([...auth(carol), '-F', `file=@${file}`, base]);
      last = answer.status;
      if (answer.status !== 201) {
        expect(answer.body.error.code).toBe('FILE_QUOTA_EXCEEDED');
        break;
      }
    }
    expect(last).toBe(413);
    expect(await usage()).toBeLessThanOrEqual(120 * 1024 * 1024);
  });
});
