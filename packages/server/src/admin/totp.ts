/**
 * TOTP (RFC 6238, as authenticator apps do it: SHA-1, 6 digits, 30 s) through otplib. Codes
 * one step either side are accepted, for clocks a little apart. A code is accepted once per
 * admin: the same code again within its window is refused (a code seen over a shoulder).
 */
import { generateSecret, generateURI, verify } from 'otplib';

/** One 30 s step before or after, in seconds. */
const TOLERANCE_S = 30;
const USED_KEEP_MS = 2 * 60_000;

export const newTotpSecret = (): string => generateSecret();

export const totpUri = (name: string, secret: string, issuer = 'minigate'): string => generateURI({ issuer, label: name, secret });

export function createTotpCheck(now: () => number = Date.now) {
  const used = new Map<string, number>();
  return async (name: string, secret: string, code: string | undefined): Promise<boolean> => {
    if (!code || !/^\d{6}$/.test(code)) return false;
    const key = `${name}\n${code}`;
    const t = now();
    for (const [k, at] of used) if (t - at > USED_KEEP_MS) used.delete(k);
    if (used.has(key)) return false;
    const result = await verify({ secret, token: code, epoch: Math.floor(t / 1000), epochTolerance: TOLERANCE_S });
    if (!result.valid) return false;
    used.set(key, t);
    return true;
  };
}
