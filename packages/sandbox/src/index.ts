export { createSandbox, ERRMSG, type Sandbox, type SandboxOptions } from './server.js';
export {
  SandboxModel,
  SandboxInputError,
  createSandboxClock,
  CODE_TTL_MS,
  TOKEN_TTL_MS,
  TOKEN_GRACE_MS,
  type SandboxClock,
  type SandboxApp,
  type SandboxUser,
  type Fault,
  type Stats,
} from './model.js';
export { encryptUserData, sessionKeyHmac, ANONYMOUS_USER_INFO, type SandboxUserInfo, type EncryptedUserData } from './user-data.js';
export { SandboxServices, noisePng, type SentMessage } from './services.js';
export { encryptPush, sendPush, verifyPushUrl, toXml, type PushMode, type PushFormat } from './push.js';
export { SandboxPay, PREPAY_TTL_MS, rfc3339, type PayMerchant, type PayOrder, type PayRefund, type NotifyFault, type PayVerification } from './pay.js';
export { PROBE_PREFIX, SIGNATURE_TYPE, sealResource, signedHeaders as payHeaders, parseAuthorization, rsaVerify, makePublicKeyModeKey, type PlatformKey } from './pay-crypto.js';
