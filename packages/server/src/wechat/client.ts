/**
 * Calls to WeChat's server API (or the sandbox: the base URL is configuration).
 *
 * Rules (docs/wechat-api.md §0, docs/reliability.md#login-and-wechat-calls): success means
 * `errcode` absent or 0; every call has a time limit; only the platform's `-1` ("system busy") is
 * retried, at most twice with back-off, and never for a call with a side effect (sending a
 * message): there a timeout, a reset or -1 is reported as WECHAT_OUTCOME_UNKNOWN, because it may
 * have been applied. A call that could not even connect is WECHAT_UNAVAILABLE (nothing was sent).
 * URLs are never logged with their query, which carries the AppSecret, codes and access tokens.
 */
import type { ErrorCode } from 'minigate-protocol';
import { request, type Dispatcher } from 'undici';
import { AppError, NO_METRICS, type Logger, type Metrics } from '../core/index.js';

/** Back-off before each retry of a `-1` answer. */
export const BUSY_RETRY_DELAYS_MS = [200, 600] as const;
/** Largest answer read from WeChat (a wxacode image is well under this). */
export const MAX_RESPONSE_BYTES = 16 << 20;

export interface WechatClientOptions {
  apiBase: string;
  timeoutMs: number;
  logger: Logger;
  /** minigate_wechat_calls_total and minigate_wechat_call_duration_seconds (docs/metrics.md). */
  metrics?: Metrics;
  busyRetryDelaysMs?: readonly number[];
  sleep?: (ms: number) => Promise<void>;
}

export interface WechatRequest {
  path: string;
  method?: 'GET' | 'POST';
  query?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  /** Retry on `-1` (default true; ignored for calls with a side effect). */
  retryOnBusy?: boolean;
  /** The call changes something at WeChat (sends a message): never repeated on doubt. */
  sideEffect?: boolean;
  /** errcode → our code, for this call; consulted before the common table. */
  errors?: Readonly<Record<number, ErrorCode>>;
  /** Integer fields to read exactly, as strings, from the raw answer (64-bit ids such as msgid). */
  exactIntegers?: readonly string[];
  /** The id of the request that caused this call, written on its log lines. */
  requestId?: string;
}

