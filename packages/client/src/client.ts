/**
 * The client: login (shared when concurrent), requests that carry the session and recover from
 * an ended one with one new login, uploads and downloads, the phone number, logout — each in
 * callback style (success/fail/complete, returning a task with abort()) or Promise style (no
 * callbacks: a Promise that also has abort()).
 */
import { createChannel, type Channel, type ChannelOptions } from './channel.js';
import { httpStatusErrorCode, SESSION_ERRORS, type ErrorCode, type LoginResponse } from 'minigate-protocol';
import { MinigateError, sdkError } from './errors.js';
import { globalWx, type PaymentParams, type Wx, type WxRequestTask, type WxResponse } from './wx.js';

export interface ClientOptions {
  /** Where minigate is: https://api.example.com (http://127.0.0.1:8080 in development). */
  baseUrl: string;
  /** Sent with the login when one server serves several mini programs. */
  appid?: string;
  /** Storage key of the session (wx.setStorageSync). */
  storageKey?: string;
  /** Where a login code comes from: wx.login by default (a local sandbox or the playground gives its own). */
  getCode?: () => Promise<string>;
  /** The `wx` to use (default: the runtime's global). */
  wx?: Wx;
  /** Request timeout in ms (WeChat's default is 60 s). */
  timeout?: number;
}

/** The session kept in storage: the fields of minigate's login answer (`LoginResponse`). */
export type Session = Pick<LoginResponse, 'token' | 'openid' | 'unionid' | 'expiresAt' | 'user'>;

export interface Callbacks<T> {
  success?: (res: T) => void;
  fail?: (error: MinigateError) => void;
  complete?: () => void;
}

/** How a payment ended in the cashier ('failed' only in callback style: the Promise style rejects). */
export interface PayResult {
  outcome: 'paid' | 'cancelled' | 'failed';
}

export interface Response<T = unknown> {
  data: T;
  statusCode: number;
  header: Record<string, string>;
}

export interface RequestOptions<T = unknown> extends Callbacks<Response<T>> {
  /** A path on baseUrl (`/api/orders`) or a full URL. */
  url: string;
  method?: string;
  data?: unknown;
  header?: Record<string, string>;
  timeout?: number;
  /** Send the session (logging in first when needed). Default true for minigate's URLs (paths, full URLs on baseUrl's origin), false elsewhere. */
  auth?: boolean;
}

export interface UploadOptions extends Callbacks<FileInfo> {
  filePath: string;
  /** The multipart field (minigate's files.field). Default `file`. */
  name?: string;
  formData?: Record<string, string>;
  url?: string;
  header?: Record<string, string>;
  timeout?: number;
  onProgress?: (progress: { progress: number; totalBytesSent: number; totalBytesExpectedToSend: number }) => void;
}

export interface FileInfo {
  id: string;
  url: string;
  size: number;
  sha256: string;
  contentType: string;
  name: string;
  access: 'private' | 'public';
  createdAt: number;
  meta?: Record<string, string>;
}

export interface DownloadOptions extends Callbacks<{ tempFilePath: string; statusCode: number }> {
  /** A file's url, a path on baseUrl, or a file id. */
  url: string;
  header?: Record<string, string>;
  timeout?: number;
  filePath?: string;
  /** Send the session (private files). Default true for minigate's URLs (paths, ids, full URLs on baseUrl's origin), false elsewhere. */
  auth?: boolean;
  onProgress?: (progress: { progress: number; totalBytesWritten: number; totalBytesExpectedToWrite: number }) => void;
}

/** What a call returns: a Promise with abort() (no callbacks given), or just the abort handle. */
export type Task<T> = Promise<T> & { abort(): void };
export interface TaskHandle {
  abort(): void;
}
/** Options without callbacks: the Promise style. */
export interface NoCallbacks {
  success?: undefined;
  fail?: undefined;
  complete?: undefined;
}

