/**
 * `minigate export` and `minigate import`: move a deployment between stores (SQLite, MySQL/MariaDB,
 * PostgreSQL) with its secret key. The file format is in move-format.ts. The export holds the
 * secret key and every session, so it is written 0600, whole to a temporary name and then renamed.
 * The import runs in one transaction: a bad line, a count that does not match the header, or a
 * failing insert leaves the target as it was.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, linkSync, openSync, closeSync, readFileSync, renameSync, unlinkSync, writeSync, fsyncSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { decodeSecretKey, FINGERPRINT_META_KEY, keyFingerprint, SECRET_KEY_FILE } from '../auth/index.js';
import type { Config } from '../config/index.js';
import { createLogger, makePrivateDir } from '../core/index.js';
import type { Kysely } from 'kysely';
import { createStore, MIGRATION_NAMES, redactUrl, type Store } from '../store/index.js';
import { FORMAT, FORMAT_VERSION, Header, Line, TABLE_NAMES, TABLES, type TableName } from './move-format.js';

/** Rows read or inserted per statement. */
const BATCH = 200;

/** An operator-facing refusal: printed as is, exit 1. */
export class MoveError extends Error {}

function minigateVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** The secret key this deployment uses, read without creating one. */
function currentSecretKey(config: Config): { key: Buffer; origin: string } {
  if (config.secretKey) return { key: decodeSecretKey(config.secretKey), origin: 'config secretKey' };
  const file = path.join(config.dataDir, SECRET_KEY_FILE);
  try {
    return { key: decodeSecretKey(readFileSync(file, 'utf8')), origin: file };
  } catch (error) {
    throw new MoveError(`cannot read the secret key ${file}: ${(error as Error).message} (run export where the deployment's dataDir is)`);
  }
}

function openStore(config: Config): Promise<Store> {
  return createStore({ url: config.store, logger: createLogger({ level: 'warn' }) });
}

/** The rows of `table` an export carries. */
function rowsOf(db: Kysely<any>, table: TableName, now: number) {
  let query = db.selectFrom(table);
  if (table === 'sessions') query = query.where('expires_at', '>', now);
  if (table === 'outbox') query = query.where('status', '=', 'pending');
  return query;
}

/** Each table's primary key: pages of rows in a stable order. */
const ORDER: Record<TableName, string[]> = { users: ['appid', 'openid'], sessions: ['token_hash'], files: ['id'], kv: ['key'], subscribe_grants: ['appid', 'openid', 'template_id'], admin_users: ['name'], audit_log: ['id'], outbox: ['id'], pay_orders: ['mchid', 'out_trade_no'], pay_refunds: ['mchid', 'out_refund_no'], pay_notifications: ['mchid', 'id'], relay_names: ['name'] };

export interface ExportResult {
  header: Header;
}

