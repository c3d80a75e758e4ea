/**
 * The console's own tables (migration 0008): admin users, their console sessions and the audit
 * log; and the reads of other tables the console shows (users, sessions, files). Every call is a
 * store operation: bounded in time, failures as AppErrors.
 */
import { sql, type Selectable } from 'kysely';
import { storeOp, type Database, type Store } from '../store/index.js';

export interface AdminUser {
  name: string;
  passwordHash: string;
  /** Sealed with the secret key; null without TOTP. */
  totpSecret: string | null;
  createdAt: number;
}

export interface AdminSession {
  tokenHash: string;
  name: string;
  csrf: string;
  address: string | null;
  createdAt: number;
  lastSeenAt: number;
}

/** An audit_log row as it is stored (same columns, same names). */
export type AuditEntry = Selectable<Database['audit_log']>;

export interface UserRow {
  appid: string;
  openid: string;
  unionid: string | null;
  firstSeenAt: number;
  lastSeenAt: number;
}

export interface SessionRow {
  id: string;
  appid: string;
  openid: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  revokedAt: number | null;
  revokedReason: string | null;
  clientAddress: string | null;
  userAgent: string | null;
}

export interface FileRow {
  id: string;
  appid: string;
  openid: string;
  name: string;
  contentType: string;
  size: number;
  access: string;
  createdAt: number;
}

/** LIKE patterns take the operator's text literally ('!' escapes: a backslash means different things in MySQL and PostgreSQL literals). */
const likeLiteral = (text: string) => text.replace(/[!%_]/g, (c) => `!${c}`);

