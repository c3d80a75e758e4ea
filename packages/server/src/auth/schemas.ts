/**
 * Request and response schemas of the login and session routes, public (`/auth`, `/weapp`) and
 * internal (`/v1/sessions`). They agree with minigate-protocol's types (checked when compiling).
 */
import { z } from 'zod';
import type * as P from 'minigate-protocol';
import type { Agree, Operation } from '../http/index.js';

const text = z.string();

export const UserProfile = z
  .object({
    nickName: text.optional(),
    avatarUrl: text.optional(),
    gender: z.number().optional(),
    language: text.optional(),
    city: text.optional(),
    province: text.optional(),
    country: text.optional(),
  });

export const UserInfo = z
  .object({
    openid: text,
    unionid: text.optional(),
    profile: UserProfile.optional(),
    phoneNumber: text.optional(),
    firstSeenAt: z.number().meta({ description: 'Epoch milliseconds.' }),
    lastSeenAt: z.number(),
  });

export const LoginRequest = z.object({
  code: z.string({ error: 'the code from wx.login is required (a string)' }),
  appid: z.string({ error: 'must be a string' }).optional(),
  encryptedData: z.string({ error: 'must be a string' }).optional(),
  iv: z.string({ error: 'must be a string' }).optional(),
  rawData: z.string({ error: 'must be a string' }).optional(),
  signature: z.string({ error: 'must be a string' }).optional(),
});

export const LoginResponse = z.object({
  token: text.meta({ description: 'Send as Authorization: Bearer <token>.' }),
  expiresAt: z.number(),
  openid: text,
  unionid: text.optional(),
  user: UserInfo.optional(),
});

export const SessionResponse = z.object({
  appid: text,
  openid: text,
  unionid: text.optional(),
  expiresAt: z.number(),
  user: UserInfo.optional(),
});

export const PhoneRequest = z.object({ code: z.string({ error: 'the code from the getPhoneNumber button is required (a string)' }) });
export const PhoneResponse = z.looseObject({ phoneNumber: text, purePhoneNumber: text.optional(), countryCode: text.optional() });
export const LogoutResponse = z.object({ ok: z.literal(true), revoked: z.boolean() });

const WaferUserInfo = z.object({
  openId: text,
  unionId: text.optional(),
  ...UserProfile.shape,
});
export const WaferLoginResponse = z.object({ code: z.literal(0), data: z.object({ skey: text, userinfo: WaferUserInfo }) });
export const WaferUserResponse = z.object({ code: z.literal(0), data: WaferUserInfo });
export const WaferTunnelResponse = z.object({ code: z.literal(0), data: z.object({ connectUrl: text }), url: text });
export const WaferError = z.object({ code: z.literal(-1), error: text, message: text.optional(), requestId: text.optional() });

export const SessionDetails = z.object({
  id: text.meta({ description: 'The session id (a hash of its token; never the token).' }),
  status: text,
  appid: text,
  openid: text,
  unionid: text.optional(),
  createdAt: z.number(),
  lastSeenAt: z.number(),
  expiresAt: z.number(),
  endsAt: z.number(),
  revokedAt: z.number().nullable(),
  revokedReason: text.optional(),
});
export const Revoked = z.object({ revoked: z.union([z.boolean(), z.number()]) });

// Compile-time: the schemas and the wire types agree both ways.
const agree: [
  Agree<z.infer<typeof LoginRequest>, P.LoginRequest>,
  Agree<z.infer<typeof LoginResponse>, P.LoginResponse>,
  Agree<z.infer<typeof SessionResponse>, P.SessionResponse>,
  Agree<z.infer<typeof UserInfo>, P.UserInfo>,
  Agree<z.infer<typeof WaferLoginResponse>, P.WaferLoginResponse>,
] = [true, true, true, true, true];
void agree;

const sessionErrors = { 401: { description: 'No session, or it is invalid, expired or revoked (SESSION_*).' } };
const tags = ['auth'];

