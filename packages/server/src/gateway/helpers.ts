/**
 * Typed WeChat calls with their inputs checked first and WeChat's errcodes turned into clear
 * errors (docs/wechat-api.md §4.1, §8.1, §8.3, §8.4, §8.5).
 */
import type { ErrorCode } from 'minigate-protocol';
import { AppError } from '../core/index.js';
import { BUSY_RETRY_DELAYS_MS, wechatErrorCode } from '../wechat/index.js';
import { badArgument, type Gateway } from './gateway.js';

const ARGUMENT_ERRORS: Readonly<Record<number, ErrorCode>> = {
  40003: 'WECHAT_BAD_ARGUMENT',
  40037: 'WECHAT_BAD_ARGUMENT',
  40097: 'WECHAT_BAD_ARGUMENT',
  40129: 'WECHAT_BAD_ARGUMENT',
  40165: 'WECHAT_BAD_ARGUMENT',
  40169: 'WECHAT_BAD_ARGUMENT',
  40212: 'WECHAT_BAD_ARGUMENT',
  41030: 'WECHAT_BAD_ARGUMENT',
  44002: 'WECHAT_BAD_ARGUMENT',
  47001: 'WECHAT_BAD_ARGUMENT',
  47003: 'WECHAT_BAD_ARGUMENT',
  85079: 'WECHAT_BAD_ARGUMENT',
};

function text(value: unknown, name: string, max: number, pattern?: RegExp): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max || (pattern && !pattern.test(value))) {
    throw badArgument(name, `expected text of 1 to ${max} characters${pattern ? ' in the allowed set' : ''}`);
  }
  return value;
}

function optionalText(value: unknown, name: string, max: number, pattern?: RegExp): string | undefined {
  return value === undefined || value === null || value === '' ? undefined : text(value, name, max, pattern);
}

const OPENID = /^[A-Za-z0-9_-]{1,128}$/;

// ---- phone number (§4.1) -------------------------------------------------------------------

export interface PhoneNumber {
  phoneNumber: string;
  purePhoneNumber: string;
  /** As a string: WeChat documents a string and sends a number. */
  countryCode: string;
}

export async function phoneNumber(gateway: Gateway, appid: string, input: { code: unknown; openid?: unknown }): Promise<PhoneNumber> {
  const code = text(input.code, 'code', 256, /^[\x21-\x7e]+$/);
  const openid = optionalText(input.openid, 'openid', 128, OPENID);
  const body = await gateway.call<{ phone_info?: Record<string, unknown> }>(appid, {
    path: '/wxa/business/getuserphonenumber',
    method: 'POST',
    body: { code, ...(openid ? { openid } : {}) },
    errors: { ...ARGUMENT_ERRORS, 40029: 'PHONE_CODE_INVALID', 40163: 'PHONE_CODE_INVALID' },
  });
  const info = body.phone_info;
  if (!info || typeof info.phoneNumber !== 'string') throw new AppError('WECHAT_ERROR', { details: { reason: 'no phone_info' } });
  return {
    phoneNumber: info.phoneNumber,
    purePhoneNumber: typeof info.purePhoneNumber === 'string' ? info.purePhoneNumber : info.phoneNumber,
    countryCode: info.countryCode === undefined ? '' : String(info.countryCode),
  };
}

// ---- msgSecCheck v2 (§8.1) -----------------------------------------------------------------

export interface ContentCheck {
  suggest: 'pass' | 'review' | 'risky';
  /** 100 normal, 10001 ads, 20001 politics, … (WeChat sends a number or a string: always a number here). */
  label: number;
  traceId: string;
  detail: unknown[];
}

export async function msgSecCheck(
  gateway: Gateway,
  appid: string,
  input: { openid: unknown; scene: unknown; content: unknown; nickname?: unknown; title?: unknown; signature?: unknown },
): Promise<ContentCheck> {
  const openid = text(input.openid, 'openid', 128, OPENID);
  const scene = Number(input.scene);
  if (!Number.isInteger(scene) || scene < 1 || scene > 4) throw badArgument('scene', '1 profile, 2 comment, 3 forum or 4 social log');
  const content = text(input.content, 'content', 2500);
  const optional: Record<string, string> = {};
  for (const name of ['nickname', 'title', 'signature'] as const) {
    const value = optionalText(input[name], name, 500);
    if (value !== undefined) optional[name] = value;
  }
  const body = await gateway.call<{ result?: { suggest?: unknown; label?: unknown }; trace_id?: unknown; detail?: unknown }>(appid, {
    path: '/wxa/msg_sec_check',
    method: 'POST',
    body: { version: 2, openid, scene, content, ...optional },
    errors: ARGUMENT_ERRORS,
  });
  const suggest = body.result?.suggest;
  // Fail closed: an answer without a verdict we know is not a pass.
  if (suggest !== 'pass' && suggest !== 'risky' && suggest !== 'review') {
    throw new AppError('WECHAT_ERROR', { message: 'WeChat answered the content check without a verdict.', details: { path: '/wxa/msg_sec_check' } });
  }
  return {
    suggest,
    label: Number(body.result?.label ?? 100),
    traceId: typeof body.trace_id === 'string' ? body.trace_id : '',
    detail: Array.isArray(body.detail) ? body.detail : [],
  };
}

