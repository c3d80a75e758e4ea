import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { AppError } from '../core/errors.js';
import { optionalSession, requireSession } from './require-session.js';
import type { ActiveSession, SessionCheck } from './sessions.js';

const session = { appid: 'wx0123456789abcdef', openid: 'o1' } as ActiveSession;
/** A session service that knows one token, and says why any other fails. */
const sessions = {
  async check(token: string | undefined): Promise<SessionCheck> {
    if (token === undefined) return { ok: false, reason: 'SESSION_MISSING' };
    return token === 'good' ? { ok: true, session } : { ok: false, reason: 'SESSION_EXPIRED' };
  },
};
const request = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe('requireSession / optionalSession', () => {
  it('reads the token from Authorization or X-WX-Skey and returns the session', async () => {
    expect(await requireSession(sessions, request({ authorization: 'Bearer good' }))).toBe(session);
    expect(await requireSession(sessions, request({ 'x-wx-skey': 'good' }))).toBe(session);
    expect(await optionalSession(sessions, request({ authorization: 'Bearer good' }))).toBe(session);
  });

  it('throws the SESSION_* error of the failed check; optionalSession returns null instead', async () => {
    await expect(requireSession(sessions, request({}))).rejects.toMatchObject({ code: 'SESSION_MISSING' });
    await expect(requireSession(sessions, request({ authorization: 'Bearer old' }))).rejects.toBeInstanceOf(AppError);
    await expect(requireSession(sessions, request({ authorization: 'Bearer old' }))).rejects.toMatchObject({ code: 'SESSION_EXPIRED' });
    expect(await optionalSession(sessions, request({}))).toBeNull();
    expect(await optionalSession(sessions, request({ authorization: 'Bearer old' }))).toBeNull();
  });
});
