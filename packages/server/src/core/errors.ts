import { ERRORS, type ErrorBody, type ErrorCode } from 'minigate-protocol';

export interface AppErrorOptions {
  /** A message that replaces the registry's default (4xx only; 5xx use the default unless `public`). */
  message?: string;
  /**
   * The message is made only of what the operator configured (a route's relay name), never of a
   * fault's internals, so a 5xx may carry it too (502 TUNNEL_OFFLINE names the relay).
   */
  public?: boolean;
  /** The underlying fault, kept for the log line; never sent to the client. */
  cause?: unknown;
  /** Extra facts for the log line (never secrets). */
  details?: Record<string, unknown>;
}

/**
 * A fault with a stable code from the registry in `minigate-protocol`.
 * Expected outcomes (no session, unknown user) are return values, not AppErrors.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, options: AppErrorOptions = {}) {
    const spec = ERRORS[code];
    const message = (spec.status >= 500 && !options.public) || !options.message ? spec.message : options.message;
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = spec.status;
    this.details = options.details;
  }
}

/** True for an AppError with the given code (or any code when none is given). */
export function isAppError(error: unknown, code?: ErrorCode): error is AppError {
  return error instanceof AppError && (code === undefined || error.code === code);
}

/** The wire body of an error. Anything that is not an AppError becomes INTERNAL. */
export function errorBody(error: unknown, requestId: string): { status: number; body: ErrorBody } {
  const appError = error instanceof AppError ? error : new AppError('INTERNAL');
  return {
    status: appError.status,
    body: { error: { code: appError.code, message: appError.message, requestId } },
  };
}

/** Headers an error answer carries besides its body: Retry-After when a limit says when to come back. */
export function errorHeaders(error: unknown): Record<string, string> {
  const seconds = error instanceof AppError ? error.details?.retryAfterS : undefined;
  return typeof seconds === 'number' ? { 'retry-after': String(seconds) } : {};
}
