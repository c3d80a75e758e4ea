/**
 * Login: a `wx.login` code (and optionally the user data from `wx.getUserProfile`) → WeChat's
 * code2Session → our own session. The input is checked before WeChat is called; WeChat's
 * answer is checked before anything is saved; the save is one transaction.
 */
import type { IncomingMessage } from 'node:http';
import type { AppConfig } from '../config/index.js';
import { AppError, isAppError, type Clock, type CounterHandle } from '../core/index.js';
import type { Limits } from '../limits/index.js';
import { decryptOpenData, verifyRawDataSignature, type WechatClient } from '../wechat/index.js';
import type { SessionKeyTools } from './session-key.js';
import type { NewSession, SessionService } from './sessions.js';

/** Encrypted user data older than this (by its watermark) is refused. */
export const USER_DATA_MAX_AGE_S = 3600;

const CODE_PATTERN = /^[\x21-\x7e]{1,128}$/;
const PROFILE_STRING_FIELDS = ['nickName', 'avatarUrl', 'language', 'city', 'province', 'country'] as const;
const PROFILE_STRING_MAX = 1024;

export interface LoginInput {
  code: unknown;
  appid?: unknown;
  encryptedData?: unknown;
  iv?: unknown;
  rawData?: unknown;
  signature?: unknown;
}

export interface LoginDeps {
  apps: ReadonlyMap<string, AppConfig>;
  wechat: WechatClient;
  sessions: SessionService;
  clock: Clock;
  /** The phone number behind a getPhoneNumber code (through the gateway, with the access_token). */
  phoneNumber?: (appid: string, code: unknown, openid: string) => Promise<{ phoneNumber: string; purePhoneNumber: string; countryCode: string }>;
  /** Saves a phone number on the user. */
  savePhone?: (appid: string, openid: string, phoneNumber: string) => Promise<boolean>;
  /** Login and phone limits (docs/limits.md). */
  limits?: Pick<Limits, 'beforeLogin' | 'loginFailed' | 'beforePhone'>;
  /** Records a wx.requestSubscribeMessage result the client reports (POST /auth/subscriptions). */
  reportSubscriptions?: (appid: string, openid: string, result: unknown) => Promise<{ recorded: string[] }>;
  /** The limit on those reports, per user. */
  subscriptionsLimit?: ((user: string | null, address: string) => Promise<void>) | undefined;
  /** Decrypt with the session's key (POST /auth/decrypt), when the gateway is there. */
  keys?: Pick<SessionKeyTools, 'decrypt'>;
  /** The Wafer tunnel's socket URL for a session (GET /weapp/tunnel), when channels are on. */
  tunnelUrl?: (client: { scheme: 'http' | 'https'; host: string }, tokenHash: string) => string;
  /** minigate_logins_total (appid, outcome, code). */
  logins?: CounterHandle;
  /** Record the client address and user agent on the session (admin.recordClientInfo). */
  recordClientInfo?: boolean;
}

/**
 * The app a request is for: the given appid, else `X-WX-AppId`, else the Referer WeChat sets
 * (`https://servicewechat.com/{appid}/{version}/page-frame.html`), else the only app.
 */
export function resolveApp(apps: ReadonlyMap<string, AppConfig>, req: IncomingMessage, given?: unknown): AppConfig {
  let appid: string | undefined;
  if (given !== undefined && given !== null && given !== '') {
    if (typeof given !== 'string') throw new AppError('BAD_REQUEST', { message: 'appid must be a string.' });
    appid = given;
  } else {
    const header = req.headers['x-wx-appid'];
    appid = (Array.isArray(header) ? header[0] : header) || undefined;
    if (!appid) appid = /^https:\/\/servicewechat\.com\/(wx[0-9a-zA-Z]{16})\//.exec(req.headers.referer ?? '')?.[1];
  }
  if (appid === undefined) {
    if (apps.size === 1) return apps.values().next().value!;
    throw new AppError('APP_REQUIRED');
  }
  const app = apps.get(appid);
  if (!app) throw new AppError('APP_UNKNOWN');
  return app;
}

function optionalString(value: unknown, name: string, max: number, pattern?: RegExp): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || value.length > max || (pattern && !pattern.test(value))) {
    throw new AppError('BAD_REQUEST', { message: `${name} is not valid.` });
  }
  return value;
}

