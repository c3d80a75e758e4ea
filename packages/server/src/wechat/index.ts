export { createWechatClient, WechatApiError, BUSY_RETRY_DELAYS_MS, errcodeOf, wechatErrorCode } from './client.js';
export type { WechatClient, WechatClientOptions, WechatRequest, RawRequest, RawAnswer, Code2SessionResult } from './client.js';
export { decryptOpenData, verifyRawDataSignature, sessionKeySignature } from './crypto.js';
export type { DecryptOpenDataInput, VerifyRawDataSignatureInput } from './crypto.js';
export { verifyPushSignature, decryptPushMessage, encryptPushMessage } from './push-crypto.js';
export type { VerifyPushSignatureInput, DecryptPushMessageInput, EncryptPushMessageInput } from './push-crypto.js';
