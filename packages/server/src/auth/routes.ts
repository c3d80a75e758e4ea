/**
 * HTTP routes of login and sessions: `/auth/*`, and Wafer2's `/weapp/*` so that existing Wafer2
 * mini programs keep working unchanged.
 */
import type {
  LoginResponse,
  SessionResponse,
  UserInfo,
  UserProfile,
  WaferErrorResponse,
  WaferLoginResponse,
  WaferUserInfo,
} from 'minigate-protocol';
import { AppError, errorHeaders } from '../core/index.js';
import { Router, header, readBodyAs, readJsonBody, sendJson, type HttpContext, type Service } from '../http/index.js';
import type { UserRecord } from '../store/index.js';
import { login, resolveApp, type LoginDeps } from './login.js';
import { requireSession, sessionNow } from './require-session.js';
import { LoginRequest, PhoneRequest, operations } from './schemas.js';
import { tokenFromRequest } from './tokens.js';

export function toUserInfo(user: UserRecord): UserInfo {
  return {
    openid: user.openid,
    ...(user.unionid ? { unionid: user.unionid } : {}),
    ...(user.profile ? { profile: user.profile as UserProfile } : {}),
    ...(user.phoneNumber ? { phoneNumber: user.phoneNumber } : {}),
    firstSeenAt: user.firstSeenAt,
    lastSeenAt: user.lastSeenAt,
  };
}

function toWaferUserInfo(session: { openid: string; unionid: string | null }, user: UserRecord | null): WaferUserInfo {
  return {
    openId: session.openid,
    ...(session.unionid ? { unionId: session.unionid } : {}),
    ...((user?.profile ?? {}) as UserProfile),
  };
}

