/**
 * Table types. Timestamps are epoch milliseconds in BIGINT columns on every database, so the
 * same queries and the same comparisons work on SQLite, MySQL/MariaDB and PostgreSQL.
 */
export interface SessionsTable {
  /** SHA-256 of the token, lowercase hex. The token itself is never stored. */
  token_hash: string;
  appid: string;
  openid: string;
  unionid: string | null;
  /** WeChat's session_key, encrypted with the server's secret key (see auth/secret-box). */
  session_key: string | null;
  created_at: number;
  last_seen_at: number;
  /** The absolute end of the session; the idle end is last_seen_at + the app's idle time. */
  expires_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
  /** Recorded at login when admin.recordClientInfo (migration 0009); cleared after its retention. */
  client_address?: string | null;
  user_agent?: string | null;
}

export interface UsersTable {
  appid: string;
  openid: string;
  unionid: string | null;
  /** JSON of the profile fields (nickName, avatarUrl, …). */
  profile: string | null;
  phone_number: string | null;
  first_seen_at: number;
  last_seen_at: number;
}

export interface MetaTable {
  key: string;
  value: string;
}

export interface KvTable {
  key: string;
  value: string;
  updated_at: number;
}

export interface LocksTable {
  name: string;
  owner: string;
  expires_at: number;
}

export interface OutboxTable {
  id: string;
  /** The kind of event (`push`, …): which delivery target it goes to. */
  kind: string;
  appid: string;
  dedup_key: string;
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: number;
  created_at: number;
  delivered_at: number | null;
  last_error: string | null;
}

export interface FilesTable {
  id: string;
  appid: string;
  openid: string;
  /** The client's file name, sanitised (display only; never a path). */
  name: string;
  /** From the content's magic bytes. */
  content_type: string;
  size: number;
  sha256: string;
  storage_key: string;
  access: 'private' | 'public';
  /** JSON of the form fields sent with the file. */
  meta: string | null;
  created_at: number;
}

export interface UploadsTable {
  id: string;
  appid: string;
  openid: string;
  name: string;
  /** The size announced at creation, when one was. */
  size: number | null;
  access: 'private' | 'public';
  meta: string | null;
  created_at: number;
  expires_at: number;
}

export interface UploadPartsTable {
  upload_id: string;
  n: number;
  size: number;
  sha256: string;
  storage_key: string;
  created_at: number;
}

/** Wafer tunnel tickets already used (when there is no Redis to say so). */
export interface UsedTicketsTable {
  /** The ticket's random id (not the ticket: that names the session). */
  id: string;
  /** When the ticket expires; the row may go some time after. */
  expires_at: number;
}

export interface AdminUsersTable {
  name: string;
  /** scrypt with its parameters and salt (admin/password.ts). */
  password_hash: string;
  /** Sealed with the secret key; null without TOTP. */
  totp_secret: string | null;
  created_at: number;
}

export interface AdminSessionsTable {
  token_hash: string;
  name: string;
  /** The CSRF token every write must carry in X-CSRF-Token. */
  csrf: string;
  address: string | null;
  created_at: number;
  last_seen_at: number;
}

export interface AuditLogTable {
  id: string;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  address: string | null;
  detail: string | null;
}

/** What a user granted for a subscribe message template (docs/subscribe.md). */
export interface SubscribeGrantsTable {
  appid: string;
  openid: string;
  template_id: string;
  /** `one-time` grants are counted and used up by sends; `long-term` ones are not. */
  kind: 'one-time' | 'long-term';
  /** One-time sends left (0 after a revoke or a 43101). */
  count: number;
  /** Who said so last: WeChat's push, or the client SDK's report. */
  source: 'push' | 'client';
  updated_at: number;
}

/** Each send minigate made (or refused before WeChat), with its outcome. */
export interface SubscribeSendsTable {
  id: string;
  appid: string;
  openid: string;
  template_id: string;
  /** sent, refused (43101), failed (another WeChat error) or unknown (no answer). */
  outcome: string;
  msgid: string | null;
  errcode: number | null;
  created_at: number;
}

/** A mediaCheckAsync request, waiting for its result push (matched by trace_id). */
export interface MediaChecksTable {
  trace_id: string;
  appid: string;
  openid: string;
  media_url: string;
  media_type: number;
  scene: number;
  /** JSON of what the business service asked to get back with the result. */
  meta: string | null;
  created_at: number;
  /** Set once, by whichever receiver took the result first. */
  result_at: number | null;
  suggest: string | null;
  label: number | null;
}

/** A relay name (the dev tunnel) and the SHA-256 of its one token. */
export interface RelayNamesTable {
  name: string;
  token_hash: string;
  created_at: number;
  /** When a client last connected with it; null until one has. */
  last_seen_at: number | null;
}

/** A WeChat Pay order (docs/pay.md). */
export interface PayOrdersTable {
  mchid: string;
  out_trade_no: string;
  appid: string;
  openid: string;
  description: string;
  /** Fen. */
  amount: number;
  attach: string | null;
  /** SHA-256 of what the order was made with: the same out_trade_no with other content is refused. */
  fingerprint: string;
  prepay_id: string | null;
  prepay_expires_at: number | null;
  /** WeChat's trade_state: NOTPAY, SUCCESS, CLOSED, REFUND, PAYERROR, … */
  state: string;
  transaction_id: string | null;
  success_time: string | null;
  /** When its TRANSACTION.SUCCESS notification (or the reconciliation) settled it. */
  notified_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface PayRefundsTable {
  mchid: string;
  out_refund_no: string;
  out_trade_no: string;
  appid: string;
  refund_id: string | null;
  amount: number;
  total: number;
  reason: string | null;
  /** PROCESSING, SUCCESS, CLOSED, ABNORMAL. */
  status: string;
  success_time: string | null;
  created_at: number;
  updated_at: number;
}

/** A notification already taken, by WeChat's id. */
export interface PayNotificationsTable {
  mchid: string;
  id: string;
  event_type: string;
  received_at: number;
}

export interface Database {
  relay_names: RelayNamesTable;
  pay_orders: PayOrdersTable;
  pay_refunds: PayRefundsTable;
  pay_notifications: PayNotificationsTable;
  admin_users: AdminUsersTable;
  admin_sessions: AdminSessionsTable;
  audit_log: AuditLogTable;
  subscribe_grants: SubscribeGrantsTable;
  subscribe_sends: SubscribeSendsTable;
  media_checks: MediaChecksTable;
  used_tickets: UsedTicketsTable;
  files: FilesTable;
  uploads: UploadsTable;
  upload_parts: UploadPartsTable;
  outbox: OutboxTable;
  sessions: SessionsTable;
  users: UsersTable;
  meta: MetaTable;
  kv: KvTable;
  locks: LocksTable;
}
