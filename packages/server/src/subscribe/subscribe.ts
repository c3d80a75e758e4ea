/**
 * Subscribe messages with the user's grants (docs/subscribe.md): grants come from WeChat's
 * pushes (and, marked as such, from the client SDK's report of wx.requestSubscribeMessage); a
 * send checks the data against the template and takes a grant before WeChat is called, so a user
 * without one costs no WeChat call, and records how it went.
 */
import { randomBytes } from 'node:crypto';
import { AppError, isAppError, type Clock, type Logger } from '../core/index.js';
import { errcodeOf } from '../wechat/index.js';
import { sendSubscribeMessage, type Gateway } from '../gateway/index.js';
import { CHANGE_EVENT, POPUP_EVENT, SENT_EVENT, subscribeEventOf } from './events.js';
import type { Grant, GrantRecords } from './grants.js';
import { checkMessageData } from './keywords.js';
import type { TemplateList } from './templates.js';

/** Templates one wx.requestSubscribeMessage can ask for. */
export const MAX_TEMPLATES_PER_REQUEST = 3;
const OPENID = /^[A-Za-z0-9_-]{1,128}$/;
const TEMPLATE_ID = /^[A-Za-z0-9_-]{1,128}$/;

export interface SendInput {
  touser: unknown;
  templateId: unknown;
  data: unknown;
  page?: unknown;
  miniprogramState?: unknown;
  lang?: unknown;
}

export interface Subscriptions {
  /** A push message: subscribe events update grants and sends; anything else is ignored. */
  onPush(appid: string, message: Record<string, unknown>): Promise<void>;
  /** The client SDK's report of a wx.requestSubscribeMessage result, for the session's user. */
  report(appid: string, openid: string, result: unknown): Promise<{ recorded: string[] }>;
  send(appid: string, input: SendInput): Promise<{ msgid: string; grant: 'one-time' | 'long-term' }>;
  list(appid: string, openid: string): Promise<Grant[]>;
}

export function createSubscriptions(deps: { gateway: Gateway; templates: TemplateList; grants: GrantRecords; clock: Clock; logger: Logger }): Subscriptions {
  const { gateway, templates, grants, clock, logger } = deps;

  async function template(appid: string, templateId: unknown) {
    if (typeof templateId !== 'string' || !TEMPLATE_ID.test(templateId)) throw new AppError('BAD_REQUEST', { message: 'templateId: a template id (letters, digits, - and _).' });
    const found = await templates.get(appid, templateId);
    if (!found) throw new AppError('SUBSCRIBE_TEMPLATE_UNKNOWN', { details: { templateId } });
    return found;
  }

  return {
    async onPush(appid, message) {
      const event = subscribeEventOf(message);
      if (!event) return;
      const now = clock.now();
      for (const item of event.items) {
        const key = { appid, openid: event.openid, templateId: item.templateId };
        if (event.event === SENT_EVENT) {
          if (item.msgid) await grants.sendReported(appid, item.msgid, item.errorCode === 0 ? 'delivered' : 'undelivered', item.errorCode ?? null);
          continue;
        }
        // The kind is the template's; a template WeChat does not list for us is counted as one-time.
        const kind = (await templates.get(appid, item.templateId).catch(() => null))?.kind ?? 'one-time';
        if (item.status === 'accept' && (event.event === POPUP_EVENT || kind === 'long-term')) await grants.accept(key, kind, 'push', now);
        // A reject in the popup only declines this time; in the settings it turns the template off.
        else if (event.event === CHANGE_EVENT && item.status !== 'accept') await grants.revoke(key, now);
      }
      logger.info({ appid, event: event.event, templates: event.items.length }, 'subscribe: grants updated from a push');
    },

    async report(appid, openid, result) {
      if (typeof result !== 'object' || result === null || Array.isArray(result)) {
        throw new AppError('BAD_REQUEST', { message: 'result: what wx.requestSubscribeMessage gave ({"<templateId>": "accept" | "reject" | …}).' });
      }
      const accepted = Object.entries(result as Record<string, unknown>).filter(([id, status]) => id !== 'errMsg' && status === 'accept');
      if (accepted.length > MAX_TEMPLATES_PER_REQUEST) throw new AppError('BAD_REQUEST', { message: `result: at most ${MAX_TEMPLATES_PER_REQUEST} templates, as one wx.requestSubscribeMessage asks.` });
      const now = clock.now();
      const recorded: string[] = [];
      for (const [templateId] of accepted) {
        const found = await template(appid, templateId);
        await grants.accept({ appid, openid, templateId }, found.kind, 'client', now);
        recorded.push(templateId);
      }
      return { recorded };
    },

    async send(appid, input) {
      if (typeof input.touser !== 'string' || !OPENID.test(input.touser)) throw new AppError('BAD_REQUEST', { message: 'touser: the openid of the user.' });
      const found = await template(appid, input.templateId);
      const data = checkMessageData(found.keywords, input.data);
      const key = { appid, openid: input.touser, templateId: found.id };
      const now = clock.now();
      const id = randomBytes(12).toString('hex');
      const record = (outcome: string, msgid: string | null, errcode: number | null) =>
        grants.recordSend({ id, appid, openid: key.openid, templateId: key.templateId, outcome, msgid, errcode, now }).catch((error: unknown) =>
          logger.warn({ appid, code: (error as AppError).code }, 'subscribe: the send record was not written'),
        );
      const grant = await grants.take(key, now);
      if (!grant) {
        await record('not_granted', null, null);
        throw new AppError('SUBSCRIBE_NOT_GRANTED', { details: { templateId: found.id } });
      }
      try {
        const sent = await sendSubscribeMessage(gateway, appid, { ...input, touser: key.openid, templateId: found.id, data });
        await record('sent', sent.msgid, null);
        return { msgid: sent.msgid, grant };
      } catch (error) {
        const errcode = errcodeOf(error) ?? null;
        if (isAppError(error, 'SUBSCRIBE_REFUSED')) {
          // WeChat holds no subscription: ours is wrong, whatever it said.
          await grants.revoke(key, clock.now());
          await record('refused', null, errcode);
        } else if (isAppError(error, 'WECHAT_OUTCOME_UNKNOWN')) {
          // It may have been sent: the grant stays used.
          await record('unknown', null, errcode);
        } else {
          // WeChat refused it for another reason: the grant was not used.
          if (grant === 'one-time') await grants.giveBack(key, clock.now());
          await record('failed', null, errcode);
        }
        throw error;
      }
    },

    list: (appid, openid) => grants.list(appid, openid),
  };
}
