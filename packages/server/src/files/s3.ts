/**
 * File bytes in S3-compatible object storage: AWS S3, Tencent COS, Aliyun OSS, MinIO (and
 * s3rver in the tests). Every key is `${prefix}${key}` in one bucket.
 *
 * Writes stream through `@aws-sdk/lib-storage`'s `Upload`: below one part (5 MiB) it becomes a
 * single PutObject, above it a multipart upload, so at most `queueSize` parts plus the one being
 * filled are held in memory per writer. An object becomes visible only when the PutObject or
 * CompleteMultipartUpload succeeds, which is what `commit()` waits for: bytes are durable before
 * the store row is written. A crash mid-upload leaves an unfinished multipart upload (never a
 * visible object); `sweepIncomplete` aborts those.
 */
import { Readable, PassThrough } from 'node:stream';
import { createRequire } from 'node:module';
import type * as ClientS3 from '@aws-sdk/client-s3';
import type * as LibStorage from '@aws-sdk/lib-storage';
import { AppError, type Logger } from '../core/index.js';
import type { FileStorage, ObjectWriter, StoredObject } from './storage.js';

export interface S3StorageOptions {
  /** e.g. `https://cos.ap-shanghai.myqcloud.com`; AWS's own endpoint for the region when absent. */
  endpoint?: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** `https://host/bucket/key` instead of `https://bucket.host/key` (MinIO, s3rver). */
  forcePathStyle: boolean;
  /** Prepended to every key: '' or e.g. 'minigate/'. */
  prefix: string;
  logger?: Logger;
}

/** lib-storage's minimum (S3 rejects smaller non-final parts). */
const PART_SIZE = 5 * 1024 * 1024;
/**
 * Parts uploaded at once per writer; memory per writer is about (QUEUE_SIZE + 1) × PART_SIZE plus
 * the garbage of parts already sent. With 2, a 1 GiB upload's RSS peak reached +72 MiB one run in
 * three (over the 64 MB the files issue allows); with 1 it stayed under +47 MiB at about the same speed.
 */
const QUEUE_SIZE = 1;
/** A connect that takes longer than this is a storage outage, not a slow network. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Only keys shaped like minigate's own (`f/…`, `p/…`) are swept, in case the bucket is shared. */
const OWN_KEY = /^[a-z]\/[^/]/;

/** The error's name, code and message in one line, for causes and log lines (never a secret). */
function describe(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return error.errors.map(describe).join('; ');
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const parts = [error.name !== 'Error' ? error.name : '', typeof code === 'string' ? code : '', status ? `HTTP ${status}` : '']
      .filter((part, index, all) => part && all.indexOf(part) === index)
      .join(' ');
    const message = error.message || '(no message)';
    return parts ? `${parts}: ${message}` : message;
  }
  return String(error);
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