export function createAdminRecords(store: Store) {
  const db = store.db;
  const n = (v: unknown) => Number(v);
  return {
    addUser: (user: AdminUser) =>
      storeOp('adminAddUser', async () => {
        await db.insertInto('admin_users').values({ name: user.name, password_hash: user.passwordHash, totp_secret: user.totpSecret, created_at: user.createdAt }).execute();
      }),
    getUser: (name: string) =>
      storeOp('adminGetUser', async () => {
        const row = await db.selectFrom('admin_users').selectAll().where('name', '=', name).executeTakeFirst();
        return row ? { name: row.name, passwordHash: row.password_hash, totpSecret: row.totp_secret, createdAt: n(row.created_at) } : null;
      }),
    listUsers: () =>
      storeOp('adminListUsers', async () =>
        (await db.selectFrom('admin_users').select(['name', 'totp_secret', 'created_at']).orderBy('name').execute()).map((r) => ({
          name: r.name,
          totp: r.totp_secret !== null,
          createdAt: n(r.created_at),
        })),
      ),
    /** Also ends the user's console sessions (foreign key, and explicitly for SQLite without it). */
    removeUser: (name: string) =>
      storeOp('adminRemoveUser', () =>
        db.transaction().execute(async (trx) => {
          await trx.deleteFrom('admin_sessions').where('name', '=', name).execute();
          const result = await trx.deleteFrom('admin_users').where('name', '=', name).executeTakeFirst();
          return n(result.numDeletedRows) > 0;
        }),
      ),
    /** A new password ends the user's console sessions. */
    setPassword: (name: string, passwordHash: string, totpSecret?: string | null) =>
      storeOp('adminSetPassword', () =>
        db.transaction().execute(async (trx) => {
          const result = await trx
            .updateTable('admin_users')
            .set({ password_hash: passwordHash, ...(totpSecret !== undefined ? { totp_secret: totpSecret } : {}) })
            .where('name', '=', name)
            .executeTakeFirst();
          await trx.deleteFrom('admin_sessions').where('name', '=', name).execute();
          return n(result.numUpdatedRows) > 0;
        }),
      ),

    addSession: (s: AdminSession) =>
      storeOp('adminAddSession', async () => {
        await db
          .insertInto('admin_sessions')
          .values({ token_hash: s.tokenHash, name: s.name, csrf: s.csrf, address: s.address, created_at: s.createdAt, last_seen_at: s.lastSeenAt })
          .execute();
      }),
    getSession: (tokenHash: string) =>
      storeOp('adminGetSession', async () => {
        const row = await db.selectFrom('admin_sessions').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
        return row
          ? { tokenHash: row.token_hash.trim(), name: row.name, csrf: row.csrf.trim(), address: row.address, createdAt: n(row.created_at), lastSeenAt: n(row.last_seen_at) }
          : null;
      }),
    touchSession: (tokenHash: string, now: number) =>
      storeOp('adminTouchSession', async () => {
        await db.updateTable('admin_sessions').set({ last_seen_at: now }).where('token_hash', '=', tokenHash).execute();
      }),
    removeSession: (tokenHash: string) =>
      storeOp('adminRemoveSession', async () => {
        await db.deleteFrom('admin_sessions').where('token_hash', '=', tokenHash).execute();
      }),
    purgeSessions: (idleBefore: number) =>
      storeOp('adminPurgeSessions', async () => n((await db.deleteFrom('admin_sessions').where('last_seen_at', '<', idleBefore).executeTakeFirst()).numDeletedRows)),

    audit: (entry: AuditEntry) =>
      storeOp('auditAdd', async () => {
        await db.insertInto('audit_log').values(entry).execute();
      }),
    auditRecent: (limit: number) =>
      storeOp('auditRecent', async () =>
        (await db.selectFrom('audit_log').selectAll().orderBy('at', 'desc').orderBy('id').limit(limit).execute()).map((r) => ({ ...r, at: n(r.at) })),
      ),
    purgeAudit: (before: number) =>
      storeOp('auditPurge', async () => n((await db.deleteFrom('audit_log').where('at', '<', before).executeTakeFirst()).numDeletedRows)),

    /** Users whose openid or unionid contains `text` (or the latest users when empty). */
    findUsers: (text: string, limit: number) =>
      storeOp('adminFindUsers', async () => {
        let query = db.selectFrom('users').select(['appid', 'openid', 'unionid', 'first_seen_at', 'last_seen_at']).orderBy('last_seen_at', 'desc').limit(limit);
        if (text) {
          const pattern = `%${likeLiteral(text)}%`;
          query = query.where((eb) => eb.or([eb('openid', 'like', sql<string>`${pattern} escape '!'`), eb('unionid', 'like', sql<string>`${pattern} escape '!'`)]));
        }
        return (await query.execute()).map((r) => ({ appid: r.appid, openid: r.openid, unionid: r.unionid, firstSeenAt: n(r.first_seen_at), lastSeenAt: n(r.last_seen_at) }));
      }),
    userSessions: (appid: string, openid: string, limit: number) =>
      storeOp('adminUserSessions', async () =>
        (
          await db
            .selectFrom('sessions')
            .selectAll()
            .where('appid', '=', appid)
            .where('openid', '=', openid)
            .orderBy('created_at', 'desc')
            .limit(limit)
            .execute()
        ).map(
          (r): SessionRow => ({
            id: r.token_hash.trim(),
            appid: r.appid,
            openid: r.openid,
            createdAt: n(r.created_at),
            lastSeenAt: n(r.last_seen_at),
            expiresAt: n(r.expires_at),
            revokedAt: r.revoked_at === null ? null : n(r.revoked_at),
            revokedReason: r.revoked_reason,
            clientAddress: r.client_address ?? null,
            userAgent: r.user_agent ?? null,
          }),
        ),
      ),
    /** Counts for the overview: logins since `since`, sessions live at `now`. */
    sessionCounts: (since: number, now: number) =>
      storeOp('adminSessionCounts', async () => {
        const logins = await db.selectFrom('sessions').select((eb) => eb.fn.countAll().as('c')).where('created_at', '>=', since).executeTakeFirstOrThrow();
        const open = await db
          .selectFrom('sessions')
          .select((eb) => eb.fn.countAll().as('c'))
          .where('revoked_at', 'is', null)
          .where('expires_at', '>', now)
          .executeTakeFirstOrThrow();
        return { loginsSince: n(logins.c), open: n(open.c) };
      }),
    /** Clears client address and user agent of sessions created before `before` (admin.clientInfoRetention). */
    clearClientInfo: (before: number) =>
      storeOp('adminClearClientInfo', async () =>
        n(
          (
            await db
              .updateTable('sessions')
              .set({ client_address: null, user_agent: null })
              .where('created_at', '<', before)
              .where((eb) => eb.or([eb('client_address', 'is not', null), eb('user_agent', 'is not', null)]))
              .executeTakeFirst()
          ).numUpdatedRows,
        ),
      ),

    files: (owner: string, limit: number) =>
      storeOp('adminFiles', async () => {
        let query = db.selectFrom('files').select(['id', 'appid', 'openid', 'name', 'content_type', 'size', 'access', 'created_at']).orderBy('created_at', 'desc').limit(limit);
        if (owner) query = query.where('openid', '=', owner);
        return (await query.execute()).map(
          (r): FileRow => ({ id: r.id, appid: r.appid, openid: r.openid, name: r.name, contentType: r.content_type, size: n(r.size), access: r.access, createdAt: n(r.created_at) }),
        );
      }),
    storageUsed: () =>
      storeOp('adminStorageUsed', async () => {
        const row = await db.selectFrom('files').select((eb) => [eb.fn.countAll().as('c'), eb.fn.sum<number>('size').as('bytes')]).executeTakeFirstOrThrow();
        return { files: n(row.c), bytes: n(row.bytes ?? 0) };
      }),
  };
}

export type AdminRecords = ReturnType<typeof createAdminRecords>;
