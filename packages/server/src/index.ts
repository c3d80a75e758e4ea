/**
 * minigate: a self-hosted backend and edge server for WeChat Mini Programs.
 * The library behind the `minigate` CLI.
 */
export { createServer, StartError, type MinigateServer, type ServerDeps } from './server.js';
export { loadConfig, ConfigError, formatProblems, type Config, type AppConfig, type ConfigProblem } from './config/index.js';
export { decryptOpenData, verifyRawDataSignature, sessionKeySignature } from './wechat/index.js';
export type { DecryptOpenDataInput, VerifyRawDataSignatureInput } from './wechat/index.js';
export { verifyPushSignature, decryptPushMessage, encryptPushMessage } from './wechat/index.js';
export type { VerifyPushSignatureInput, DecryptPushMessageInput, EncryptPushMessageInput } from './wechat/index.js';
export { webhookSignature } from './core/index.js';
export { AppError, isAppError, createLogger, createManualClock, systemClock } from './core/index.js';
export type { Clock, ManualClock, Logger, Random } from './core/index.js';
export { ERRORS, type ErrorCode, type ErrorBody } from 'minigate-protocol';
