/**
 * The console's own sessions: a random token in an HttpOnly, SameSite=Strict cookie scoped to
 * admin.path (Secure on HTTPS), kept in the store by its SHA-256 so a dumped table logs nobody
 * in. Each session has a CSRF token that every write must echo in X-CSRF-Token (a synchronizer
 * token: a page elsewhere can neither read it nor make the browser send it).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError, type Clock } from '../core/index.js';
import { header, type HttpContext } from '../http/index.js';
import type { AdminRecords, AdminSession } from './records.js';

export const COOKIE_NAME = 'minigate_admin';
export const CSRF_HEADER = 'x-csrf-token';
/** Last-seen is written at most this often per session (idle expiry is exact to within it). */
export const ADMIN_TOUCH_INTERVAL_MS = 60_000;

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const hash = (token: string) => createHash('sha256').update(token).digest('hex');

/** The console cookie's value, or undefined (other cookies, malformed values ignored). */
export function cookieToken(ctx: HttpContext): string | undefined {
  for (const part of (header(ctx.req, 'cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== COOKIE_NAME) continue;
    const value = part.slice(eq + 1).trim();
    return TOKEN_PATTERN.test(value) ? value : undefined;
  }
  return undefined;
}

function cookie(ctx: HttpContext, path: string, value: string, maxAgeS: number): string {
  const secure = ctx.client.scheme === 'https' ? '; Secure' : '';
  return `${COOKIE_NAME}=${value}; Path=${path}; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure}`;
}

export interface ConsoleSessions {
  /** Starts a session for `name` and sets its cookie; returns the CSRF token. */
  open(ctx: HttpContext, name: string): Promise<string>;
  /** The request's live session, or ADMIN_AUTH_REQUIRED. Writes must also carry its CSRF token (ADMIN_CSRF). */
  check(ctx: HttpContext): Promise<AdminSession>;
  /** Ends the request's session (if any) and clears the cookie. */
  close(ctx: HttpContext): Promise<void>;
}

export function createConsoleSessions(deps: { records: AdminRecords; clock: Clock; path: string; idleMs: number }): ConsoleSessions {
  const { records, clock, path, idleMs } = deps;
  const maxAgeS = Math.ceil(idleMs / 1000) * 48; // the browser keeps it; the server's idle check ends it
  return {
    async open(ctx, name) {
      const token = randomBytes(32).toString('base64url');
      const csrf = randomBytes(32).toString('hex');
      const now = clock.now();
      await records.addSession({ tokenHash: hash(token), name, csrf, address: ctx.client.ip.slice(0, 64), createdAt: now, lastSeenAt: now });
      ctx.res.setHeader('set-cookie', cookie(ctx, path, token, maxAgeS));
      return csrf;
    },
    async check(ctx) {
      const token = cookieToken(ctx);
      if (!token) throw new AppError('ADMIN_AUTH_REQUIRED');
      const session = await records.getSession(hash(token));
      if (!session) throw new AppError('ADMIN_AUTH_REQUIRED');
      const now = clock.now();
      if (now - session.lastSeenAt > idleMs) {
        await records.removeSession(session.tokenHash);
        throw new AppError('ADMIN_AUTH_REQUIRED', { message: 'The console session was idle too long (admin.sessionIdle); log in again.' });
      }
      const method = ctx.req.method ?? 'GET';
      if (method !== 'GET' && method !== 'HEAD') {
        const given = Buffer.from(header(ctx.req, CSRF_HEADER) ?? '');
        const expected = Buffer.from(session.csrf);
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new AppError('ADMIN_CSRF');
      }
      if (now - session.lastSeenAt >= ADMIN_TOUCH_INTERVAL_MS) await records.touchSession(session.tokenHash, now);
      return session;
    },
    async close(ctx) {
      const token = cookieToken(ctx);
      if (token) await records.removeSession(hash(token));
      ctx.res.setHeader('set-cookie', cookie(ctx, path, '', 0));
    },
  };
}
