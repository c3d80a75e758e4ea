/** An error answered by minigate, or a failure on the way (code NETWORK, ABORTED, TIMEOUT…). */
export class MinigateError extends Error {
  readonly code: string;
  /** The HTTP status (0 when no answer came). */
  readonly statusCode: number;
  readonly requestId: string | undefined;

  constructor(code: string, message: string, statusCode = 0, requestId?: string) {
    super(message);
    this.name = 'MinigateError';
    this.code = code;
    this.statusCode = statusCode;
    this.requestId = requestId;
    // ES2017 output: keep instanceof working for a subclass of Error.
    Object.setPrototypeOf(this, MinigateError.prototype);
  }

  /** The error in a minigate answer (`{"error":{code,message,requestId}}`), or null. */
  static fromResponse(statusCode: number, body: unknown): MinigateError | null {
    let value = body;
    if (typeof value === 'string') {
      try {
        value = JSON.parse(value);
      } catch {
        return null;
      }
    }
    const error = value && typeof value === 'object' ? (value as { error?: unknown }).error : undefined;
    if (!error || typeof error !== 'object') return null;
    const { code, message, requestId } = error as { code?: unknown; message?: unknown; requestId?: unknown };
    if (typeof code !== 'string' || typeof message !== 'string') return null;
    return new MinigateError(code, message, statusCode, typeof requestId === 'string' ? requestId : undefined);
  }
}

/** Session errors that a new login cures. */
export const SESSION_ERRORS = ['SESSION_MISSING', 'SESSION_INVALID', 'SESSION_EXPIRED', 'SESSION_REVOKED'];
