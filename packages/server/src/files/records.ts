/**
 * Files and resumable uploads in the store (the same queries on SQLite, MySQL/MariaDB and
 * PostgreSQL). Every call is a store operation: bounded in time, failures as AppErrors.
 */
import type { Selectable } from 'kysely';
import type { Database, Store } from '../store/index.js';
import { storeOp } from '../store/index.js';

export interface FileRecord {
  id: string;
  appid: string;
  openid: string;
  name: string;
  contentType: string;
  size: number;
  sha256: string;
  storageKey: string;
  access: 'private' | 'public';
  meta: Record<string, string>;
  createdAt: number;
}

export interface UploadRecord {
  id: string;
  appid: string;
  openid: string;
  name: string;
  size: number | null;
  access: 'private' | 'public';
  meta: Record<string, string>;
  createdAt: number;
  expiresAt: number;
}

export interface PartRecord {
  n: number;
  size: number;
  sha256: string;
  storageKey: string;
}

export interface FileRecords {
  add(file: FileRecord): Promise<void>;
  get(id: string): Promise<FileRecord | null>;
  /** Deletes the row; the record when there was one. */
  remove(id: string): Promise<FileRecord | null>;
  /** A user's files, newest first; `before` (a createdAt) pages. */
  list(appid: string, openid: string, limit: number, before?: number): Promise<FileRecord[]>;
  /** Bytes a user's files take. */
  usage(appid: string, openid: string): Promise<number>;
  /** Which of these ids have a row (for the orphan sweep). */
  existing(ids: string[]): Promise<Set<string>>;

  addUpload(upload: UploadRecord): Promise<void>;
  getUpload(id: string): Promise<UploadRecord | null>;
  /** Records a part; a part sent again replaces the earlier one. Returns the key it replaced, if any. */
  putPart(uploadId: string, part: PartRecord, now: number): Promise<string | null>;
  parts(uploadId: string): Promise<PartRecord[]>;
  /** Deletes the upload and its part rows; the part keys, for removing the bytes. */
  removeUpload(id: string): Promise<string[]>;
  /** Uploads past their expiry. */
  expiredUploads(now: number, limit: number): Promise<string[]>;
  /** Which of these upload ids have a row (for the orphan sweep). */
  existingUploads(ids: string[]): Promise<Set<string>>;
}

const parseMeta = (text: string | null): Record<string, string> => (text ? (JSON.parse(text) as Record<string, string>) : {});

function toFile(row: Selectable<Database['files']>): FileRecord {
  return {
    id: row.id,
    appid: row.appid,
    openid: row.openid,
    name: row.name,
    contentType: row.content_type,
    size: Number(row.size),
    sha256: row.sha256,
    storageKey: row.storage_key,
    access: row.access,
    meta: parseMeta(row.meta),
    createdAt: Number(row.created_at),
  };
}

function toUpload(row: Selectable<Database['uploads']>): UploadRecord {
  return {
    id: row.id,
    appid: row.appid,
    openid: row.openid,
    name: row.name,
    size: row.size === null ? null : Number(row.size),
    access: row.access,
    meta: parseMeta(row.meta),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
  };
}

