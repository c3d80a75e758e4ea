/**
 * `/files`: uploads (wx.uploadFile), downloads (wx.downloadFile, <image src> through signed
 * links), deletion and listing, and resumable uploads for big files. Bytes go to the file
 * storage first and the row to the store after, so a row always has its bytes; bytes without a
 * row (a crash between the two, a failed delete) are swept.
 */
import { operations } from './schemas.js';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ActiveSession, SessionService } from '../auth/index.js';
import { requireSession } from '../auth/index.js';
import type { AppConfig, FilesConfig } from '../config/index.js';
import { AppError, type Clock, type Logger } from '../core/index.js';
import { extendRequestDeadline, parseRange, readJsonBody, Router, sendJson, type HttpContext, type Service } from '../http/index.js';
import type { Store } from '../store/index.js';
import { ingest } from './ingest.js';
import { receiveMultipart } from './multipart.js';
import { createFileRecords, type FileRecord, type FileRecords, type UploadRecord } from './records.js';
import { cleanName, KNOWN_TYPES } from './sniff.js';
import { filesMetrics, type FilesMetrics } from './metrics.js';
import type { FileStorage } from './storage.js';

const ID = /^[a-f0-9]{32}$/;
/** Bytes without a row younger than this are left alone: their row may be on its way. */
export const ORPHAN_AGE_MS = 3_600_000;
/**
 * A local temp file untouched this long belongs to no upload: a live one is written to all the
 * time, and a stalled one is cut by the listener's idle timeout (60 s) well before.
 */
export const LOCAL_TEMP_AGE_MS = 2 * 60_000;
export const SWEEP_INTERVAL_MS = 10 * 60_000;
/**
 * A refused upload's remaining body is read and dropped while it keeps coming (nginx's lingering
 * close: lingering_timeout 5 s, lingering_time 30 s), so that the client reads the answer before
 * the connection is cut; cutting while it still sends makes its kernel discard the answer (a reset).
 */
const LINGER_IDLE_MS = 5_000;
const LINGER_MAX_MS = 30_000;

export interface FilesDeps {
  config: FilesConfig;
  apps: ReadonlyMap<string, AppConfig>;
  store: Store;
  storage: FileStorage;
  sessions: SessionService;
  /** The server's secret key (signed links are HMACs under a key derived from it). */
  secretKey: Buffer;
  clock: Clock;
  logger: Logger;
  /** Bytes in and out and refusals (docs/metrics.md). */
  metrics?: FilesMetrics;
}

export interface FilesService {
  service: Service;
  /** The internal API's file routes (business services look files up and delete them). */
  registerInternal(router: Router): void;
  records: FileRecords;
  /** Deletes a file (row, then bytes); false when there is no such file (the admin console). */
  remove(id: string): Promise<boolean>;
  /** Removes expired uploads, crash leftovers and bytes without a row. */
  sweep(): Promise<{ uploads: number; incomplete: number; orphans: number }>;
  start(): void;
  /**
   * The server is shutting down: uploads and parts still receiving their body are answered 503
   * SHUTTING_DOWN (Connection: close) with their bytes removed, and new ones are refused, so the
   * listeners' drain ends with an answer for each instead of a cut connection.
   */
  drain(): void;
  close(): Promise<void>;
}

