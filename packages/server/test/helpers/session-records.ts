/**
 * Session records for the store's tests: each call gets a new token hash (its serial, padded to
 * 64 characters with `pad`, so the files' hashes differ) and a later time (`stepMs` per call
 * after `start`); `overrides` set any field.
 */
import type { SessionRecord } from '../../src/store/index.js';

export interface SessionRecordDefaults {
  pad: string;
  start: number;
  stepMs: number;
  lifetimeMs: number;
  appid: string;
  openid?: string;
  sessionKey: string | null;
}

export function sessionRecords(defaults: SessionRecordDefaults): (overrides?: Partial<SessionRecord>) => SessionRecord {
  let serial = 0;
  return (overrides = {}) => {
    serial++;
    const at = defaults.start + serial * defaults.stepMs;
    return {
      tokenHash: serial.toString(16).padStart(64, defaults.pad),
      appid: defaults.appid,
      openid: defaults.openid ?? 'o-user-1',
      unionid: null,
      sessionKey: defaults.sessionKey,
      createdAt: at,
      lastSeenAt: at,
      expiresAt: at + defaults.lifetimeMs,
      revokedAt: null,
      revokedReason: null,
      ...overrides,
    };
  };
}