export const operations = {
  login: {
    summary: 'Log in with the code from wx.login; returns a session token.',
    tags,
    body: LoginRequest,
    responses: {
      200: { description: 'The session.', schema: LoginResponse },
      400: { description: 'A field is invalid (BAD_REQUEST), or no app is named (APP_REQUIRED) or known (APP_UNKNOWN).' },
      401: { description: 'WeChat refused the code (AUTH_CODE_INVALID, AUTH_CODE_USED) or the user data (AUTH_SIGNATURE_MISMATCH).' },
      429: { description: 'Too many failed logins (RATE_LIMITED).' },
    },
  },
  session: {
    summary: 'The current session and its user.',
    tags,
    security: 'session',
    responses: { 200: { description: 'The session.', schema: SessionResponse }, ...sessionErrors },
  },
  phone: {
    summary: "Saves the user's phone number from the getPhoneNumber button's code.",
    tags,
    security: 'session',
    body: PhoneRequest,
    responses: {
      200: { description: 'The number WeChat gave.', schema: PhoneResponse },
      400: { description: 'The code is missing or invalid (BAD_REQUEST, PHONE_CODE_INVALID).' },
      ...sessionErrors,
      429: { description: 'Too many requests (RATE_LIMITED).' },
    },
  },
  logout: {
    summary: 'Ends the session (idempotent).',
    tags,
    security: 'session',
    responses: { 200: { description: 'Whether a live session was ended.', schema: LogoutResponse }, 401: { description: 'No token (SESSION_MISSING).' } },
  },
  waferLogin: {
    summary: 'Wafer2 login: the code and user data in X-WX-* headers.',
    tags: ['wafer'],
    responses: {
      200: { description: 'The session key (skey) and user.', schema: WaferLoginResponse },
      400: { description: "Wafer2's error shape with minigate's code.", schema: WaferError },
      401: { description: "Wafer2's error shape (ERR_SESSION_INVALID or minigate's code).", schema: WaferError },
    },
  },
  waferUser: {
    summary: "Wafer2: the session's user.",
    tags: ['wafer'],
    security: 'session',
    responses: { 200: { description: 'The user.', schema: WaferUserResponse }, 401: { description: 'ERR_SESSION_INVALID.', schema: WaferError } },
  },
  waferTunnel: {
    summary: "Wafer2 信道: the channel's socket URL with a one-minute ticket.",
    tags: ['wafer'],
    security: 'session',
    responses: {
      200: { description: 'The socket URL.', schema: WaferTunnelResponse },
      401: { description: 'ERR_SESSION_INVALID.', schema: WaferError },
      404: { description: 'Channels are off (NOT_FOUND).', schema: WaferError },
    },
  },
  sessionById: {
    summary: 'A session by id (what X-Minigate-Session gives a business service).',
    tags: ['sessions'],
    security: 'internal',
    params: z.object({ id: text }),
    responses: { 200: { description: 'The session.', schema: SessionDetails }, 404: { description: 'No session with that id (NOT_FOUND).' } },
  },
  revokeById: {
    summary: 'Ends a session by id.',
    tags: ['sessions'],
    security: 'internal',
    params: z.object({ id: text }),
    responses: { 200: { description: 'Whether a live session was ended.', schema: Revoked } },
  },
  revokeUser: {
    summary: "Ends every session of a user of an app (the user's sockets close with 4001).",
    tags: ['sessions'],
    security: 'internal',
    params: z.object({ appid: text, openid: text }),
    responses: { 200: { description: 'How many sessions were ended.', schema: Revoked }, 400: { description: 'Unknown appid (APP_UNKNOWN).' } },
  },
  sessionKeyCheck: {
    summary: "Whether WeChat still holds the session's session_key (checkSessionKey).",
    tags: ['sessions'],
    security: 'internal',
    params: z.object({ appid: text }),
    body: z.object({ session: text.meta({ description: "The user's session token." }) }),
    responses: { 200: { description: 'Whether the key is valid.', schema: z.object({ valid: z.boolean() }) }, 400: { description: 'Unknown appid (APP_UNKNOWN).' }, 401: { description: 'The session is invalid (SESSION_*).' } },
  },
  sessionKeyReset: {
    summary: "Gives the user a new session_key (resetUserSessionKey); the session keeps the new one.",
    tags: ['sessions'],
    security: 'internal',
    params: z.object({ appid: text }),
    body: z.object({ session: text }),
    responses: { 200: { description: 'Reset.', schema: z.object({ reset: z.literal(true) }) }, 400: { description: 'Unknown appid (APP_UNKNOWN).' }, 401: { description: 'The session is invalid (SESSION_*).' } },
  },
  subscriptions: {
    summary: "The SDK's report of a wx.requestSubscribeMessage result (recorded as client-reported; one grant per template at most).",
    tags,
    security: 'session',
    body: z.object({ result: z.record(z.string(), z.unknown()).meta({ description: "wx.requestSubscribeMessage's result: templateId → accept | reject | ban." }) }),
    responses: {
      200: { description: 'The templates recorded.', schema: z.object({ recorded: z.array(text) }) },
      400: { description: 'The result is malformed (BAD_REQUEST).' },
      ...sessionErrors,
      429: { description: 'Too many reports (RATE_LIMITED).' },
    },
  },
  decrypt: {
    summary: 'Decrypts open data fetched after login with the session_key.',
    tags,
    security: 'session',
    body: z.object({ encryptedData: text, iv: text }),
    responses: {
      200: { description: 'The data.', schema: z.object({ data: z.record(z.string(), z.unknown()) }) },
      400: { description: 'The data does not decrypt (AUTH_DECRYPT_FAILED).' },
      ...sessionErrors,
      409: { description: 'The session_key changed (the user called wx.login again): log in again and retry (SESSION_KEY_STALE).' },
    },
  },
} satisfies Record<string, Operation>;
