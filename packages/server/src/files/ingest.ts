/**
 * Taking file bytes in: a stream of chunks goes to a storage writer while its SHA-256 and size
 * are counted and its type is read from the first bytes (nothing is written before the type is
 * known to be allowed). Any failure aborts the writer, so nothing half-written stays.
 */
import { createHash } from 'node:crypto';
import { AppError } from '../core/index.js';
import { sniff, SNIFF_BYTES, type FileType } from './sniff.js';
import type { ObjectWriter } from './storage.js';

export interface Ingested {
  size: number;
  sha256: string;
  type: FileType;
}

export interface IngestOptions {
  /** Allowed MIME types; null takes any bytes (parts of a resumable upload, checked when assembled). */
  types: ReadonlySet<string> | null;
  /** Most bytes allowed; `tooLarge` is thrown the moment the count passes it. */
  maxBytes: number;
  tooLarge: () => AppError;
}

const ANY: FileType = { mime: 'application/octet-stream', ext: ['bin'], media: false };

/** Copies `chunks` into `writer` (committed on success, aborted on any failure). */
export async function ingest(chunks: AsyncIterable<Buffer>, writer: ObjectWriter, options: IngestOptions): Promise<Ingested> {
  const hash = createHash('sha256');
  let size = 0;
  let head: Buffer[] | null = [];
  let headBytes = 0;
  let type: FileType | null = null;

  const decide = async () => {
    const first = Buffer.concat(head!);
    head = null;
    if (options.types) {
      type = sniff(first);
      if (!type || !options.types.has(type.mime)) {
        throw new AppError('FILE_TYPE_NOT_ALLOWED', {
          message: type ? `${type.mime} files are not accepted here (files.types).` : 'The content is not a type minigate recognises, whatever its name says.',
        });
      }
    } else type = sniff(first) ?? ANY;
    if (first.length) await writer.write(first);
  };

  try {
    for await (const chunk of chunks) {
      size += chunk.length;
      if (size > options.maxBytes) throw options.tooLarge();
      hash.update(chunk);
      if (head) {
        head.push(chunk);
        headBytes += chunk.length;
        if (headBytes >= SNIFF_BYTES) await decide();
      } else await writer.write(chunk);
    }
    if (head) {
      if (headBytes === 0) throw new AppError('UPLOAD_NO_FILE', { message: 'The file is empty.' });
      await decide();
    }
    await writer.commit();
    return { size, sha256: hash.digest('hex'), type: type! };
  } catch (error) {
    await writer.abort().catch(() => undefined);
    throw error;
  }
}
