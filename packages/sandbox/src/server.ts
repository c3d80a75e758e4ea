/**
 * The sandbox HTTP server: WeChat's server API paths (answered like api.weixin.qq.com) and the
 * control API under `/__sandbox/` that plays the mini program and the test harness.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  SandboxInputError,
  SandboxModel,
  createSandboxClock,
  type Fault,
  type RandomBytes,
  type SandboxClock,
} from './model.js';
import { sendPush, verifyPushUrl, type PushFormat, type PushMode } from './push.js';
import { handlePayApi, PayInputError, SandboxPay, shippingCall, type NotifyFault, type PayVerification } from './pay.js';
import { isBinary, type PushTarget, type ServiceResult, type SubscribeChoice } from './services.js';
import { ANONYMOUS_USER_INFO, encryptUserData, sessionKeyHmac, type SandboxUserInfo } from './user-data.js';

/** errmsg texts as WeChat returns them (docs/wechat-api.md §0). */
export const ERRMSG: Record<number, string> = {
  [-1]: 'system error',
  0: 'ok',
  40001: 'invalid credential, access_token is invalid or not latest',
  40002: 'invalid grant_type',
  40003: 'invalid openid',
  40013: 'invalid appid',
  40029: 'invalid code',
  40125: 'invalid appsecret',
  40163: 'code been used',
  40226: 'code blocked',
  41001: 'access_token missing',
  41002: 'appid missing',
  41004: 'appsecret missing',
  41008: 'missing code',
  42001: 'access_token expired',
  43002: 'require POST method',
  44002: 'empty post data',
  45009: 'reach max api daily quota limit',
  45011: 'api minute-quota reach limit mustslower retry next minute',
  47001: 'data format error',
  87008: 'invalid sig_method',
  87009: 'invalid signature',
  40037: 'invalid template_id',
  40097: 'invalid args',
  40129: 'invalid scene',
  40165: 'invalid weapp pagepath',
  40169: 'invalid length for scene, or the data is not json string',
  40212: 'invalid query',
  41030: 'invalid page',
  43101: 'user refuse to accept the msg',
  43302: 'require POST method',
  47003: 'argument invalid!',
  85403: 'scheme not exist',
};

const MAX_BODY_BYTES = 1 << 20;
const JSON_TYPE = 'application/json; encoding=utf-8';

export interface SandboxOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  clock?: SandboxClock;
  random?: RandomBytes;
  /** Apps registered at start. */
  apps?: { appid: string; secret: string; unionBound?: boolean }[];
  /** Daily quota of the classic token API (45009 beyond); 2000 by default. */
  classicDailyQuota?: number;
}

export interface Sandbox {
  /** `http://host:port`, set once started. */
  readonly url: string;
  readonly model: SandboxModel;
  /** WeChat Pay v3 (api.mch.weixin.qq.com), served on the same port under /v3/. */
  readonly pay: SandboxPay;
  start(): Promise<string>;
  close(): Promise<void>;
}

/**
 * A sandbox of api.weixin.qq.com.
 * @example
 * const sandbox = createSandbox({ apps: [{ appid: 'wx0123456789abcdef', secret: 's3cret' }] });
 * const url = await sandbox.start(); // point wechat.apiBase at it
 */