// ---- mediaCheckAsync (§8.2) -----------------------------------------------------------------

/** Sends a picture or a sound to be checked; the verdict comes later as a push with this trace id. */
export async function mediaCheckAsync(
  gateway: Gateway,
  appid: string,
  input: { openid: unknown; scene: unknown; mediaUrl: unknown; mediaType: unknown },
): Promise<{ traceId: string }> {
  const openid = text(input.openid, 'openid', 128, OPENID);
  const scene = Number(input.scene);
  if (!Number.isInteger(scene) || scene < 1 || scene > 4) throw badArgument('scene', '1 profile, 2 comment, 3 forum or 4 social log');
  const mediaUrl = text(input.mediaUrl, 'mediaUrl', 2048, /^https?:\/\/[^\s]+$/);
  const mediaType = input.mediaType === 'audio' ? 1 : input.mediaType === 'image' ? 2 : 0;
  if (mediaType === 0) throw badArgument('mediaType', '"image" or "audio"');
  const body = await gateway.call<{ trace_id?: unknown }>(appid, {
    path: '/wxa/media_check_async',
    method: 'POST',
    body: { media_url: mediaUrl, media_type: mediaType, version: 2, scene, openid },
    errors: ARGUMENT_ERRORS,
  });
  if (typeof body.trace_id !== 'string' || body.trace_id === '' || body.trace_id.length > 128) {
    throw new AppError('WECHAT_ERROR', { message: 'WeChat took the media check without a trace_id.', details: { path: '/wxa/media_check_async' } });
  }
  return { traceId: body.trace_id };
}

// ---- subscribe message (§8.3) --------------------------------------------------------------

export async function sendSubscribeMessage(
  gateway: Gateway,
  appid: string,
  input: { touser: unknown; templateId: unknown; data: unknown; page?: unknown; miniprogramState?: unknown; lang?: unknown },
): Promise<{ msgid: string }> {
  const touser = text(input.touser, 'touser', 128, OPENID);
  const templateId = text(input.templateId, 'templateId', 128, /^[A-Za-z0-9_-]+$/);
  if (typeof input.data !== 'object' || input.data === null || Array.isArray(input.data)) {
    throw badArgument('data', 'expected {"thing1": {"value": "…"}, …}');
  }
  for (const [key, entry] of Object.entries(input.data)) {
    if (typeof entry !== 'object' || entry === null || typeof (entry as { value?: unknown }).value !== 'string') {
      throw badArgument(`data.${key}`, 'expected {"value": "…"}');
    }
  }
  const page = optionalText(input.page, 'page', 1024);
  const state = optionalText(input.miniprogramState, 'miniprogramState', 16, /^(developer|trial|formal)$/);
  const lang = optionalText(input.lang, 'lang', 8, /^(zh_CN|en_US|zh_HK|zh_TW)$/);
  const body = await gateway.call<{ msgid?: unknown }>(appid, {
      path: '/cgi-bin/message/subscribe/send',
      method: 'POST',
      body: {
        touser,
        template_id: templateId,
        data: input.data,
        ...(page ? { page } : {}),
        ...(state ? { miniprogram_state: state } : {}),
        ...(lang ? { lang } : {}),
      },
      // Never sent twice: a timeout, a reset or -1 is reported as WECHAT_OUTCOME_UNKNOWN.
      sideEffect: true,
      errors: { ...ARGUMENT_ERRORS, 43101: 'SUBSCRIBE_REFUSED' },
      exactIntegers: ['msgid'],
  });
  return { msgid: String(body.msgid ?? '') };
}

// ---- mini program code (§8.4) --------------------------------------------------------------

