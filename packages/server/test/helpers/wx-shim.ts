/**
 * A `wx` for Node that keeps WeChat's networking rules (docs/wechat-api.md §10), for testing
 * minigate-client against a real minigate:
 *
 * - https/wss only (`request:fail url not in domain list`), unless `dev` (http/ws, as the
 *   DevTools' "不校验合法域名" switch allows);
 * - a Referer header cannot be set (the call fails), and none is sent;
 * - request, uploadFile and downloadFile share a pool of 10 running tasks: more are queued and
 *   sent in order as others finish (base library ≥ 1.4.0; older ones dropped them);
 *   `stats.peak` is the most that ever ran at once;
 * - at most 5 sockets (connecting or open); the 6th fails (`fail` and onError, never opens);
 * - `success` for any HTTP status; `fail` only without an answer (network, abort, timeout);
 * - request: data as a query string (GET) or JSON / form body; `dataType: 'json'` parses the
 *   answer when it is JSON (one BOM stripped); uploadFile: multipart (formData, then the file),
 *   `data` is the answer's TEXT; downloadFile: any answer's body saved to a temp file;
 * - a refused WebSocket upgrade is onError then onClose(1006), without the HTTP status;
 * - storage is JSON-serialised, getStorageSync gives '' for a missing key;
 * - callbacks run asynchronously, success/fail then complete; what they throw is kept in `errors`.
 *
 * Local files are `wxfile://…` paths backed by a temp directory (`files`).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Wx, WxSocketTask } from 'minigate-client';
import { Agent, fetch, FormData, type Response } from 'undici';
import WebSocket from 'ws';

/** WeChat's per-call default (and app.json networkTimeout default). */
const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_NETWORK_TASKS = 10;
const MAX_SOCKETS = 5;

export interface WxShimOptions {
  /** What wx.login gives: a code for this phone's user. */
  login(): Promise<string>;
  /** Allow http:// and ws:// (DevTools with domain checks off). Default false: https/wss only. */
  dev?: boolean;
  /**
   * WeChat Pay's cashier: what the user does with wx.requestPayment's parameters — 'cancel', or
   * pay (the sandbox's /__sandbox/pay/tap, which checks paySign and answers an error when WeChat would fail).
   */
  pay?: (params: { timeStamp: string; nonceStr: string; package: string; signType: string; paySign: string }) => Promise<'ok' | 'cancel' | { fail: string }>;
}

type NetworkApi = 'request' | 'uploadFile' | 'downloadFile';

export interface WxShimStats {
  /** wx.login calls. */
  logins: number;
  /** request/uploadFile/downloadFile calls, including ones refused, queued or aborted before they were sent. */
  requested: number;
  /** Every request/upload/download that reached the network, in the order they were sent. */
  calls: { api: NetworkApi; method: string; url: string; path: string }[];
  /** Calls (of any network API) that reached the network for this path (no query). */
  count(pathname: string): number;
  /** Network tasks running now / the most ever running at once / the most ever waiting. */
  active: number;
  peak: number;
  peakQueued: number;
  /** wx.connectSocket calls (every attempt, refused ones too). */
  socketAttempts: number;
  /** The most sockets ever connecting or open at once. */
  peakSockets: number;
}

export interface ShimSocket {
  url: string;
  header: Record<string, string>;
  ws: WebSocket;
  /** Cuts the TCP connection without a close frame (a phone losing its network). */
  cut(): void;
}

export interface WxShimFiles {
  /** The directory behind wxfile:// paths. */
  dir: string;
  /** Writes bytes as a new temp file (as chooseImage gives one) and returns its wxfile:// path. */
  write(bytes: Uint8Array, ext?: string): string;
  /** The bytes of a wxfile:// path (or a path under `dir`). */
  read(filePath: string): Buffer;
  /** The real path of a wxfile:// path; throws for a path outside the shim's files. */
  resolve(filePath: string): string;
}

type Callbacks = { success?: (res: any) => void; fail?: (res: any) => void; complete?: (res: any) => void };

