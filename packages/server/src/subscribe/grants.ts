/**
 * Subscribe grants and sends in the store (the same queries on SQLite, MySQL/MariaDB and
 * PostgreSQL). A one-time grant is used by one conditional UPDATE (count > 0), so two sends racing
 * for the last grant cannot both get it, on one instance or many.
 */
import { sql, type Selectable } from 'kysely';
import { isUniqueViolation, storeOp, type Store } from '../store/index.js';
import type { Database } from '../store/index.js';

export type GrantKind = 'one-time' | 'long-term';
export type GrantSource = 'push' | 'client';

export interface Grant {
  templateId: string;
  kind: GrantKind;
  /** One-time sends left (0 for a long-term grant, which is not counted). */
  count: number;
  source: GrantSource;
  updatedAt: number;
}

/** A push that confirms a client report of the same tap arrives within this; it adds nothing then. */
export const CLIENT_REPORT_CONFIRM_MS = 5 * 60_000;

type Row = Selectable<Database['subscribe_grants']>;
const toGrant = (row: Row): Grant => ({
  templateId: row.template_id,
  kind: row.kind,
  count: Number(row.count),
  source: row.source,
  updatedAt: Number(row.updated_at),
});

export interface GrantRecords {
  /**
   * Records an acceptance. One-time from a push: +1 — unless it confirms a client report of the
   * last few minutes, which already counted that tap. One-time from the client: at least 1 (a
   * client can claim one tap, never more). Long-term: kept as long-term.
   */
  accept(key: UserTemplate, kind: GrantKind, source: GrantSource, now: number): Promise<void>;
  /** The user turned the template off (or WeChat said 43101): nothing left to send. */
  revoke(key: UserTemplate, now: number): Promise<void>;
  /** Uses one grant: 'one-time' when one was used, 'long-term' when none is needed, null when there is none. */
  take(key: UserTemplate, now: number): Promise<GrantKind | null>;
  /** Gives back a one-time grant WeChat did not use (it refused the send for another reason). */
  giveBack(key: UserTemplate, now: number): Promise<void>;
  list(appid: string, openid: string): Promise<Grant[]>;
  recordSend(send: { id: string; appid: string; openid: string; templateId: string; outcome: string; msgid: string | null; errcode: number | null; now: number }): Promise<void>;
  /** WeChat's report of a send (subscribe_msg_sent_event), by msgid. */
  sendReported(appid: string, msgid: string, outcome: string, errcode: number | null): Promise<void>;
}

export interface UserTemplate {
  appid: string;
  openid: string;
  templateId: string;
}

export function createGrantRecords(store: Store): GrantRecords {
  const db = store.db;
  const row = (key: UserTemplate) =>
    db.updateTable('subscribe_grants').where('appid', '=', key.appid).where('openid', '=', key.openid).where('template_id', '=', key.templateId);

  /** UPDATE first; INSERT when there is no row; on a race for the insert, UPDATE again. */
  async function upsert(key: UserTemplate, update: () => Promise<bigint>, insert: { kind: GrantKind; count: number; source: GrantSource; now: number }): Promise<void> {
    if ((await update()) > 0n) return;
    try {
      await db
        .insertInto('subscribe_grants')
        .values({ appid: key.appid, openid: key.openid, template_id: key.templateId, kind: insert.kind, count: insert.count, source: insert.source, updated_at: insert.now })
        .execute();
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      await update();
    }
  }

  const updated = async (query: { executeTakeFirst(): Promise<{ numUpdatedRows: bigint }> }) => (await query.executeTakeFirst()).numUpdatedRows;

  return {
    accept: (key, kind, source, now) =>
      storeOp('subscribeAccept', async () => {
        if (kind === 'long-term') {
          await upsert(key, () => updated(row(key).set({ kind: 'long-term', count: 0, source, updated_at: now })), { kind, count: 0, source, now });
          return;
        }
        if (source === 'client') {
          // At least one: a report is one tap, and a push for it may have counted it already.
          await upsert(
            key,
            () => updated(row(key).set({ kind: 'one-time', count: sql`CASE WHEN count < 1 OR kind = 'long-term' THEN 1 ELSE count END`, source, updated_at: now })),
            { kind, count: 1, source, now },
          );
          return;
        }
        // A push confirming a recent client report of the same tap: the tap is counted once.
        const confirmed = await updated(
          row(key).where('source', '=', 'client').where('kind', '=', 'one-time').where('count', '>', 0).where('updated_at', '>=', now - CLIENT_REPORT_CONFIRM_MS).set({ source: 'push', updated_at: now }),
        );
        if (confirmed > 0n) return;
        await upsert(
          key,
          () => updated(row(key).set({ kind: 'one-time', count: sql`CASE WHEN kind = 'long-term' THEN 1 ELSE count + 1 END`, source, updated_at: now })),
          { kind, count: 1, source, now },
        );
      }),

    revoke: (key, now) =>
      storeOp('subscribeRevoke', async () => {
        await row(key).set({ kind: 'one-time', count: 0, updated_at: now }).execute();
      }),

    take: (key, now) =>
      storeOp('subscribeTake', async () => {
        const used = await updated(row(key).where('kind', '=', 'one-time').where('count', '>', 0).set({ count: sql`count - 1`, updated_at: now }));
        if (used > 0n) return 'one-time';
        const longTerm = await db
          .selectFrom('subscribe_grants')
          .select('kind')
          .where('appid', '=', key.appid)
          .where('openid', '=', key.openid)
          .where('template_id', '=', key.templateId)
          .where('kind', '=', 'long-term')
          .executeTakeFirst();
        return longTerm ? 'long-term' : null;
      }),

    giveBack: (key, now) =>
      storeOp('subscribeGiveBack', async () => {
        await row(key).where('kind', '=', 'one-time').set({ count: sql`count + 1`, updated_at: now }).execute();
      }),

    list: (appid, openid) =>
      storeOp('subscribeList', async () =>
        (await db.selectFrom('subscribe_grants').selectAll().where('appid', '=', appid).where('openid', '=', openid).orderBy('template_id').execute()).map(toGrant),
      ),

    recordSend: (send) =>
      storeOp('subscribeRecordSend', async () => {
        await db
          .insertInto('subscribe_sends')
          .values({ id: send.id, appid: send.appid, openid: send.openid, template_id: send.templateId, outcome: send.outcome, msgid: send.msgid, errcode: send.errcode, created_at: send.now })
          .execute();
      }),

    sendReported: (appid, msgid, outcome, errcode) =>
      storeOp('subscribeSendReported', async () => {
        await db.updateTable('subscribe_sends').set({ outcome, errcode }).where('appid', '=', appid).where('msgid', '=', msgid).execute();
      }),
  };
}
