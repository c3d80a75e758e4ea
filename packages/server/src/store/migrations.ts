/**
 * Migrations, the same on every database. Append new ones; never edit one that has shipped.
 * They run at start and by `minigate migrate`; Kysely's migrator takes a lock so that several
 * instances starting together migrate once.
 */
import { Migrator, type Kysely, type Migration, type MigrationResult } from 'kysely';

const migrations: Record<string, Migration> = {
  '0001_users_sessions': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('users')
        .addColumn('appid', 'varchar(32)', (c) => c.notNull())
        .addColumn('openid', 'varchar(128)', (c) => c.notNull())
        .addColumn('unionid', 'varchar(128)')
        .addColumn('profile', 'text')
        .addColumn('phone_number', 'varchar(32)')
        .addColumn('first_seen_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('users_pk', ['appid', 'openid'])
        .execute();
      await db.schema.createIndex('users_unionid').on('users').column('unionid').execute();

      await db.schema
        .createTable('sessions')
        .addColumn('token_hash', 'char(64)', (c) => c.primaryKey())
        .addColumn('appid', 'varchar(32)', (c) => c.notNull())
        .addColumn('openid', 'varchar(128)', (c) => c.notNull())
        .addColumn('unionid', 'varchar(128)')
        .addColumn('session_key', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('revoked_reason', 'varchar(32)')
        .addForeignKeyConstraint('sessions_user_fk', ['appid', 'openid'], 'users', ['appid', 'openid'], (fk) =>
          fk.onDelete('cascade'),
        )
        .execute();
      await db.schema.createIndex('sessions_user').on('sessions').columns(['appid', 'openid', 'created_at']).execute();
      await db.schema.createIndex('sessions_expires').on('sessions').column('expires_at').execute();

      await db.schema
        .createTable('meta')
        .addColumn('key', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0002_kv_locks': {
    async up(db: Kysely<any>) {
      // Small shared state (ACME accounts, certificates, challenge answers) and leases, for
      // features that must agree across instances sharing this database.
      await db.schema
        .createTable('kv')
        .addColumn('key', 'varchar(191)', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('locks')
        .addColumn('name', 'varchar(191)', (c) => c.primaryKey())
        .addColumn('owner', 'varchar(64)', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '0003_outbox': {
    async up(db: Kysely<any>) {
      // Deliveries to business webhooks (message pushes), written before WeChat gets its
      // "success" and sent by a worker with retries; (appid, dedup_key) drops WeChat's repeats.
      await db.schema
        .createTable('outbox')
        .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
        .addColumn('appid', 'varchar(32)', (c) => c.notNull())
        .addColumn('dedup_key', 'varchar(191)', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('delivered_at', 'bigint')
        .addColumn('last_error', 'varchar(255)')
        .addUniqueConstraint('outbox_dedup', ['appid', 'dedup_key'])
        .execute();
      await db.schema.createIndex('outbox_due').on('outbox').columns(['status', 'next_attempt_at']).execute();
    },
  },
  '0004_sessions_revoked_at': {
    async up(db: Kysely<any>) {
      // Every instance asks each second which sessions were just revoked, to close their WebSockets.
      await db.schema.createIndex('sessions_revoked_at').on('sessions').column('revoked_at').execute();
    },
  },
  '0005_files': {
    async up(db: Kysely<any>) {
      // Uploaded files: the bytes are in the file storage under storage_key; a row exists only
      // once they are durable there.
      await db.schema
        .createTable('files')
        .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
        .addColumn('appid', 'varchar(32)', (c) => c.notNull())
        .addColumn('openid', 'varchar(128)', (c) => c.notNull())
        .addColumn('name', 'varchar(255)', (c) => c.notNull())
        .addColumn('content_type', 'varchar(100)', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('sha256', 'char(64)', (c) => c.notNull())
        .addColumn('storage_key', 'varchar(191)', (c) => c.notNull())
        .addColumn('access', 'varchar(8)', (c) => c.notNull())
        .addColumn('meta', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('files_owner').on('files').columns(['appid', 'openid', 'created_at']).execute();

      // Resumable uploads and their parts (each part's bytes under its own storage key).
      await db.schema
        .createTable('uploads')
        .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
        .addColumn('appid', 'varchar(32)', (c) => c.notNull())
        .addColumn('openid', 'varchar(128)', (c) => c.notNull())
        .addColumn('name', 'varchar(255)', (c) => c.notNull())
        .addColumn('size', 'bigint')
        .addColumn('access', 'varchar(8)', (c) => c.notNull())
        .addColumn('meta', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('uploads_expires').on('uploads').column('expires_at').execute();
      await db.schema
        .createTable('upload_parts')
        .addColumn('upload_id', 'varchar(32)', (c) => c.notNull())
        .addColumn('n', 'integer', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('sha256', 'char(64)', (c) => c.notNull())
        .addColumn('storage_key', 'varchar(191)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('upload_parts_pk', ['upload_id', 'n'])
        .execute();
    },
  },
  '0006_used_tickets': {
    async up(db: Kysely<any>) {
      // Wafer tunnel tickets already used (without Redis): the primary key lets one of two
      // instances racing on the same ticket win; rows go once the ticket has expired.
      await db.schema
        .createTable('used_tickets')
        .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('used_tickets_expires').on('used_tickets').column('expires_at').execute();
    },
  },
  '0007_outbox_kind': {
    async up(db: Kysely<any>) {
      // The outbox carries more than pushes: each row names the kind of event, which says where it
      // goes. Rows from before were all message pushes.
      await db.schema
        .alterTable('outbox')
        .addColumn('kind', 'varchar(64)', (c) => c.notNull().defaultTo('push'))
        .execute();
    },
  },
  '0008_admin': {
    async up(db: Kysely<any>) {
      // The admin console: its users (password hash with its parameters; the TOTP secret sealed
      // with the deployment's secret key, as session keys are), its sessions (by token hash) and
      // the audit log of every write made through it.
      await db.schema
        .createTable('admin_users')
        .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('password_hash', 'varchar(255)', (c) => c.notNull())
        .addColumn('totp_secret', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('admin_sessions')
        .addColumn('token_hash', 'char(64)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(64)', (c) => c.notNull())
        .addColumn('csrf', 'char(64)', (c) => c.notNull())
        .addColumn('address', 'varchar(64)')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
        .addForeignKeyConstraint('admin_sessions_user_fk', ['name'], 'admin_users', ['name'], (fk) => fk.onDelete('cascade'))
        .execute();
      await db.schema
        .createTable('audit_log')
        .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'varchar(64)', (c) => c.notNull())
        .addColumn('action', 'varchar(64)', (c) => c.notNull())
        .addColumn('target', 'varchar(255)')
        .addColumn('address', 'varchar(64)')
        .addColumn('detail', 'text')
        .execute();
      await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();
    },
  },
  '0009_sessions_client_info': {
    async up(db: Kysely<any>) {
      // Where a mini program session logged in from, for the admin console (admin.recordClientInfo);
      // personal information, cleared after admin.clientInfoRetention.
      await db.schema.alterTable('sessions').addColumn('client_address', 'varchar(64)').execute();
      await db.schema.alterTable('sessions').addColumn('user_agent', 'varchar(512)').execute();
    },
  },
  '0010_subscribe_grants': {
    async up(db: Kysely<any>) {
      // Subscribe message grants per user and template, the sends made against them, and the
      // media checks waiting for their result push (docs/subscribe.md).
      await db.schema
        .createTable('subscribe_grants')
        .addColumn('appid', 'varchar(32)', (c) => c.notNull())
        .addColumn('openid', 'varchar(128)', (c) => c.notNull())
        .addColumn('template_id', 'varchar(128)', (c) => c.notNull())
        .addColumn('kind', 'varchar(16)', (c) => c.notNull())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('source', 'varchar(8)', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('subscribe_grants_pk', ['appid', 'openid', 'template_id'])
        .execute();
      await db.schema
        .createTable('subscribe_sends')
        .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
        .addColumn('appid', 'varchar(32)', (c) => c.notNull())
        .addColumn('openid', 'varchar(128)', (c) => c.notNull())
        .addColumn('template_id', 'varchar(128)', (c) => c.notNull())
        .addColumn('outcome', 'varchar(16)', (c) => c.notNull())
        .addColumn('msgid', 'varchar(32)')
        .addColumn('errcode', 'integer')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('subscribe_sends_user').on('subscribe_sends').columns(['appid', 'openid', 'created_at']).execute();
      await db.schema
        .createTable('media_checks')
        .addColumn('trace_id', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('appid', 'varchar(32)', (c) => c.notNull())
        .addColumn('openid', 'varchar(128)', (c) => c.notNull())
        .addColumn('media_url', 'text', (c) => c.notNull())
        .addColumn('media_type', 'integer', (c) => c.notNull())
        .addColumn('scene', 'integer', (c) => c.notNull())
        .addColumn('meta', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('result_at', 'bigint')
        .addColumn('suggest', 'varchar(16)')
        .addColumn('label', 'integer')
        .execute();
      await db.schema.createIndex('media_checks_created').on('media_checks').column('created_at').execute();
    },
  },
  '0011_relay_names': {
    async up(db: Kysely<any>) {
      // Relay names (the dev tunnel, docs/relay.md): one token per name, only its SHA-256 kept.
      await db.schema
        .createTable('relay_names')
        .addColumn('name', 'varchar(32)', (c) => c.primaryKey())
        .addColumn('token_hash', 'char(64)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint')
        .execute();
    },
  },
  '0012_pay': {
    async up(db: Kysely<any>) {
      // WeChat Pay (docs/pay.md): orders by (mchid, out_trade_no) with their prepay_id and state,
      // refunds by (mchid, out_refund_no), and the ids of notifications already taken (WeChat
      // repeats a notification until it gets a 2xx; a repeat must not be delivered twice).
      await db.schema
        .createTable('pay_orders')
        .addColumn('mchid', 'varchar(32)', (c) => c.notNull())
        .addColumn('out_trade_no', 'varchar(32)', (c) => c.notNull())
        .addColumn('appid', 'varchar(32)', (c) => c.notNull())
        .addColumn('openid', 'varchar(128)', (c) => c.notNull())
        .addColumn('description', 'varchar(255)', (c) => c.notNull())
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addColumn('attach', 'varchar(255)')
        .addColumn('fingerprint', 'char(64)', (c) => c.notNull())
        .addColumn('prepay_id', 'varchar(64)')
        .addColumn('prepay_expires_at', 'bigint')
        .addColumn('state', 'varchar(16)', (c) => c.notNull())
        .addColumn('transaction_id', 'varchar(64)')
        .addColumn('success_time', 'varchar(40)')
        .addColumn('notified_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('pay_orders_pk', ['mchid', 'out_trade_no'])
        .execute();
      await db.schema.createIndex('pay_orders_open').on('pay_orders').columns(['state', 'created_at']).execute();
      await db.schema
        .createTable('pay_refunds')
        .addColumn('mchid', 'varchar(32)', (c) => c.notNull())
        .addColumn('out_refund_no', 'varchar(64)', (c) => c.notNull())
        .addColumn('out_trade_no', 'varchar(32)', (c) => c.notNull())
        .addColumn('appid', 'varchar(32)', (c) => c.notNull())
        .addColumn('refund_id', 'varchar(64)')
        .addColumn('amount', 'bigint', (c) => c.notNull())
        .addColumn('total', 'bigint', (c) => c.notNull())
        .addColumn('reason', 'varchar(80)')
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('success_time', 'varchar(40)')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('pay_refunds_pk', ['mchid', 'out_refund_no'])
        .execute();
      await db.schema
        .createTable('pay_notifications')
        .addColumn('mchid', 'varchar(32)', (c) => c.notNull())
        .addColumn('id', 'varchar(64)', (c) => c.notNull())
        .addColumn('event_type', 'varchar(64)', (c) => c.notNull())
        .addColumn('received_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('pay_notifications_pk', ['mchid', 'id'])
        .execute();
      await db.schema.createIndex('pay_notifications_received').on('pay_notifications').column('received_at').execute();
    },
  },
};

/** The names of all migrations, in order. */
export const MIGRATION_NAMES = Object.keys(migrations).sort();

export interface MigrationReport {
  /** Migrations applied by this run. */
  applied: string[];
  /** All migrations now in the database. */
  current: string[];
}

/** Runs the migrations not yet applied, all of them or (for tests of a migration) up to and including `to`. */
export async function runMigrations(db: Kysely<any>, to?: string): Promise<MigrationReport> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = to === undefined ? await migrator.migrateToLatest() : await migrator.migrateTo(to);
  if (error) throw error;
  const applied = (results ?? []).filter((r: MigrationResult) => r.status === 'Success').map((r) => r.migrationName);
  const all = await migrator.getMigrations();
  return { applied, current: all.filter((m) => m.executedAt).map((m) => m.name) };
}
