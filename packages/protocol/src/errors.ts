/**
 * The one registry of error codes minigate puts on the wire.
 *
 * Every error a client, a business service or an operator sees carries one of these codes in
 * `{"error":{"code","message","requestId"}}`. Codes are stable strings and are never reused;
 * `docs/errors.md` has one row per code and a test keeps the two in step.
 */
export interface ErrorSpec {
  /** HTTP status the error is sent with. */
  readonly status: number;
  /** Default message: what went wrong and what to do, one sentence. */
  readonly message: string;
}

export const ERRORS = {
  BAD_REQUEST: { status: 400, message: 'The request is malformed or a field is invalid.' },
  REQUEST_TARGET_INVALID: {
    status: 400,
    message: 'The request path is refused (it climbs above the root, or hides a separator, a dot-segment or a control character); send a plain path.',
  },
  UPGRADE_REFUSED: {
    status: 400,
    message: 'Only WebSocket upgrades (GET, Upgrade: websocket, Sec-WebSocket-Version 13 and a valid key) are accepted.',
  },
  BODY_TOO_LARGE: { status: 413, message: 'The request body is larger than this route accepts.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Send the body as application/json.' },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are larger than this server accepts (16 KiB).' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request headers did not arrive in time; send them at once.' },
  NOT_FOUND: { status: 404, message: 'No such route.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'This route does not accept that method.' },
  APP_UNKNOWN: { status: 400, message: 'That appid is not configured on this server.' },
  APP_REQUIRED: {
    status: 400,
    message: 'Several apps are configured; say which one with "appid" or the X-WX-AppId header.',
  },
  AUTH_CODE_INVALID: {
    status: 400,
    message: 'The login code is invalid or expired; call wx.login again and send the new code.',
  },
  AUTH_CODE_USED: {
    status: 400,
    message: 'The login code was already used; call wx.login again and send the new code.',
  },
  AUTH_USER_BLOCKED: { status: 403, message: 'WeChat blocked the login of this user (risk control).' },
  AUTH_SIGNATURE_MISMATCH: {
    status: 400,
    message: 'The rawData signature does not match; get the user data again after wx.login.',
  },
  AUTH_DECRYPT_FAILED: {
    status: 400,
    message: 'The encryptedData could not be decrypted; the session_key may be stale, so log in again.',
  },
  AUTH_WATERMARK_MISMATCH: {
    status: 400,
    message: 'The encrypted data was issued for another appid.',
  },
  AUTH_DATA_EXPIRED: { status: 400, message: 'The encrypted data is too old; get it again.' },
  SESSION_MISSING: {
    status: 401,
    message: 'No session token; send "Authorization: Bearer <token>" from /auth/login.',
  },
  SESSION_INVALID: { status: 401, message: 'The session token is not valid; log in again.' },
  SESSION_EXPIRED: { status: 401, message: 'The session has expired; log in again.' },
  SESSION_REVOKED: { status: 401, message: 'The session was ended; log in again.' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; slow down and retry later.' },
  WECHAT_RATE_LIMITED: {
    status: 429,
    message: 'WeChat is rate-limiting this call (45011); retry in a minute.',
  },
  WECHAT_UNAVAILABLE: {
    status: 503,
    message: 'WeChat did not answer in time or is busy; retry shortly.',
  },
  WECHAT_CREDENTIALS_INVALID: {
    status: 502,
    message: "WeChat rejected this server's AppID or AppSecret; the operator must fix the config.",
  },
  WECHAT_ERROR: { status: 502, message: 'WeChat answered with an error this server does not handle.' },
  WECHAT_OUTCOME_UNKNOWN: {
    status: 504,
    message: 'WeChat did not confirm the call in time; it may or may not have taken effect, so check before repeating it.',
  },
  WECHAT_BAD_ARGUMENT: { status: 400, message: 'WeChat refused an argument of the call; the errcode says which.' },
  PHONE_CODE_INVALID: {
    status: 400,
    message: 'The phone number code is invalid, used or expired; ask the user again with the getPhoneNumber button.',
  },
  SUBSCRIBE_REFUSED: {
    status: 409,
    message: 'The user has not subscribed to this template (or used up the subscription); ask with wx.requestSubscribeMessage.',
  },
  SUBSCRIBE_NOT_GRANTED: {
    status: 409,
    message: 'The user has no grant left for this template (none given, used up or revoked); ask with wx.requestSubscribeMessage.',
  },
  SUBSCRIBE_TEMPLATE_UNKNOWN: { status: 400, message: 'That template is not among the app\'s subscribe message templates.' },
  SUBSCRIBE_DATA_INVALID: {
    status: 400,
    message: 'The message data does not fit the template: a keyword is missing, unknown, empty or too long for its type.',
  },
  SESSION_KEY_STALE: {
    status: 409,
    message: 'The data was encrypted with a newer session_key (wx.login ran again); log in again, get the data again and retry.',
  },
  TOKEN_REFRESH_LIMITED: { status: 429, message: 'A forced access_token refresh is not allowed now.' },
  INTERNAL_AUTH_REQUIRED: {
    status: 401,
    message: 'The internal API needs "Authorization: Bearer <internal.token>".',
  },
  ADMIN_AUTH_REQUIRED: { status: 401, message: 'Log in to the admin console first (the session is missing, unknown or idle too long).' },
  ADMIN_LOGIN_FAILED: { status: 401, message: 'Wrong admin name, password or TOTP code.' },
  ADMIN_CSRF: { status: 403, message: 'This admin write lacks the X-CSRF-Token header of its session; reload the console.' },
  RANGE_NOT_SATISFIABLE: { status: 416, message: 'The requested byte range is outside the file.' },
  UPSTREAM_UNAVAILABLE: {
    status: 502,
    message: 'The service behind this route cannot be reached or failed; retry shortly.',
  },
  TUNNEL_OFFLINE: { status: 502, message: 'No relay client is connected for this route\'s tunnel; start `minigate tunnel` on the machine that serves it.' },
  TUNNEL_BUSY: { status: 503, message: 'The relay link of this route has as many requests in flight as it may carry (relay.maxStreams); retry shortly.' },
  RELAY_AUTH_FAILED: { status: 401, message: 'The relay name is unknown or the token is not the one `minigate relay add` printed for it.' },
  RELAY_NAME_TAKEN: { status: 409, message: 'Another relay client is connected with this name; stop it, or connect with --replace to take over.' },
  RELAY_BAD_HELLO: { status: 400, message: 'The relay client did not open with a valid hello frame of a version this server speaks.' },
  UPSTREAM_TIMEOUT: { status: 504, message: 'The service behind this route did not answer in time.' },
  PUSH_NOT_CONFIGURED: { status: 404, message: 'Message push is not configured for this app (apps[].push).' },
  PUSH_SIGNATURE_MISMATCH: { status: 403, message: 'The push signature does not match the configured Token.' },
  PUSH_DECRYPT_FAILED: { status: 400, message: 'The encrypted push does not decrypt with the configured EncodingAESKey.' },
  PUSH_APPID_MISMATCH: { status: 400, message: 'The encrypted push was made for another appid.' },
  PAY_NOT_CONFIGURED: { status: 404, message: 'WeChat Pay is not configured for this app (pay.merchants[].appids).' },
  PAY_MERCHANT_REQUIRED: { status: 400, message: 'This app is served by several merchants; name one with mchid.' },
  PAY_ORDER_CONFLICT: { status: 409, message: 'An order with this outTradeNo exists with other content; use a new outTradeNo.' },
  PAY_PREPAY_EXPIRED: { status: 409, message: 'The prepay_id of this order is past its 2-hour life; close the order and pay under a new outTradeNo.' },
  PAY_ORDER_UNKNOWN: { status: 404, message: 'No such order (outTradeNo) for this app.' },
  PAY_ORDER_PAID: { status: 409, message: 'The order is already paid.' },
  PAY_ORDER_CLOSED: { status: 409, message: 'The order is closed; create a new one with a new outTradeNo.' },
  PAY_REFUND_UNKNOWN: { status: 404, message: 'No such refund (outRefundNo).' },
  PAY_REFUSED: { status: 400, message: 'WeChat Pay refused the call.' },
  PAY_UNAVAILABLE: { status: 503, message: "WeChat Pay did not answer, or its answer could not be verified and the order's state is not known yet; retry (same outTradeNo)." },
  PAY_SIGNATURE_INVALID: { status: 401, message: "The notification's Wechatpay-Signature does not verify (or is a WeChat probe, or names an unknown serial)." },
  PAY_NOTIFY_STALE: { status: 401, message: "The notification's Wechatpay-Timestamp is more than 5 minutes from this server's clock." },
  PAY_DECRYPT_FAILED: { status: 400, message: "The notification's resource does not open with the APIv3 key." },
  PAY_NOTIFY_MISMATCH: { status: 400, message: 'The notification does not match the stored order (merchant, appid or amount).' },
  CHANNEL_BAD_FRAME: { status: 400, message: 'The channel frame is not valid JSON of the documented shape.' },
  CHANNEL_UNKNOWN_FRAME: { status: 400, message: 'Unknown channel frame type: join, leave, publish or ping.' },
  CHANNEL_ROOM_FORBIDDEN: { status: 403, message: 'This user may not join that room.' },
  CHANNEL_PUBLISH_FORBIDDEN: { status: 403, message: 'Clients may not publish in that room (only the server does).' },
  CHANNEL_NOT_JOINED: { status: 409, message: 'Join the room before publishing in it.' },
  CHANNEL_TOO_MANY_ROOMS: { status: 429, message: 'This connection is in as many rooms as it may be (channel.maxRoomsPerConnection).' },
  CHANNEL_RATE_LIMITED: { status: 429, message: 'Too many frames; slow down (channel.messagesPerSecond).' },
  CHANNEL_TOO_MANY_CONNECTIONS: { status: 429, message: 'This user has as many channel connections as allowed (channel.maxConnectionsPerUser).' },
  CHANNEL_ORIGIN_FORBIDDEN: { status: 403, message: 'WebSocket connections from this Origin are not allowed (channel.origins).' },
  CHANNEL_UNAVAILABLE: { status: 503, message: 'The channel could not decide or deliver just now (webhook or bus unavailable); retry shortly.' },
  CHANNEL_TICKET_USED: { status: 401, message: 'This tunnel URL was already used; ask GET /weapp/tunnel for a new one.' },
  FILE_TOO_LARGE: { status: 413, message: 'The file is larger than this server accepts (files.maxFileSize).' },
  FILE_TYPE_NOT_ALLOWED: { status: 415, message: 'The file content is not one of the allowed types (checked on its bytes, not its name).' },
  FILE_QUOTA_EXCEEDED: { status: 413, message: 'The file would take this user over their storage quota.' },
  FILE_NOT_FOUND: { status: 404, message: 'No such file.' },
  FILE_FORBIDDEN: { status: 403, message: 'This file is private to the user who uploaded it.' },
  FILE_LINK_INVALID: { status: 403, message: 'The signed link is invalid or has expired.' },
  UPLOAD_MALFORMED: { status: 400, message: 'The multipart body is malformed (boundary, headers or field names).' },
  UPLOAD_NO_FILE: { status: 400, message: 'The multipart body has no file in the expected field.' },
  UPLOAD_LIMIT: { status: 413, message: 'The multipart body has too many parts, fields or part headers, or a field that is too large.' },
  UPLOAD_ABORTED: { status: 400, message: 'The client stopped sending the body; nothing was kept.' },
  UPLOAD_NOT_FOUND: { status: 404, message: 'No such resumable upload (finished, aborted or expired).' },
  UPLOAD_INCOMPLETE: { status: 409, message: 'Parts are missing: complete the upload after every part has been sent.' },
  UPLOAD_CHECKSUM_MISMATCH: { status: 422, message: 'The file\'s SHA-256 is not the one given; nothing was kept.' },
  STORAGE_FULL: { status: 507, message: 'The file storage is full; nothing was kept.' },
  STORAGE_UNAVAILABLE: { status: 503, message: 'The file storage is unavailable; nothing was kept, retry shortly.' },
  STORE_UNAVAILABLE: {
    status: 503,
    message: 'The database is unavailable; nothing was saved, retry shortly.',
  },
  NOT_READY: { status: 503, message: 'The server is still starting; retry in a moment.' },
  SHUTTING_DOWN: { status: 503, message: 'The server is shutting down; nothing of this request was kept. Retry in a moment.' },
  INTERNAL: { status: 500, message: 'Internal error; the requestId identifies it in the server log.' },
} as const satisfies Record<string, ErrorSpec>;

/** A stable error code. */
export type ErrorCode = keyof typeof ERRORS;

/** Session errors that a new login cures (the SDK logs in again once on a 401 with one of these). */
export const SESSION_ERRORS: readonly ErrorCode[] = ['SESSION_MISSING', 'SESSION_INVALID', 'SESSION_EXPIRED', 'SESSION_REVOKED'];

/**
 * An error the client SDK raises itself, where no answer of minigate's carries a code: the
 * network failed, the call was aborted or timed out, a channel was closed. It has no HTTP status
 * (the SDK's `statusCode` is 0 unless an answer came), so it is kept apart from {@link ERRORS}.
 */
export interface ClientErrorSpec {
  /** What happened, one sentence; the SDK's own message adds the detail (wx's errMsg, the limit). */
  readonly message: string;
}

/**
 * The codes the client SDK (`minigate-client`) raises itself. Never the same as a code in
 * {@link ERRORS}; `docs/errors.md` has a row for each, and a test keeps the two in step.
 */
export const CLIENT_ERRORS = {
  NETWORK: { message: 'The request did not reach the server, or its answer did not come back; its outcome is unknown.' },
  TIMEOUT: { message: 'No answer came in time: a request past its timeout, or a publish past ackTimeoutMs.' },
  ABORTED: { message: 'The call was aborted (task.abort()) before it finished.' },
  LOGIN_FAILED: { message: 'No session could be made: wx.login failed or gave no code, or the login answer was not minigate\'s.' },
  CHANNEL_CLOSED: { message: 'The channel closed (or the link dropped) before the call finished; a publish\'s outcome is unknown.' },
  CHANNEL_QUEUE_FULL: { message: 'The channel is not connected and maxQueue frames are already waiting for it.' },
  SUBSCRIBE_FAILED: { message: 'The wx.requestSubscribeMessage call failed (no popup shown, or the template ids were refused); nothing was reported.' },
  PAY_FAILED: { message: 'The wx.requestPayment call failed (not a cancel): the parameters were refused, the order is paid or closed, or the prepay_id expired.' },
  NOT_SUPPORTED: { message: 'This wx API is not available in this runtime (base library too old, or not a mini program).' },
} as const satisfies Record<string, ClientErrorSpec>;

/** A code the client SDK raises itself. */
export type ClientErrorCode = keyof typeof CLIENT_ERRORS;

/** The code the SDK gives a non-2xx answer that is not minigate's error shape (a proxy's error page, an upstream's own 404). */
export type HttpStatusErrorCode = `HTTP_${number}`;

/** `HTTP_` and the status: the code of a non-2xx answer without minigate's error shape. */
export function httpStatusErrorCode(status: number): HttpStatusErrorCode {
  return `HTTP_${status}`;
}

/** Every code a `MinigateError` of the client SDK can carry (a newer server may add to {@link ErrorCode}). */
export type MinigateErrorCode = ErrorCode | ClientErrorCode | HttpStatusErrorCode;

/** True when `code` is one of the codes the client SDK raises itself. */
export function isClientErrorCode(code: unknown): code is ClientErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(CLIENT_ERRORS, code);
}

/** The JSON body of every error response. */
export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    requestId: string;
  };
}

/** True when `code` is one of the registered codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, code);
}

/** True when `body` has the shape of a minigate error response. */
export function isErrorBody(body: unknown): body is ErrorBody {
  if (typeof body !== 'object' || body === null) return false;
  const error = (body as { error?: unknown }).error;
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { code?: unknown }).code === 'string' &&
    typeof (error as { message?: unknown }).message === 'string'
  );
}