export interface RawRequest {
  path: string;
  method: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body?: Buffer;
  sideEffect?: boolean;
  /** The id of the request that caused this call, written on its log lines. */
  requestId?: string;
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface Code2SessionResult {
  openid: string;
  sessionKey: string;
  unionid?: string;
}

export interface WechatClient {
  /** `GET /sns/jscode2session`: the login code → openid, session_key, unionid. */
  code2Session(app: { appid: string; secret: string }, code: string, requestId?: string): Promise<Code2SessionResult>;
  /** A call whose answer is JSON; throws AppError on any failure (errcode in details). */
  call<T = Record<string, unknown>>(request: WechatRequest): Promise<T>;
  /** One call whose answer comes back as it is (status, headers, bytes): for the gateway's passthrough. */
  raw(request: RawRequest): Promise<RawAnswer>;
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

/** Our error for a WeChat errcode: the API's own meaning first, then the common ones. */
export function wechatErrorCode(errcode: number, errors?: Readonly<Record<number, ErrorCode>>): ErrorCode {
  return errors?.[errcode] ?? COMMON_ERRORS[errcode] ?? 'WECHAT_ERROR';
}

const CODE2SESSION_ERRORS: Readonly<Record<number, ErrorCode>> = {
  40029: 'AUTH_CODE_INVALID',
  41008: 'AUTH_CODE_INVALID',
  40163: 'AUTH_CODE_USED',
  40226: 'AUTH_USER_BLOCKED',
};

/** Failures before anything reached WeChat: safe to try again. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

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

/** The errcode of a failed call (from its AppError), or undefined. */
export function errcodeOf(error: unknown): number | undefined {
  const errcode = (error as AppError | undefined)?.details?.errcode;
  return typeof errcode === 'number' ? errcode : undefined;
}

export function createWechatClient(options: WechatClientOptions): WechatClient {
  const base = options.apiBase.replace(/\/+$/, '');
  const delays = options.busyRetryDelaysMs ?? BUSY_RETRY_DELAYS_MS;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const log = options.logger;
  const metrics = options.metrics ?? NO_METRICS;
  const calls = metrics.counter('minigate_wechat_calls_total', 'Calls to WeChat by endpoint and errcode (0: success; unavailable: no answer).', ['endpoint', 'errcode']);
  const latency = metrics.histogram('minigate_wechat_call_duration_seconds', 'Time of one HTTP exchange with WeChat, by endpoint.', ['endpoint']);

  /** One HTTP exchange; transport failures become WECHAT_UNAVAILABLE or WECHAT_OUTCOME_UNKNOWN. */
  async function send(
    path: string,
    init: { method: string; query?: Record<string, string>; headers: Record<string, string>; body?: Buffer | string },
    sideEffect: boolean,
    requestId: string | undefined,
  ): Promise<RawAnswer> {
    const url = new URL(base + path);
    for (const [k, v] of Object.entries(init.query ?? {})) url.searchParams.set(k, v);
    const started = performance.now();
    const fail = (error: unknown, what: string): AppError => {
      const timedOut = (error as Error).name === 'TimeoutError' || (error as { cause?: Error }).cause?.name === 'TimeoutError';
      const cause = timedOut ? 'timeout' : causeText(error);
      const notSent = NOT_SENT.has(cause);
      calls.inc({ endpoint: endpointLabel(path), errcode: 'unavailable' });
      log.warn({ wechat: path, requestId, ms: Math.round(performance.now() - started), cause }, timedOut ? 'wechat: no answer in time' : what);
      return new AppError(sideEffect && !notSent ? 'WECHAT_OUTCOME_UNKNOWN' : 'WECHAT_UNAVAILABLE', { cause: error, details: { path } });
    };
    // undici's request() rather than fetch(): a login makes one of these, and fetch's WHATWG
    // layers (Request/Response objects, web streams, AbortSignal.timeout) cost a login about a
    // tenth of its CPU. One timer for the whole exchange, as before: answer headers and body.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DOMException('no answer in time', 'TimeoutError')), options.timeoutMs);
    let response: Dispatcher.ResponseData;
    let body: Buffer;
    try {
      try {
        response = await request(url, {
          method: init.method as Dispatcher.HttpMethod,
          headers: init.headers,
          body: init.body ?? null,
          signal: controller.signal,
        });
      } catch (error) {
        throw fail(error, 'wechat: request failed');
      }
      try {
        body = await readLimited(response.body, MAX_RESPONSE_BYTES);
      } catch (error) {
        throw fail(error, 'wechat: answer cut off');
      }
    } finally {
      clearTimeout(timer);
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    const seconds = (performance.now() - started) / 1000;
    latency.observe(seconds, { endpoint: endpointLabel(path) });
    log.debug({ wechat: path, requestId, status: response.statusCode, bytes: body.length, ms: Math.round(seconds * 1000) }, 'wechat: answered');
    return { status: response.statusCode, headers, body };
  }

  async function once(request: WechatRequest): Promise<Record<string, unknown>> {
    const method = request.method ?? (request.body === undefined ? 'GET' : 'POST');
    const answer = await send(
      request.path,
      {
        method,
        query: request.query,
        headers: request.body === undefined ? {} : { 'content-type': 'application/json' },
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
      },
      request.sideEffect === true,
      request.requestId,
    );
    const text = answer.body.toString('utf8');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (answer.status < 200 || answer.status >= 300 || typeof body !== 'object' || body === null || Array.isArray(body)) {
      log.warn({ wechat: request.path, requestId: request.requestId, status: answer.status }, 'wechat: answer is not a JSON object');
      throw new AppError(request.sideEffect ? 'WECHAT_OUTCOME_UNKNOWN' : 'WECHAT_UNAVAILABLE', {
        details: { path: request.path, status: answer.status },
      });
    }
    const result = body as Record<string, unknown>;
    for (const field of request.exactIntegers ?? []) {
      const exact = new RegExp(`"${field}"\\s*:\\s*(-?\\d+)`).exec(text)?.[1];
      if (exact !== undefined) result[field] = exact;
    }
    return result;
  }

  async function call<T>(request: WechatRequest): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const body = await once(request);
      const errcode = typeof body.errcode === 'number' ? body.errcode : Number(body.errcode ?? 0);
      calls.inc({ endpoint: endpointLabel(request.path), errcode: Number.isInteger(errcode) ? String(errcode) : 'invalid' });
      if (!errcode) return body as T;
      const errmsg = typeof body.errmsg === 'string' ? body.errmsg : '';
      if (errcode === -1 && !request.sideEffect && request.retryOnBusy !== false && attempt < delays.length) {
        log.info({ wechat: request.path, requestId: request.requestId, attempt: attempt + 1 }, 'wechat: busy (-1), retrying');
        await sleep(delays[attempt]!);
        continue;
      }
      const code: ErrorCode =
        errcode === -1 && request.sideEffect ? 'WECHAT_OUTCOME_UNKNOWN' : wechatErrorCode(errcode, request.errors);
      const level = code === 'WECHAT_CREDENTIALS_INVALID' || code === 'WECHAT_ERROR' ? 'error' : 'info';
      log[level]({ wechat: request.path, requestId: request.requestId, errcode, errmsg }, 'wechat: error answer');
      throw new AppError(code, {
        cause: new WechatApiError(request.path, errcode, errmsg),
        details: { errcode },
        ...(code === 'WECHAT_BAD_ARGUMENT' || code === 'WECHAT_ERROR' ? { message: `WeChat refused the call: errcode ${errcode}.` } : {}),
      });
    }
  }

  return {
    call,
    raw: (request) =>
      send(request.path, { method: request.method, query: request.query, headers: request.headers, body: request.body }, request.sideEffect === true, request.requestId),
    async code2Session(app, code, requestId) {
      const body = await call<{ openid?: unknown; session_key?: unknown; unionid?: unknown }>({
        path: '/sns/jscode2session',
        query: { appid: app.appid, secret: app.secret, js_code: code, grant_type: 'authorization_code' },
        errors: CODE2SESSION_ERRORS,
        ...(requestId ? { requestId } : {}),
      });
      if (typeof body.openid !== 'string' || !body.openid || typeof body.session_key !== 'string' || !body.session_key) {
        log.error({ wechat: '/sns/jscode2session', requestId }, 'wechat: success answer without openid or session_key');
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

/** A bounded label for a WeChat path: the path itself when it is a plain API path, else `other`. */
function endpointLabel(path: string): string {
  return path.length <= 64 && /^\/[A-Za-z0-9_/.-]*$/.test(path) ? path : 'other';
}

async function readLimited(body: Dispatcher.ResponseData['body'], limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw new Error(`answer larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

function causeText(error: unknown): string {
  // undici's request() puts the socket's code on the error itself (fetch wrapped it in `cause`).
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return (error as { code?: string }).code ?? cause?.code ?? cause?.message ?? (error as Error).message;
}