export function createSandbox(options: SandboxOptions = {}): Sandbox {
  const model = new SandboxModel({
    clock: options.clock ?? createSandboxClock(),
    ...(options.random ? { random: options.random } : {}),
    ...(options.classicDailyQuota !== undefined ? { classicDailyQuota: options.classicDailyQuota } : {}),
  });
  for (const app of options.apps ?? []) model.registerApp(app);
  const pay = new SandboxPay(() => model.now());

  const server: Server = createServer((req, res) => {
    handle(model, pay, req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, { error: { code: 'INTERNAL', message: String(error) } });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  let url = '';

  return {
    get url() {
      return url;
    },
    model,
    pay,
    start: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
          const address = server.address() as AddressInfo;
          const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          url = `http://${host}:${address.port}`;
          resolve(url);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

type Query = URLSearchParams;

async function handle(model: SandboxModel, pay: SandboxPay, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sandbox');
  const path = url.pathname;
  if (path.startsWith('/__sandbox/pay/')) return payControl(pay, model.services, req, res, path);
  if (path.startsWith('/__sandbox')) return control(model, req, res, path, url.searchParams);
  if (path.startsWith('/v3/')) {
    const raw = await readBody(req);
    if (raw === undefined) {
      req.destroy();
      return;
    }
    model.count(path, undefined);
    const fault = model.takeFault(path, undefined);
    if (fault && (await applyFault(fault, res))) return;
    return handlePayApi(pay, req, res, url, raw.toString('utf8'));
  }

  const route = WECHAT_ROUTES[path] ?? (SHIPPING_PATHS.has(path) ? withToken((_model, _call, appid, json) => shippingCall(pay, path, appid, json)) : undefined);
  const body = req.method === 'POST' ? await readBody(req) : null;
  if (body === undefined) {
    req.destroy();
    return;
  }
  const call: ApiCall = { method: req.method ?? 'GET', query: url.searchParams, body, contentType: req.headers['content-type'] ?? '' };
  // Which app the call is for: ?appid=, an appid in a JSON body (stable_token), or the token's app.
  const bodyAppid = jsonBody(call)?.appid;
  const appid =
    url.searchParams.get('appid') ?? (typeof bodyAppid === 'string' ? bodyAppid : undefined) ?? tokenApp(model, url.searchParams);
  model.count(path, appid);
  if (!route) {
    send(res, 404, '<html><body>404 Not Found</body></html>', 'text/html');
    return;
  }
  const fault = model.takeFault(path, appid);
  if (fault && (await applyFault(fault, res))) return;

  const result = route(model, call);
  if (isBinary(result)) {
    res.writeHead(200, { 'content-type': result.contentType, 'content-length': result.binary.length });
    res.end(result.binary);
    return;
  }
  const errcode = (result as { errcode?: unknown }).errcode;
  if (typeof errcode === 'number' && errcode !== 0) {
    wechatError(res, errcode, (result as { errmsg?: string }).errmsg);
    return;
  }
  send(res, 200, result);
}

/** Sends an event push to an app's configured push target, as WeChat does (signed, maybe encrypted). */
function pushTo(model: SandboxModel, target: PushTarget, message: Record<string, unknown>) {
  return sendPush({ ...target, message, attempts: 1, timeoutMs: 5_000, now: model.now() });
}

function tokenApp(model: SandboxModel, query: Query): string | undefined {
  const check = model.checkToken(query.get('access_token'));
  return check.ok ? check.appid : undefined;
}

/** Applies a fault; true when it answered (or dropped) the call, false to go on normally. */
async function applyFault(fault: Fault, res: ServerResponse): Promise<boolean> {
  if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs).unref());
  if (res.destroyed || res.socket?.destroyed !== false) return true;
  if (fault.drop) {
    res.socket?.destroy();
    return true;
  }
  if (fault.httpStatus) {
    send(res, fault.httpStatus, `<html><body>${fault.httpStatus}</body></html>`, 'text/html');
    return true;
  }
  if (fault.errcode !== undefined) {
    send(res, 200, { errcode: fault.errcode, errmsg: `${fault.errmsg ?? ERRMSG[fault.errcode] ?? 'error'}${rid()}` });
    return true;
  }
  return false;
}

// ---- WeChat's API ------------------------------------------------------------------------------

interface ApiCall {
  method: string;
  query: Query;
  body: Buffer | null;
  contentType: string;
}

type ApiResult = ServiceResult;

/** Routes of APIs that take an access_token: checked first (41001/40001/42001), as WeChat does. */
function withToken(handler: (model: SandboxModel, call: ApiCall, appid: string, body: Record<string, unknown>) => ApiResult, options: { post?: boolean } = { post: true }) {
  return (model: SandboxModel, call: ApiCall): ApiResult => {
    const check = model.checkToken(call.query.get('access_token'));
    if (!check.ok) return { errcode: check.errcode };
    if (options.post && call.method !== 'POST') return { errcode: 43002 };
    const body = options.post ? jsonBody(call) : {};
    if (body === undefined) return { errcode: 47001 };
    return handler(model, call, check.appid, body);
  };
}

/** 发货信息管理: upload and query, played against the sandbox's WeChat Pay orders (pay.ts). */
const SHIPPING_PATHS = new Set(['/wxa/sec/order/upload_shipping_info', '/wxa/sec/order/get_order']);

/** A non-zero errcode means "answer with this error" (errmsg optional); anything else is the success body. */
const WECHAT_ROUTES: Record<string, (model: SandboxModel, call: ApiCall) => ApiResult> = {
  '/sns/jscode2session': (model, { query }) => {
    const appid = query.get('appid');
    const secret = query.get('secret');
    const code = query.get('js_code');
    if (!appid) return { errcode: 41002 };
    if (!secret) return { errcode: 41004 };
    if (!code) return { errcode: 41008 };
    if (query.get('grant_type') !== 'authorization_code') return { errcode: 40002 };
    const result = model.exchangeLoginCode(appid, secret, code);
    if ('errcode' in result) return result;
    // Success carries no errcode (docs/wechat-api.md §0).
    const { user } = result;
    return { session_key: user.sessionKey, openid: user.openid, ...(user.unionid ? { unionid: user.unionid } : {}) };
  },

  '/cgi-bin/token': (model, { query }) => {
    const appid = query.get('appid');
    const secret = query.get('secret');
    if (query.get('grant_type') !== 'client_credential') return { errcode: 40002 };
    if (!appid) return { errcode: 41002 };
    if (!secret) return { errcode: 41004 };
    const app = model.app(appid);
    if (!app) return { errcode: 40013 };
    if (app.secret !== secret) return { errcode: 40001 };
    const result = model.classicToken(appid);
    if ('errcode' in result) return result;
    return { access_token: result.token, expires_in: result.expiresIn };
  },

  '/cgi-bin/stable_token': (model, call) => {
    if (call.method !== 'POST') return { errcode: 43002 };
    const body = jsonBody(call);
    if (body === undefined) return { errcode: 47001 };
    if (body.grant_type !== 'client_credential') return { errcode: 40002 };
    if (typeof body.appid !== 'string' || !body.appid) return { errcode: 41002 };
    if (typeof body.secret !== 'string' || !body.secret) return { errcode: 41004 };
    const app = model.app(body.appid);
    if (!app) return { errcode: 40013 };
    if (app.secret !== body.secret) return { errcode: 40125 };
    const result = model.stableToken(body.appid, body.force_refresh === true);
    return { access_token: result.token, expires_in: result.expiresIn };
  },

  '/wxa/checksession': (model, call) => {
    const params = queryOrBody(call);
    const check = model.checkToken(call.query.get('access_token'));
    if (!check.ok) return { errcode: check.errcode };
    const user = model.user(check.appid, params.openid ?? '');
    if (!user) return { errcode: 40003 };
    if (params.sig_method !== 'hmac_sha256') return { errcode: 87008 };
    if (params.signature !== sessionKeyHmac(user.sessionKey)) return { errcode: 87009 };
    return { errcode: 0, errmsg: 'ok' };
  },

  '/wxa/resetusersessionkey': (model, call) => {
    const params = queryOrBody(call);
    const check = model.checkToken(call.query.get('access_token'));
    if (!check.ok) return { errcode: check.errcode };
    const user = model.user(check.appid, params.openid ?? '');
    if (!user) return { errcode: 40003 };
    if (params.sig_method !== 'hmac_sha256') return { errcode: 87008 };
    if (params.signature !== sessionKeyHmac(user.sessionKey)) return { errcode: 87009 };
    return { errcode: 0, errmsg: 'ok', openid: user.openid, session_key: model.resetSessionKey(user) };
  },

  '/wxa/msg_sec_check': withToken((model, _call, appid, body) =>
    model.services.msgSecCheck(appid, body, (openid) => model.user(appid, openid) !== undefined),
  ),
  '/cgi-bin/message/subscribe/send': withToken((model, _call, appid, body) =>
    model.services.sendSubscribe(appid, body, (openid) => model.user(appid, openid) !== undefined),
  ),
  '/wxaapi/newtmpl/gettemplate': withToken((model, _call, appid) => model.services.templateList(appid), { post: false }),
  '/wxa/media_check_async': withToken((model, _call, appid, body) => {
    const taken = model.services.mediaCheck(appid, body, (openid) => model.user(appid, openid) !== undefined);
    if (!('pending' in taken)) return taken;
    // The verdict goes to the app's push URL a little later, as WeChat's does (within 30 min).
    const target = model.services.pushTargets.get(appid);
    if (target) {
      const pending = taken.pending;
      setTimeout(() => {
        pushTo(model, target, model.services.mediaVerdict(pending, target.ghid, model.now())).catch(() => undefined);
      }, target.mediaCheckDelayMs).unref();
    }
    return taken.result;
  }),
  '/wxa/getwxacodeunlimit': withToken((model, _call, appid, body) => model.services.wxacode(appid, body)),
  '/wxa/generatescheme': withToken((model, _call, appid, body) => model.services.generateScheme(appid, body, model.now())),
  '/wxa/queryscheme': withToken((model, _call, _appid, body) => model.services.queryScheme(body)),
  '/wxa/generate_urllink': withToken((model, _call, appid, body) => model.services.generateUrlLink(appid, body, model.now())),
  '/wxa/genwxashortlink': withToken((model, _call, appid, body) => model.services.shortLink(appid, body)),

  '/wxa/business/getuserphonenumber': (model, call) => {
    const check = model.checkToken(call.query.get('access_token'));
    if (!check.ok) return { errcode: check.errcode };
    if (call.method !== 'POST') return { errcode: 43002 };
    const body = jsonBody(call);
    if (body === undefined) return { errcode: 47001 };
    if (typeof body.code !== 'string' || !body.code) return { errcode: 40029 };
    const openid = typeof body.openid === 'string' ? body.openid : undefined;
    const result = model.exchangePhoneCode(check.appid, body.code, openid);
    if ('errcode' in result) return result;
    const prefix = `+${result.countryCode}`;
    const pure = result.phoneNumber.startsWith(prefix)
      ? result.phoneNumber.slice(prefix.length)
      : result.phoneNumber.replace(/^\+/, '');
    return {
      errcode: 0,
      errmsg: 'ok',
      phone_info: {
        phoneNumber: result.countryCode === '86' ? pure : `+${result.countryCode}${pure}`,
        purePhoneNumber: pure,
        // The docs' table says string, their example shows a number; WeChat sends the number.
        countryCode: Number(result.countryCode),
        watermark: { timestamp: Math.floor(model.now() / 1000), appid: check.appid },
      },
    };
  },
};

/** A JSON object body, or undefined when the body is missing or not JSON (47001). */
function jsonBody(call: ApiCall): Record<string, unknown> | undefined {
  if (!call.body || call.body.length === 0) return undefined;
  try {
    const parsed: unknown = JSON.parse(call.body.toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** checksession takes its parameters in the query; the newest docs list them as body (§3.1). */
function queryOrBody(call: ApiCall): Record<string, string | undefined> {
  const body = jsonBody(call) ?? {};
  const pick = (name: string) => call.query.get(name) ?? (typeof body[name] === 'string' ? (body[name] as string) : undefined);
  return { openid: pick('openid'), signature: pick('signature'), sig_method: pick('sig_method') };
}

/** Business errors go out as HTTP 200 with errcode and errmsg (docs/wechat-api.md §0). */
function wechatError(res: ServerResponse, errcode: number, errmsg?: string): void {
  send(res, 200, { errcode, errmsg: `${errmsg ?? ERRMSG[errcode] ?? 'error'}${rid()}` });
}

/** The request-id suffix WeChat appends to errmsg (docs/wechat-api.md §0). */
function rid(): string {
  const hex = randomBytes(12).toString('hex');
  return ` rid: ${hex.slice(0, 8)}-${hex.slice(8, 16)}-${hex.slice(16)}`;
}

// ---- control API ------------------------------------------------------------------------------

async function control(
  model: SandboxModel,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  query: Query,
): Promise<void> {
  const method = req.method ?? 'GET';
  try {
    const body = method === 'POST' ? parseControlBody(await readBody(req)) : {};
    const route = `${method} ${path.replace(/\/$/, '')}`;
    switch (route) {
      case 'GET /__sandbox':
        return send(res, 200, { routes: CONTROL_ROUTES, now: model.now() });
      case 'POST /__sandbox/apps': {
        const appid = requireString(body, 'appid');
        const secret = requireString(body, 'secret');
        const ttl = body.tokenTtlSeconds;
        if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 10 || ttl > 7200)) {
          throw new SandboxInputError('BAD_REQUEST', 'tokenTtlSeconds must be an integer from 10 to 7200');
        }
        return send(res, 200, model.registerApp({ appid, secret, unionBound: body.unionBound === true, ...(typeof ttl === 'number' ? { tokenTtlSeconds: ttl } : {}) }));
      }
      case 'POST /__sandbox/check-token': {
        const check = model.checkToken(requireString(body, 'access_token'));
        return send(res, 200, check.ok ? { ok: true, appid: check.appid } : { ok: false, errcode: check.errcode });
      }
      case 'POST /__sandbox/templates': {
        const keywords = body.keywords;
        if (!Array.isArray(keywords) || !keywords.every((k) => typeof k === 'string' && /^[a-z_]+\d+$/.test(k))) {
          throw new SandboxInputError('BAD_REQUEST', 'keywords must be a list like ["thing1", "time2"]');
        }
        const kind = body.kind ?? 'one-time';
        if (kind !== 'one-time' && kind !== 'long-term') throw new SandboxInputError('BAD_REQUEST', 'kind is one-time or long-term');
        model.services.addTemplate(requireString(body, 'appid'), requireString(body, 'templateId'), keywords as string[], kind);
        return send(res, 200, { ok: true });
      }
      case 'POST /__sandbox/subscribe': {
        const count = body.count === undefined ? 1 : body.count;
        if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) throw new SandboxInputError('BAD_REQUEST', 'count must be a positive integer');
        const credits = model.services.addCredits(requireString(body, 'appid'), requireString(body, 'openid'), requireString(body, 'templateId'), count);
        return send(res, 200, { credits });
      }
      case 'POST /__sandbox/push-target': {
        const mode = body.mode ?? 'plaintext';
        const format = body.format ?? 'json';
        if (!['plaintext', 'compatible', 'safe'].includes(mode as string)) throw new SandboxInputError('BAD_REQUEST', 'mode is plaintext, compatible or safe');
        if (!['json', 'xml'].includes(format as string)) throw new SandboxInputError('BAD_REQUEST', 'format is json or xml');
        const delay = body.mediaCheckDelayMs ?? 50;
        if (typeof delay !== 'number' || delay < 0 || delay > 600_000) throw new SandboxInputError('BAD_REQUEST', 'mediaCheckDelayMs is 0 to 600000');
        const appid = requireString(body, 'appid');
        model.services.pushTargets.set(appid, {
          appid,
          url: requireString(body, 'url'),
          token: requireString(body, 'token'),
          ...optionalStrings(body, ['encodingAESKey']),
          mode: mode as PushMode,
          format: format as PushFormat,
          ghid: typeof body.ghid === 'string' ? body.ghid : 'gh_sandbox00000',
          mediaCheckDelayMs: delay,
        });
        return send(res, 200, { ok: true });
      }
      case 'POST /__sandbox/subscribe-tap': {
        // The user taps in the requestSubscribeMessage popup (or later in the settings): WeChat
        // records it and pushes subscribe_msg_popup_event / subscribe_msg_change_event.
        const appid = requireString(body, 'appid');
        const openid = requireString(body, 'openid');
        const where = body.where ?? 'popup';
        if (where !== 'popup' && where !== 'change') throw new SandboxInputError('BAD_REQUEST', 'where is popup or change');
        const choices = body.choices;
        if (typeof choices !== 'object' || choices === null || !Object.values(choices).every((c) => c === 'accept' || c === 'reject')) {
          throw new SandboxInputError('BAD_REQUEST', 'choices must be {"<templateId>": "accept" | "reject"}');
        }
        const applied = model.services.choose(appid, openid, choices as Record<string, SubscribeChoice>, where);
        const target = model.services.pushTargets.get(appid);
        if (!target || applied.length === 0) return send(res, 200, { applied, attempts: [] });
        const items = applied.map((templateId) => ({
          TemplateId: templateId,
          SubscribeStatusString: (choices as Record<string, string>)[templateId]!,
          ...(where === 'popup' ? { PopupScene: '0' } : {}),
        }));
        const container = where === 'popup' ? 'SubscribeMsgPopupEvent' : 'SubscribeMsgChangeEvent';
        const message = {
          ToUserName: target.ghid,
          FromUserName: openid,
          CreateTime: Math.floor(model.now() / 1000),
          MsgType: 'event',
          Event: where === 'popup' ? 'subscribe_msg_popup_event' : 'subscribe_msg_change_event',
          // XML repeats <List> inside the event's element; JSON carries the list under the element's name.
          [container]: target.format === 'xml' ? { List: items } : items,
        };
        return send(res, 200, { applied, attempts: await pushTo(model, target, message) });
      }
      case 'POST /__sandbox/pages': {
        const pages = body.pages;
        if (!Array.isArray(pages) || !pages.every((p) => typeof p === 'string')) throw new SandboxInputError('BAD_REQUEST', 'pages must be a list of page paths');
        model.services.setPages(requireString(body, 'appid'), pages as string[]);
        return send(res, 200, { ok: true });
      }
      case 'GET /__sandbox/messages': {
        const appid = query.get('appid');
        return send(res, 200, { messages: model.services.messages.filter((m) => !appid || m.appid === appid) });
      }
      case 'POST /__sandbox/push': {
        const mode = body.mode ?? 'plaintext';
        const format = body.format ?? 'json';
        if (!['plaintext', 'compatible', 'safe'].includes(mode as string)) throw new SandboxInputError('BAD_REQUEST', 'mode is plaintext, compatible or safe');
        if (!['json', 'xml'].includes(format as string)) throw new SandboxInputError('BAD_REQUEST', 'format is json or xml');
        if (typeof body.message !== 'object' || body.message === null) throw new SandboxInputError('BAD_REQUEST', 'message must be an object');
        const attempts = await sendPush({
          url: requireString(body, 'url'),
          appid: requireString(body, 'appid'),
          token: requireString(body, 'token'),
          ...optionalStrings(body, ['encodingAESKey']),
          mode: mode as PushMode,
          format: format as PushFormat,
          message: body.message as Record<string, unknown>,
          attempts: typeof body.attempts === 'number' ? body.attempts : 1,
          timeoutMs: typeof body.timeoutMs === 'number' ? body.timeoutMs : 5_000,
          now: model.now(),
        }).catch((error: Error) => {
          throw new SandboxInputError('BAD_REQUEST', error.message);
        });
        return send(res, 200, { attempts });
      }
      case 'POST /__sandbox/push-verify':
        return send(res, 200, await verifyPushUrl(requireString(body, 'url'), requireString(body, 'token'), model.now()));
      case 'POST /__sandbox/login':
        return send(
          res,
          200,
          model.issueLoginCode({
            appid: requireString(body, 'appid'),
            ...optionalStrings(body, ['openid', 'unionid', 'sessionKey']),
            ...(body.rotateSessionKey === true ? { rotateSessionKey: true } : {}),
            ...(typeof body.blocked === 'boolean' ? { blocked: body.blocked } : {}),
          }),
        );
      case 'POST /__sandbox/codes': {
        // Many codes for new users at once, for load tests.
        const count = body.count;
        if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 100_000) {
          throw new SandboxInputError('BAD_REQUEST', 'count must be an integer from 1 to 100000');
        }
        const appid = requireString(body, 'appid');
        return send(res, 200, { codes: Array.from({ length: count }, () => model.issueLoginCode({ appid })) });
      }
      case 'POST /__sandbox/userinfo': {
        const appid = requireString(body, 'appid');
        const openid = requireString(body, 'openid');
        const user = model.user(appid, openid);
        if (!user) throw new SandboxInputError('USER_UNKNOWN', `no user ${openid} in ${appid}; log in first`);
        const given = typeof body.userInfo === 'object' && body.userInfo !== null ? body.userInfo : {};
        const userInfo = { ...ANONYMOUS_USER_INFO, ...(given as Partial<SandboxUserInfo>) };
        return send(
          res,
          200,
          encryptUserData({
            appid,
            sessionKey: user.sessionKey,
            userInfo,
            timestampSeconds: Math.floor(model.now() / 1000),
            random: model.random,
          }),
        );
      }
      case 'POST /__sandbox/phone':
        return send(
          res,
          200,
          model.issuePhoneCode({
            appid: requireString(body, 'appid'),
            openid: requireString(body, 'openid'),
            phoneNumber: requireString(body, 'phoneNumber'),
            ...optionalStrings(body, ['countryCode']),
          }),
        );
      case 'POST /__sandbox/faults': {
        const times = body.times === undefined ? 1 : body.times;
        if (typeof times !== 'number' || !Number.isInteger(times) || times < 1) {
          throw new SandboxInputError('BAD_REQUEST', 'times must be a positive integer');
        }
        const fault: Omit<Fault, 'id'> = { path: requireString(body, 'path'), times };
        if (typeof body.appid === 'string') fault.appid = body.appid;
        if (typeof body.errcode === 'number') fault.errcode = body.errcode;
        if (typeof body.errmsg === 'string') fault.errmsg = body.errmsg;
        if (typeof body.httpStatus === 'number') fault.httpStatus = body.httpStatus;
        if (typeof body.delayMs === 'number') fault.delayMs = body.delayMs;
        if (body.drop === true) fault.drop = true;
        if (fault.errcode === undefined && !fault.httpStatus && !fault.delayMs && !fault.drop) {
          throw new SandboxInputError('BAD_REQUEST', 'a fault needs errcode, httpStatus, delayMs or drop');
        }
        return send(res, 200, model.addFault(fault));
      }
      case 'DELETE /__sandbox/faults':
        model.clearFaults();
        return send(res, 200, { ok: true });
      case 'GET /__sandbox/clock':
        return send(res, 200, { now: model.now() });
      case 'POST /__sandbox/clock': {
        const advanceMs = body.advanceMs;
        if (typeof advanceMs !== 'number' || !Number.isFinite(advanceMs) || advanceMs < 0) {
          throw new SandboxInputError('BAD_REQUEST', 'advanceMs must be a non-negative number');
        }
        model.clock.advance(advanceMs);
        return send(res, 200, { now: model.now() });
      }
      case 'GET /__sandbox/stats':
        return send(res, 200, filterStats(model, query.get('appid')));
      case 'DELETE /__sandbox/stats':
        model.resetStats();
        return send(res, 200, { ok: true });
      default:
        throw new SandboxInputError('NOT_FOUND', `no control route ${route}; GET /__sandbox lists them`);
    }
  } catch (error) {
    if (error instanceof SandboxInputError) {
      const status = error.code === 'NOT_FOUND' || error.code.endsWith('_UNKNOWN') ? 404 : 400;
      return send(res, status, { error: { code: error.code, message: error.message } });
    }
    throw error;
  }
}

const CONTROL_ROUTES = [
  'POST /__sandbox/apps {appid, secret, unionBound?, tokenTtlSeconds?}',
  'POST /__sandbox/check-token {access_token} -> {ok, errcode?}',
  'POST /__sandbox/templates {appid, templateId, keywords, kind?: one-time|long-term}',
  'POST /__sandbox/subscribe {appid, openid, templateId, count?} (credits at WeChat only, no push; subscribe-tap is the user)',
  'POST /__sandbox/pages {appid, pages} (published pages; unset: every page)',
  'POST /__sandbox/push-target {appid, url, token, encodingAESKey?, mode?, format?, ghid?, mediaCheckDelayMs?} (where this app\'s event pushes go)',
  'POST /__sandbox/subscribe-tap {appid, openid, choices: {templateId: accept|reject}, where?: popup|change} (the user taps; pushes the event)',
  'GET /__sandbox/messages?appid= (subscribe messages sent)',
  'POST /__sandbox/push {url, appid, token, encodingAESKey?, mode?, format?, message, attempts?} (WeChat → your push URL)',
  'POST /__sandbox/push-verify {url, token} (the echostr check of the console)',
  'POST /__sandbox/login {appid, openid?, unionid?, sessionKey?, rotateSessionKey?, blocked?} -> {code, openid, unionid?}',
  'POST /__sandbox/codes {appid, count} -> {codes: [{code, openid}]} (new users, for load tests)',
  'POST /__sandbox/userinfo {appid, openid, userInfo?} -> {encryptedData, iv, rawData, signature, userInfo}',
  'POST /__sandbox/phone {appid, openid, phoneNumber, countryCode?} -> {code}',
  'POST /__sandbox/faults {path, appid?, errcode? | httpStatus? | delayMs? | drop?, times}',
  'DELETE /__sandbox/faults',
  'GET|POST /__sandbox/clock {advanceMs}',
  'GET /__sandbox/stats?appid=',
  'POST /__sandbox/pay/merchants {mchid, serial, publicKey (the merchant key, PEM), apiV3Key, verification?: publicKey|certificate} -> {publicKeyId, publicKey} (WeChat Pay\'s public key)',
  'GET /__sandbox/pay/platform -> {publicKeyId, publicKey, certificateSerial?}',
  'POST /__sandbox/pay/tap {appId, timeStamp, nonceStr, package, signType, paySign, fault?} -> {transaction, attempts} (the user taps 支付; TRANSACTION.SUCCESS to notify_url)',
  'POST /__sandbox/pay/refund-complete {mchid, outRefundNo, fault?} -> {attempts} (REFUND.SUCCESS; refunds also complete by themselves after 50 ms)',
  'POST /__sandbox/pay/faults {badAnswerSignatures} (the next n /v3 answers carry a signature that does not verify)',
  'POST /__sandbox/pay/confirm-receipt {mchid, outTradeNo} (the user confirms receipt: order_state 3, trade_manage_order_settlement pushed to the app)',
  'GET /__sandbox/pay/orders -> {orders, refunds, sent}',
  '  fault: {badSignature?, probe?, wrongKey?, ageMs?, amountDelta?, drop?, repeat?, delayMs?}',
  'DELETE /__sandbox/stats',
];

async function payControl(pay: SandboxPay, services: SandboxModel['services'], req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const method = req.method ?? 'GET';
  try {
    const body = method === 'POST' ? parseControlBody(await readBody(req)) : {};
    switch (`${method} ${path.replace(/\/$/, '')}`) {
      case 'POST /__sandbox/pay/merchants': {
        const verification = body.verification ?? 'publicKey';
        if (verification !== 'publicKey' && verification !== 'certificate') throw new SandboxInputError('BAD_REQUEST', 'verification is publicKey or certificate');
        pay.registerMerchant({ mchid: requireString(body, 'mchid'), serial: requireString(body, 'serial'), publicKey: requireString(body, 'publicKey'), apiV3Key: requireString(body, 'apiV3Key'), verification: verification as PayVerification });
        return send(res, 200, { publicKeyId: pay.publicKeyMode.serial, publicKey: pay.publicKeyMode.publicKeyPem });
      }
      case 'GET /__sandbox/pay/platform': {
        const certificate = [...pay.merchants.values()].some((m) => m.verification === 'certificate') ? await pay.certificate() : undefined;
        return send(res, 200, { publicKeyId: pay.publicKeyMode.serial, publicKey: pay.publicKeyMode.publicKeyPem, ...(certificate ? { certificateSerial: certificate.serial } : {}) });
      }
      case 'POST /__sandbox/pay/tap': {
        const params = { appId: requireString(body, 'appId'), timeStamp: requireString(body, 'timeStamp'), nonceStr: requireString(body, 'nonceStr'), package: requireString(body, 'package'), signType: requireString(body, 'signType'), paySign: requireString(body, 'paySign') };
        return send(res, 200, await pay.tap(params, faultOf(body.fault)));
      }
      case 'POST /__sandbox/pay/refund-complete':
        return send(res, 200, { attempts: await pay.completeRefund(requireString(body, 'mchid'), requireString(body, 'outRefundNo'), faultOf(body.fault)) });
      case 'POST /__sandbox/pay/faults': {
        const n = body.badAnswerSignatures;
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new SandboxInputError('BAD_REQUEST', 'badAnswerSignatures must be a count');
        pay.badAnswerSignatures = n;
        return send(res, 200, { ok: true });
      }
      case 'POST /__sandbox/pay/confirm-receipt': {
        // The user confirms receipt in 小程序购物订单: order_state 3, and the trade-management push to the app.
        const mchid = requireString(body, 'mchid');
        const outTradeNo = requireString(body, 'outTradeNo');
        const order = pay.order(mchid, outTradeNo);
        const state = pay.shipping.get(`${mchid}:${outTradeNo}`);
        if (!state || state.orderState !== 2) throw new SandboxInputError('BAD_REQUEST', 'the order has no shipping info uploaded (or is confirmed already)');
        state.orderState = 3;
        const target = services.pushTargets.get(order.appid);
        const message = {
          ToUserName: target?.ghid ?? 'gh_sandbox00000',
          FromUserName: order.openid,
          CreateTime: Math.floor(pay.now() / 1000),
          MsgType: 'event',
          Event: 'trade_manage_order_settlement',
          transaction_id: order.transactionId,
          merchant_id: mchid,
          merchant_trade_no: outTradeNo,
          confirm_receive_method: 1,
          confirm_receive_time: Math.floor(pay.now() / 1000),
          settlement_time: Math.floor(pay.now() / 1000),
        };
        const attempts = target ? await sendPush({ ...target, message, attempts: 1, timeoutMs: 5_000, now: pay.now() }) : [];
        return send(res, 200, { orderState: 3, attempts });
      }
      case 'GET /__sandbox/pay/orders':
        return send(res, 200, { orders: [...pay.orders.values()].map((o) => pay.transaction(o)), refunds: [...pay.refunds.values()].map((r) => pay.refundView(r)), sent: pay.sent });
      default:
        throw new SandboxInputError('NOT_FOUND', `no control route ${method} ${path}; GET /__sandbox lists them`);
    }
  } catch (error) {
    if (error instanceof PayInputError) return send(res, error.status === 404 ? 404 : 400, { error: { code: error.code, message: error.message } });
    if (error instanceof SandboxInputError) return send(res, error.code === 'NOT_FOUND' ? 404 : 400, { error: { code: error.code, message: error.message } });
    throw error;
  }
}

function faultOf(value: unknown): NotifyFault {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new SandboxInputError('BAD_REQUEST', 'fault must be an object');
  const f = value as Record<string, unknown>;
  const fault: NotifyFault = {};
  for (const flag of ['badSignature', 'probe', 'wrongKey', 'drop'] as const) if (f[flag] === true) fault[flag] = true;
  for (const n of ['ageMs', 'amountDelta', 'repeat', 'delayMs'] as const) {
    if (f[n] === undefined) continue;
    if (typeof f[n] !== 'number' || !Number.isInteger(f[n]) || (n !== 'amountDelta' && (f[n] as number) < 0) || (n === 'repeat' && (f[n] as number) > 10)) throw new SandboxInputError('BAD_REQUEST', `fault.${n} must be a whole number`);
    fault[n] = f[n] as number;
  }
  return fault;
}

function filterStats(model: SandboxModel, appid: string | null) {
  const stats = model.snapshotStats();
  if (!appid) return stats;
  const paths = stats.apps[appid] ?? {};
  return { total: Object.values(paths).reduce((a, b) => a + b, 0), paths, apps: { [appid]: paths } };
}

function parseControlBody(raw: Buffer | undefined): Record<string, unknown> {
  if (raw === undefined) throw new SandboxInputError('BAD_REQUEST', `the body is over ${MAX_BODY_BYTES} bytes`);
  if (raw.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new SandboxInputError('BAD_REQUEST', 'the body must be JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SandboxInputError('BAD_REQUEST', 'the body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

function requireString(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (typeof value !== 'string' || value === '') throw new SandboxInputError('BAD_REQUEST', `${key} is required`);
  return value;
}

function optionalStrings<K extends string>(body: Record<string, unknown>, keys: K[]): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  for (const key of keys) {
    const value = body[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') throw new SandboxInputError('BAD_REQUEST', `${key} must be a string`);
    out[key] = value;
  }
  return out;
}

// ---- plumbing ----------------------------------------------------------------------------------

/** The body, or undefined when it is over the limit. */
function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, type = JSON_TYPE): void {
  // 64-bit ids (msgid) go out as bare JSON numbers, exactly, as WeChat sends them.
  const text =
    typeof body === 'string'
      ? body
      : JSON.stringify(body, (_key, value: unknown) =>
          typeof value === 'object' && value !== null && '__exactInteger' in value ? `\u0000${(value as { __exactInteger: string }).__exactInteger}` : value,
        ).replace(/"\\u0000(-?\d+)"/g, '$1');
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
