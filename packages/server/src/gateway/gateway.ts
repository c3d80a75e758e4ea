/**
 * Calling WeChat with the deployment's access_token: for minigate itself and, through the
 * internal API, for business services that must never hold the AppSecret.
 *
 * Every call gets the cached token; when WeChat answers 40001/42001/40014 the token manager
 * recovers once (deployment-wide single flight) and the call is retried once — a retry that is
 * safe even for a subscribe message, because WeChat refused the first call. Nothing else is
 * retried for calls with a side effect (docs/reliability.md#access_token, docs/wechat-api.md §8.3).
 */
import { AppError, type Logger } from '../core/index.js';
import type { TokenManager } from '../token/index.js';
import { TOKEN_ERRCODES } from '../token/index.js';
import { errcodeOf, type RawAnswer, type WechatClient, type WechatRequest } from '../wechat/index.js';

/** Largest body a business service may pass through. */
export const PASSTHROUGH_MAX_BODY_BYTES = 10 << 20;

export interface PassthroughRequest {
  method: string;
  /** WeChat's path, e.g. `/wxa/getwxacodeunlimit`. */
  path: string;
  query: URLSearchParams;
  contentType?: string;
  body?: Buffer;
  /** Whether the call may change something at WeChat (default: anything but GET may). */
  sideEffect?: boolean;
  /** The id of the request that caused the call, for the WeChat client's log lines. */
  requestId?: string;
}

export interface Gateway {
  /** A JSON call with the token injected (and retried once after a token error). */
  call<T = Record<string, unknown>>(appid: string, request: WechatRequest): Promise<T>;
  /** Any call, answer passed back as it is (bytes, status, content type). */
  passthrough(appid: string, request: PassthroughRequest): Promise<RawAnswer>;
}

export function createGateway(deps: { tokens: TokenManager; wechat: WechatClient; logger: Logger }): Gateway {
  const { tokens, wechat } = deps;

  /** Runs `attempt` with the token; after a token error, once more with a recovered one. */
  async function withToken<T>(appid: string, attempt: (token: string) => Promise<T>, rejected: (result: T) => boolean = () => false): Promise<T> {
    const first = await tokens.get(appid);
    let result: T;
    try {
      result = await attempt(first.accessToken);
    } catch (error) {
      const errcode = errcodeOf(error);
      if (errcode === undefined || !TOKEN_ERRCODES.has(errcode)) throw error;
      const next = await tokens.recover(appid, first.accessToken);
      return attempt(next.accessToken);
    }
    if (!rejected(result)) return result;
    const next = await tokens.recover(appid, first.accessToken);
    return attempt(next.accessToken);
  }

  return {
    call(appid, request) {
      return withToken(appid, (token) => wechat.call({ ...request, query: { ...request.query, access_token: token } }));
    },

    passthrough(appid, request) {
      const query: Record<string, string> = {};
      for (const [k, v] of request.query) if (k !== 'access_token') query[k] = v;
      return withToken(
        appid,
        (token) =>
          wechat.raw({
            method: request.method,
            path: request.path,
            query: { ...query, access_token: token },
            headers: request.contentType ? { 'content-type': request.contentType } : {},
            ...(request.body ? { body: request.body } : {}),
            // A passthrough may send something; only a GET is known to change nothing.
            sideEffect: request.sideEffect ?? request.method !== 'GET',
            ...(request.requestId ? { requestId: request.requestId } : {}),
          }),
        (answer) => tokenErrorIn(answer),
      );
    },
  };
}

/**
 * The gateway as seen by one request: every call it makes carries the request's id to the
 * WeChat client's log lines. Threaded explicitly (no AsyncLocalStorage): the helpers take a
 * Gateway, so a route hands them this view and none of their signatures change.
 */
export function gatewayFor(gateway: Gateway, requestId: string): Gateway {
  return {
    call: (appid, request) => gateway.call(appid, { ...request, requestId }),
    passthrough: (appid, request) => gateway.passthrough(appid, { ...request, requestId }),
  };
}

/** True for a JSON answer whose errcode says the token was refused. */
function tokenErrorIn(answer: RawAnswer): boolean {
  if (!(answer.headers['content-type'] ?? '').includes('json') && answer.body[0] !== 0x7b) return false;
  if (answer.body.length > 4096) return false;
  try {
    const errcode = (JSON.parse(answer.body.toString('utf8')) as { errcode?: unknown }).errcode;
    return typeof errcode === 'number' && TOKEN_ERRCODES.has(errcode);
  } catch {
    return false;
  }
}

/** A helper's argument that is missing or wrong: 400 naming it. */
export function badArgument(name: string, rule: string): AppError {
  return new AppError('BAD_REQUEST', { message: `${name}: ${rule}.` });
}
