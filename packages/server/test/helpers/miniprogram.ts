/**
 * A mini program "phone" for tests: runs a mini program's own JS (app.js, pages, utils) in a
 * `vm` context with the globals WeChat gives it — `wx`, `App`, `Page`, `getApp`,
 * `getCurrentPages` and CommonJS `require` — so each phone has its own modules, storage and
 * sockets. The `wx` here is a small shim of the APIs the examples use:
 *
 * - `wx.login` asks the test for a code (from the sandbox);
 * - `wx.request` over fetch: `success` for any HTTP status, `fail` only when there is no answer;
 * - `wx.setStorageSync` / `getStorageSync` (`''` when missing) / `removeStorageSync`;
 * - `wx.connectSocket` returns a SocketTask (onOpen/onMessage/onClose/onError/send/close) over `ws`;
 *   a refused upgrade shows as onError then onClose(1006), with no HTTP status, as in WeChat;
 * - `wx.showToast` is recorded.
 *
 * A page is an object made from the options given to Page(), with `data` and a `setData` that
 * merges plain keys (paths such as `a.b` are refused: the shim does not implement them).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import WebSocket from 'ws';

type Callbacks = { success?: (res: any) => void; fail?: (res: any) => void; complete?: (res: any) => void };

export interface PhoneOptions {
  /** The mini program's root (where app.js is). */
  root: string;
  /** What wx.login gives: a code for this phone's user. */
  login(): Promise<string>;
  /** Runs after app.js registered the app and before onLaunch (to point globalData at the test's servers). */
  beforeLaunch?(app: any): void;
}

export interface Phone {
  /** The object given to App(). */
  app: any;
  storage: Map<string, unknown>;
  /** Every wx.showToast call. */
  toasts: any[];
  /** Errors thrown by the mini program's callbacks (a test expects none). */
  errors: unknown[];
  /** Opens a page by route (onLoad, onShow, onReady) and returns it. */
  open(route: string, query?: Record<string, string>): any;
  /** Closes a page as navigating back does (onUnload). */
  unload(page: any): void;
  /** Sockets this phone opened that are not closed yet. */
  openSockets(): number;
  /** The network goes silent: the open sockets read nothing more (no close, no error). */
  silence(): void;
  /** Unloads the pages still open, then cuts sockets and clears timers left behind. */
  close(): void;
}

