/**
 * The subscribe events of WeChat's message push (docs/wechat-api.md §8.3): what a user chose in the
 * popup, changed in the settings, and how a send went. XML and JSON carry the same fields, but
 * the list is shaped differently: `<SubscribeMsgPopupEvent><List>…</List><List>…</List>` becomes
 * an object with List (one item or an array); JSON has the array (or one item) under the event's
 * name, or under List.
 */
export const POPUP_EVENT = 'subscribe_msg_popup_event';
export const CHANGE_EVENT = 'subscribe_msg_change_event';
export const SENT_EVENT = 'subscribe_msg_sent_event';

const CONTAINERS: Readonly<Record<string, string>> = {
  [POPUP_EVENT]: 'SubscribeMsgPopupEvent',
  [CHANGE_EVENT]: 'SubscribeMsgChangeEvent',
  [SENT_EVENT]: 'SubscribeMsgSentEvent',
};

/** Items past this are ignored (a popup asks for three templates at most). */
const MAX_ITEMS = 20;
const TEMPLATE_ID = /^[A-Za-z0-9_-]{1,128}$/;
const OPENID = /^[A-Za-z0-9_-]{1,128}$/;

export interface SubscribeItem {
  templateId: string;
  /** accept, reject, ban, filter… (popup and change); empty for a sent event. */
  status: string;
  /** Sent event: WeChat's msgid and its result (0 success). */
  msgid?: string;
  errorCode?: number;
}

export interface SubscribeEvent {
  event: typeof POPUP_EVENT | typeof CHANGE_EVENT | typeof SENT_EVENT;
  openid: string;
  items: SubscribeItem[];
}

const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : value === undefined || value === null || value === '' ? [] : [value]);

/** The subscribe event in a push message, or null when it is none (or not well formed). */
export function subscribeEventOf(message: Record<string, unknown>): SubscribeEvent | null {
  if (message.MsgType !== 'event' || typeof message.Event !== 'string') return null;
  const container = CONTAINERS[message.Event];
  if (!container) return null;
  const openid = message.FromUserName;
  if (typeof openid !== 'string' || !OPENID.test(openid)) return null;
  let raw = message[container] ?? message.List;
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && 'List' in raw) raw = (raw as { List: unknown }).List;
  const items: SubscribeItem[] = [];
  for (const entry of asList(raw).slice(0, MAX_ITEMS)) {
    if (typeof entry !== 'object' || entry === null) continue;
    const item = entry as Record<string, unknown>;
    const templateId = item.TemplateId;
    if (typeof templateId !== 'string' || !TEMPLATE_ID.test(templateId)) continue;
    const msgid = item.MsgID ?? item.MsgId;
    const errorCode = Number(item.ErrorCode);
    items.push({
      templateId,
      status: typeof item.SubscribeStatusString === 'string' ? item.SubscribeStatusString : '',
      ...(typeof msgid === 'string' || typeof msgid === 'number' ? { msgid: String(msgid) } : {}),
      ...(item.ErrorCode !== undefined && Number.isFinite(errorCode) ? { errorCode } : {}),
    });
  }
  return { event: message.Event as SubscribeEvent['event'], openid, items };
}
