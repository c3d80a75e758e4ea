/**
 * Session-key tools (docs/wechat-api.md §3): checkSessionKey and resetUserSessionKey for a
 * session, and the decrypt of a mini program's encrypted data with the session's key, which
 * tells a stale key (the user ran wx.login again, WeChat replaced the key) from bad data.
 */
import { AppError, isAppError, type Clock, type Logger } from '../core/index.js';
import { decryptOpenData, errcodeOf, sessionKeySignature, type WechatRequest } from '../wechat/index.js';
import type { ActiveSession, SessionService } from './sessions.js';

/** Encrypted data older than this (by its watermark) is refused, as at login. */
export const DECRYPT_MAX_AGE_S = 3600;
/** WeChat's answer to a signature made with a key that is not the user's current one. */
const INVALID_SIGNATURE = 87009;

/** A JSON call to WeChat with the app's access_token (the gateway's `call`). */
export type TokenCall = <T = Record<string, unknown>>(appid: string, request: WechatRequest) => Promise<T>;

export interface SessionKeyTools {
  /** Whether WeChat still takes the session's session_key as the user's. */
  check(session: ActiveSession): Promise<boolean>;
  /** Has WeChat issue a new session_key for the user and keeps it on this session. */
  reset(session: ActiveSession): Promise<void>;
  /** Decrypts encrypted data with the session's key; SESSION_KEY_STALE when that key was replaced. */
  decrypt(session: ActiveSession, input: { encryptedData: unknown; iv: unknown }): Promise<Record<string, unknown>>;
}

export function createSessionKeyTools(deps: { sessions: SessionService; call: TokenCall; clock: Clock; logger: Logger }): SessionKeyTools {
  const { sessions, call, clock, logger } = deps;

  async function keyOf(session: ActiveSession): Promise<string> {
    const key = await sessions.sessionKey(session);
    if (key === null) throw new AppError('SESSION_INVALID', { message: 'This session has no session_key; log in again.' });
    return key;
  }

  /** The query both tools take: the login-state signature of the current key over "" (§3.1). */
  const signed = (session: ActiveSession, key: string) => ({ openid: session.openid, signature: sessionKeySignature(key, ''), sig_method: 'hmac_sha256' });

  async function check(session: ActiveSession): Promise<boolean> {
    const key = await keyOf(session);
    try {
      await call(session.appid, { path: '/wxa/checksession', method: 'GET', query: signed(session, key) });
      return true;
    } catch (error) {
      if (errcodeOf(error) === INVALID_SIGNATURE) return false;
      throw error;
    }
  }

  return {
    check,
    async reset(session) {
      const key = await keyOf(session);
      let body: { session_key?: unknown };
      try {
        // Changes the user's key at WeChat: never sent twice on doubt.
        body = await call(session.appid, { path: '/wxa/resetusersessionkey', method: 'GET', query: signed(session, key), sideEffect: true });
      } catch (error) {
        if (errcodeOf(error) === INVALID_SIGNATURE) throw new AppError('SESSION_KEY_STALE', { message: 'The session_key of this session was already replaced; log in again.' });
        throw error;
      }
      if (typeof body.session_key !== 'string' || body.session_key === '') throw new AppError('WECHAT_ERROR', { message: 'WeChat reset the session_key without giving the new one.' });
      await sessions.setSessionKey(session, body.session_key);
      logger.info({ appid: session.appid, session: session.tokenHash.slice(0, 8) }, 'session: session_key reset');
    },
    async decrypt(session, input) {
      if (typeof input.encryptedData !== 'string' || input.encryptedData.length > 32 * 1024) throw new AppError('BAD_REQUEST', { message: 'encryptedData: the base64 text the mini program API gave (at most 32 KiB).' });
      if (typeof input.iv !== 'string' || input.iv.length > 64) throw new AppError('BAD_REQUEST', { message: 'iv: the base64 text given with encryptedData.' });
      const key = await keyOf(session);
      try {
        return decryptOpenData({ appid: session.appid, sessionKey: key, encryptedData: input.encryptedData, iv: input.iv, maxAgeSeconds: DECRYPT_MAX_AGE_S, now: clock.now() });
      } catch (error) {
        // Garbage and a stale key look alike; WeChat tells them apart (is our key still the user's?).
        if (!isAppError(error, 'AUTH_DECRYPT_FAILED') && !isAppError(error, 'AUTH_WATERMARK_MISMATCH')) throw error;
        if (!(await check(session))) throw new AppError('SESSION_KEY_STALE');
        throw error;
      }
    },
  };
}