export async function wxacode(
  gateway: Gateway,
  appid: string,
  input: { scene: unknown; page?: unknown; checkPath?: unknown; envVersion?: unknown; width?: unknown; autoColor?: unknown; lineColor?: unknown; isHyaline?: unknown },
): Promise<{ contentType: string; body: Buffer }> {
  const scene = text(input.scene, 'scene', 32, /^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]+$/);
  const page = optionalText(input.page, 'page', 256, /^[^/?][^?]*$/);
  const width = input.width === undefined ? undefined : Number(input.width);
  const color = input.lineColor as { r?: unknown; g?: unknown; b?: unknown } | undefined;
  if (color !== undefined && (typeof color !== 'object' || color === null || ![color.r, color.g, color.b].every((c) => Number.isInteger(Number(c)) && Number(c) >= 0 && Number(c) <= 255))) {
    throw badArgument('lineColor', 'expected {"r": 0-255, "g": 0-255, "b": 0-255}');
  }
  if (width !== undefined && (!Number.isInteger(width) || width < 280 || width > 1280)) throw badArgument('width', '280 to 1280');
  const env = optionalText(input.envVersion, 'envVersion', 16, /^(release|trial|develop)$/);
  const request = {
    scene,
    ...(page ? { page } : {}),
    ...(input.checkPath === false ? { check_path: false } : {}),
    ...(env ? { env_version: env } : {}),
    ...(width ? { width } : {}),
    ...(input.autoColor === true ? { auto_color: true } : {}),
    ...(color ? { line_color: { r: Number(color.r), g: Number(color.g), b: Number(color.b) } } : {}),
    ...(input.isHyaline === true ? { is_hyaline: true } : {}),
  };
  const body = Buffer.from(JSON.stringify(request));
  for (let attempt = 0; ; attempt++) {
    // Making a code changes nothing at WeChat: a timeout is unavailable, not outcome-unknown.
    const answer = await gateway.passthrough(appid, {
      method: 'POST',
      path: '/wxa/getwxacodeunlimit',
      query: new URLSearchParams(),
      contentType: 'application/json',
      body,
      sideEffect: false,
    });
    const type = answer.headers['content-type'] ?? '';
    // Success is the image itself; a failure is JSON (by content type, docs/wechat-api.md §8.4).
    if (type.startsWith('image/')) return { contentType: type, body: answer.body };
    let errcode: number | undefined;
    try {
      errcode = (JSON.parse(answer.body.toString('utf8')) as { errcode?: number }).errcode;
    } catch {
      errcode = undefined;
    }
    if (errcode === undefined) throw new AppError('WECHAT_ERROR', { details: { status: answer.status, contentType: type } });
    if (errcode === -1 && attempt < BUSY_RETRY_DELAYS_MS.length) {
      await new Promise((r) => setTimeout(r, BUSY_RETRY_DELAYS_MS[attempt]));
      continue;
    }
    throw new AppError(wechatErrorCode(errcode, ARGUMENT_ERRORS), { message: `WeChat refused the code: errcode ${errcode}.`, details: { errcode } });
  }
}

// ---- URL scheme and URL link (§8.5) --------------------------------------------------------

const MAX_LINK_DAYS = 30;

function expiry(input: { expireTime?: unknown; expireInterval?: unknown }, now: number): Record<string, number> {
  if (input.expireInterval !== undefined && input.expireTime !== undefined) {
    throw badArgument('expireTime', 'give expireTime or expireInterval, not both');
  }
  if (input.expireInterval !== undefined) {
    const days = Number(input.expireInterval);
    if (!Number.isInteger(days) || days < 1 || days > MAX_LINK_DAYS) throw badArgument('expireInterval', '1 to 30 days');
    return { expire_type: 1, expire_interval: days };
  }
  if (input.expireTime !== undefined) {
    const at = Number(input.expireTime);
    const seconds = Math.floor(now / 1000);
    if (!Number.isInteger(at) || at <= seconds || at > seconds + MAX_LINK_DAYS * 86_400) {
      throw badArgument('expireTime', 'Unix seconds in the future, at most 30 days ahead');
    }
    return { expire_type: 0, expire_time: at };
  }
  return {};
}

const LINK_QUERY = /^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~%]*$/;

export async function urlScheme(
  gateway: Gateway,
  appid: string,
  input: { path?: unknown; query?: unknown; envVersion?: unknown; expireTime?: unknown; expireInterval?: unknown },
): Promise<{ openlink: string }> {
  const path = optionalText(input.path, 'path', 256, /^[^?]*$/);
  const query = optionalText(input.query, 'query', 1024, LINK_QUERY);
  const env = optionalText(input.envVersion, 'envVersion', 16, /^(release|trial|develop)$/);
  const body = await gateway.call<{ openlink?: unknown }>(appid, {
    path: '/wxa/generatescheme',
    method: 'POST',
    body: { jump_wxa: { path: path ?? '', query: query ?? '', ...(env ? { env_version: env } : {}) }, ...expiry(input, Date.now()) },
    errors: ARGUMENT_ERRORS,
  });
  return { openlink: String(body.openlink ?? '') };
}

export async function urlLink(
  gateway: Gateway,
  appid: string,
  input: { path?: unknown; query?: unknown; envVersion?: unknown; expireTime?: unknown; expireInterval?: unknown },
): Promise<{ urlLink: string }> {
  const path = optionalText(input.path, 'path', 256, /^[^?]*$/);
  const query = optionalText(input.query, 'query', 1024, LINK_QUERY);
  const env = optionalText(input.envVersion, 'envVersion', 16, /^(release|trial|develop)$/);
  const body = await gateway.call<{ url_link?: unknown }>(appid, {
    path: '/wxa/generate_urllink',
    method: 'POST',
    body: { ...(path ? { path } : {}), ...(query ? { query } : {}), ...(env ? { env_version: env } : {}), ...expiry(input, Date.now()) },
    errors: ARGUMENT_ERRORS,
  });
  return { urlLink: String(body.url_link ?? '') };
}