export function createFileRecords(store: Store): FileRecords {
  const db = store.db;
  return {
    add: (file) =>
      storeOp('fileAdd', async () => {
        await db
          .insertInto('files')
          .values({
            id: file.id,
            appid: file.appid,
            openid: file.openid,
            name: file.name,
            content_type: file.contentType,
            size: file.size,
            sha256: file.sha256,
            storage_key: file.storageKey,
            access: file.access,
            meta: Object.keys(file.meta).length ? JSON.stringify(file.meta) : null,
            created_at: file.createdAt,
          })
          .execute();
      }),
    get: (id) =>
      storeOp('fileGet', async () => {
        const row = await db.selectFrom('files').selectAll().where('id', '=', id).executeTakeFirst();
        return row ? toFile(row) : null;
      }),
    remove: (id) =>
      storeOp('fileRemove', () =>
        db.transaction().execute(async (trx) => {
          const row = await trx.selectFrom('files').selectAll().where('id', '=', id).executeTakeFirst();
          if (!row) return null;
          const deleted = await trx.deleteFrom('files').where('id', '=', id).executeTakeFirst();
          return Number(deleted.numDeletedRows) > 0 ? toFile(row) : null;
        }),
      ),
    list: (appid, openid, limit, before) =>
      storeOp('fileList', async () => {
        let query = db.selectFrom('files').selectAll().where('appid', '=', appid).where('openid', '=', openid);
        if (before !== undefined) query = query.where('created_at', '<', before);
        const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
        return rows.map(toFile);
      }),
    usage: (appid, openid) =>
      storeOp('fileUsage', async () => {
        const row = await db
          .selectFrom('files')
          .select((eb) => eb.fn.sum<number | string | null>('size').as('total'))
          .where('appid', '=', appid)
          .where('openid', '=', openid)
          .executeTakeFirst();
        return Number(row?.total ?? 0);
      }),
    existing: (ids) =>
      storeOp('fileExisting', async () => {
        if (ids.length === 0) return new Set();
        const rows = await db.selectFrom('files').select('id').where('id', 'in', ids).execute();
        return new Set(rows.map((r) => r.id));
      }),

    addUpload: (upload) =>
      storeOp('uploadAdd', async () => {
        await db
          .insertInto('uploads')
          .values({
            id: upload.id,
            appid: upload.appid,
            openid: upload.openid,
            name: upload.name,
            size: upload.size,
            access: upload.access,
            meta: Object.keys(upload.meta).length ? JSON.stringify(upload.meta) : null,
            created_at: upload.createdAt,
            expires_at: upload.expiresAt,
          })
          .execute();
      }),
    getUpload: (id) =>
      storeOp('uploadGet', async () => {
        const row = await db.selectFrom('uploads').selectAll().where('id', '=', id).executeTakeFirst();
        return row ? toUpload(row) : null;
      }),
    putPart: (uploadId, part, now) =>
      storeOp('uploadPutPart', async () => {
        // Optimistic, without a transaction: a part sent twice at once (a retry racing the
        // original) must end with one row and the other key handed back for removal, on every
        // database (a select-delete-insert transaction deadlocks on InnoDB and loses a key on
        // PostgreSQL).
        const values = { size: part.size, sha256: part.sha256, storage_key: part.storageKey, created_at: now };
        let lastError: unknown;
        for (let attempt = 0; attempt < 8; attempt++) {
          const current = await db.selectFrom('upload_parts').select('storage_key').where('upload_id', '=', uploadId).where('n', '=', part.n).executeTakeFirst();
          if (!current) {
            try {
              await db.insertInto('upload_parts').values({ upload_id: uploadId, n: part.n, ...values }).execute();
              return null;
            } catch (error) {
              lastError = error; // inserted by the other request meanwhile: replace that one
              continue;
            }
          }
          const updated = await db
            .updateTable('upload_parts')
            .set(values)
            .where('upload_id', '=', uploadId)
            .where('n', '=', part.n)
            .where('storage_key', '=', current.storage_key)
            .executeTakeFirst();
          if (Number(updated.numUpdatedRows) > 0) return current.storage_key;
        }
        throw lastError ?? new Error('the part kept changing under this request');
      }),
    parts: (uploadId) =>
      storeOp('uploadParts', async () => {
        const rows = await db.selectFrom('upload_parts').selectAll().where('upload_id', '=', uploadId).orderBy('n').execute();
        return rows.map((r) => ({ n: Number(r.n), size: Number(r.size), sha256: r.sha256, storageKey: r.storage_key }));
      }),
    removeUpload: (id) =>
      storeOp('uploadRemove', () =>
        db.transaction().execute(async (trx) => {
          const parts = await trx.selectFrom('upload_parts').select('storage_key').where('upload_id', '=', id).execute();
          await trx.deleteFrom('upload_parts').where('upload_id', '=', id).execute();
          await trx.deleteFrom('uploads').where('id', '=', id).execute();
          return parts.map((p) => p.storage_key);
        }),
      ),
    expiredUploads: (now, limit) =>
      storeOp('uploadsExpired', async () => {
        const rows = await db.selectFrom('uploads').select('id').where('expires_at', '<', now).limit(limit).execute();
        return rows.map((r) => r.id);
      }),
    existingUploads: (ids) =>
      storeOp('uploadExisting', async () => {
        if (ids.length === 0) return new Set();
        const rows = await db.selectFrom('uploads').select('id').where('id', 'in', ids).execute();
        return new Set(rows.map((r) => r.id));
      }),
  };
}
