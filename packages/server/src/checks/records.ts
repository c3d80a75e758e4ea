/** Media checks waiting for their result push, in the store (docs/internal-api.md, content checks). */
import { storeOp, type Store } from '../store/index.js';

export interface MediaCheckRecord {
  traceId: string;
  appid: string;
  openid: string;
  mediaUrl: string;
  mediaType: number;
  scene: number;
  meta: Record<string, string> | null;
  createdAt: number;
}

export interface MediaCheckRecords {
  add(check: MediaCheckRecord): Promise<void>;
  /** The check waiting for this trace id of this app; null when unknown or already answered. */
  waiting(appid: string, traceId: string): Promise<MediaCheckRecord | null>;
  /** Writes the result in (the row then no longer waits). */
  settle(appid: string, traceId: string, result: { suggest: string; label: number }, now: number): Promise<void>;
  /** Drops checks made before `before` (a result never came). */
  purge(before: number): Promise<number>;
}

export function createMediaCheckRecords(store: Store): MediaCheckRecords {
  const db = store.db;
  return {
    add: (check) =>
      storeOp('mediaCheckAdd', async () => {
        await db
          .insertInto('media_checks')
          .values({
            trace_id: check.traceId,
            appid: check.appid,
            openid: check.openid,
            media_url: check.mediaUrl,
            media_type: check.mediaType,
            scene: check.scene,
            meta: check.meta ? JSON.stringify(check.meta) : null,
            created_at: check.createdAt,
            result_at: null,
            suggest: null,
            label: null,
          })
          .execute();
      }),
    waiting: (appid, traceId) =>
      storeOp('mediaCheckWaiting', async () => {
        const row = await db.selectFrom('media_checks').selectAll().where('trace_id', '=', traceId).where('appid', '=', appid).where('result_at', 'is', null).executeTakeFirst();
        if (!row) return null;
        return {
          traceId: row.trace_id,
          appid: row.appid,
          openid: row.openid,
          mediaUrl: row.media_url,
          mediaType: Number(row.media_type),
          scene: Number(row.scene),
          meta: row.meta ? (JSON.parse(row.meta) as Record<string, string>) : null,
          createdAt: Number(row.created_at),
        };
      }),
    settle: (appid, traceId, result, now) =>
      storeOp('mediaCheckSettle', async () => {
        await db.updateTable('media_checks').set({ result_at: now, suggest: result.suggest, label: result.label }).where('trace_id', '=', traceId).where('appid', '=', appid).execute();
      }),
    purge: (before) =>
      storeOp('mediaCheckPurge', async () => Number((await db.deleteFrom('media_checks').where('created_at', '<', before).executeTakeFirst()).numDeletedRows)),
  };
}
