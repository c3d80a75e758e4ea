/**
 * minigate-client: the mini program side of minigate. (The full SDK — login, request, upload,
 * channels — arrives with its own issue; this is the error type every part of it returns.)
 */
import { isErrorBody, type ErrorCode } from 'minigate-protocol';

/** An error answered by minigate (or a network failure, code NETWORK). */
export class MinigateError extends Error {
  readonly code: ErrorCode | 'NETWORK';
  readonly statusCode: number;
  readonly requestId: string | undefined;

  constructor(code: ErrorCode | 'NETWORK', message: string, statusCode: number, requestId?: string) {
    super(message);
    this.name = 'MinigateError';
    this.code = code;
    this.statusCode = statusCode;
    this.requestId = requestId;
  }

  /** The error in a response, or null when the response is not a minigate error. */
  static fromResponse(statusCode: number, body: unknown): MinigateError | null {
    if (!isErrorBody(body)) return null;
    return new MinigateError(body.error.code, body.error.message, statusCode, body.error.requestId);
  }
}