export function createFilesService(deps: FilesDeps): FilesService {
  const { config, storage, sessions, clock, logger } = deps;
  const records = createFileRecords(deps.store);
  const counts = deps.metrics ?? filesMetrics();
  /** Counts what a route refuses, then lets the error go on to be answered. */
  const counted = (handler: (ctx: HttpContext) => Promise<void>) => async (ctx: HttpContext) => {
    try {
      await handler(ctx);
    } catch (error) {
      counts.refused(error);
      throw error;
    }
  };
  const allowed = new Set(config.types);
  const linkKey = createHmac('sha256', deps.secretKey).update('minigate file link v1').digest();
  const timers: NodeJS.Timeout[] = [];
  /** One per upload or part request in progress, aborted by drain(). */
  const receiving = new Set<AbortController>();
  let draining = false;
  const shuttingDown = () => new AppError('SHUTTING_DOWN');
  const newId = () => randomBytes(16).toString('hex');

  const maxFileSize = (appid: string) => deps.apps.get(appid)?.files?.maxFileSize ?? config.maxFileSize;
  const quotaOf = (appid: string) => deps.apps.get(appid)?.files?.quota ?? config.quota;

  const session = (ctx: HttpContext): Promise<ActiveSession> => requireSession(sessions, ctx.req);

  async function owned(ctx: HttpContext, id: string): Promise<{ me: ActiveSession; file: FileRecord }> {
    const me = await session(ctx);
    const file = ID.test(id) ? await records.get(id) : null;
    if (!file || file.appid !== me.appid) throw new AppError('FILE_NOT_FOUND');
    if (file.openid !== me.openid) throw new AppError('FILE_FORBIDDEN');
    return { me, file };
  }

  const origin = (ctx: HttpContext) => `${ctx.client.scheme}://${ctx.client.host}`;
  const baseUrl = (ctx: HttpContext) => `${origin(ctx)}${config.path}`;

  const describe = (ctx: HttpContext, file: FileRecord) => describeWith(`${baseUrl(ctx)}/${file.id}`, file);

  function describeWith(url: string, file: FileRecord) {
    return {
      id: file.id,
      url,
      size: file.size,
      sha256: file.sha256,
      contentType: file.contentType,
      name: file.name,
      access: file.access,
      createdAt: file.createdAt,
      ...(Object.keys(file.meta).length ? { meta: file.meta } : {}),
    };
  }

  const linkSignature = (id: string, exp: number) => createHmac('sha256', linkKey).update(`${id}.${exp}`).digest('base64url');

  /** A signed link's path and end for a `ttl` asked in seconds (files.linkTtl when not given, never beyond). */
  function signedPath(file: FileRecord, ttl: unknown): { path: string; expiresAt: number } {
    const ttlS = ttl === undefined ? config.linkTtl / 1000 : Number(ttl);
    if (!(Number.isInteger(ttlS) && ttlS >= 1 && ttlS * 1000 <= config.linkTtl)) throw new AppError('BAD_REQUEST', { message: `ttl: seconds, 1 to ${config.linkTtl / 1000} (files.linkTtl).` });
    const exp = Math.floor(clock.now() / 1000) + ttlS;
    return { path: `${config.path}/${file.id}?exp=${exp}&sig=${linkSignature(file.id, exp)}`, expiresAt: exp * 1000 };
  }

  function linkValid(id: string, query: URLSearchParams): boolean {
    const exp = Number(query.get('exp'));
    const sig = Buffer.from(query.get('sig') ?? '');
    const want = Buffer.from(linkSignature(id, exp));
    return Number.isSafeInteger(exp) && exp * 1000 > clock.now() && sig.length === want.length && timingSafeEqual(sig, want);
  }

  /** The access an upload asks for (form field or JSON `access`); files.access when it does not say. */
  function accessOf(asked: unknown): 'private' | 'public' {
    if (asked === undefined || asked === '') return config.access;
    if (asked !== 'private' && asked !== 'public') throw new AppError('BAD_REQUEST', { message: 'access: private or public.' });
    return asked;
  }

  async function roomLeft(me: ActiveSession): Promise<number> {
    const quota = quotaOf(me.appid);
    if (quota === undefined) return Number.POSITIVE_INFINITY;
    return Math.max(0, quota - (await records.usage(me.appid, me.openid)));
  }

  /** After an answer to a body not read to its end: read and drop a little more, then cut (nginx's lingering close). */
  function lingerThenClose(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('connection', 'close');
    // After a `Connection: close` answer Node destroys the socket once the answer is written
    // (destroySoon), which resets a client still sending: only our half is closed here, and the
    // timers below end the rest.
    const socket = req.socket as typeof req.socket & { destroySoon?: () => void };
    if (!req.complete) socket.destroySoon = () => socket.end();
    res.once('finish', () => {
      if (req.complete) return;
      const cut = () => req.socket.destroy();
      const idle = setTimeout(cut, LINGER_IDLE_MS).unref();
      const longest = setTimeout(cut, LINGER_MAX_MS).unref();
      const done = () => (clearTimeout(idle), clearTimeout(longest));
      req.on('data', () => idle.refresh());
      req.once('end', done);
      req.socket.once('close', done);
      req.resume();
    });
  }

  // ---- upload (wx.uploadFile) ---------------------------------------------------------------

  /**
   * A body route: whatever it throws — a refused session as much as a limit — leaves a body
   * that may be large and unread, so the connection is closed after the answer, not drained.
   */
  const bodyRoute = (handler: (ctx: HttpContext, signal: AbortSignal) => Promise<void>) => async (ctx: HttpContext) => {
    extendRequestDeadline(ctx.req, config.uploadTimeout);
    const reading = new AbortController();
    receiving.add(reading);
    try {
      if (draining) throw shuttingDown();
      await handler(ctx, reading.signal);
    } catch (error) {
      lingerThenClose(ctx.req, ctx.res);
      throw error;
    } finally {
      receiving.delete(reading);
    }
  };

  async function upload(ctx: HttpContext, signal: AbortSignal): Promise<void> {
    const me = await session(ctx);
    const room = await roomLeft(me);
    const id = newId();
    const key = `f/${id}`;
    const limit = maxFileSize(me.appid);
    let stored = false;
    let file: FileRecord;
    try {
      const received = await receiveMultipart(
        ctx.req,
        { field: config.field, maxFileSize: Math.min(limit, room), maxFields: config.maxFields, maxFieldSize: config.maxFieldSize, maxParts: config.maxParts, maxHeaderPairs: config.maxHeaderPairs },
        async (stream, maxBytes) => {
          const got = await ingest(stream, storage.writer(key), {
            types: allowed,
            maxBytes,
            tooLarge: () =>
              maxBytes < limit
                ? new AppError('FILE_QUOTA_EXCEEDED', { message: `This user has ${room} bytes of quota left.` })
                : new AppError('FILE_TOO_LARGE', { message: `Files may be up to ${limit} bytes.` }),
          });
          stored = true;
          return got;
        },
        signal,
      );
      const { file: got, filename, fields } = received;
      const { access: askedAccess, ...meta } = fields;
      file = {
        id,
        appid: me.appid,
        openid: me.openid,
        name: cleanName(filename, got.type),
        contentType: got.type.mime,
        size: got.size,
        sha256: got.sha256,
        storageKey: key,
        access: accessOf(askedAccess),
        meta,
        createdAt: clock.now(),
      };
      await records.add(file);
    } catch (error) {
      // The file part may have been complete (and stored) when a later part, a limit, the
      // closing boundary or the row failed: its bytes go before the answer, not at a sweep.
      if (stored) await removeBytes(key);
      if (error instanceof AppError && error.code === 'FILE_TOO_LARGE' && room < limit) throw new AppError('FILE_QUOTA_EXCEEDED', { message: `This user has ${room} bytes of quota left.` });
      throw error;
    }
    counts.bytesIn(file.size);
    logger.info({ file: id, appid: me.appid, openid: me.openid, size: file.size, type: file.contentType }, 'files: uploaded');
    sendJson(ctx.res, 201, describe(ctx, file));
  }

  /** The row after the bytes; if the row cannot be written, the bytes go (no orphan kept on purpose). */
  async function commit(file: FileRecord): Promise<void> {
    try {
      await records.add(file);
    } catch (error) {
      await removeBytes(file.storageKey);
      throw error;
    }
  }

  /** Removes bytes no row will point to; if the storage fails now, the sweep takes them later. */
  async function removeBytes(key: string): Promise<void> {
    await storage.remove(key).catch((error: unknown) => logger.warn({ key, err: (error as Error).message }, 'files: bytes of a refused upload not removed; the sweep will'));
  }

  // ---- download (wx.downloadFile, signed links) --------------------------------------------

  async function download(ctx: HttpContext): Promise<void> {
    const id = ctx.params.id ?? '';
    const query = new URLSearchParams(ctx.query);
    const file = ID.test(id) ? await records.get(id) : null;
    const signed = query.has('sig');
    if (signed && !linkValid(id, query)) throw new AppError('FILE_LINK_INVALID');
    if (!file) throw new AppError('FILE_NOT_FOUND');
    if (!signed && file.access === 'private') {
      const me = await session(ctx);
      if (me.appid !== file.appid || me.openid !== file.openid) throw new AppError('FILE_FORBIDDEN');
    }
    await send(ctx, file, signed ? Number(query.get('exp')) * 1000 : undefined);
  }

  async function send(ctx: HttpContext, file: FileRecord, linkExpiresAt?: number): Promise<void> {
    const { req, res } = ctx;
    const etag = `"${file.sha256}"`;
    const type = KNOWN_TYPES.get(file.contentType);
    const media = type?.media ?? false;
    res.setHeader('content-type', file.contentType);
    res.setHeader('etag', etag);
    res.setHeader('accept-ranges', 'bytes');
    res.setHeader('x-content-type-options', 'nosniff');
    // Nothing served from here runs as a page, whatever a browser thinks it is.
    res.setHeader('content-security-policy', "default-src 'none'; sandbox");
    res.setHeader('content-disposition', `${media ? 'inline' : 'attachment'}; ${dispositionName(file.name)}`);
    res.setHeader(
      'cache-control',
      file.access === 'public'
        ? 'public, max-age=31536000, immutable' // an id's bytes never change
        : linkExpiresAt
          ? `private, max-age=${Math.max(0, Math.floor((linkExpiresAt - clock.now()) / 1000))}`
          : 'private, no-cache',
    );
    const ifNoneMatch = req.headers['if-none-match'];
    if (ifNoneMatch && ifNoneMatch.split(',').some((t) => t.trim() === etag || t.trim() === `W/${etag}` || t.trim() === '*')) {
      res.writeHead(304);
      res.end();
      return;
    }
    let range: { start: number; end: number } | undefined;
    const ifRange = req.headers['if-range'];
    if (req.headers.range && (ifRange === undefined || ifRange === etag)) {
      const parsed = parseRange(req.headers.range, file.size);
      if (parsed === 'unsatisfiable') {
        res.setHeader('content-range', `bytes */${file.size}`);
        throw new AppError('RANGE_NOT_SATISFIABLE');
      }
      if (parsed) range = { start: parsed[0], end: parsed[1] };
    }
    let body;
    try {
      body = req.method === 'HEAD' || file.size === 0 ? null : await storage.read(file.storageKey, range);
    } catch (error) {
      if ((error as { code?: string }).code === 'NOT_FOUND') {
        logger.error({ file: file.id, key: file.storageKey }, 'files: a file row has no bytes in the storage');
        throw new AppError('FILE_NOT_FOUND');
      }
      throw new AppError('STORAGE_UNAVAILABLE', { cause: error });
    }
    if (range) {
      res.setHeader('content-range', `bytes ${range.start}-${range.end}/${file.size}`);
      res.setHeader('content-length', range.end - range.start + 1);
      res.writeHead(206);
    } else {
      res.setHeader('content-length', file.size);
      res.writeHead(200);
    }
    if (!body) {
      res.end();
      return;
    }
    const sent = range ? range.end - range.start + 1 : file.size;
    await pipeline(body, res).then(
      () => counts.bytesOut(sent),
      () => res.destroy(), // the client went away: nothing to tell
    );
  }

  // ---- resumable uploads ---------------------------------------------------------------------

  const { resumable } = config;

  async function ownUpload(ctx: HttpContext): Promise<{ me: ActiveSession; upload: UploadRecord }> {
    const me = await session(ctx);
    const id = ctx.params.uid ?? '';
    const upload = ID.test(id) ? await records.getUpload(id) : null;
    if (!upload || upload.expiresAt <= clock.now() || upload.appid !== me.appid || upload.openid !== me.openid) throw new AppError('UPLOAD_NOT_FOUND');
    return { me, upload };
  }

  async function createUpload(ctx: HttpContext): Promise<void> {
    const me = await session(ctx);
    const body = await readJsonBody(ctx.req);
    const size = body.size === undefined ? null : Number(body.size);
    if (size !== null && !(Number.isSafeInteger(size) && size > 0)) throw new AppError('BAD_REQUEST', { message: 'size: the file size in bytes.' });
    if (size !== null && size > resumable.maxSize) throw new AppError('FILE_TOO_LARGE', { message: `Resumable uploads may be up to ${resumable.maxSize} bytes.` });
    if (size !== null && size > (await roomLeft(me))) throw new AppError('FILE_QUOTA_EXCEEDED');
    const meta = body.meta ?? {};
    if (typeof meta !== 'object' || Array.isArray(meta) || Object.values(meta).some((v) => typeof v !== 'string') || JSON.stringify(meta).length > config.maxFields * config.maxFieldSize) {
      throw new AppError('BAD_REQUEST', { message: 'meta: an object of short strings.' });
    }
    const now = clock.now();
    const upload: UploadRecord = {
      id: newId(),
      appid: me.appid,
      openid: me.openid,
      name: typeof body.name === 'string' ? body.name.slice(0, 255) : '',
      size,
      access: accessOf(body.access),
      meta: meta as Record<string, string>,
      createdAt: now,
      expiresAt: now + resumable.expiry,
    };
    await records.addUpload(upload);
    sendJson(ctx.res, 201, { id: upload.id, maxPartSize: resumable.maxPartSize, maxParts: resumable.maxParts, expiresAt: upload.expiresAt });
  }

  async function putPart(ctx: HttpContext, signal: AbortSignal): Promise<void> {
    const { upload } = await ownUpload(ctx);
    const n = Number(ctx.params.n);
    if (!Number.isInteger(n) || n < 1 || n > resumable.maxParts) throw new AppError('BAD_REQUEST', { message: `Parts are numbered 1 to ${resumable.maxParts}.` });
    const declared = Number(ctx.req.headers['content-length'] ?? NaN);
    const tooLarge = () => new AppError('FILE_TOO_LARGE', { message: `Parts may be up to ${resumable.maxPartSize} bytes.` });
    if (declared > resumable.maxPartSize) throw tooLarge();
    // A new key per attempt: a part sent twice never overwrites bytes another request is reading.
    const key = `p/${upload.id}/${n}-${randomBytes(6).toString('hex')}`;
    const part = await ingest(bodyOf(ctx.req, signal), storage.writer(key), { types: null, maxBytes: resumable.maxPartSize, tooLarge });
    let replaced: string | null;
    try {
      replaced = await records.putPart(upload.id, { n, size: part.size, sha256: part.sha256, storageKey: key }, clock.now());
    } catch (error) {
      await removeBytes(key);
      throw error;
    }
    if (replaced) await storage.remove(replaced).catch(() => undefined);
    counts.bytesIn(part.size);
    sendJson(ctx.res, 200, { n, size: part.size, sha256: part.sha256 });
  }

  async function uploadStatus(ctx: HttpContext): Promise<void> {
    const { upload } = await ownUpload(ctx);
    const parts = await records.parts(upload.id);
    sendJson(ctx.res, 200, {
      id: upload.id,
      name: upload.name,
      size: upload.size,
      expiresAt: upload.expiresAt,
      parts: parts.map((p) => ({ n: p.n, size: p.size, sha256: p.sha256 })),
    });
  }

  async function complete(ctx: HttpContext): Promise<void> {
    const { me, upload } = await ownUpload(ctx);
    const body = await readJsonBody(ctx.req);
    if (typeof body.sha256 !== 'string' || !/^[a-f0-9]{64}$/i.test(body.sha256)) throw new AppError('BAD_REQUEST', { message: 'sha256: the whole file\'s SHA-256, in hex.' });
    const owner = `complete-${randomBytes(6).toString('hex')}`;
    const lock = `files:upload:${upload.id}`;
    if (!(await deps.store.lockAcquire(lock, owner, 120_000, clock.now()))) throw new AppError('UPLOAD_INCOMPLETE', { message: 'This upload is being completed by another request.' });
    try {
      const parts = await records.parts(upload.id);
      const missing: number[] = [];
      const last = parts.length ? parts[parts.length - 1]!.n : 0;
      const have = new Set(parts.map((p) => p.n));
      for (let i = 1; i <= last && missing.length < 20; i++) if (!have.has(i)) missing.push(i);
      if (last === 0 || missing.length) throw new AppError('UPLOAD_INCOMPLETE', { message: last === 0 ? 'No parts were sent.' : `Missing parts: ${missing.join(', ')}.` });
      const total = parts.reduce((sum, p) => sum + p.size, 0);
      if (upload.size !== null && total !== upload.size) throw new AppError('UPLOAD_INCOMPLETE', { message: `The parts make ${total} bytes; the upload was created for ${upload.size}.` });
      if (total > resumable.maxSize) throw new AppError('FILE_TOO_LARGE', { message: `Resumable uploads may be up to ${resumable.maxSize} bytes.` });
      if (total > (await roomLeft(me))) throw new AppError('FILE_QUOTA_EXCEEDED');
      const id = newId();
      const key = `f/${id}`;
      async function* assembled() {
        for (const part of parts) yield* (await storage.read(part.storageKey)) as AsyncIterable<Buffer>;
      }
      const got = await ingest(assembled(), storage.writer(key), { types: allowed, maxBytes: resumable.maxSize, tooLarge: () => new AppError('FILE_TOO_LARGE') });
      if (got.sha256 !== body.sha256.toLowerCase()) {
        await storage.remove(key).catch(() => undefined);
        throw new AppError('UPLOAD_CHECKSUM_MISMATCH', { message: `The parts hash to ${got.sha256}.` });
      }
      const file: FileRecord = {
        id,
        appid: me.appid,
        openid: me.openid,
        name: cleanName(upload.name, got.type),
        contentType: got.type.mime,
        size: got.size,
        sha256: got.sha256,
        storageKey: key,
        access: upload.access,
        meta: upload.meta,
        createdAt: clock.now(),
      };
      await commit(file);
      await dropUpload(upload.id);
      logger.info({ file: id, upload: upload.id, parts: parts.length, size: got.size }, 'files: resumable upload completed');
      sendJson(ctx.res, 201, describe(ctx, file));
    } finally {
      await deps.store.lockRelease(lock, owner).catch(() => undefined);
    }
  }

  async function dropUpload(id: string): Promise<void> {
    const keys = await records.removeUpload(id);
    await Promise.all(keys.map((k) => storage.remove(k).catch(() => undefined)));
  }

  // ---- routes ------------------------------------------------------------------------------

  const router = new Router();
  router.route('POST', '/', operations.upload, counted(bodyRoute(upload)));
  router.route('GET', '/', operations.list, async (ctx) => {
    const me = await session(ctx);
    const query = new URLSearchParams(ctx.query);
    const limit = Math.min(100, Math.max(1, Number(query.get('limit') ?? 20) || 20));
    const before = query.has('before') ? Number(query.get('before')) : undefined;
    const files = await records.list(me.appid, me.openid, limit, Number.isFinite(before) ? before : undefined);
    sendJson(ctx.res, 200, { files: files.map((f) => describe(ctx, f)), ...(files.length === limit ? { next: files[files.length - 1]!.createdAt } : {}) });
  });
  router.route('POST', '/uploads', operations.createUpload, counted(createUpload));
  router.route('GET', '/uploads/:uid', operations.uploadStatus, uploadStatus);
  router.route('PUT', '/uploads/:uid/parts/:n', operations.putPart, counted(bodyRoute(putPart)));
  router.route('POST', '/uploads/:uid/complete', operations.complete, counted(complete));
  router.route('DELETE', '/uploads/:uid', operations.abort, async (ctx) => {
    const { upload } = await ownUpload(ctx);
    await dropUpload(upload.id);
    sendJson(ctx.res, 200, { aborted: true });
  });
  router.route('GET', '/:id', operations.download, counted(download));
  router.route('DELETE', '/:id', operations.remove, async (ctx) => {
    const { file } = await owned(ctx, ctx.params.id ?? '');
    await records.remove(file.id);
    // A failed removal leaves bytes without a row, which the sweep takes later.
    await storage.remove(file.storageKey).catch((error: unknown) => logger.warn({ file: file.id, err: (error as Error).message }, 'files: bytes not removed; the sweep will'));
    sendJson(ctx.res, 200, { deleted: true });
  });
  router.route('POST', '/:id/link', operations.link, async (ctx) => {
    const { file } = await owned(ctx, ctx.params.id ?? '');
    const body = ctx.req.headers['content-length'] === '0' || !ctx.req.headers['content-type'] ? {} : await readJsonBody(ctx.req);
    const link = signedPath(file, body.ttl);
    sendJson(ctx.res, 200, { url: `${origin(ctx)}${link.path}`, expiresAt: link.expiresAt });
  });

  // ---- sweeping ----------------------------------------------------------------------------

  async function sweep() {
    let uploads = 0;
    for (const id of await records.expiredUploads(clock.now(), 500)) {
      await dropUpload(id);
      uploads++;
    }
    // S3 multipart uploads are judged by when they began, and big ones take a while.
    const incomplete = await storage.sweepIncomplete(storage.kind === 'local' ? LOCAL_TEMP_AGE_MS : ORPHAN_AGE_MS);
    let orphans = 0;
    const cutoff = Date.now() - ORPHAN_AGE_MS;
    const check = async (prefix: string, idOf: (key: string) => string, exists: (ids: string[]) => Promise<Set<string>>) => {
      let batch: { key: string; id: string }[] = [];
      const flush = async () => {
        const found = await exists([...new Set(batch.map((b) => b.id))]);
        for (const b of batch) {
          if (!found.has(b.id)) {
            await storage.remove(b.key);
            orphans++;
          }
        }
        batch = [];
      };
      for await (const object of storage.list(prefix)) {
        if (object.modifiedAt > cutoff) continue;
        batch.push({ key: object.key, id: idOf(object.key) });
        if (batch.length >= 200) await flush();
      }
      await flush();
    };
    await check('f/', (key) => key.slice(2), (ids) => records.existing(ids));
    await check('p/', (key) => key.split('/')[1] ?? '', (ids) => records.existingUploads(ids));
    if (uploads || incomplete || orphans) logger.info({ uploads, incomplete, orphans }, 'files: swept');
    return { uploads, incomplete, orphans };
  }

  function registerInternal(internal: Router): void {
    const found = async (id: string) => {
      const file = ID.test(id) ? await records.get(id) : null;
      if (!file) throw new AppError('FILE_NOT_FOUND');
      return file;
    };
    // No request host here: the file's path, for the service to put behind its own host.
    const facts = (file: FileRecord) => ({ ...describeWith(`${config.path}/${file.id}`, file), appid: file.appid, openid: file.openid });
    internal.route('GET', '/v1/files/:id', operations.internalGet, async (ctx) => sendJson(ctx.res, 200, facts(await found(ctx.params.id ?? ''))));
    internal.route('DELETE', '/v1/files/:id', operations.internalRemove, async (ctx) => {
      const file = await found(ctx.params.id ?? '');
      await records.remove(file.id);
      await storage.remove(file.storageKey).catch(() => undefined);
      sendJson(ctx.res, 200, { deleted: true });
    });
    internal.route('POST', '/v1/files/:id/link', operations.internalLink, async (ctx) => {
      const file = await found(ctx.params.id ?? '');
      const body = await readJsonBody(ctx.req);
      sendJson(ctx.res, 200, signedPath(file, body.ttl));
    });
  }

  return {
    service: { name: 'files', defaultPath: config.path, router },
    registerInternal,
    records,
    async remove(id) {
      const file = await records.remove(id);
      if (!file) return false;
      // A failed removal leaves bytes without a row, which the sweep takes later.
      await storage.remove(file.storageKey).catch((error: unknown) => logger.warn({ file: file.id, err: (error as Error).message }, 'files: bytes not removed; the sweep will'));
      return true;
    },
    sweep,
    start() {
      const run = () => sweep().catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'files: sweep failed'));
      void run();
      const timer = setInterval(run, SWEEP_INTERVAL_MS);
      timer.unref();
      timers.push(timer);
    },
    drain() {
      draining = true;
      for (const reading of receiving) reading.abort(shuttingDown());
    },
    async close() {
      for (const timer of timers) clearInterval(timer);
      await storage.close();
    },
  };
}

/**
 * A request body as chunks, failing with UPLOAD_ABORTED when the client goes away mid-body and
 * with `signal`'s reason when it is aborted while the body is still arriving (shutting down).
 * Read through a PassThrough: stopping early unpipes it and leaves the request (and its socket)
 * alone, so the refusal can still be answered.
 */
function bodyOf(req: IncomingMessage, signal: AbortSignal): AsyncIterable<Buffer> {
  const body = new PassThrough();
  req.pipe(body);
  const stop = (error: unknown) => {
    req.unpipe(body);
    body.destroy(error as Error);
  };
  const onAbort = () => {
    if (!req.complete) stop(signal.reason);
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  body.once('close', () => signal.removeEventListener('abort', onAbort));
  req.once('error', () => stop(new AppError('UPLOAD_ABORTED')));
  req.once('close', () => {
    if (!req.complete) stop(new AppError('UPLOAD_ABORTED'));
  });
  return body;
}

/** `filename` (ASCII fallback) and `filename*` (UTF-8, RFC 6266) for Content-Disposition. */
function dispositionName(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  return `filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}
