import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createS3Storage } from '../src/files/s3.js';
import type { FileStorage, ObjectWriter, StoredObject } from '../src/files/storage.js';
import { captureLogs } from './helpers/capture-logger.js';
import { startS3Server, type S3Server } from './helpers/s3.js';

const MiB = 1024 * 1024;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function collect(iterable: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function writeObject(storage: FileStorage, key: string, data: Buffer, chunkSize = 64 * 1024): Promise<number> {
  const writer = storage.writer(key);
  for (let offset = 0; offset < data.length; offset += chunkSize) await writer.write(data.subarray(offset, offset + chunkSize));
  return writer.commit();
}

function storageFor(server: S3Server, prefix: string, logs = captureLogs()): FileStorage {
  return createS3Storage({
    endpoint: server.endpoint,
    region: server.region,
    bucket: server.bucket,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    forcePathStyle: true,
    prefix,
    logger: logs.logger,
  });
}

/** Unhandled rejections seen while a test ran (vitest would also fail the run on them). */
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

describe('S3 file storage (s3rver)', () => {
  let server: S3Server;
  let storage: FileStorage;
  const logs = captureLogs();

  beforeAll(async () => {
    server = await startS3Server();
    storage = storageFor(server, 'minigate/', logs);
  });
  afterAll(async () => {
    await storage?.close();
    await server?.close();
  });
  beforeEach(() => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
  });

  it('streams a 12 MiB object as a multipart upload and reads it back byte for byte', async () => {
    const data = randomBytes(12 * MiB);
    const size = await writeObject(storage, 'f/big0001', data);
    expect(size).toBe(data.length);
    const back = await readAll(await storage.read('f/big0001'));
    expect(back.length).toBe(data.length);
    expect(sha256(back)).toBe(sha256(data));
    const [listed] = await collect(storage.list('f/big0001'));
    expect(listed).toMatchObject({ key: 'f/big0001', size: data.length });
    expect(Math.abs(listed!.modifiedAt - Date.now())).toBeLessThan(60_000);
  });

  it('writes a small object with a single put', async () => {
    const data = Buffer.from('hello, object storage');
    expect(await writeObject(storage, 'f/small001', data)).toBe(data.length);
    expect((await readAll(await storage.read('f/small001'))).toString()).toBe('hello, object storage');
  });

  it('writes an empty object', async () => {
    const writer = storage.writer('f/empty001');
    expect(await writer.commit()).toBe(0);
    expect((await readAll(await storage.read('f/empty001'))).length).toBe(0);
  });

  it('reads byte ranges: the first bytes, the middle, the last byte', async () => {
    const data = randomBytes(300 * 1024);
    await writeObject(storage, 'f/range001', data);
    expect(await readAll(await storage.read('f/range001', { start: 0, end: 9 }))).toEqual(data.subarray(0, 10));
    expect(await readAll(await storage.read('f/range001', { start: 100_000, end: 199_999 }))).toEqual(data.subarray(100_000, 200_000));
    const last = data.length - 1;
    expect(await readAll(await storage.read('f/range001', { start: last, end: last }))).toEqual(data.subarray(last));
  });

  it('rejects a read of a missing key with code NOT_FOUND', async () => {
    await expect(storage.read('f/missing01')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(storage.read('f/missing01', { start: 0, end: 3 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('abort() after some writes leaves no object, also past the first part, and can be called twice', async () => {
    const small = storage.writer('f/abort001');
    await small.write(randomBytes(100 * 1024));
    await small.abort();
    await small.abort();
    await expect(small.write(Buffer.from('x'))).rejects.toThrow(/aborted/);
    await expect(small.commit()).rejects.toThrow(/aborted/);

    // More than one part: the multipart upload exists on the server when abort() is called.
    const large = storage.writer('f/abort002');
    const chunk = randomBytes(64 * 1024);
    for (let i = 0; i < (7 * MiB) / chunk.length; i++) await large.write(chunk);
    await Promise.all([large.abort(), large.abort()]);

    expect(await collect(storage.list('f/abort00'))).toEqual([]);
    await expect(storage.read('f/abort002')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('abort() after commit() removes the committed object', async () => {
    const writer = storage.writer('f/abort003');
    await writer.write(Buffer.from('committed, then dropped'));
    await writer.commit();
    await writer.abort();
    await expect(storage.read('f/abort003')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('removes objects, and removing a missing one is fine', async () => {
    await writeObject(storage, 'f/remove01', Buffer.from('bytes'));
    await storage.remove('f/remove01');
    await expect(storage.read('f/remove01')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await storage.remove('f/remove01');
    await storage.remove('f/never0001');
  });

  it('lists under a key prefix, without the configured prefix, across pages', async () => {
    const keys = ['p/aaaa0001/1-00aa00aa', 'p/aaaa0001/2-00bb00bb', 'p/aaaa0001/3-00cc00cc', 'p/bbbb0002/1-00dd00dd'];
    for (const [i, key] of keys.entries()) await writeObject(storage, key, Buffer.alloc(i + 1, i));
    const parts = await collect(storage.list('p/aaaa0001/'));
    expect(parts.map((p) => [p.key, p.size]).sort()).toEqual([
      ['p/aaaa0001/1-00aa00aa', 1],
      ['p/aaaa0001/2-00bb00bb', 2],
      ['p/aaaa0001/3-00cc00cc', 3],
    ]);
    expect((await collect(storage.list('p/'))).map((p) => p.key).sort()).toEqual(keys);
    expect(await collect(storage.list('p/cccc'))).toEqual([]);

    // The same bucket without a prefix sees the full keys; the prefix keeps the two apart.
    const bare = storageFor(server, '');
    try {
      expect((await collect(bare.list('minigate/p/aaaa0001/'))).map((p) => p.key).sort()).toEqual(
        keys.slice(0, 3).map((k) => `minigate/${k}`),
      );
      expect(await collect(bare.list('p/'))).toEqual([]);
    } finally {
      await bare.close();
    }

    for (const key of keys) await storage.remove(key);
    expect(await collect(storage.list('p/'))).toEqual([]);
  });

  it('sweepIncomplete returns 0 where the server cannot list multipart uploads (s3rver)', async () => {
    expect(await storage.sweepIncomplete(0)).toBe(0);
  });

  it('never logs the credentials', () => {
    expect(logs.text()).not.toContain(server.secretAccessKey);
    expect(logs.text()).not.toContain(server.accessKeyId);
  });
});

describe('S3 file storage with its server gone', () => {
  beforeEach(() => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
  });

  async function goneStorage(): Promise<{ storage: FileStorage; logs: ReturnType<typeof captureLogs> }> {
    const server = await startS3Server();
    const logs = captureLogs();
    const storage = storageFor(server, '', logs);
    // One request first, so the client holds a keep-alive connection the close must also end.
    await writeObject(storage, 'f/warm0001', Buffer.from('warm'));
    await server.close();
    return { storage, logs };
  }

  async function expectUnavailable(promise: Promise<unknown>): Promise<Error> {
    const error = await promise.then(
      () => {
        throw new Error('expected a rejection');
      },
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error).toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    const cause = error.cause as Error;
    expect(cause.message).toMatch(/S3 upload of "f\/gone\d+" in bucket "minigate-test" failed: .*ECONNREFUSED/);
    return error;
  }

  it('a small write fails at commit() with a clear error', { timeout: 15_000 }, async () => {
    const { storage, logs } = await goneStorage();
    try {
      const writer: ObjectWriter = storage.writer('f/gone0001');
      await writer.write(Buffer.from('nobody is listening'));
      const started = Date.now();
      await expectUnavailable(writer.commit());
      expect(Date.now() - started).toBeLessThan(10_000);
      await expect(writer.write(Buffer.from('more'))).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
      await writer.abort();
      await writer.abort();
      expect(logs.text()).toContain('s3 upload failed');
      expect(logs.text()).not.toContain('S3RVER');
    } finally {
      await storage.close();
    }
  });

  it('a large write fails on a later write() or at commit(), never as an unhandled rejection', { timeout: 15_000 }, async () => {
    const { storage } = await goneStorage();
    try {
      const writer = storage.writer('f/gone0002');
      const chunk = randomBytes(64 * 1024);
      let failed: Promise<unknown> | undefined;
      for (let i = 0; i < (16 * MiB) / chunk.length; i++) {
        try {
          await writer.write(chunk);
        } catch (error) {
          failed = Promise.reject(error);
          break;
        }
      }
      await expectUnavailable(failed ?? writer.commit());
      await writer.abort();
    } finally {
      await storage.close();
    }
  });

  it('reads, removes, lists and sweeps fail with STORAGE_UNAVAILABLE', { timeout: 15_000 }, async () => {
    const { storage } = await goneStorage();
    try {
      await expect(storage.read('f/warm0001')).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
      await expect(storage.remove('f/warm0001')).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
      await expect(collect(storage.list('f/'))).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
      await expect(storage.sweepIncomplete(0)).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    } finally {
      await storage.close();
    }
  });
});