/** The profile fields worth keeping, type-checked and bounded. */
export function pickProfile(source: Record<string, unknown>): Record<string, unknown> | null {
  const profile: Record<string, unknown> = {};
  for (const field of PROFILE_STRING_FIELDS) {
    const value = source[field];
    if (typeof value === 'string') profile[field] = value.slice(0, PROFILE_STRING_MAX);
  }
  if (typeof source.gender === 'number' && Number.isInteger(source.gender)) profile.gender = source.gender;
  return Object.keys(profile).length ? profile : null;
}

/** Longer user agents are cut (the column holds 512). */
const USER_AGENT_MAX_CHARS = 512;

/**
 * A login from the client at `address` (the real client address, for the limits), counted by
 * outcome. `requestId` is the login request's, written on the WeChat call's log lines.
 */
export async function login(deps: LoginDeps, app: AppConfig, input: LoginInput, address: string, userAgent?: string, requestId?: string): Promise<NewSession> {
  try {
    const created = await attempt(deps, app, input, address, userAgent, requestId);
    deps.logins?.inc({ appid: app.appid, outcome: 'ok', code: '' });
    return created;
  } catch (error) {
    deps.logins?.inc({ appid: app.appid, outcome: 'refused', code: error instanceof AppError ? error.code : 'INTERNAL' });
    throw error;
  }
}

async function attempt(deps: LoginDeps, app: AppConfig, input: LoginInput, address: string, userAgent: string | undefined, requestId: string | undefined): Promise<NewSession> {
  if (typeof input.code !== 'string' || !CODE_PATTERN.test(input.code)) {
    throw new AppError('BAD_REQUEST', { message: 'code must be the string wx.login gave (1 to 128 visible ASCII characters).' });
  }
  const encryptedData = optionalString(input.encryptedData, 'encryptedData', 32 * 1024);
  const iv = optionalString(input.iv, 'iv', 64);
  const rawData = optionalString(input.rawData, 'rawData', 16 * 1024);
  const signature = optionalString(input.signature, 'signature', 40, /^[0-9a-fA-F]{40}$/);
  if ((encryptedData === undefined) !== (iv === undefined)) {
    throw new AppError('BAD_REQUEST', { message: 'encryptedData and iv go together.' });
  }
  if ((rawData === undefined) !== (signature === undefined)) {
    throw new AppError('BAD_REQUEST', { message: 'rawData and signature go together.' });
  }

  // Limits before WeChat is called; only codes WeChat refused count as failures.
  await deps.limits?.beforeLogin(address, app.appid);
  let wx;
  try {
    wx = await deps.wechat.code2Session(app, input.code, requestId);
  } catch (error) {
    if (isAppError(error, 'AUTH_CODE_INVALID') || isAppError(error, 'AUTH_CODE_USED')) await deps.limits?.loginFailed(address, app.appid);
    throw error;
  }

  let profile: Record<string, unknown> | null = null;
  let unionid = wx.unionid ?? null;
  if (rawData !== undefined && !verifyRawDataSignature({ rawData, signature: signature!, sessionKey: wx.sessionKey })) {
    throw new AppError('AUTH_SIGNATURE_MISMATCH');
  }
  if (encryptedData !== undefined) {
    const data = decryptOpenData({
      appid: app.appid,
      sessionKey: wx.sessionKey,
      encryptedData,
      iv: iv!,
      maxAgeSeconds: USER_DATA_MAX_AGE_S,
      now: deps.clock.now(),
    });
    profile = pickProfile(data);
    // Older clients' data carried unionId; code2Session's is preferred when both exist.
    if (!unionid && typeof data.unionId === 'string' && data.unionId) unionid = data.unionId;
  } else if (rawData !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawData);
    } catch {
      throw new AppError('BAD_REQUEST', { message: 'rawData is not JSON.' });
    }
    if (typeof parsed === 'object' && parsed !== null) profile = pickProfile(parsed as Record<string, unknown>);
  }

  const client = deps.recordClientInfo ? { address, userAgent: (userAgent ?? '').slice(0, USER_AGENT_MAX_CHARS) || null } : undefined;
  return deps.sessions.create({ app, openid: wx.openid, unionid, sessionKey: wx.sessionKey, profile, ...(client ? { client } : {}) });
}