export interface MinigateClient {
  readonly session: Session | null;
  login(): Promise<Session>;
  /** Login with the user's profile (getUserProfile / getUserInfo detail), checked and decrypted by minigate. */
  loginWithUserInfo(detail: { encryptedData: string; iv: string; rawData?: string; signature?: string }): Promise<Session>;
  // Promise style (no callbacks) gives a Task, callback style the abort handle; typed apart so that
  // `(await client.request(…)).data` compiles.
  request<T = unknown>(options: RequestOptions<T> & NoCallbacks): Task<Response<T>>;
  request<T = unknown>(options: RequestOptions<T>): TaskHandle;
  uploadFile(options: UploadOptions & NoCallbacks): Task<FileInfo>;
  uploadFile(options: UploadOptions): TaskHandle;
  downloadFile(options: DownloadOptions & NoCallbacks): Task<{ tempFilePath: string; statusCode: number }>;
  downloadFile(options: DownloadOptions): TaskHandle;
  getPhoneNumber(code: string): Promise<{ phoneNumber: string; purePhoneNumber: string; countryCode: string }>;
  /**
   * Decrypts open data (wx.getWeRunData, a share ticket's info, …) with the session's key on the
   * server. `getData` fetches it; when the server says SESSION_KEY_STALE (wx.login ran again
   * since the session was made), the SDK logs in again, calls `getData` again and retries once.
   */
  decrypt<T = Record<string, unknown>>(getData: () => Promise<{ encryptedData: string; iv: string }>): Promise<T>;
  /**
   * wx.requestSubscribeMessage, and its result reported to minigate through the session (recorded
   * as client-reported grants). Resolves with wx's result once the report is in.
   */
  requestSubscribeMessage(tmplIds: string[]): Promise<Record<string, string>>;
  /**
   * Opens WeChat Pay's cashier with the parameters a business endpoint got from minigate's order
   * API (`payment`). Resolves `{outcome: 'paid'}` or `{outcome: 'cancelled'}` (the user backed
   * out); a failure rejects with PAY_FAILED. 'paid' means the user finished in the cashier: the
   * business service learns that the money arrived from the webhook (or an order query), never
   * from the client. With callbacks instead: success(result) / fail(error) / complete.
   */
  pay(params: PaymentParams, callbacks?: Callbacks<PayResult>): Promise<PayResult>;
  /** A channel (WebSocket rooms) on this client's session. */
  channel(options?: ChannelOptions): Channel;
  /** Ends the session on the server and here; open channels close. */
  logout(): Promise<void>;
}

const DEFAULT_STORAGE_KEY = 'minigate.session';

