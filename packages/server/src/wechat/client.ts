/**
 * Calls to WeChat's server API (or the sandbox: the base URL is configuration).
 *
 * Rules (wechat-api.md §0, RELIABILITY.md §4.2 F1/F2): success means `errcode` absent or 0; every
 * call has a time limit; only the platform's `-1` ("system busy") is retried, at most twice with
 * back-off, because WeChat did not act on the call; a timeout or a dropped connection is never
 * retried, since the call may have been applied (a login code is single use). URLs are never
 * logged with their query, which carries the AppSecret and codes.
 */
import type { ErrorCode } from 'minigate-protocol';
import { AppError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

/** Back-off before each retry of a `-1` answer. */
export const BUSY_RETRY_DELAYS_MS = [200, 600] as const;
/** Largest JSON answer read from WeChat. */
const MAX_RESPONSE_BYTES = 4 << 20;

export interface WechatClientOptions {
  apiBase: string;
  timeoutMs: number;
  logger: Logger;
  busyRetryDelaysMs?: readonly number[];
  sleep?: (ms: number) => Promise<void>;
}

export interface WechatRequest {
  path: string;
  method?: 'GET' | 'POST';
  query?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  /** Retry on `-1` (false for calls that must not run twice, like sending a message). */
  retryOnBusy?: boolean;
  /** errcode → our code, for this call; consulted before the common table. */
  errors?: Readonly<Record<number, ErrorCode>>;
}

export interface Code2SessionResult {
  openid: string;
  sessionKey: string;
  unionid?: string;
}

export interface WechatClient {
  /** `GET /sns/jscode2session`: the login code → openid, session_key, unionid. */
  code2Session(app: { appid: string; secret: string }, code: string): Promise<Code2SessionResult>;
  /** A call whose answer is JSON; throws AppError on any failure. */
  call<T = Record<string, unknown>>(request: WechatRequest): Promise<T>;
}

/** errcodes every API may answer, and what they mean for our caller. */
const COMMON_ERRORS: Readonly<Record<number, ErrorCode>> = {
  [-1]: 'WECHAT_UNAVAILABLE',
  40013: 'WECHAT_CREDENTIALS_INVALID',
  40125: 'WECHAT_CREDENTIALS_INVALID',
  40164: 'WECHAT_CREDENTIALS_INVALID',
  41002: 'WECHAT_CREDENTIALS_INVALID',
  41004: 'WECHAT_CREDENTIALS_INVALID',
  89503: 'WECHAT_CREDENTIALS_INVALID',
  45009: 'WECHAT_RATE_LIMITED',
  45011: 'WECHAT_RATE_LIMITED',
};

const CODE2SESSION_ERRORS: Readonly<Record<number, ErrorCode>> = {
  40029: 'AUTH_CODE_INVALID',
  41008: 'AUTH_CODE_INVALID',
  40163: 'AUTH_CODE_USED',
  40226: 'AUTH_USER_BLOCKED',
};

/** A failure WeChat answered with an errcode; kept as the cause of our AppError. */
export class WechatApiError extends Error {
  constructor(
    readonly path: string,
    readonly errcode: number,
    readonly errmsg: string,
  ) {
    super(`${path}: errcode ${errcode} ${errmsg}`);
    this.name = 'WechatApiError';
  }
}

export function createWechatClient(options: WechatClientOptions): WechatClient {
  const base = options.apiBase.replace(/\/+$/, '');
  const delays = options.busyRetryDelaysMs ?? BUSY_RETRY_DELAYS_MS;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const log = options.logger;

  async function once(request: WechatRequest): Promise<Record<string, unknown>> {
    const url = new URL(base + request.path);
    for (const [k, v] of Object.entries(request.query ?? {})) url.searchParams.set(k, v);
    const started = performance.now();
    const method = request.method ?? (request.body === undefined ? 'GET' : 'POST');
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: request.body === undefined ? {} : { 'content-type': 'application/json' },
        body: request.body === undefined ? null : JSON.stringify(request.body),
        signal: AbortSignal.timeout(options.timeoutMs),
      });
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      log.warn(
        { wechat: request.path, ms: Math.round(performance.now() - started), cause: timedOut ? 'timeout' : causeText(error) },
        timedOut ? 'wechat: no answer in time' : 'wechat: request failed',
      );
      throw new AppError('WECHAT_UNAVAILABLE', { cause: error, details: { path: request.path } });
    }
    let text: string;
    try {
      text = await readLimited(response, MAX_RESPONSE_BYTES);
    } catch (error) {
      log.warn({ wechat: request.path, cause: causeText(error) }, 'wechat: answer cut off');
      throw new AppError('WECHAT_UNAVAILABLE', { cause: error, details: { path: request.path } });
    }
    const ms = Math.round(performance.now() - started);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!response.ok || typeof body !== 'object' || body === null || Array.isArray(body)) {
      log.warn({ wechat: request.path, status: response.status, ms }, 'wechat: answer is not a JSON object');
      throw new AppError('WECHAT_UNAVAILABLE', { details: { path: request.path, status: response.status } });
    }
    const errcode = (body as { errcode?: unknown }).errcode;
    log.debug({ wechat: request.path, status: response.status, errcode: errcode ?? 0, ms }, 'wechat: answered');
    return body as Record<string, unknown>;
  }

  async function call<T>(request: WechatRequest): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const body = await once(request);
      const errcode = typeof body.errcode === 'number' ? body.errcode : Number(body.errcode ?? 0);
      if (!errcode) return body as T;
      const errmsg = typeof body.errmsg === 'string' ? body.errmsg : '';
      if (errcode === -1 && request.retryOnBusy !== false && attempt < delays.length) {
        log.info({ wechat: request.path, attempt: attempt + 1 }, 'wechat: busy (-1), retrying');
        await sleep(delays[attempt]!);
        continue;
      }
      const code = request.errors?.[errcode] ?? COMMON_ERRORS[errcode] ?? 'WECHAT_ERROR';
      const level = code === 'WECHAT_CREDENTIALS_INVALID' || code === 'WECHAT_ERROR' ? 'error' : 'info';
      log[level]({ wechat: request.path, errcode, errmsg }, 'wechat: error answer');
      throw new AppError(code, { cause: new WechatApiError(request.path, errcode, errmsg), details: { errcode } });
    }
  }

  return {
    call,
    async code2Session(app, code) {
      const body = await call<{ openid?: unknown; session_key?: unknown; unionid?: unknown }>({
        path: '/sns/jscode2session',
        query: { appid: app.appid, secret: app.secret, js_code: code, grant_type: 'authorization_code' },
        errors: CODE2SESSION_ERRORS,
      });
      if (typeof body.openid !== 'string' || !body.openid || typeof body.session_key !== 'string' || !body.session_key) {
        log.error({ wechat: '/sns/jscode2session' }, 'wechat: success answer without openid or session_key');
        throw new AppError('WECHAT_ERROR', { details: { path: '/sns/jscode2session' } });
      }
      return {
        openid: body.openid,
        sessionKey: body.session_key,
        ...(typeof body.unionid === 'string' && body.unionid ? { unionid: body.unionid } : {}),
      };
    },
  };
}

async function readLimited(response: Response, limit: number): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new Error(`answer larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function causeText(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