/** The login and session routes: `auth` (mounted at /auth) and Wafer2's `wafer` (at /weapp). */
export function createAuthServices(deps: LoginDeps): Service[] {
  const router = new Router();
  router.route('POST', '/login', operations.login, async (ctx) => {
    const body = await readBodyAs(ctx, LoginRequest);
    const app = resolveApp(deps.apps, ctx.req, body.appid);
    const created = await login(deps, app, {
      code: body.code,
      encryptedData: body.encryptedData,
      iv: body.iv,
      rawData: body.rawData,
      signature: body.signature,
    }, ctx.client.ip, header(ctx.req, 'user-agent'), ctx.requestId);
    const response: LoginResponse = {
      token: created.token,
      expiresAt: created.session.expiresAt,
      openid: created.session.openid,
      ...(created.session.unionid ? { unionid: created.session.unionid } : {}),
      user: toUserInfo(created.user),
    };
    sendJson(ctx.res, 200, response);
  });

  // The hot one (a mini program checks its session on every launch): no await when both are cached.
  router.route('GET', '/session', operations.session, async (ctx) => {
    const checked = sessionNow(deps.sessions, ctx.req);
    const session = checked instanceof Promise ? await checked : checked;
    const found = deps.sessions.userNow(session);
    const user = found instanceof Promise ? await found : found;
    const response: SessionResponse = {
      appid: session.appid,
      openid: session.openid,
      ...(session.unionid ? { unionid: session.unionid } : {}),
      expiresAt: session.expiresAt,
      ...(user ? { user: toUserInfo(user) } : {}),
    };
    sendJson(ctx.res, 200, response);
  });

  // The mini program's getPhoneNumber button gives a code; the number is saved on the user.
  router.route('POST', '/phone', operations.phone, async (ctx) => {
    const session = await requireSession(deps.sessions, ctx.req);
    const body = await readBodyAs(ctx, PhoneRequest);
    if (!deps.phoneNumber || !deps.savePhone) throw new AppError('NOT_FOUND');
    await deps.limits?.beforePhone(session.appid, session.openid);
    const phone = await deps.phoneNumber(session.appid, body.code, session.openid);
    await deps.savePhone(session.appid, session.openid, phone.phoneNumber);
    deps.sessions.forgetUser(session.appid, session.openid);
    sendJson(ctx.res, 200, phone);
  });

  // The SDK reports what the user chose in wx.requestSubscribeMessage: recorded as client-reported,
  // one grant per accepted template at most (docs/subscribe.md).
  router.route('POST', '/subscriptions', operations.subscriptions, async (ctx) => {
    const session = await requireSession(deps.sessions, ctx.req);
    if (!deps.reportSubscriptions) throw new AppError('NOT_FOUND');
    await deps.subscriptionsLimit?.(`${session.appid}:${session.openid}`, ctx.client.ip);
    const body = await readJsonBody(ctx.req);
    sendJson(ctx.res, 200, await deps.reportSubscriptions(session.appid, session.openid, body.result));
  });

  // Open data fetched after login (wx.getWeRunData, group info, …): decrypted with the session's
  // key; SESSION_KEY_STALE tells the SDK to log in again, get the data again and retry once.
  router.route('POST', '/decrypt', operations.decrypt, async (ctx) => {
    const session = await requireSession(deps.sessions, ctx.req);
    const body = await readJsonBody(ctx.req);
    if (!deps.keys) throw new AppError('NOT_FOUND');
    const data = await deps.keys.decrypt(session, { encryptedData: body.encryptedData, iv: body.iv });
    sendJson(ctx.res, 200, { data });
  });

  router.route('POST', '/logout', operations.logout, async (ctx) => {
    const token = tokenFromRequest(ctx.req);
    if (token === undefined) throw new AppError('SESSION_MISSING');
    // Idempotent: logging out an ended session is not an error.
    const revoked = await deps.sessions.revoke(token, 'logout');
    sendJson(ctx.res, 200, { ok: true, revoked });
  });

  // ---- Wafer2 ----------------------------------------------------------------------------------

  const wafer = new Router();

  const waferLogin = async (ctx: HttpContext) => {
    try {
      const app = resolveApp(deps.apps, ctx.req, header(ctx.req, 'x-wx-appid'));
      const created = await login(deps, app, {
        code: header(ctx.req, 'x-wx-code'),
        encryptedData: header(ctx.req, 'x-wx-encrypted-data'),
        iv: header(ctx.req, 'x-wx-iv'),
        rawData: header(ctx.req, 'x-wx-raw-data'),
        signature: header(ctx.req, 'x-wx-signature'),
      }, ctx.client.ip, header(ctx.req, 'user-agent'), ctx.requestId);
      const response: WaferLoginResponse = {
        code: 0,
        data: { skey: created.token, userinfo: toWaferUserInfo(created.session, created.user) },
      };
      sendJson(ctx.res, 200, response);
    } catch (error) {
      waferError(ctx, error);
    }
  };
  wafer.route(['GET', 'POST'], '/login', operations.waferLogin, waferLogin);

  wafer.route('GET', '/user', operations.waferUser, async (ctx) => {
    try {
      const session = await requireSession(deps.sessions, ctx.req);
      const user = await deps.sessions.userOf(session);
      sendJson(ctx.res, 200, { code: 0, data: toWaferUserInfo(session, user) });
    } catch (error) {
      waferError(ctx, error);
    }
  });

  // Wafer's 信道: the socket URL (with a one-minute ticket, as Wafer's client sends no headers on it).
  wafer.route('GET', '/tunnel', operations.waferTunnel, async (ctx) => {
    try {
      if (!deps.tunnelUrl) throw new AppError('NOT_FOUND', { message: 'Channels are off (channel.enabled).' });
      const session = await requireSession(deps.sessions, ctx.req);
      if (!ctx.client.host) throw new AppError('BAD_REQUEST', { message: 'The request has no Host header.' });
      const url = deps.tunnelUrl(ctx.client, session.tokenHash);
      // wafer2-client-sdk reads data.connectUrl; Wafer's first client read url.
      sendJson(ctx.res, 200, { code: 0, data: { connectUrl: url }, url });
    } catch (error) {
      waferError(ctx, error);
    }
  });

  return [
    { name: 'auth', defaultPath: '/auth', router },
    { name: 'wafer', defaultPath: '/weapp', router: wafer },
  ];
}

/**
 * Wafer2's error shape: `{"code":-1,"error":…}`. An invalid session is exactly what its client
 * SDK looks for (HTTP 401, ERR_SESSION_INVALID → it logs in again); other client errors keep our
 * code, status and requestId.
 */
function waferError(ctx: HttpContext, error: unknown): void {
  // Faults (5xx) go to the dispatcher, which logs them with the requestId.
  if (!(error instanceof AppError) || error.status >= 500) throw error;
  if (error.code.startsWith('SESSION_')) {
    const body: WaferErrorResponse = { code: -1, error: 'ERR_SESSION_INVALID' };
    sendJson(ctx.res, 401, body);
    return;
  }
  for (const [name, value] of Object.entries(errorHeaders(error))) ctx.res.setHeader(name, value);
  sendJson(ctx.res, error.status, { code: -1, error: error.code, message: error.message, requestId: ctx.requestId });
}