export function createClient(options: ClientOptions): MinigateClient {
  const wx = options.wx ?? globalWx();
  if (!wx) throw new Error('minigate-client: no wx (run it in a mini program, or pass options.wx)');
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const storageKey = options.storageKey ?? DEFAULT_STORAGE_KEY;
  const timeout = options.timeout;
  let session: Session | null = readSession();
  let loggingIn: Promise<Session> | null = null;
  const channels = new Set<Channel>();

  const absolute = (url: string) => (/^(https?|wss?):\/\//.test(url) ? url : `${baseUrl}${url.startsWith('/') ? '' : '/'}${url}`);
  const origin = (url: string) => (/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(url)?.[0] ?? '').toLowerCase();
  /** The session goes only where it was made: to baseUrl's origin, never to a CDN or another API. */
  const sendsSession = (url: string, auth: boolean | undefined) => auth ?? origin(absolute(url)) === origin(baseUrl);

  function readSession(): Session | null {
    try {
      const saved = wx!.getStorageSync(storageKey) as Session | '' | undefined;
      return saved && typeof saved === 'object' && typeof saved.token === 'string' ? saved : null;
    } catch {
      return null;
    }
  }

  function forget(token?: string): void {
    // Only the session that failed: a newer one another call already got stays.
    if (token !== undefined && session && session.token !== token) return;
    session = null;
    try {
      wx!.removeStorageSync(storageKey);
    } catch {
      // storage unavailable: the memory copy is gone anyway
    }
  }

  /** wx.request as a promise of the answer, whatever its status; `track` gets the task for abort(). */
  function rawRequest(req: { url: string; method?: string; data?: unknown; header?: Record<string, string>; timeout?: number }, track?: (task: WxRequestTask) => void): Promise<WxResponse> {
    return new Promise((resolve, reject) => {
      const task = wx!.request({
        url: absolute(req.url),
        method: req.method ?? 'GET',
        data: req.data,
        header: { ...req.header },
        ...(req.timeout ?? timeout ? { timeout: req.timeout ?? timeout } : {}),
        success: resolve,
        fail: (err) => reject(networkError(err)),
      });
      track?.(task);
    });
  }

  function getCode(): Promise<string> {
    if (options.getCode) return options.getCode();
    return new Promise((resolve, reject) =>
      wx!.login({
        success: (res) => (res.code ? resolve(res.code) : reject(sdkError('LOGIN_FAILED', 'wx.login gave no code'))),
        fail: (err) => reject(sdkError('LOGIN_FAILED', err.errMsg || 'wx.login failed')),
      }),
    );
  }

  async function doLogin(extra: Record<string, unknown>): Promise<Session> {
    const code = await getCode();
    const res = await rawRequest({ url: '/auth/login', method: 'POST', data: { code, ...(options.appid ? { appid: options.appid } : {}), ...extra }, header: { 'content-type': 'application/json' } });
    const body = res.data as Partial<LoginResponse> | undefined;
    if (res.statusCode !== 200 || !body || typeof body.token !== 'string') {
      throw MinigateError.fromResponse(res.statusCode, res.data) ?? sdkError('LOGIN_FAILED', `login answered ${res.statusCode}`, res.statusCode);
    }
    const fresh: Session = {
      token: body.token,
      openid: String(body.openid),
      expiresAt: Number(body.expiresAt),
      ...(body.unionid ? { unionid: body.unionid } : {}),
      ...(body.user ? { user: body.user } : {}),
    };
    session = fresh;
    try {
      wx!.setStorageSync(storageKey, fresh);
    } catch {
      // kept in memory
    }
    return fresh;
  }

  function login(extra: Record<string, unknown> = {}): Promise<Session> {
    // One login at a time: everyone waiting for a session shares it.
    if (!loggingIn) {
      loggingIn = doLogin(extra);
      const clear = () => {
        loggingIn = null;
      };
      loggingIn.then(clear, clear);
    }
    return loggingIn;
  }

  async function ensureSession(): Promise<Session> {
    if (loggingIn) return loggingIn;
    if (session && session.expiresAt > Date.now()) return session;
    return login();
  }

  const isSessionFailure = (statusCode: number, body: unknown) => {
    if (statusCode !== 401) return false;
    const error = MinigateError.fromResponse(statusCode, body);
    return !error || SESSION_ERRORS.indexOf(error.code as ErrorCode) >= 0;
  };

  /**
   * Runs `attempt` with the session (when `auth`), and once more after a new login when the
   * server says the session is gone. `abort` stops whatever is under way.
   */
  function withSession<T>(
    auth: boolean,
    attempt: (token: string | null, track: (task: { abort(): void }) => void) => Promise<{ statusCode: number; body: unknown; value: T }>,
    callbacks: Callbacks<T>,
  ): Task<T> | TaskHandle {
    let current: { abort(): void } | undefined;
    let aborted = false;
    const track = (task: { abort(): void }) => {
      current = task;
      if (aborted) task.abort();
    };
    const run = async (): Promise<T> => {
      for (let round = 0; ; round++) {
        if (aborted) throw sdkError('ABORTED', 'aborted');
        const token = auth ? (await ensureSession()).token : null;
        // Aborted while the login was under way: the call must not go out at all.
        if (aborted) throw sdkError('ABORTED', 'aborted');
        const answer = await attempt(token, track);
        if (auth && round === 0 && isSessionFailure(answer.statusCode, answer.body)) {
          forget(token!);
          continue; // one new login, one retry
        }
        if (answer.statusCode < 200 || answer.statusCode >= 300) {
          throw MinigateError.fromResponse(answer.statusCode, answer.body) ?? sdkError(httpStatusErrorCode(answer.statusCode), `the server answered ${answer.statusCode}`, answer.statusCode);
        }
        return answer.value;
      }
    };
    const promise = run().catch((error: unknown) => {
      if (aborted) throw sdkError('ABORTED', 'aborted');
      throw error instanceof MinigateError ? error : sdkError('NETWORK', (error as Error).message);
    });
    const abort = () => {
      aborted = true;
      current?.abort();
    };
    if (callbacks.success || callbacks.fail || callbacks.complete) {
      // As wx does: complete runs even when success or fail throws; the throw is reported, not swallowed.
      const settle = (call: () => void) => {
        try {
          call();
        } finally {
          try {
            callbacks.complete?.();
          } catch (error) {
            rethrowLater(error);
          }
        }
      };
      promise.then(
        (value) => settle(() => callbacks.success?.(value)),
        (error: MinigateError) => settle(() => callbacks.fail?.(error)),
      ).catch(rethrowLater);
      return { abort };
    }
    return Object.assign(promise, { abort });
  }

  const bearer = (token: string | null): Record<string, string> => (token ? { Authorization: `Bearer ${token}` } : {});

  const client: MinigateClient = {
    get session() {
      return session;
    },
    login: () => login(),
    loginWithUserInfo: (detail) => {
      forget();
      return login({ encryptedData: detail.encryptedData, iv: detail.iv, ...(detail.rawData ? { rawData: detail.rawData, signature: detail.signature } : {}) });
    },

    request: (<T>(req: RequestOptions<T>) => {
      return withSession<Response<T>>(
        sendsSession(req.url, req.auth),
        async (token, track) => {
          const res = await rawRequest({ url: req.url, method: req.method, data: req.data, header: { ...req.header, ...bearer(token) }, timeout: req.timeout }, track);
          return { statusCode: res.statusCode, body: res.data, value: { data: res.data as T, statusCode: res.statusCode, header: res.header } };
        },
        req,
      );
    }) as MinigateClient['request'],

    uploadFile: ((req: UploadOptions) => {
      return withSession<FileInfo>(
        sendsSession(req.url ?? '/files', undefined),
        (token, track) =>
          new Promise((resolve, reject) => {
            const task = wx.uploadFile({
              url: absolute(req.url ?? '/files'),
              filePath: req.filePath,
              name: req.name ?? 'file',
              ...(req.formData ? { formData: req.formData } : {}),
              header: { ...req.header, ...bearer(token) },
              ...(req.timeout ?? timeout ? { timeout: req.timeout ?? timeout } : {}),
              success: (res) => {
                let body: unknown = res.data;
                try {
                  body = JSON.parse(res.data); // uploadFile's data is text
                } catch {
                  // not JSON: left as text
                }
                resolve({ statusCode: res.statusCode, body, value: body as FileInfo });
              },
              fail: (err) => reject(networkError(err)),
            });
            if (req.onProgress && task.onProgressUpdate) task.onProgressUpdate(req.onProgress);
            track(task);
          }),
        req,
      );
    }) as MinigateClient['uploadFile'],

    downloadFile: ((req: DownloadOptions) => {
      const url = /^[a-f0-9]{32}$/.test(req.url) ? `/files/${req.url}` : req.url;
      return withSession<{ tempFilePath: string; statusCode: number }>(
        sendsSession(url, req.auth),
        (token, track) =>
          new Promise((resolve, reject) => {
            const task = wx.downloadFile({
              url: absolute(url),
              header: { ...req.header, ...bearer(token) },
              ...(req.timeout ?? timeout ? { timeout: req.timeout ?? timeout } : {}),
              ...(req.filePath ? { filePath: req.filePath } : {}),
              success: (res) => {
                const path = res.tempFilePath || res.filePath || '';
                // downloadFile saves any answer: an error's body is our JSON, read back for the error.
                let body: unknown = null;
                if (res.statusCode !== 200 && path && wx.getFileSystemManager) {
                  try {
                    body = wx.getFileSystemManager().readFileSync(path, 'utf8');
                  } catch {
                    body = null;
                  }
                }
                resolve({ statusCode: res.statusCode, body, value: { tempFilePath: path, statusCode: res.statusCode } });
              },
              fail: (err) => reject(networkError(err)),
            });
            if (req.onProgress && task.onProgressUpdate) task.onProgressUpdate(req.onProgress);
            track(task);
          }),
        req,
      );
    }) as MinigateClient['downloadFile'],

    async getPhoneNumber(code) {
      const res = await client.request<{ phoneNumber: string; purePhoneNumber: string; countryCode: string }>({
        url: '/auth/phone',
        method: 'POST',
        data: { code },
        header: { 'content-type': 'application/json' },
      });
      return res.data;
    },

    async decrypt<T>(getData: () => Promise<{ encryptedData: string; iv: string }>): Promise<T> {
      for (let round = 0; ; round++) {
        const { encryptedData, iv } = await getData();
        try {
          const res = await client.request<{ data: T }>({ url: '/auth/decrypt', method: 'POST', data: { encryptedData, iv }, header: { 'content-type': 'application/json' } });
          return res.data.data;
        } catch (error) {
          // The data was sealed with a newer key than the session's: one new login, new data, one retry.
          if (round > 0 || !(error instanceof MinigateError) || error.code !== 'SESSION_KEY_STALE') throw error;
          forget(session?.token);
          await login();
        }
      }
    },

    async requestSubscribeMessage(tmplIds) {
      if (!wx.requestSubscribeMessage) throw sdkError('NOT_SUPPORTED', 'wx.requestSubscribeMessage is not available');
      const result = await new Promise<Record<string, string>>((resolve, reject) => {
        wx.requestSubscribeMessage!({ tmplIds, success: resolve, fail: (err) => reject(sdkError('SUBSCRIBE_FAILED', err.errMsg || 'requestSubscribeMessage failed')) });
      });
      await client.request({ url: '/auth/subscriptions', method: 'POST', data: { result }, header: { 'content-type': 'application/json' } });
      return result;
    },

    pay(params, callbacks) {
      const promise = new Promise<PayResult>((resolve, reject) => {
        if (!wx.requestPayment) {
          reject(sdkError('NOT_SUPPORTED', 'wx.requestPayment is not available'));
          return;
        }
        const { timeStamp, nonceStr, package: pkg, signType, paySign } = params;
        wx.requestPayment({
          timeStamp,
          nonceStr,
          package: pkg,
          signType,
          paySign,
          success: () => resolve({ outcome: 'paid' }),
          fail: (err) => {
            const errMsg = (err && err.errMsg) || 'requestPayment:fail';
            if (/cancel/i.test(errMsg)) resolve({ outcome: 'cancelled' });
            else reject(sdkError('PAY_FAILED', errMsg));
          },
        });
      });
      if (!callbacks || (!callbacks.success && !callbacks.fail && !callbacks.complete)) return promise;
      promise.then(
        (result) => {
          callbacks.success?.(result);
          callbacks.complete?.();
        },
        (error: unknown) => {
          callbacks.fail?.(error as MinigateError);
          callbacks.complete?.();
        },
      );
      return promise.catch(() => ({ outcome: 'failed' as const }));
    },

    channel(channelOptions = {}) {
      const channel = createChannel({
        wx,
        url: absolute(channelOptions.path ?? '/channel').replace(/^http/, 'ws'),
        token: () => ensureSession().then((s) => s.token),
        sessionEnded: (token) => forget(token),
        verifySession: () => client.request({ url: '/auth/session' }),
        onClose: () => channels.delete(channel),
        ...channelOptions,
      });
      channels.add(channel);
      return channel;
    },

    async logout() {
      const token = session?.token;
      for (const channel of channels) channel.close();
      forget();
      if (token) {
        await rawRequest({ url: '/auth/logout', method: 'POST', header: { Authorization: `Bearer ${token}` } }).catch(() => undefined);
      }
    },
  };
  return client;
}

/** An error thrown by the app's own callback: out of the promise chain, as an uncaught error. */
function rethrowLater(error: unknown): void {
  setTimeout(() => {
    throw error;
  }, 0);
}

function networkError(err: { errMsg?: string }): MinigateError {
  const message = (err && err.errMsg) || 'request failed';
  return sdkError(/abort/i.test(message) ? 'ABORTED' : /timeout/i.test(message) ? 'TIMEOUT' : 'NETWORK', message);
}
