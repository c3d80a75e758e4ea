/**
 * Content checks for a user (docs/internal-api.md, content checks): msgSecCheck v2 by session or openid, and
 * mediaCheckAsync, whose verdict comes later in a `wxa_media_check` push; it is matched to the
 * request by trace_id and handed to the app's webhook through the outbox (kind `media_check`),
 * once, whatever WeChat repeats.
 */
import { AppError, type Clock, type Logger } from '../core/index.js';
import { sessionForApp, type SessionService } from '../auth/index.js';
import { mediaCheckAsync, msgSecCheck, type ContentCheck, type Gateway } from '../gateway/index.js';
import type { Outbox } from '../outbox/index.js';
import type { MediaCheckRecords } from './records.js';

export const MEDIA_CHECK_KIND = 'media_check';
export const MEDIA_CHECK_EVENT = 'wxa_media_check';
/** WeChat sends the verdict within 30 minutes; a check is kept a day for a late one. */
export const MEDIA_CHECK_KEEP_MS = 86_400_000;
const META_MAX_KEYS = 16;
const META_MAX_CHARS = 256;

export interface ContentChecks {
  text(appid: string, body: Record<string, unknown>): Promise<ContentCheck>;
  media(appid: string, body: Record<string, unknown>): Promise<{ traceId: string }>;
  /** A push: a wxa_media_check verdict is matched and queued for the webhook; anything else ignored. */
  onPush(appid: string, message: Record<string, unknown>): Promise<void>;
}

/** The user of a check: a session token (preferred: the user is known to be active) or an openid. */
async function userOf(sessions: SessionService, appid: string, body: Record<string, unknown>): Promise<string> {
  if (body.session !== undefined) return (await sessionForApp(sessions, appid, body.session)).openid;
  if (body.openid === undefined) throw new AppError('BAD_REQUEST', { message: 'session: the session token of the user (or openid).' });
  return body.openid as string;
}

function metaOf(value: unknown): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  const bad = () => new AppError('BAD_REQUEST', { message: `meta: an object of at most ${META_MAX_KEYS} strings of at most ${META_MAX_CHARS} characters, sent back with the result.` });
  if (typeof value !== 'object' || Array.isArray(value)) throw bad();
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > META_MAX_KEYS) throw bad();
  for (const [key, v] of entries) if (typeof v !== 'string' || v.length > META_MAX_CHARS || key.length > 64) throw bad();
  return Object.fromEntries(entries) as Record<string, string>;
}

export function createContentChecks(deps: { gateway: Gateway; sessions: SessionService; outbox: Outbox; records: MediaCheckRecords; clock: Clock; logger: Logger }): ContentChecks {
  const { gateway, sessions, outbox, records, clock, logger } = deps;
  return {
    async text(appid, body) {
      const openid = await userOf(sessions, appid, body);
      return msgSecCheck(gateway, appid, { openid, scene: body.scene, content: body.content, nickname: body.nickname, title: body.title, signature: body.signature });
    },

    async media(appid, body) {
      const openid = await userOf(sessions, appid, body);
      const meta = metaOf(body.meta);
      const { traceId } = await mediaCheckAsync(gateway, appid, { openid, scene: body.scene, mediaUrl: body.mediaUrl, mediaType: body.mediaType });
      await records.add({ traceId, appid, openid, mediaUrl: body.mediaUrl as string, mediaType: body.mediaType === 'audio' ? 1 : 2, scene: Number(body.scene), meta, createdAt: clock.now() });
      return { traceId };
    },

    async onPush(appid, message) {
      if (message.MsgType !== 'event' || message.Event !== MEDIA_CHECK_EVENT) return;
      const traceId = message.trace_id;
      if (typeof traceId !== 'string' || traceId === '' || traceId.length > 128) return;
      const result = (message.result ?? {}) as { suggest?: unknown; label?: unknown };
      const suggest = typeof result.suggest === 'string' ? result.suggest : '';
      // label comes as a number or a string ("100"): a number here.
      const label = Number(result.label ?? NaN);
      if (!['pass', 'review', 'risky'].includes(suggest)) {
        logger.warn({ appid, traceId }, 'checks: a media check push without a known verdict; not delivered');
        return;
      }
      const check = await records.waiting(appid, traceId);
      if (!check) {
        logger.info({ appid, traceId }, 'checks: media check result for no waiting check (unknown, or a repeat)');
        return;
      }
      await outbox.enqueue({
        kind: MEDIA_CHECK_KIND,
        appid,
        dedupKey: `trace:${traceId}`.slice(0, 150),
        payload: {
          type: MEDIA_CHECK_KIND,
          appid,
          traceId,
          openid: check.openid,
          mediaUrl: check.mediaUrl,
          mediaType: check.mediaType === 1 ? 'audio' : 'image',
          scene: check.scene,
          ...(check.meta ? { meta: check.meta } : {}),
          suggest,
          label: Number.isFinite(label) ? label : 0,
          detail: Array.isArray(message.detail) ? message.detail : [],
          requestedAt: check.createdAt,
        },
      });
      // Queued first, marked after: a crash between the two leaves a repeat the outbox drops (same key).
      await records.settle(appid, traceId, { suggest, label: Number.isFinite(label) ? label : 0 }, clock.now());
    },
  };
}