export type WxShim = Wx & {
  env: { USER_DATA_PATH: string };
  /** The raw storage: key → JSON text. */
  storage: Map<string, string>;
  /** Sockets connecting or open. */
  sockets: Set<ShimSocket>;
  stats: WxShimStats;
  files: WxShimFiles;
  /** What callbacks threw (WeChat logs them; a test expects none). */
  errors: unknown[];
  /** Aborts what is in flight, cuts the sockets and removes the temp files. */
  close(): void;
};

interface QueuedTask {
  start(): void;
  aborted: boolean;
}

export function createWx(options: WxShimOptions): WxShim {
  const dir = mkdtempSync(path.join(tmpdir(), 'wx-shim-'));
  // The phone's own connections, closed with it (a server being stopped does not wait for them).
  const dispatcher = new Agent();
  const storage = new Map<string, string>();
  const sockets = new Set<ShimSocket>();
  const errors: unknown[] = [];
  const inflight = new Set<AbortController>();
  const waiting: QueuedTask[] = [];
  const stats: WxShimStats = {
    logins: 0,
    requested: 0,
    calls: [],
    count: (pathname) => stats.calls.filter((call) => call.path === pathname).length,
    active: 0,
    peak: 0,
    peakQueued: 0,
    socketAttempts: 0,
    peakSockets: 0,
  };

  /** Calls a callback later, as WeChat does; what it throws is kept. */
  const call = (fn: ((res: any) => void) | undefined, res: unknown) => {
    if (!fn) return;
    try {
      fn(res);
    } catch (error) {
      errors.push(error);
    }
  };
  const finish = (cb: Callbacks, ok: boolean, res: Record<string, unknown>) => {
    setImmediate(() => {
      call(ok ? cb.success : cb.fail, res);
      call(cb.complete, res);
    });
  };

  // ---- files ----

  const files: WxShimFiles = {
    dir,
    write(bytes, ext = '') {
      const name = `tmp_${randomBytes(8).toString('hex')}${ext && !ext.startsWith('.') ? '.' : ''}${ext}`;
      writeFileSync(path.join(dir, name), bytes);
      return `wxfile://${name}`;
    },
    read: (filePath) => readFileSync(files.resolve(filePath)),
    resolve(filePath) {
      const real = filePath.startsWith('wxfile://') ? path.join(dir, filePath.slice('wxfile://'.length)) : path.resolve(filePath);
      if (real !== dir && !real.startsWith(dir + path.sep)) throw new Error(`not a mini program file path: ${filePath}`);
      return real;
    },
  };
  const TYPE_EXT: Record<string, string> = {
    'image/jpeg': '.jpg',
    'image/png': '.png',
    'image/gif': '.gif',
    'image/webp': '.webp',
    'application/json': '.json',
    'text/plain': '.txt',
    'application/pdf': '.pdf',
  };

  // ---- the rules every network call goes through ----

  /** A fail errMsg for a URL or header WeChat refuses, or null. */
  function refuse(api: string, url: string, header: Record<string, string> | undefined, secure: string, plain: string): string | null {
    if (api !== 'connectSocket') stats.requested++;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return `${api}:fail invalid url "${url}"`;
    }
    const scheme = parsed.protocol.slice(0, -1);
    if (scheme !== secure && !(options.dev && scheme === plain)) return `${api}:fail url not in domain list`;
    for (const key of Object.keys(header ?? {})) {
      if (key.toLowerCase() === 'referer') return `${api}:fail Referer is not allowed in header`;
    }
    return null;
  }

  const pump = () => {
    while (stats.active < MAX_NETWORK_TASKS && waiting.length > 0) {
      const task = waiting.shift()!;
      if (task.aborted) continue;
      task.start();
    }
    stats.peakQueued = Math.max(stats.peakQueued, waiting.filter((task) => !task.aborted).length);
  };

  /**
   * Runs `send` in the pool of 10 (queued beyond), with the timeout and abort WeChat gives every
   * task. `send` resolves with the success result or rejects with the error's text.
   */
  function networkTask(
    api: NetworkApi,
    cb: Callbacks & { url: string; method?: string; timeout?: number },
    send: (signal: AbortSignal) => Promise<Record<string, unknown>>,
  ): { abort(): void } {
    let controller: AbortController | undefined;
    let done = false;
    let why: 'abort' | 'timeout' | undefined;
    const settle = (ok: boolean, res: Record<string, unknown>) => {
      if (done) return;
      done = true;
      finish(cb, ok, res);
    };
    const queued: QueuedTask = {
      aborted: false,
      start() {
        stats.active++;
        stats.peak = Math.max(stats.peak, stats.active);
        const pathname = new URL(cb.url).pathname;
        stats.calls.push({ api, method: (cb.method ?? (api === 'uploadFile' ? 'POST' : 'GET')).toUpperCase(), url: cb.url, path: pathname });
        controller = new AbortController();
        inflight.add(controller);
        const timer = setTimeout(() => {
          why = 'timeout';
          controller!.abort();
        }, cb.timeout ?? DEFAULT_TIMEOUT_MS);
        send(controller.signal)
          .then(
            (res) => settle(true, { ...res, errMsg: `${api}:ok` }),
            (error: Error & { cause?: { code?: string; message?: string } }) =>
              settle(false, { errMsg: `${api}:fail ${why ?? error.cause?.code ?? error.cause?.message ?? error.message}` }),
          )
          .finally(() => {
            clearTimeout(timer);
            inflight.delete(controller!);
            stats.active--;
            pump();
          });
      },
    };
    waiting.push(queued);
    // Started on the next turn, as WeChat's tasks start after the call returns.
    setImmediate(pump);
    return {
      abort() {
        if (done) return;
        why = 'abort';
        if (controller) {
          controller.abort();
        } else {
          queued.aborted = true;
          settle(false, { errMsg: `${api}:fail abort` });
        }
      },
    };
  }

  const lowerKeys = (header: Record<string, unknown> | undefined) => {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(header ?? {})) if (value !== undefined && value !== null) out[key.toLowerCase()] = String(value);
    return out;
  };
  const queryString = (data: Record<string, unknown>) =>
    Object.keys(data)
      .filter((key) => data[key] !== undefined)
      .map((key) => `${encodeURIComponent(key)}=${encodeURIComponent(String(data[key]))}`)
      .join('&');
  const responseHeader = (response: Response) => {
    const header: Record<string, string> = {};
    response.headers.forEach((value, key) => {
      header[key] = value;
    });
    return header;
  };
  /** A failed call that never reaches the network (the URL or a header is refused). */
  const refused = (cb: Callbacks, errMsg: string) => {
    finish(cb, false, { errMsg });
    return { abort() {}, onProgressUpdate() {} };
  };

  // ---- wx ----

  const wx: WxShim = {
    env: { USER_DATA_PATH: 'wxfile://usr' },
    storage,
    sockets,
    stats,
    files,
    errors,

    login(cb: Callbacks = {}) {
      stats.logins++;
      options.login().then(
        (code) => finish(cb, true, { code, errMsg: 'login:ok' }),
        (error: Error) => finish(cb, false, { errMsg: `login:fail ${error.message}` }),
      );
    },

    requestPayment(cb) {
      const { timeStamp, nonceStr, package: pkg, signType, paySign } = cb;
      if (!options.pay) return finish(cb, false, { errMsg: 'requestPayment:fail not supported in this shim' });
      options.pay({ timeStamp, nonceStr, package: pkg, signType, paySign }).then(
        (choice) => {
          if (choice === 'ok') finish(cb, true, { errMsg: 'requestPayment:ok' });
          else if (choice === 'cancel') finish(cb, false, { errMsg: 'requestPayment:fail cancel' });
          else finish(cb, false, { errMsg: `requestPayment:fail ${choice.fail}` });
        },
        (error: Error) => finish(cb, false, { errMsg: `requestPayment:fail ${error.message}` }),
      );
    },

    request(cb) {
      const denied = refuse('request', cb.url, cb.header, 'https', 'http');
      if (denied) return refused(cb, denied);
      const method = (cb.method ?? 'GET').toUpperCase();
      const headers = lowerKeys(cb.header);
      headers['content-type'] ??= 'application/json';
      let url = cb.url;
      let body: string | Uint8Array | undefined;
      const data = cb.data;
      if (data !== undefined && data !== null) {
        if (method === 'GET' || method === 'HEAD') {
          const query = typeof data === 'object' && !(data instanceof ArrayBuffer) ? queryString(data as Record<string, unknown>) : String(data);
          if (query) url += (url.includes('?') ? '&' : '?') + query;
        } else if (data instanceof ArrayBuffer) {
          body = new Uint8Array(data);
        } else if (typeof data === 'object') {
          body = headers['content-type'].startsWith('application/x-www-form-urlencoded') ? queryString(data as Record<string, unknown>) : JSON.stringify(data);
        } else {
          body = String(data);
        }
      }
      return networkTask('request', { ...cb, url, method }, async (signal) => {
        const response = await fetch(url, { method, headers, body, signal, dispatcher });
        const bytes = new Uint8Array(await response.arrayBuffer());
        let payload: unknown;
        if (cb.responseType === 'arraybuffer') {
          payload = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
        } else {
          const text = new TextDecoder('utf-8').decode(bytes); // strips one BOM, as WeChat does
          payload = text;
          if ((cb.dataType ?? 'json') === 'json') {
            try {
              payload = JSON.parse(text);
            } catch {
              // not JSON: WeChat hands over the text
            }
          }
        }
        return { data: payload, statusCode: response.status, header: responseHeader(response), cookies: response.headers.getSetCookie() };
      });
    },

    uploadFile(cb) {
      const denied = refuse('uploadFile', cb.url, cb.header, 'https', 'http');
      if (denied) return refused(cb, denied);
      let real: string;
      try {
        real = files.resolve(cb.filePath);
        if (!existsSync(real) || !statSync(real).isFile()) throw new Error('missing');
      } catch {
        return refused(cb, `uploadFile:fail file not found: ${cb.filePath}`);
      }
      const progress: ((res: { progress: number; totalBytesSent: number; totalBytesExpectedToSend: number }) => void)[] = [];
      // WeChat sets the multipart content-type itself.
      const { 'content-type': _ignored, ...headers } = lowerKeys(cb.header);
      const task = networkTask('uploadFile', { ...cb, method: 'POST' }, async (signal) => {
        const bytes = readFileSync(real);
        const form = new FormData();
        for (const [key, value] of Object.entries(cb.formData ?? {})) form.append(key, String(value));
        form.append(cb.name, new Blob([bytes]), path.basename(real));
        const response = await fetch(cb.url, { method: 'POST', headers, body: form, signal, dispatcher });
        const text = await response.text();
        for (const listener of progress) call(listener, { progress: 100, totalBytesSent: bytes.length, totalBytesExpectedToSend: bytes.length });
        return { data: text, statusCode: response.status, header: responseHeader(response) };
      });
      return { abort: task.abort, onProgressUpdate: (listener: (typeof progress)[number]) => void progress.push(listener) };
    },

    downloadFile(cb) {
      const denied = refuse('downloadFile', cb.url, cb.header, 'https', 'http');
      if (denied) return refused(cb, denied);
      const progress: ((res: { progress: number; totalBytesWritten: number; totalBytesExpectedToWrite: number }) => void)[] = [];
      const task = networkTask('downloadFile', { ...cb, method: 'GET' }, async (signal) => {
        const response = await fetch(cb.url, { headers: lowerKeys(cb.header), signal, dispatcher });
        const bytes = Buffer.from(await response.arrayBuffer());
        for (const listener of progress) call(listener, { progress: 100, totalBytesWritten: bytes.length, totalBytesExpectedToWrite: bytes.length });
        if (cb.filePath) {
          const real = files.resolve(cb.filePath);
          mkdirSync(path.dirname(real), { recursive: true });
          writeFileSync(real, bytes);
          return { filePath: cb.filePath, statusCode: response.status };
        }
        const type = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
        return { tempFilePath: files.write(bytes, TYPE_EXT[type] ?? ''), statusCode: response.status };
      });
      return { abort: task.abort, onProgressUpdate: (listener: (typeof progress)[number]) => void progress.push(listener) };
    },

    connectSocket(cb) {
      stats.socketAttempts++;
      const listeners = { open: [] as ((res: any) => void)[], message: [] as ((res: any) => void)[], close: [] as ((res: any) => void)[], error: [] as ((res: any) => void)[] };
      const emit = (type: keyof typeof listeners, res: unknown) => {
        for (const fn of listeners[type].slice()) call(fn, res);
      };
      const on = {
        onOpen: (fn: (res: any) => void) => void listeners.open.push(fn),
        onMessage: (fn: (res: any) => void) => void listeners.message.push(fn),
        onClose: (fn: (res: any) => void) => void listeners.close.push(fn),
        onError: (fn: (res: any) => void) => void listeners.error.push(fn),
      };
      const notConnected = (name: string) => (o: Callbacks = {}) => finish(o, false, { errMsg: `${name}:fail WebSocket is not connected` });
      const denied =
        refuse('connectSocket', cb.url, cb.header, 'wss', 'ws') ?? (sockets.size >= MAX_SOCKETS ? `connectSocket:fail exceed max task count ${MAX_SOCKETS}` : null);
      if (denied) {
        // The task never connects: fail, and onError on the task.
        finish(cb, false, { errMsg: denied });
        setImmediate(() => emit('error', { errMsg: denied }));
        return { ...on, send: notConnected('sendSocketMessage'), close: notConnected('closeSocket') } satisfies WxSocketTask;
      }

      const ws = new WebSocket(cb.url, cb.protocols ?? [], {
        headers: lowerKeys(cb.header),
        perMessageDeflate: false,
        handshakeTimeout: cb.timeout ?? DEFAULT_TIMEOUT_MS,
      });
      let opened = false;
      const entry: ShimSocket = { url: cb.url, header: { ...cb.header }, ws, cut: () => ws.terminate() };
      sockets.add(entry);
      stats.peakSockets = Math.max(stats.peakSockets, sockets.size);
      ws.on('open', () => {
        opened = true;
        emit('open', { header: {}, errMsg: 'connectSocket:ok' });
      });
      ws.on('message', (data, isBinary) => {
        const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
        emit('message', { data: isBinary ? buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.length) : buffer.toString('utf8') });
      });
      // Before the open WeChat says nothing more precise (no HTTP status of a refused upgrade).
      ws.on('error', (error) => emit('error', { errMsg: opened ? error.message : 'connectSocket:fail connection failed' }));
      ws.on('close', (code, reason) => {
        sockets.delete(entry);
        emit('close', { code, reason: reason.toString('utf8') });
      });
      finish(cb, true, { errMsg: 'connectSocket:ok' });
      return {
        ...on,
        send(o) {
          if (ws.readyState !== WebSocket.OPEN) return notConnected('sendSocketMessage')(o);
          const data = o.data as string | ArrayBuffer;
          ws.send(typeof data === 'string' ? data : Buffer.from(data), (error) =>
            finish(o, !error, { errMsg: error ? `sendSocketMessage:fail ${error.message}` : 'sendSocketMessage:ok' }),
          );
        },
        close(o = {}) {
          const code = o.code ?? 1000;
          if (code !== 1000 && (code < 3000 || code > 4999)) {
            return finish(o, false, { errMsg: 'closeSocket:fail The code must be either 1000, or between 3000 and 4999' });
          }
          if (ws.readyState === WebSocket.CLOSING || ws.readyState === WebSocket.CLOSED) return notConnected('closeSocket')(o);
          if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
          else ws.close(code, o.reason);
          finish(o, true, { errMsg: 'closeSocket:ok' });
        },
      } satisfies WxSocketTask;
    },

    setStorageSync(key, value) {
      // JSON, as WeChat keeps it: what comes back is a copy.
      storage.set(key, JSON.stringify(value === undefined ? null : value));
    },
    getStorageSync(key) {
      const text = storage.get(key);
      return text === undefined ? '' : JSON.parse(text);
    },
    removeStorageSync(key) {
      storage.delete(key);
    },

    getFileSystemManager() {
      return {
        readFileSync(filePath: string, encoding?: string) {
          let bytes: Buffer;
          try {
            bytes = files.read(filePath);
          } catch {
            throw new Error(`readFileSync:fail no such file or directory, open "${filePath}"`);
          }
          if (!encoding || encoding === 'binary-arraybuffer') return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
          return bytes.toString((encoding === 'utf-8' ? 'utf8' : encoding) as BufferEncoding);
        },
      };
    },

    close() {
      for (const task of waiting.splice(0)) task.aborted = true;
      for (const controller of inflight) controller.abort();
      for (const socket of sockets) socket.ws.terminate();
      void dispatcher.destroy().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return wx;
}