export async function exportDeployment(config: Config, out: string, options: { force?: boolean } = {}): Promise<ExportResult> {
  if (existsSync(out) && !options.force) throw new MoveError(`${out} exists; choose another name or pass --force`);
  const secret = currentSecretKey(config);
  const store = await openStore(config);
  const temporary = path.join(path.dirname(path.resolve(out)), `.${path.basename(out)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    const fingerprint = await store.meta(FINGERPRINT_META_KEY);
    if (fingerprint !== null && fingerprint !== keyFingerprint(secret.key)) {
      throw new MoveError(`the secret key (${secret.origin}) is not the one ${store.redactedUrl} was set up with`);
    }
    const report = await store.migrate();
    const now = Date.now();
    fd = openSync(temporary, 'wx', 0o600);
    const file = fd;
    const header = await store.db.transaction().execute(async (trx) => {
      const db = trx as unknown as Kysely<any>;
      const counts = {} as Record<TableName, number>;
      for (const table of TABLE_NAMES) {
        const row = await rowsOf(db, table, now).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
        counts[table] = Number(row.n);
      }
      const header: Header = {
        format: FORMAT,
        formatVersion: FORMAT_VERSION,
        minigate: minigateVersion(),
        migration: report.current.at(-1) ?? '',
        source: store.dialect,
        exportedAt: now,
        counts,
        secretKey: secret.key.toString('hex'),
      };
      writeSync(file, `${JSON.stringify(header)}\n`);
      for (const table of TABLE_NAMES) {
        for (let offset = 0; ; offset += BATCH) {
          let page = rowsOf(db, table, now).selectAll();
          for (const column of ORDER[table]) page = page.orderBy(column);
          const rows = await page.limit(BATCH).offset(offset).execute();
          if (rows.length) writeSync(file, rows.map((row) => `${JSON.stringify({ table, row: TABLES[table].parse(row) })}\n`).join(''));
          if (rows.length < BATCH) break;
        }
      }
      return header;
    });
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temporary, out);
    return { header };
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    if (existsSync(temporary)) unlinkSync(temporary);
    throw error;
  } finally {
    await store.close();
  }
}

async function readHeader(file: string): Promise<Header> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  try {
    for await (const line of lines) return parseHeader(line, file);
  } finally {
    lines.close();
  }
  throw new MoveError(`${file} is empty`);
}

function parseHeader(line: string, file: string): Header {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new MoveError(`${file} is not a minigate export (line 1 is not JSON)`);
  }
  if ((value as { format?: unknown })?.format !== FORMAT) throw new MoveError(`${file} is not a minigate export`);
  const version = (value as { formatVersion?: unknown }).formatVersion;
  if (version !== FORMAT_VERSION) throw new MoveError(`${file} has export format ${String(version)}; this minigate reads format ${FORMAT_VERSION}`);
  const parsed = Header.safeParse(value);
  if (!parsed.success) throw new MoveError(`${file}: bad header: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  if (!MIGRATION_NAMES.includes(parsed.data.migration)) {
    throw new MoveError(
      `${file} comes from a newer minigate (${parsed.data.minigate}, migration ${parsed.data.migration} is unknown here); upgrade minigate before importing`,
    );
  }
  return parsed.data;
}

/** Rows in the tables an import fills; the fingerprint alone does not count (a store started once). */
async function rowCount(store: Store): Promise<number> {
  let total = 0;
  for (const table of TABLE_NAMES) {
    const row = await store.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    total += Number(row.n);
  }
  return total;
}

export interface ImportResult {
  header: Header;
  /** The key file written, when the config names no secretKey. */
  keyFile?: string;
}

export async function importDeployment(config: Config, file: string, options: { force?: boolean } = {}): Promise<ImportResult> {
  const header = await readHeader(file);
  const key = Buffer.from(header.secretKey, 'hex');
  // Where the key goes: it must already be in the config, or it is written to the data dir.
  let keyFile: string | undefined;
  if (config.secretKey) {
    if (!decodeSecretKey(config.secretKey).equals(key)) {
      throw new MoveError('the config sets secretKey to another key than the exported one; set it to the source deployment\'s key, or remove it so import writes the key file');
    }
  } else {
    keyFile = path.join(config.dataDir, SECRET_KEY_FILE);
    if (existsSync(keyFile)) {
      const present = decodeSecretKey(readFileSync(keyFile, 'utf8'));
      if (present.equals(key)) keyFile = undefined;
      else if (!options.force) throw new MoveError(`${keyFile} holds another key than the exported one; pass --force to replace it (the old file is kept beside it)`);
    }
  }
  const store = await openStore(config);
  try {
    await store.migrate();
    const existing = await rowCount(store);
    if (existing > 0 && !options.force) {
      throw new MoveError(`${store.redactedUrl} is not empty (${existing} rows); import into an empty store, or pass --force to replace its users, sessions, files, kv and outbox`);
    }
    const seen = Object.fromEntries(TABLE_NAMES.map((t) => [t, 0])) as Record<TableName, number>;
    await store.db.transaction().execute(async (trx) => {
      if (existing > 0) {
        for (const table of [...TABLE_NAMES].reverse()) await trx.deleteFrom(table).execute();
      }
      const pending: Partial<Record<TableName, Record<string, unknown>[]>> = {};
      const flush = async (table: TableName) => {
        const rows = pending[table];
        if (rows?.length) await trx.insertInto(table).values(rows as never).execute();
        pending[table] = [];
      };
      let order = 0;
      let number = 0;
      const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
      for await (const line of lines) {
        number++;
        if (number === 1 || line === '') continue;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          throw new MoveError(`${file}:${number}: not JSON`);
        }
        const parsed = Line.safeParse(value);
        if (!parsed.success) throw new MoveError(`${file}:${number}: not a row line`);
        const { table } = parsed.data;
        const index = TABLE_NAMES.indexOf(table);
        if (index < order) throw new MoveError(`${file}:${number}: a ${table} row after the ${TABLE_NAMES[order]} rows`);
        for (; order < index; order++) await flush(TABLE_NAMES[order]!);
        const row = TABLES[table].safeParse(parsed.data.row);
        if (!row.success) {
          throw new MoveError(`${file}:${number}: bad ${table} row: ${row.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
        }
        (pending[table] ??= []).push(row.data);
        seen[table]++;
        if (pending[table]!.length >= BATCH) await flush(table);
      }
      for (const table of TABLE_NAMES) await flush(table);
      for (const table of TABLE_NAMES) {
        if (seen[table] !== header.counts[table]) {
          throw new MoveError(`${file}: ${seen[table]} ${table} rows, the header says ${header.counts[table]} (a cut-off file?); nothing imported`);
        }
      }
      await trx.deleteFrom('meta').where('key', '=', FINGERPRINT_META_KEY).execute();
      await trx.insertInto('meta').values({ key: FINGERPRINT_META_KEY, value: keyFingerprint(key) }).execute();
    });
  } finally {
    await store.close();
  }
  if (keyFile) writeKeyFile(config.dataDir, keyFile, key);
  return { header, keyFile };
}

/** Writes the key 0600 under a temporary name and moves it into place; an old key is kept beside it. */
function writeKeyFile(dataDir: string, file: string, key: Buffer): void {
  makePrivateDir(dataDir);
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(temporary, `${key.toString('hex')}\n`, { mode: 0o600 });
  if (existsSync(file)) linkSync(file, `${file}.replaced-${Date.now()}`);
  renameSync(temporary, file);
}

export function describeCounts(header: Header): string {
  return TABLE_NAMES.map((t) => `${header.counts[t]} ${t}`).join(', ');
}

export { redactUrl };
