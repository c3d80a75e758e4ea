/**
 * "This request needs a session": the one place that reads the token from a request, checks it,
 * and turns a failed check into the SESSION_* error the client is told.
 */
import type { IncomingMessage } from 'node:http';
import { AppError } from '../core/index.js';
import type { ActiveSession, SessionCheck, SessionService } from './sessions.js';
import { tokenFromRequest } from './tokens.js';

/** The session of a successful check, or throws the SESSION_* error that says why not. */
export function sessionOrThrow(check: SessionCheck): ActiveSession {
  if (!check.ok) throw new AppError(check.reason);
  return check.session;
}

/** The live session of a request, or throws the SESSION_* error that says why not. */
export async function requireSession(sessions: Pick<SessionService, 'check'>, req: IncomingMessage): Promise<ActiveSession> {
  return sessionOrThrow(await sessions.check(tokenFromRequest(req)));
}

/**
 * requireSession without a promise when the session service can answer at once (a session read
 * within the last second, or no usable token): the session, or a throw; a promise only when the
 * store is asked. The hot path of every authenticated request.
 */
export function sessionNow(sessions: Pick<SessionService, 'checkNow'>, req: IncomingMessage): ActiveSession | Promise<ActiveSession> {
  const check = sessions.checkNow(tokenFromRequest(req));
  return check instanceof Promise ? check.then(sessionOrThrow) : sessionOrThrow(check);
}

/** optionalSession without a promise when the answer is at hand (see sessionNow). */
export function optionalSessionNow(sessions: Pick<SessionService, 'checkNow'>, req: IncomingMessage): ActiveSession | null | Promise<ActiveSession | null> {
  const check = sessions.checkNow(tokenFromRequest(req));
  return check instanceof Promise ? check.then(sessionOrNull) : sessionOrNull(check);
}

function sessionOrNull(check: SessionCheck): ActiveSession | null {
  return check.ok ? check.session : null;
}

/** The live session of a request, or null when it has none (missing, invalid, expired or revoked). */
export async function optionalSession(sessions: Pick<SessionService, 'check'>, req: IncomingMessage): Promise<ActiveSession | null> {
  return sessionOrNull(await sessions.check(tokenFromRequest(req)));
}

/**
 * The live session behind a token a business service passes on (internal API), which must be of
 * `appid`: a session of another app is refused like an unknown one.
 */
export async function sessionForApp(sessions: Pick<SessionService, 'check'>, appid: string, token: unknown): Promise<ActiveSession> {
  if (typeof token !== 'string' || token === '') throw new AppError('SESSION_MISSING', { message: 'session: the session token the mini program sent (from /auth/login).' });
  const session = sessionOrThrow(await sessions.check(token));
  if (session.appid !== appid) throw new AppError('SESSION_INVALID', { message: 'That session belongs to another app.' });
  return session;
}
