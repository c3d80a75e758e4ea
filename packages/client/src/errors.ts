import type { ClientErrorCode, ErrorCode, HttpStatusErrorCode, MinigateErrorCode } from 'minigate-protocol';

/**
 * An error answered by minigate (a code of the protocol's `ERRORS`), or one the SDK raises itself
 * (`CLIENT_ERRORS`: NETWORK, ABORTED, TIMEOUT…, or `HTTP_<status>`). docs/errors.md lists both.
 */
export class MinigateError extends Error {
  /** A code from docs/errors.md; a newer server may send one this version does not list. */
  readonly code: MinigateErrorCode | (string & {});
  /** The HTTP status (0 when no answer came). */
  readonly statusCode: number;
  readonly requestId: string | undefined;

  constructor(code: MinigateErrorCode | (string & {}), message: string, statusCode = 0, requestId?: string) {
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

/**
 * An error the SDK raises itself. Typed: every code it uses is registered in minigate-protocol
 * (`CLIENT_ERRORS`, `HTTP_<status>`, or a server code the SDK answers for the server, as for a bad room name).
 */
export function sdkError(code: ClientErrorCode | HttpStatusErrorCode | ErrorCode, message: string, statusCode = 0): MinigateError {
  return new MinigateError(code, message, statusCode);
}
