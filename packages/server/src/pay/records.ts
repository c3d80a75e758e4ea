/** Orders, refunds and notifications seen, in the store (docs/pay.md). */
import type { Selectable } from 'kysely';
import { isUniqueViolation, storeOp, type Database, type Store } from '../store/index.js';

export type OrderRow = Selectable<Database['pay_orders']>;
export type RefundRow = Selectable<Database['pay_refunds']>;

/** trade_state values after which an order changes no more by itself. */
export const OPEN_STATES = ['NOTPAY', 'USERPAYING'];

export interface PayRecords {
  order(mchid: string, outTradeNo: string): Promise<OrderRow | null>;
  /** Adds the order; false when one with this number exists already. */
  addOrder(row: OrderRow): Promise<boolean>;
  updateOrder(mchid: string, outTradeNo: string, set: Partial<OrderRow>): Promise<void>;
  /** Open orders created in [from, to): the reconciliation asks WeChat about them. */
  openOrders(from: number, to: number, limit: number): Promise<OrderRow[]>;
  refund(mchid: string, outRefundNo: string): Promise<RefundRow | null>;
  addRefund(row: RefundRow): Promise<boolean>;
  updateRefund(mchid: string, outRefundNo: string, set: Partial<RefundRow>): Promise<void>;
  /** Records a notification id; false when it was seen before (a repeat). */
  seen(mchid: string, id: string, eventType: string, now: number): Promise<boolean>;
  /** Forgets notification ids older than `before`. */
  purgeSeen(before: number): Promise<number>;
}

export function createPayRecords(store: Store): PayRecords {
  const db = store.db;
  const num = <T extends OrderRow | RefundRow>(row: T | undefined): T | null => {
    if (!row) return null;
    const out = { ...row } as Record<string, unknown>;
    for (const key of ['amount', 'total', 'prepay_expires_at', 'notified_at', 'created_at', 'updated_at']) if (out[key] !== null && out[key] !== undefined) out[key] = Number(out[key]);
    return out as T;
  };
  const insert = async (run: () => Promise<unknown>) => {
    try {
      await run();
      return true;
    } catch (error) {
      if (isUniqueViolation(error)) return false;
      throw error;
    }
  };
  return {
    order: (mchid, no) => storeOp('payOrder', async () => num(await db.selectFrom('pay_orders').selectAll().where('mchid', '=', mchid).where('out_trade_no', '=', no).executeTakeFirst())),
    addOrder: (row) => storeOp('payOrderAdd', () => insert(() => db.insertInto('pay_orders').values(row).execute())),
    updateOrder: (mchid, no, set) =>
      storeOp('payOrderUpdate', async () => {
        await db.updateTable('pay_orders').set(set).where('mchid', '=', mchid).where('out_trade_no', '=', no).execute();
      }),
    openOrders: (from, to, limit) =>
      storeOp('payOpenOrders', async () =>
        (await db.selectFrom('pay_orders').selectAll().where('state', 'in', OPEN_STATES).where('created_at', '>=', from).where('created_at', '<', to).orderBy('created_at').limit(limit).execute()).map((r) => num(r)!),
      ),
    refund: (mchid, no) => storeOp('payRefund', async () => num(await db.selectFrom('pay_refunds').selectAll().where('mchid', '=', mchid).where('out_refund_no', '=', no).executeTakeFirst())),
    addRefund: (row) => storeOp('payRefundAdd', () => insert(() => db.insertInto('pay_refunds').values(row).execute())),
    updateRefund: (mchid, no, set) =>
      storeOp('payRefundUpdate', async () => {
        await db.updateTable('pay_refunds').set(set).where('mchid', '=', mchid).where('out_refund_no', '=', no).execute();
      }),
    seen: (mchid, id, eventType, now) => storeOp('payNotificationSeen', () => insert(() => db.insertInto('pay_notifications').values({ mchid, id, event_type: eventType, received_at: now }).execute())),
    purgeSeen: (before) => storeOp('payNotificationPurge', async () => Number((await db.deleteFrom('pay_notifications').where('received_at', '<', before).executeTakeFirst()).numDeletedRows)),
  };
}
