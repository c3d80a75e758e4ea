/**
 * What the mini program side receives from `wx.getUserProfile`: encryptedData + iv made with the
 * user's session_key (AES-128-CBC, PKCS#7, docs/wechat-api.md §6), and rawData + signature
 * (`sha1(rawData + session_key)`, §7). Written independently of the server's decryption so that
 * each side tests the other.
 */
import { createCipheriv, createHash, createHmac } from 'node:crypto';
import type { RandomBytes } from './model.js';

export interface SandboxUserInfo {
  nickName: string;
  avatarUrl: string;
  gender: number;
  language: string;
  city: string;
  province: string;
  country: string;
}

/** What current clients get since WeChat anonymised profiles (docs/wechat-api.md §7). */
export const ANONYMOUS_USER_INFO: SandboxUserInfo = {
  nickName: '微信用户',
  avatarUrl: 'https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132',
  gender: 0,
  language: '',
  city: '',
  province: '',
  country: '',
};

export interface EncryptedUserData {
  encryptedData: string;
  iv: string;
  rawData: string;
  signature: string;
  userInfo: SandboxUserInfo;
}

export function encryptUserData(input: {
  appid: string;
  sessionKey: string;
  userInfo: SandboxUserInfo;
  timestampSeconds: number;
  random: RandomBytes;
}): EncryptedUserData {
  const rawData = JSON.stringify(input.userInfo);
  const plaintext = JSON.stringify({
    ...input.userInfo,
    watermark: { timestamp: input.timestampSeconds, appid: input.appid },
  });
  const iv = input.random(16);
  const cipher = createCipheriv('aes-128-cbc', Buffer.from(input.sessionKey, 'base64'), iv);
  const encrypted = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return {
    encryptedData: encrypted.toString('base64'),
    iv: iv.toString('base64'),
    rawData,
    signature: createHash('sha1').update(rawData + input.sessionKey).digest('hex'),
    userInfo: input.userInfo,
  };
}

/** checkSessionKey's signature: HMAC-SHA256 keyed with the session_key *text*, over "" (§3.1). */
export function sessionKeyHmac(sessionKey: string, body = ''): string {
  return createHmac('sha256', sessionKey).update(body).digest('hex');
}