function nameOf(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

function isNotFound(error: unknown): boolean {
  const name = nameOf(error);
  return name === 'NoSuchKey' || name === 'NotFound' || statusOf(error) === 404;
}

/** The service does not implement the request (s3rver has no ListMultipartUploads). */
function isUnsupported(error: unknown): boolean {
  const name = nameOf(error);
  const status = statusOf(error);
  return name === 'NotImplemented' || name === 'MethodNotAllowed' || status === 501 || status === 405;
}

/** Where the endpoint points, without any user info that could hold a secret. */
function endpointHost(endpoint: string | undefined): string | undefined {
  if (!endpoint) return undefined;
  try {
    const url = new URL(endpoint);
    return `${url.protocol}//${url.host}`;
  } catch {
    return '(unparsable endpoint)';
  }
}

// The AWS SDK takes about half a second to load, so it loads when S3 storage is created, not
// when the server starts. Both packages ship CommonJS: a require keeps this factory synchronous.
const require = createRequire(import.meta.url);

export function createS3Storage(options: S3StorageOptions): FileStorage {
  const { bucket, prefix, logger } = options;
  const { AbortMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } =
    require('@aws-sdk/client-s3') as typeof ClientS3;
  const { Upload } = require('@aws-sdk/lib-storage') as typeof LibStorage;
  const client = new S3Client({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    forcePathStyle: options.forcePathStyle,
    credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
    // Since 3.729 the SDK sends CRC32 checksums (x-amz-checksum-*, aws-chunked trailers) on
    // every upload and validates them on downloads by default ('WHEN_SUPPORTED'); Tencent COS,
    // Aliyun OSS, older MinIO and s3rver reject or mishandle those. 'WHEN_REQUIRED' restores the
    // old behaviour (checksums only where an operation demands one). Both option names are
    // checked against the installed @aws-sdk/client-s3 3.1169.0: `FlexibleChecksumsInputConfig`
    // in @aws-sdk/checksums, part of `S3ClientConfigType`; lib-storage also reads
    // `requestChecksumCalculation` to decide whether to ask for a CRC32 multipart upload.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Only the connect is bounded: a download may legitimately sit idle while a slow client reads.
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS },
  });
  const full = (key: string) => `${prefix}${key}`;
  const unavailable = (operation: string, key: string, error: unknown) =>
    new AppError('STORAGE_UNAVAILABLE', {
      cause: new Error(`S3 ${operation} of ${JSON.stringify(key)} in bucket ${JSON.stringify(bucket)} failed: ${describe(error)}`, {
        cause: error,
      }),
      details: { storage: 's3', operation, key },
    });

  logger?.debug(
    { endpoint: endpointHost(options.endpoint) ?? `aws:${options.region}`, bucket, prefix, forcePathStyle: options.forcePathStyle },
    's3 file storage',
  );

  function writer(key: string): ObjectWriter {
    const objectKey = full(key);
    // Fed by write(); lib-storage reads it into parts. Its buffer is the back-pressure point.
    const body = new PassThrough({ highWaterMark: 64 * 1024 });
    // A destroy with an error after lib-storage stopped reading must not become an uncaught 'error'.
    body.on('error', () => undefined);
    const upload = new Upload({
      client,
      params: { Bucket: bucket, Key: objectKey, Body: body, ContentType: 'application/octet-stream' },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      // On failure lib-storage sends AbortMultipartUpload itself, so no parts are left billed.
      leavePartsOnError: false,
    });
    let state: 'open' | 'committing' | 'committed' | 'aborted' = 'open';
    /** Why this writer cannot go on; the next write()/commit() rejects with it. */
    let failure: Error | undefined;
    let size = 0;
    let aborting: Promise<void> | undefined;
    // Started now, since nothing reads the body until done() runs. Never rejects: the outcome is
    // true when the object was written, false otherwise (with `failure` set).
    const outcome: Promise<boolean> = upload.done().then(
      () => true,
      (error: unknown) => {
        if (state === 'aborted') {
          // Expected; lib-storage's own AbortMultipartUpload may also have failed (s3rver has none).
          logger?.debug({ key, error: describe(error) }, 's3 upload aborted');
        } else {
          failure ??= unavailable('upload', key, error);
          logger?.warn({ key, error: describe(error) }, 's3 upload failed');
        }
        // Wakes a write() waiting for 'drain' that will never come.
        body.destroy();
        return false;
      },
    );

    // A plain Error: a write after commit()/abort() is a bug in the caller, not a storage fault.
    const closed = () => failure ?? new Error(`the S3 writer for ${key} is ${state}`);

    return {
      async write(chunk) {
        if (failure) throw failure;
        if (state !== 'open') throw closed();
        size += chunk.length;
        if (body.write(chunk)) return;
        await new Promise<void>((resolve, reject) => {
          const done = () => {
            body.off('drain', onDrain);
            body.off('close', onClose);
          };
          const onDrain = () => {
            done();
            resolve();
          };
          const onClose = () => {
            done();
            reject(closed());
          };
          body.on('drain', onDrain);
          body.on('close', onClose);
        });
      },
      async commit() {
        if (failure) throw failure;
        if (state !== 'open') throw closed();
        state = 'committing';
        body.end();
        if (!(await outcome)) throw closed();
        if (state !== 'committing') throw closed(); // aborted while completing
        state = 'committed';
        return size;
      },
      abort() {
        aborting ??= (async () => {
          state = 'aborted';
          failure ??= new Error(`the S3 writer for ${key} was aborted`);
          // Before commit: an error in the body makes lib-storage stop, skip the Complete and
          // abort the multipart upload (after its in-flight parts). After commit() started the
          // upload may still complete, and then the object is deleted below.
          if (!body.writableEnded) body.destroy(new Error('aborted'));
          if (await outcome) {
            await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey })).catch((error: unknown) => {
              // Left as an orphan without a store row; the orphan sweep removes it.
              logger?.warn({ key, error: describe(error) }, 's3 delete of an aborted object failed');
            });
          }
        })();
        return aborting;
      },
    };
  }

  return {
    kind: 's3',
    writer,

    async read(key, range) {
      let response;
      try {
        response = await client.send(
          new GetObjectCommand({
            Bucket: bucket,
            Key: full(key),
            ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
          }),
        );
      } catch (error) {
        if (isNotFound(error)) throw Object.assign(new Error(`no such object: ${key}`), { code: 'NOT_FOUND' });
        throw unavailable('read', key, error);
      }
      const stream: unknown = response.Body;
      if (!(stream instanceof Readable)) {
        throw unavailable('read', key, new Error('the response has no readable body'));
      }
      return stream;
    },

    async remove(key) {
      try {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: full(key) }));
      } catch (error) {
        if (isNotFound(error)) return;
        throw unavailable('delete', key, error);
      }
    },

    async *list(keyPrefix): AsyncGenerator<StoredObject> {
      let token: string | undefined;
      do {
        let page;
        try {
          page = await client.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: full(keyPrefix), ...(token ? { ContinuationToken: token } : {}) }),
          );
        } catch (error) {
          throw unavailable('list', keyPrefix, error);
        }
        for (const item of page.Contents ?? []) {
          if (!item.Key?.startsWith(prefix)) continue;
          yield { key: item.Key.slice(prefix.length), size: item.Size ?? 0, modifiedAt: item.LastModified?.getTime() ?? 0 };
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    },

    async sweepIncomplete(olderThanMs) {
      const cutoff = Date.now() - olderThanMs;
      let aborted = 0;
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      do {
        let page;
        try {
          page = await client.send(
            new ListMultipartUploadsCommand({
              Bucket: bucket,
              Prefix: prefix || undefined,
              ...(keyMarker ? { KeyMarker: keyMarker } : {}),
              ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
            }),
          );
        } catch (error) {
          if (isUnsupported(error)) {
            logger?.debug({ error: describe(error) }, 's3 storage cannot list multipart uploads; nothing to sweep');
            return aborted;
          }
          throw unavailable('multipart listing', prefix, error);
        }
        for (const item of page.Uploads ?? []) {
          if (!item.Key || !item.UploadId || !item.Key.startsWith(prefix)) continue;
          if (!OWN_KEY.test(item.Key.slice(prefix.length))) continue;
          // Without a start time the upload could be in progress; leave it.
          if (!item.Initiated || item.Initiated.getTime() >= cutoff) continue;
          try {
            await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: item.Key, UploadId: item.UploadId }));
            aborted++;
          } catch (error) {
            // NoSuchUpload: it completed or was aborted meanwhile.
            if (nameOf(error) !== 'NoSuchUpload' && statusOf(error) !== 404) {
              logger?.warn({ key: item.Key.slice(prefix.length), error: describe(error) }, 's3 abort of a stale multipart upload failed');
            }
          }
        }
        if (page.IsTruncated) {
          keyMarker = page.NextKeyMarker;
          uploadIdMarker = page.NextUploadIdMarker;
        } else {
          keyMarker = undefined;
        }
      } while (keyMarker);
      return aborted;
    },

    async close() {
      client.destroy();
    },
  };
}
