/**
 * File bytes in a local directory (default `<dataDir>/files`, outside anything served). An
 * object is written to `tmp/` under a random name, fsync'd, then renamed into place, so a
 * crash leaves a temp file (swept later) and never a half file under a real key. Keys are
 * minigate's own (`f/<hex>`, `p/<hex>/<n>-<hex>`) and checked again here: nothing a client
 * sends becomes a path.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { AppError } from '../core/index.js';
import type { FileStorage, ObjectWriter, StoredObject } from './storage.js';

/** Bytes a writer buffers while a write is in flight; they go to disk in one writev when it ends. */
export const WRITE_BUFFER_BYTES = 1024 * 1024;

const KEY = /^[a-z]\/[a-f0-9]{8,64}(\/[0-9]{1,5}-[a-f0-9]{8,32})?$/;

function checkKey(key: string): string {
  if (!KEY.test(key)) throw new AppError('INTERNAL', { message: `not a storage key: ${JSON.stringify(key)}` });
  return key;
}

async function fsyncDir(dir: string): Promise<void> {
  // The rename is durable only once the directory entry is (on Linux; harmless elsewhere).
  const handle = await open(dir, 'r').catch(() => null);
  await handle?.sync().catch(() => undefined);
  await handle?.close();
}

export function createLocalStorage(root: string): FileStorage {
  const tmp = path.join(root, 'tmp');
  const pathOf = (key: string) => path.join(root, ...checkKey(key).split('/'));

  function writer(key: string): ObjectWriter {
    const final = pathOf(key);
    const temp = path.join(tmp, `${randomBytes(12).toString('hex')}.part`);
    let stream: WriteStream | undefined;
    let failure: Error | undefined;
    let size = 0;
    let done = false;
    const ready = mkdir(tmp, { recursive: true }).then(() => {
      stream = createWriteStream(temp, { flags: 'wx', highWaterMark: WRITE_BUFFER_BYTES });
      stream.on('error', (error) => (failure ??= error));
      return new Promise<void>((resolve, reject) => {
        stream!.once('open', () => resolve());
        stream!.once('error', reject);
      });
    });
    const fail = (error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') return new AppError('STORAGE_FULL');
      return error instanceof AppError ? error : new AppError('STORAGE_UNAVAILABLE', { cause: error });
    };
    return {
      async write(chunk) {
        await ready.catch((error: unknown) => Promise.reject(fail(error)));
        if (failure) throw fail(failure);
        size += chunk.length;
        if (!stream!.write(chunk)) {
          await new Promise<void>((resolve, reject) => {
            const onError = (error: Error) => {
              stream!.off('drain', onDrain);
              reject(fail(error));
            };
            const onDrain = () => {
              stream!.off('error', onError);
              resolve();
            };
            stream!.once('drain', onDrain);
            stream!.once('error', onError);
          });
        }
      },
      async commit() {
        try {
          await ready;
          if (failure) throw failure;
          // end, fsync, close: the bytes are on disk before the name says they are there.
          await new Promise<void>((resolve, reject) => {
            stream!.once('error', reject);
            stream!.end(resolve);
          });
          const handle = await open(temp, 'r+');
          try {
            await handle.sync();
          } finally {
            await handle.close();
          }
          await mkdir(path.dirname(final), { recursive: true });
          await rename(temp, final);
          await fsyncDir(path.dirname(final));
          done = true;
          return size;
        } catch (error) {
          await unlink(temp).catch(() => undefined);
          throw fail(error);
        }
      },
      async abort() {
        if (done) return;
        done = true;
        await ready.catch(() => undefined);
        stream?.destroy();
        await unlink(temp).catch(() => undefined);
      },
    };
  }

  return {
    kind: 'local',
    writer,
    async read(key, range) {
      const file = pathOf(key);
      const info = await stat(file).catch(() => null);
      if (!info?.isFile()) throw Object.assign(new Error('no such object'), { code: 'NOT_FOUND' });
      const stream = createReadStream(file, range ? { start: range.start, end: range.end } : {});
      await new Promise<void>((resolve, reject) => {
        stream.once('open', () => resolve());
        stream.once('error', reject);
      });
      return stream as Readable;
    },
    async remove(key) {
      await rm(pathOf(key), { force: true });
    },
    async *list(prefix) {
      // Keys are at most three levels deep: f/<id>, p/<upload>/<part>.
      async function* walk(dir: string, rel: string): AsyncGenerator<StoredObject> {
        const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
        for (const entry of entries) {
          const key = rel ? `${rel}/${entry.name}` : entry.name;
          if (key === 'tmp') continue;
          if (entry.isDirectory()) yield* walk(path.join(dir, entry.name), key);
          else if (entry.isFile() && key.startsWith(prefix)) {
            const info = await stat(path.join(dir, entry.name)).catch(() => null);
            if (info) yield { key, size: info.size, modifiedAt: info.mtimeMs };
          }
        }
      }
      const top = prefix.split('/')[0] ?? '';
      yield* walk(path.join(root, top), top);
    },
    async sweepIncomplete(olderThanMs) {
      const cutoff = Date.now() - olderThanMs;
      let removed = 0;
      for (const name of await readdir(tmp).catch(() => [] as string[])) {
        const file = path.join(tmp, name);
        const info = await stat(file).catch(() => null);
        // An upload in progress writes all the time; an old untouched temp file is a crash's.
        if (info && info.mtimeMs < cutoff && (await unlink(file).then(() => true, () => false))) removed++;
      }
      return removed;
    },
    close: async () => undefined,
  };
}
