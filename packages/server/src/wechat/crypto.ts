/**
 * The crypto of WeChat's open data (docs/wechat-api.md §3, §6, §7), exported from the `minigate`
 * package for Node users who handle user data themselves.
 */
import { createDecipheriv, createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { AppError } from '../core/index.js';

export interface DecryptOpenDataInput {
  appid: string;
  /** The user's session_key as WeChat gave it (base64 of 16 bytes). */
  sessionKey: string;
  /** `encryptedData` from the mini program (base64). */
  encryptedData: string;
  /** `iv` from the mini program (base64 of 16 bytes). */
  iv: string;
  /** Reject data whose watermark is older than this; no age check when absent. */
  maxAgeSeconds?: number;
  /** Epoch ms "now" for the age check; Date.now() by default. */
  now?: number;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64(text: unknown, expectedLength?: number): Buffer | null {
  if (typeof text !== 'string' || text.length === 0 || text.length % 4 !== 0 || !BASE64.test(text)) return null;
  const bytes = Buffer.from(text, 'base64');
  if (expectedLength !== undefined && bytes.length !== expectedLength) return null;
  return bytes;
}

/**
 * Decrypts `encryptedData` (AES-128-CBC, PKCS#7) and checks its watermark.
 *
 * Throws AppError AUTH_DECRYPT_FAILED for anything that does not decrypt to a JSON object (one
 * error for every cause, so nothing can be learnt from which one), AUTH_WATERMARK_MISMATCH when
 * `watermark.appid` is not `appid` (a missing watermark is a mismatch too), and AUTH_DATA_EXPIRED
 * when `maxAgeSeconds` is given and the watermark is older.
 *
 * @example
 * const user = decryptOpenData({ appid, sessionKey, encryptedData, iv, maxAgeSeconds: 600 });
 */
export function decryptOpenData(input: DecryptOpenDataInput): Record<string, unknown> {
  const key = decodeBase64(input.sessionKey, 16);
  const iv = decodeBase64(input.iv, 16);
  const data = decodeBase64(input.encryptedData);
  if (!key || !iv || !data || data.length === 0 || data.length % 16 !== 0) {
    throw new AppError('AUTH_DECRYPT_FAILED');
  }
  let parsed: unknown;
  try {
    const decipher = createDecipheriv('aes-128-cbc', key, iv);
    const plain = Buffer.concat([decipher.update(data), decipher.final()]);
    parsed = JSON.parse(plain.toString('utf8'));
  } catch {
    throw new AppError('AUTH_DECRYPT_FAILED');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new AppError('AUTH_DECRYPT_FAILED');
  const result = parsed as Record<string, unknown>;
  const watermark = result.watermark as { appid?: unknown; timestamp?: unknown } | undefined;
  // Only `appid` counts: a watermark without it (or spelled differently) never passes.
  if (typeof watermark !== 'object' || watermark === null || watermark.appid !== input.appid) {
    throw new AppError('AUTH_WATERMARK_MISMATCH');
  }
  if (input.maxAgeSeconds !== undefined) {
    const now = input.now ?? Date.now();
    const timestamp = watermark.timestamp;
    if (typeof timestamp !== 'number' || now / 1000 - timestamp > input.maxAgeSeconds) {
      throw new AppError('AUTH_DATA_EXPIRED');
    }
  }
  return result;
}

export interface VerifyRawDataSignatureInput {
  rawData: string;
  sessionKey: string;
  signature: string;
}

/**
 * True when `signature === sha1(rawData + sessionKey)` (lowercase hex), compared in constant time.
 * @example
 * if (!verifyRawDataSignature({ rawData, sessionKey, signature })) throw new Error('forged');
 */
export function verifyRawDataSignature(input: VerifyRawDataSignatureInput): boolean {
  if (typeof input.rawData !== 'string' || typeof input.signature !== 'string') return false;
  const expected = createHash('sha1').update(input.rawData + input.sessionKey, 'utf8').digest();
  if (!/^[0-9a-fA-F]{40}$/.test(input.signature)) return false;
  return timingSafeEqual(expected, Buffer.from(input.signature.toLowerCase(), 'hex'));
}

/**
 * The login-state signature WeChat's checkSessionKey and resetUserSessionKey expect:
 * HMAC-SHA256 keyed with the session_key *text* (not base64-decoded), over `body` (usually
 * the empty string), as lowercase hex.
 * @example
 * const signature = sessionKeySignature(sessionKey, '');
 */
export function sessionKeySignature(sessionKey: string, body = ''): string {
  return createHmac('sha256', sessionKey).update(body, 'utf8').digest('hex');
}