export function startPhone(options: PhoneOptions): Phone {
  const storage = new Map<string, unknown>();
  const toasts: any[] = [];
  const errors: unknown[] = [];
  const sockets = new Set<WebSocket>();
  const timeouts = new Set<NodeJS.Timeout>();
  const intervals = new Set<NodeJS.Timeout>();
  const pageOptions = new Map<string, any>();
  const stack: any[] = [];
  let app: any;
  let registering: string | undefined;

  /** Calls a mini program callback; what it throws is kept, as WeChat would log it. */
  const call = (fn: ((res: any) => void) | undefined, res: any) => {
    if (!fn) return;
    try {
      fn(res);
    } catch (error) {
      errors.push(error);
    }
  };
  const finish = (cb: Callbacks, ok: boolean, res: any) => {
    call(ok ? cb.success : cb.fail, res);
    call(cb.complete, res);
  };

  const wx = {
    login(cb: Callbacks = {}) {
      options.login().then(
        (code) => finish(cb, true, { code, errMsg: 'login:ok' }),
        (error: Error) => finish(cb, false, { errMsg: `login:fail ${error.message}` }),
      );
    },

    request(cb: Callbacks & { url: string; method?: string; data?: unknown; header?: Record<string, string>; dataType?: string }) {
      const method = (cb.method ?? 'GET').toUpperCase();
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(cb.header ?? {})) headers[k.toLowerCase()] = String(v);
      let url = cb.url;
      let body: string | undefined;
      if (cb.data !== undefined && cb.data !== null) {
        if (method === 'GET') {
          const query = new URLSearchParams(cb.data as Record<string, string>).toString();
          if (query) url += (url.includes('?') ? '&' : '?') + query;
        } else if (typeof cb.data === 'string') {
          body = cb.data;
        } else {
          body = JSON.stringify(cb.data);
          headers['content-type'] ??= 'application/json';
        }
      }
      const abort = new AbortController();
      fetch(url, { method, headers, body, signal: AbortSignal.any([abort.signal, AbortSignal.timeout(10_000)]) })
        .then(async (response) => {
          const text = await response.text();
          let data: unknown = text;
          if (cb.dataType !== 'text') {
            try {
              data = JSON.parse(text);
            } catch {
              // WeChat hands over the text when it is not JSON
            }
          }
          finish(cb, true, { statusCode: response.status, data, header: Object.fromEntries(response.headers), errMsg: 'request:ok' });
        })
        .catch((error: Error) => finish(cb, false, { errMsg: `request:fail ${error.message}` }));
      return { abort: () => abort.abort() };
    },

    setStorageSync(key: string, value: unknown) {
      // Stored as JSON, as WeChat does (no shared references).
      storage.set(key, JSON.stringify(value));
    },
    getStorageSync(key: string) {
      const text = storage.get(key);
      return typeof text === 'string' ? JSON.parse(text) : '';
    },
    removeStorageSync(key: string) {
      storage.delete(key);
    },

    connectSocket(cb: Callbacks & { url: string; header?: Record<string, string>; protocols?: string[] }) {
      const ws = new WebSocket(cb.url, cb.protocols ?? [], { headers: cb.header ?? {}, perMessageDeflate: false, handshakeTimeout: 10_000 });
      sockets.add(ws);
      const on = { open: [] as any[], message: [] as any[], close: [] as any[], error: [] as any[] };
      ws.on('open', () => on.open.forEach((fn) => call(fn, { header: {}, errMsg: 'connectSocket:ok' })));
      ws.on('message', (data, isBinary) => {
        const payload = isBinary ? new Uint8Array(data as Buffer).buffer : data.toString();
        on.message.forEach((fn) => call(fn, { data: payload }));
      });
      ws.on('error', (error) => on.error.forEach((fn) => call(fn, { errMsg: error.message })));
      ws.on('close', (code, reason) => {
        sockets.delete(ws);
        on.close.forEach((fn) => call(fn, { code, reason: reason.toString() }));
      });
      setImmediate(() => finish(cb, true, { errMsg: 'connectSocket:ok' }));
      return {
        onOpen: (fn: any) => on.open.push(fn),
        onMessage: (fn: any) => on.message.push(fn),
        onClose: (fn: any) => on.close.push(fn),
        onError: (fn: any) => on.error.push(fn),
        send(options: Callbacks & { data: string | ArrayBuffer }) {
          if (ws.readyState !== WebSocket.OPEN) {
            setImmediate(() => finish(options, false, { errMsg: 'sendSocketMessage:fail WebSocket is not connected' }));
            return;
          }
          ws.send(options.data, (error) =>
            finish(options, !error, { errMsg: error ? `sendSocketMessage:fail ${error.message}` : 'sendSocketMessage:ok' }),
          );
        },
        close(options: Callbacks & { code?: number; reason?: string } = {}) {
          if (ws.readyState === WebSocket.CLOSED || ws.readyState === WebSocket.CLOSING) {
            setImmediate(() => finish(options, false, { errMsg: 'closeSocket:fail WebSocket is not connected' }));
            return;
          }
          ws.close(options.code ?? 1000, options.reason);
          setImmediate(() => finish(options, true, { errMsg: 'closeSocket:ok' }));
        },
      };
    },

    showToast(cb: Callbacks & { title: string }) {
      toasts.push(cb);
      setImmediate(() => finish(cb, true, { errMsg: 'showToast:ok' }));
    },
  };

  function makePage(route: string, query: Record<string, string>): any {
    const definition = pageOptions.get(route);
    if (!definition) throw new Error(`${route}.js did not call Page()`);
    const page: any = { ...definition, route, options: query, data: structuredClone(definition.data ?? {}) };
    page.setData = (patch: Record<string, unknown>, done?: () => void) => {
      for (const key of Object.keys(patch)) {
        if (/[.[]/.test(key)) throw new Error(`setData path keys ("${key}") are not in the shim`);
        page.data[key] = patch[key];
      }
      if (done) setImmediate(() => call(done, undefined));
    };
    return page;
  }

  const context = vm.createContext({
    wx,
    console,
    App: (definition: any) => {
      app = definition;
    },
    Page: (definition: any) => {
      if (!registering) throw new Error('Page() called outside a page file');
      pageOptions.set(registering, definition);
    },
    getApp: () => app,
    getCurrentPages: () => [...stack],
    setTimeout: (fn: () => void, ms?: number) => {
      const t = setTimeout(() => {
        timeouts.delete(t);
        call(fn, undefined);
      }, ms);
      timeouts.add(t);
      return t;
    },
    clearTimeout: (t: NodeJS.Timeout | undefined) => {
      if (t) timeouts.delete(t);
      clearTimeout(t);
    },
    setInterval: (fn: () => void, ms?: number) => {
      const t = setInterval(() => call(fn, undefined), ms);
      intervals.add(t);
      return t;
    },
    clearInterval: (t: NodeJS.Timeout | undefined) => {
      if (t) intervals.delete(t);
      clearInterval(t);
    },
  });

  // CommonJS as mini programs have it: paths relative to the file, or absolute from the root.
  const modules = new Map<string, { exports: any }>();
  const load = (file: string): any => {
    const cached = modules.get(file);
    if (cached) return cached.exports;
    const module = { exports: {} as any };
    modules.set(file, module);
    const source = readFileSync(file, 'utf8');
    const wrapper = vm.runInContext(`(function (module, exports, require) {${source}\n})`, context, { filename: file });
    const requireFrom = (request: string) => {
      // A package name resolves in miniprogram_npm (what DevTools' 构建 npm makes), as in WeChat.
      if (!request.startsWith('.') && !request.startsWith('/')) return load(path.join(options.root, 'miniprogram_npm', request, 'index.js'));
      const base = request.startsWith('/') ? path.join(options.root, request) : path.resolve(path.dirname(file), request);
      return load(base.endsWith('.js') ? base : `${base}.js`);
    };
    wrapper.call(undefined, module, module.exports, requireFrom);
    return module.exports;
  };

  load(path.join(options.root, 'app.js'));
  if (!app) throw new Error('app.js did not call App()');
  options.beforeLaunch?.(app);
  app.onLaunch?.({ path: '', query: {}, scene: 1001 });
  app.onShow?.({ path: '', query: {}, scene: 1001 });

  const unload = (page: any) => {
    const at = stack.indexOf(page);
    if (at === -1) return;
    stack.splice(at, 1);
    page.onUnload?.();
  };

  return {
    app,
    storage,
    toasts,
    errors,
    open(route, query = {}) {
      if (!pageOptions.has(route)) {
        registering = route;
        try {
          load(path.join(options.root, `${route}.js`));
        } finally {
          registering = undefined;
        }
      }
      const page = makePage(route, query);
      stack.push(page);
      page.onLoad?.(query);
      page.onShow?.();
      page.onReady?.();
      return page;
    },
    unload,
    openSockets: () => sockets.size,
    silence() {
      for (const ws of sockets) ws.pause();
    },
    close() {
      for (const page of [...stack].reverse()) unload(page);
      for (const ws of sockets) ws.terminate();
      for (const t of timeouts) clearTimeout(t);
      for (const t of intervals) clearInterval(t);
    },
  };
}
