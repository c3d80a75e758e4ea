/**
 * WeChat Pay v3's cryptography on the merchant's side (docs/pay.md, rules), with Node's crypto:
 * requests signed WECHATPAY2-SHA256-RSA2048 with the merchant key, answers and notifications
 * verified over `timestamp\nnonce\nbody\n`, resources opened with AEAD_AES_256_GCM under the
 * APIv3 key, and the wx.requestPayment parameters signed over `appId\ntimeStamp\nnonceStr\npackage\n`.
 */
import { createDecipheriv, createSign, createVerify, randomBytes, type KeyObject } from 'node:crypto';

export const SIGNATURE_TYPE = 'WECHATPAY2-SHA256-RSA2048';
/** WeChat sends notifications signed with this prefix to check that merchants verify them. */
export const PROBE_PREFIX = 'WECHATPAY/SIGNTEST/';
const GCM_TAG_BYTES = 16;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** A random string of letters and digits (WeChat: at most 32 characters). */
export function nonceStr(length = 32): string {
  return [...randomBytes(length)].map((b) => ALPHABET[b % ALPHABET.length]).join('');
}

export function rsaSign(key: KeyObject, message: string): string {
  return createSign('RSA-SHA256').update(message).sign(key, 'base64');
}

export function rsaVerify(key: KeyObject, message: string, signature: string): boolean {
  try {
    return createVerify('RSA-SHA256').update(message).verify(key, signature, 'base64');
  } catch {
    return false;
  }
}

/** The Authorization header of a call: `METHOD\nURL(path?query)\ntimestamp\nnonce\nbody\n`, signed. */
export function authorization(input: { mchid: string; serial: string; key: KeyObject; method: string; target: string; body: string; nowMs: number }): string {
  const timestamp = String(Math.floor(input.nowMs / 1000));
  const nonce = nonceStr();
  const signature = rsaSign(input.key, `${input.method}\n${input.target}\n${timestamp}\n${nonce}\n${input.body}\n`);
  return `${SIGNATURE_TYPE} mchid="${input.mchid}",nonce_str="${nonce}",signature="${signature}",timestamp="${timestamp}",serial_no="${input.serial}"`;
}

/** The five wx.requestPayment parameters for a prepay_id, signed with the merchant key. */
export function paymentParams(appid: string, prepayId: string, key: KeyObject, nowMs: number) {
  const timeStamp = String(Math.floor(nowMs / 1000));
  const nonce = nonceStr();
  const pkg = `prepay_id=${prepayId}`;
  return { timeStamp, nonceStr: nonce, package: pkg, signType: 'RSA' as const, paySign: rsaSign(key, `${appid}\n${timeStamp}\n${nonce}\n${pkg}\n`) };
}

/** Opens an AEAD_AES_256_GCM resource; null when it does not open (wrong key, altered bytes). */
export function openResource(apiV3Key: string, resource: { ciphertext?: unknown; nonce?: unknown; associated_data?: unknown; algorithm?: unknown }): string | null {
  if (resource.algorithm !== 'AEAD_AES_256_GCM' || typeof resource.ciphertext !== 'string' || typeof resource.nonce !== 'string') return null;
  const sealed = Buffer.from(resource.ciphertext, 'base64');
  if (sealed.length <= GCM_TAG_BYTES) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', Buffer.from(apiV3Key, 'utf8'), Buffer.from(resource.nonce, 'utf8'));
    decipher.setAAD(Buffer.from(typeof resource.associated_data === 'string' ? resource.associated_data : '', 'utf8'));
    decipher.setAuthTag(sealed.subarray(sealed.length - GCM_TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - GCM_TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}
