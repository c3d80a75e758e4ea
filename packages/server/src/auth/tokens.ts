/**
 * Session tokens: 256 random bits, base64url (43 characters), sent as
 * `Authorization: Bearer <token>` (or Wafer2's `X-WX-Skey`). Only SHA-256(token) is stored.
 */
import { hash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Random } from '../core/index.js';

export const TOKEN_BYTES = 32;
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function newToken(random: Random): string {
  return random.bytes(TOKEN_BYTES).toString('base64url');
}

/** True when the text could be one of our tokens (checked before any lookup). */
export function isWellFormedToken(token: string): boolean {
  return TOKEN_PATTERN.test(token);
}

export function hashToken(token: string): string {
  // The one-shot hash (Node ≥ 20.12): a quarter of createHash's cost, on every authed request.
  return hash('sha256', token, 'hex');
}

/** The token a request carries: `Authorization: Bearer …`, else `X-WX-Skey`. Never the URL. */
export function tokenFromRequest(req: IncomingMessage): string | undefined {
  const authorization = req.headers.authorization;
  if (authorization) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match ? match[1] : authorization.trim() === '' ? undefined : '';
  }
  const skey = req.headers['x-wx-skey'];
  const value = Array.isArray(skey) ? skey[0] : skey;
  return value?.trim() || undefined;
}
