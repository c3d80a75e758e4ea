/**
 * The crypto of WeChat's message push (docs/wechat-api.md §11): the SHA-1 signatures and the safe
 * mode's AES-256-CBC, whose PKCS#7 padding is to 32 bytes — so Node's automatic (16-byte)
 * padding would reject every message padded with more than 16 bytes. Exported from `minigate`.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError } from '../core/index.js';

const BLOCK = 32;

function sha1Sorted(parts: string[]): string {
  return createHash('sha1').update([...parts].sort().join('')).digest('hex');
}

function sameHex(a: string, b: string): boolean {
  if (!/^[0-9a-f]{40}$/i.test(a) || !/^[0-9a-f]{40}$/i.test(b)) return false;
  return timingSafeEqual(Buffer.from(a.toLowerCase(), 'hex'), Buffer.from(b.toLowerCase(), 'hex'));
}

function aesKey(encodingAESKey: string): Buffer {
  const key = /^[A-Za-z0-9]{43}$/.test(encodingAESKey) ? Buffer.from(`${encodingAESKey}=`, 'base64') : Buffer.alloc(0);
  if (key.length !== 32) throw new AppError('PUSH_DECRYPT_FAILED', { message: 'The EncodingAESKey must be 43 letters and digits.' });
  return key;
}

export interface VerifyPushSignatureInput {
  token: string;
  timestamp: string;
  nonce: string;
  signature: string;
}

/**
 * True when `signature` is sha1 of the sorted token, timestamp and nonce (URL verification and
 * plaintext pushes), compared in constant time.
 * @example
 * if (!verifyPushSignature({ token, timestamp, nonce, signature })) return res.status(403).end();
 */
export function verifyPushSignature(input: VerifyPushSignatureInput): boolean {
  if (typeof input.signature !== 'string') return false;
  return sameHex(sha1Sorted([input.token, String(input.timestamp), String(input.nonce)]), input.signature);
}

export interface DecryptPushMessageInput {
  token: string;
  encodingAESKey: string;
  appid: string;
  /** The Encrypt field of the push body. */
  encrypt: string;
  timestamp: string;
  nonce: string;
  /** The msg_signature query parameter. */
  msgSignature: string;
}

/**
 * The message text (XML or JSON, as WeChat sent it) inside a safe-mode push. Throws AppError
 * PUSH_SIGNATURE_MISMATCH (msg_signature), PUSH_DECRYPT_FAILED (bad base64, length or padding)
 * or PUSH_APPID_MISMATCH (encrypted for another app).
 * @example
 * const xml = decryptPushMessage({ token, encodingAESKey, appid, encrypt, timestamp, nonce, msgSignature });
 */
export function decryptPushMessage(input: DecryptPushMessageInput): string {
  if (typeof input.encrypt !== 'string' || !sameHex(sha1Sorted([input.token, String(input.timestamp), String(input.nonce), input.encrypt]), String(input.msgSignature))) {
    throw new AppError('PUSH_SIGNATURE_MISMATCH');
  }
  const key = aesKey(input.encodingAESKey);
  const data = /^[A-Za-z0-9+/]*={0,2}$/.test(input.encrypt) ? Buffer.from(input.encrypt, 'base64') : Buffer.alloc(0);
  // WeChat pads to 32 bytes; whole AES blocks of 16 are still accepted (other senders).
  if (data.length === 0 || data.length % 16 !== 0) throw new AppError('PUSH_DECRYPT_FAILED');
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
    decipher.setAutoPadding(false);
    plain = Buffer.concat([decipher.update(data), decipher.final()]);
  } catch {
    throw new AppError('PUSH_DECRYPT_FAILED');
  }
  const pad = plain[plain.length - 1]!;
  if (pad < 1 || pad > BLOCK || plain.subarray(plain.length - pad).some((b) => b !== pad)) throw new AppError('PUSH_DECRYPT_FAILED');
  const content = plain.subarray(16, plain.length - pad); // after the 16 random bytes
  if (content.length < 4) throw new AppError('PUSH_DECRYPT_FAILED');
  const length = content.readUInt32BE(0);
  if (4 + length > content.length) throw new AppError('PUSH_DECRYPT_FAILED');
  const appid = content.subarray(4 + length).toString('utf8');
  if (appid !== input.appid) throw new AppError('PUSH_APPID_MISMATCH');
  return content.subarray(4, 4 + length).toString('utf8');
}

export interface EncryptPushMessageInput {
  token: string;
  encodingAESKey: string;
  appid: string;
  message: string;
  timestamp?: string;
  nonce?: string;
}

/**
 * A safe-mode envelope for a message (for replies, and for tests of a receiver).
 * @example
 * const { encrypt, msgSignature, timestamp, nonce } = encryptPushMessage({ token, encodingAESKey, appid, message });
 */
export function encryptPushMessage(input: EncryptPushMessageInput): { encrypt: string; msgSignature: string; timestamp: string; nonce: string } {
  const key = aesKey(input.encodingAESKey);
  const body = Buffer.from(input.message, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  const plain = Buffer.concat([randomBytes(16), length, body, Buffer.from(input.appid, 'utf8')]);
  const pad = BLOCK - (plain.length % BLOCK);
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  const encrypt = Buffer.concat([cipher.update(Buffer.concat([plain, Buffer.alloc(pad, pad)])), cipher.final()]).toString('base64');
  const timestamp = input.timestamp ?? String(Math.floor(Date.now() / 1000));
  const nonce = input.nonce ?? String(randomBytes(4).readUInt32BE(0));
  return { encrypt, msgSignature: sha1Sorted([input.token, timestamp, nonce, encrypt]), timestamp, nonce };
}
