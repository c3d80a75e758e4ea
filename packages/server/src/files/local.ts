/**
 * File bytes in a local directory (default `<dataDir>/files`, outside anything served). An
 * object is written to `tmp/` under a random name, fsync'd, then renamed into place, so a
 * crash leaves a temp file (swept later) and never a half file under a real key. Keys are
 * minigate's own (`f/<hex>`, `p/<hex>/<n>-<hex>`) and checked again here: nothing a client
 * sends becomes a path.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { AppError } from '../core/index.js';
import type { FileStorage, ObjectWriter, StoredObject } from './storage.js';

/**
 * Bytes a writer gathers into one writev. One batch is written (in libuv's pool) while the next
 * fills; a writer holds at most about twice this. Measured on a 2-vCPU VM with 1 GiB uploads:
 * 512 KiB and 256 KiB batches cost the pool thread 0.5 s of CPU per GiB (the kernel copying them
 * into the page cache), 1 MiB batches 1.0-1.5 s and 4 MiB more still (presumably a batch that
 * no longer fits in the CPU's cache is copied from memory). Each batch also costs the main thread
 * a round trip to the pool (about 50 us here), which is why not smaller still.
 */
export const WRITE_BUFFER_BYTES = 512 * 1024;

/** How long a batch that is not full waits for more before it is written anyway. */
const IDLE_FLUSH_MS = 10;

/**
 * Bytes written between fdatasyncs issued during an upload (not awaited; one at a time). The page
 * cache holds what has not yet been synced, so without them the fsync at commit wrote the whole file
 * to disk after its last byte arrived (about 0.33 s per GiB here); with them it writes the last
 * few MiB. The fsync at commit is what makes the file durable, as before.
 */
const SYNC_AHEAD_BYTES = 32 * 1024 * 1024;

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
    let handle: FileHandle | undefined;
    let closed = false;
    let failure: unknown;
    let size = 0;
    let done = false;
    // Chunks waiting for the next write, and the write on its way (at most one: each goes at the
    // file's current end).
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let writing: Promise<void> | undefined;
    // A batch started but not full goes anyway after a short wait: a client that pauses (a slow
    // phone) does not leave its bytes in memory, and a pause is the moment a write costs nothing.
    let idleTimer: NodeJS.Timeout | undefined;
    // Bytes written since the last early fdatasync, and that sync while it runs.
    let unsynced = 0;
    let syncing: Promise<unknown> | undefined;
    const onIdle = () => {
      idleTimer = undefined;
      if (done || failure || !batchBytes) return;
      if (writing) void writing.then(onIdle);
      else flush();
    };
    const ready = mkdir(tmp, { recursive: true })
      .then(() => open(temp, 'wx'))
      .then((opened) => {
        handle = opened;
      });
    const fail = (error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') return new AppError('STORAGE_FULL');
      return error instanceof AppError ? error : new AppError('STORAGE_UNAVAILABLE', { cause: error });
    };
    /** Writes every byte of `buffers`: writev may write fewer than asked (a disk filling up), the rest goes again and gets the error. */
    async function writeAll(buffers: Buffer[], bytes: number): Promise<void> {
      while (bytes > 0) {
        const { bytesWritten } = await handle!.writev(buffers);
        if (bytesWritten === bytes) return;
        if (bytesWritten === 0) throw Object.assign(new Error('writev wrote nothing'), { code: 'EIO' });
        bytes -= bytesWritten;
        let skip = bytesWritten;
        while (skip >= buffers[0]!.length) skip -= buffers.shift()!.length;
        buffers[0] = buffers[0]!.subarray(skip);
      }
    }
    /** Sends the batch to disk; the next one fills meanwhile (fs.WriteStream waited instead for its whole buffer to drain, leaving the disk thread idle while this thread filled the next one, and the other way round). */
    const flush = () => {
      clearTimeout(idleTimer);
      idleTimer = undefined;
      const buffers = batch;
      const bytes = batchBytes;
      batch = [];
      batchBytes = 0;
      writing = writeAll(buffers, bytes).then(
        () => {
          writing = undefined;
          unsynced += bytes;
          if (unsynced >= SYNC_AHEAD_BYTES && !syncing) {
            unsynced = 0;
            // Its error is the upload's: Linux reports a write-back error to one fsync of a
            // file description only, so the one at commit would not see it again.
            syncing = handle!.datasync().then(
              () => (syncing = undefined),
              (error: unknown) => {
                failure ??= error;
                syncing = undefined;
              },
            );
          }
        },
        (error: unknown) => {
          failure ??= error;
          writing = undefined;
        },
      );
    };
    const closeHandle = async () => {
      if (closed || !handle) return;
      closed = true;
      await handle.close();
    };
    return {
      async write(chunk) {
        if (!handle) await ready.catch((error: unknown) => Promise.reject(fail(error)));
        if (failure) throw fail(failure);
        size += chunk.length;
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes < WRITE_BUFFER_BYTES) {
          idleTimer ??= setTimeout(onIdle, IDLE_FLUSH_MS).unref();
          return;
        }
        // A full batch: it goes as soon as the one before it is on disk (back-pressure meanwhile).
        if (writing) await writing;
        if (failure) throw fail(failure);
        if (!writing && batchBytes >= WRITE_BUFFER_BYTES) flush();
      },
      async commit() {
        try {
          await ready;
          // Whatever is still buffered, after the write in flight (the idle timer may start one too).
          while (!failure && (writing || batchBytes)) {
            if (writing) await writing;
            else flush();
          }
          if (syncing) await syncing;
          if (failure) throw failure;
          // fsync, close: the bytes are on disk before the name says they are there.
          await handle!.sync();
          await closeHandle();
          await mkdir(path.dirname(final), { recursive: true });
          await rename(temp, final);
          await fsyncDir(path.dirname(final));
          done = true;
          return size;
        } catch (error) {
          await closeHandle().catch(() => undefined);
          await unlink(temp).catch(() => undefined);
          throw fail(error);
        }
      },
      async abort() {
        if (done) return;
        done = true;
        clearTimeout(idleTimer);
        await ready.catch(() => undefined);
        while (writing) await writing;
        if (syncing) await syncing;
        batch = [];
        await closeHandle().catch(() => undefined);
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
