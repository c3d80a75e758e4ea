/**
 * The export file of `minigate export` / `import`: JSON lines. The first line is a header
 * (format version, minigate version, migration level, row counts, the secret key); each other
 * line is one row: {"table": name, "row": {column: value}}. Only the tables that make a
 * deployment move: users, live sessions, file metadata, the shared state (kv: tokens, ACME), the
 * users' subscribe grants, the admin console's accounts and audit log, pending outbox rows, the
 * WeChat Pay orders, refunds and the notification ids already taken (so a repeat after the move
 * is still known), and the relay names (with their tokens' hashes). Leases, used tunnel tickets
 * and half-done uploads stay behind.
 *
 * Tables added after format 1 was first written (pay_*, relay_names) are optional on import: a
 * file made before them has neither their rows nor their count, and imports as it always did.
 */
import { z } from 'zod';
import { RELAY_NAME_PATTERN } from 'minigate-protocol';

export const FORMAT = 'minigate-export';
export const FORMAT_VERSION = 1;

const text = z.string();
const nullableText = z.string().nullable();
const int = z.number().int().nonnegative();
const nullableInt = int.nullable();

/** Each table's columns, in the order rows are written and inserted (parents before children). */
export const TABLES = {
  users: z.strictObject({
    appid: text,
    openid: text,
    unionid: nullableText,
    profile: nullableText,
    phone_number: nullableText,
    first_seen_at: int,
    last_seen_at: int,
  }),
  sessions: z.strictObject({
    token_hash: z.string().regex(/^[0-9a-f]{64}$/),
    appid: text,
    openid: text,
    unionid: nullableText,
    session_key: nullableText,
    created_at: int,
    last_seen_at: int,
    expires_at: int,
    revoked_at: nullableInt,
    revoked_reason: nullableText,
    client_address: nullableText,
    user_agent: nullableText,
  }),
  files: z.strictObject({
    id: text,
    appid: text,
    openid: text,
    name: text,
    content_type: text,
    size: int,
    sha256: text,
    storage_key: text,
    access: z.enum(['private', 'public']),
    meta: nullableText,
    created_at: int,
  }),
  kv: z.strictObject({ key: text, value: text, updated_at: int }),
  subscribe_grants: z.strictObject({
    appid: text,
    openid: text,
    template_id: text,
    kind: z.enum(['one-time', 'long-term']),
    count: int,
    source: z.enum(['push', 'client']),
    updated_at: int,
  }),
  admin_users: z.strictObject({ name: text, password_hash: text, totp_secret: nullableText, created_at: int }),
  audit_log: z.strictObject({
    id: text,
    at: int,
    actor: text,
    action: text,
    target: nullableText,
    address: nullableText,
    detail: nullableText,
  }),
  outbox: z.strictObject({
    id: text,
    kind: text,
    appid: text,
    dedup_key: text,
    payload: text,
    status: z.literal('pending'),
    attempts: int,
    next_attempt_at: int,
    created_at: int,
    delivered_at: nullableInt,
    last_error: nullableText,
  }),
  pay_orders: z.strictObject({
    mchid: text,
    out_trade_no: text,
    appid: text,
    openid: text,
    description: text,
    amount: int,
    attach: nullableText,
    fingerprint: text,
    prepay_id: nullableText,
    prepay_expires_at: nullableInt,
    state: text,
    transaction_id: nullableText,
    success_time: nullableText,
    notified_at: nullableInt,
    created_at: int,
    updated_at: int,
  }),
  pay_refunds: z.strictObject({
    mchid: text,
    out_refund_no: text,
    out_trade_no: text,
    appid: text,
    refund_id: nullableText,
    amount: int,
    total: int,
    reason: nullableText,
    status: text,
    success_time: nullableText,
    created_at: int,
    updated_at: int,
  }),
  pay_notifications: z.strictObject({ mchid: text, id: text, event_type: text, received_at: int }),
  relay_names: z.strictObject({
    name: z.string().regex(RELAY_NAME_PATTERN),
    token_hash: z.string().regex(/^[0-9a-f]{64}$/),
    created_at: int,
    last_seen_at: nullableInt,
  }),
} as const;

export type TableName = keyof typeof TABLES;
export const TABLE_NAMES = Object.keys(TABLES) as TableName[];
/** Tables an export made by an older minigate (same format version) does not have: their count may be missing. */
export const LATER_TABLES: readonly TableName[] = ['pay_orders', 'pay_refunds', 'pay_notifications', 'relay_names'];

const counts = z.strictObject(
  Object.fromEntries(TABLE_NAMES.map((t) => [t, LATER_TABLES.includes(t) ? int.default(0) : int])) as Record<TableName, typeof int>,
);

export const Header = z.strictObject({
  format: z.literal(FORMAT),
  formatVersion: z.number().int(),
  minigate: text,
  /** The last migration the source had applied. */
  migration: text,
  source: z.enum(['sqlite', 'mysql', 'postgres']),
  exportedAt: int,
  counts,
  /** The server's secret key, hex: session_key is encrypted with it. */
  secretKey: z.string().regex(/^[0-9a-f]{64}$/),
});
export type Header = z.infer<typeof Header>;

export const Line = z.strictObject({ table: z.enum(TABLE_NAMES as [TableName, ...TableName[]]), row: z.record(z.string(), z.unknown()) });
