import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { AppError } from '../core/index.js';
import { ingest } from './ingest.js';
import { createLocalStorage } from './local.js';
import { receiveMultipart } from './multipart.js';

const root = mkdtempSync(path.join(tmpdir(), 'mg-multipart-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const storage = createLocalStorage(root);
const B = 'X-Bound4ry-0123456789abcdef';
const head = Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
const tail = Buffer.from(`\r\n--${B}\r\nContent-Disposition: form-data; name="album"\r\n\r\nholiday\r\n--${B}--\r\n`);
const LIMIT = 100_000;
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A request carrying `body` in pieces of `size` bytes (the first `first` bytes long), as a socket would deliver it. */
function request(body: Buffer, size: number, first = size): IncomingMessage {
  const pieces = [body.subarray(0, first)];
  for (let at = first; at < body.length; at += size) pieces.push(body.subarray(at, at + size));
  const req = Object.assign(Readable.from(pieces), {
    headers: { 'content-type': `multipart/form-data; boundary=${B}`, 'content-length': String(body.length) },
    complete: false,
  });
  req.on('end', () => (req.complete = true));
  return req as unknown as IncomingMessage;
}

/** The file part of `req` stored (types not checked), as the upload route does. */
const receive = (req: IncomingMessage, key: string) =>
  receiveMultipart(req, { field: 'file', maxFileSize: LIMIT, maxFields: 4, maxFieldSize: 100, maxParts: 8, maxHeaderPairs: 8 }, (stream, maxBytes) =>
    ingest(stream, storage.writer(key), { types: null, maxBytes, tooLarge: () => new AppError('FILE_TOO_LARGE') }),
  );

describe('receiveMultipart into local storage', () => {
  it('takes a file exactly at the limit, whether it ends inside a piece or at a piece boundary', async () => {
    const data = randomBytes(LIMIT);
    const body = Buffer.concat([head, data, tail]);
    for (const [size, first] of [[16_384, 16_384], [16_384, head.length + LIMIT], [7, 7]] as const) {
      const got = await receive(request(body, size, first), 'f/00000001');
      expect([size, first, got.file.size, got.file.sha256, got.fields]).toEqual([size, first, LIMIT, sha(data), { album: 'holiday' }]);
    }
  });

  it('refuses a file one byte over the limit with FILE_TOO_LARGE, keeping nothing', async () => {
    const body = Buffer.concat([head, randomBytes(LIMIT + 1), tail]);
    for (const [size, first] of [[16_384, 16_384], [16_384, head.length + LIMIT], [16_384, head.length + LIMIT + 1]] as const) {
      await expect(receive(request(body, size, first), 'f/00000002')).rejects.toMatchObject({ code: 'FILE_TOO_LARGE' });
    }
    expect(readdirSync(path.join(root, 'tmp'))).toEqual([]);
    await expect(storage.read('f/00000002')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('finds the delimiter after the file wherever a piece boundary cuts it', async () => {
    const data = randomBytes(50_000);
    const body = Buffer.concat([head, data, tail]);
    const delimiter = `\r\n--${B}`.length;
    // The first piece ends from just before the delimiter to just after it, every byte in between.
    for (let cut = -2; cut <= delimiter + 2; cut++) {
      const got = await receive(request(body, 16_384, head.length + data.length + cut), 'f/00000003');
      expect([cut, got.file.size, got.file.sha256]).toEqual([cut, data.length, sha(data)]);
    }
  });
});
