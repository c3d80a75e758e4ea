/**
 * The part of the mini program `wx` API that minigate-client and the playground use, done with
 * what a browser has: fetch and XMLHttpRequest for wx.request / uploadFile / downloadFile, a
 * WebSocket for wx.connectSocket, sessionStorage for wx.*StorageSync (so two tabs are two users),
 * an <input type=file> for wx.chooseImage / chooseMedia, and the sandbox for wx.login's code.
 *
 * It keeps WeChat's conventions: success for any HTTP status, `errMsg` of "api:ok" / "api:fail …",
 * uploadFile's data as text, temporary file paths, a SocketTask per connection.
 *
 * Every call is reported to `logger` (the network panel): http() for requests, socket() for
 * WebSockets. Both are optional.
 */

const DEFAULT_TIMEOUT = 60_000;

/**
 * @param {{ appid: string, sandbox?: string, storage?: Storage, logger?: Logger }} options
 * @typedef {{ http?(entry: object): { done(result: object): void, fail(errMsg: string): void }, socket?(entry: object): SocketLog }} Logger
 * @typedef {{ open(protocol: string): void, frame(dir: 'in' | 'out', text: string): void, close(code: number, reason: string): void, error(message: string): void }} SocketLog
 */
export function createBrowserWx({ appid, sandbox = '/__sandbox', storage = window.sessionStorage, logger = {} }) {
  /** Temporary files (chosen or downloaded) by their wx path. */
  const files = new Map();
  /** The text of downloads that were not 200, for getFileSystemManager().readFileSync (it is synchronous). */
  const texts = new Map();
  let nextFile = 0;

  const noop = { done() {}, fail() {} };
  const logHttp = (entry) => (logger.http ? logger.http(entry) : noop);

  function ok(options, api, result) {
    const res = { errMsg: `${api}:ok`, ...result };
    options.success?.(res);
    options.complete?.(res);
  }

  function fail(options, api, message) {
    const err = { errMsg: `${api}:fail ${message}` };
    options.fail?.(err);
    options.complete?.(err);
  }

  function register(blob, extension) {
    const path = `wxfile://tmp_${++nextFile}${extension}`;
    files.set(path, blob);
    return path;
  }

  const extensionOf = (name) => (/\.[A-Za-z0-9]{1,5}$/.exec(name ?? '') ?? [''])[0].toLowerCase();

  /** Response headers as WeChat gives them: an object. */
  const headersOf = (headers) => Object.fromEntries(headers.entries());

  const xhrHeaders = (xhr) =>
    Object.fromEntries(
      xhr
        .getAllResponseHeaders()
        .trim()
        .split(/\r?\n/)
        .filter(Boolean)
        .map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
    );

  /** XMLHttpRequest (for progress events) with WeChat's timeout and abort errors. */
  function sendXhr({ api, method, url, header, body, timeout, responseType, onProgress, entry, onLoad, options }) {
    const xhr = new XMLHttpRequest();
    const started = performance.now();
    const listeners = [];
    let ended = false;
    xhr.open(method, url);
    if (responseType) xhr.responseType = responseType;
    xhr.timeout = timeout ?? DEFAULT_TIMEOUT;
    for (const [name, value] of Object.entries(header ?? {})) xhr.setRequestHeader(name, value);
    const progressTarget = api === 'uploadFile' ? xhr.upload : xhr;
    progressTarget.onprogress = (event) => {
      const progress = event.lengthComputable ? Math.round((event.loaded / event.total) * 100) : 0;
      for (const listener of listeners) listener(onProgress(event, progress));
    };
    const end = (message) => {
      if (ended) return;
      ended = true;
      entry.fail(`${api}:fail ${message}`);
      fail(options, api, message);
    };
    xhr.onload = () => {
      if (ended) return;
      ended = true;
      onLoad(xhr, performance.now() - started);
    };
    xhr.onerror = () => end('network error');
    xhr.ontimeout = () => end('timeout');
    xhr.onabort = () => end('abort');
    xhr.send(body);
    return {
      abort: () => xhr.abort(),
      onProgressUpdate: (listener) => listeners.push(listener),
      offProgressUpdate: (listener) => listeners.splice(listeners.indexOf(listener) >>> 0, 1),
    };
  }

  const wx = {
    /** A code for the dev app, from the sandbox (WeChat's server in a real mini program). */
    login(options = {}) {
      const started = performance.now();
      // The same WeChat user on this "phone" (tab) every time, as on a real one.
      const openid = storage.getItem('wx.sandbox.openid');
      const body = JSON.stringify({ appid, ...(openid ? { openid } : {}) });
      const entry = logHttp({ api: 'wx.login', method: 'POST', url: `${sandbox}/login`, header: {}, body, note: 'WeChat (the sandbox) gives a code' });
      fetch(`${sandbox}/login`, { method: 'POST', body, referrerPolicy: 'no-referrer' })
        .then(async (res) => {
          const data = await res.json();
          entry.done({ status: res.status, ms: performance.now() - started, header: headersOf(res.headers), body: data });
          if (!res.ok || typeof data.code !== 'string') return fail(options, 'login', data.error?.message ?? `sandbox answered ${res.status}`);
          storage.setItem('wx.sandbox.openid', data.openid);
          ok(options, 'login', { code: data.code });
        })
        .catch((error) => {
          entry.fail(`login:fail ${error.message}`);
          fail(options, 'login', error.message);
        });
    },

    request(options) {
      const api = 'request';
      const method = (options.method ?? 'GET').toUpperCase();
      const header = { ...options.header };
      const contentType = Object.entries(header).find(([k]) => k.toLowerCase() === 'content-type')?.[1];
      let url = options.url;
      let body;
      const data = options.data;
      if (data !== undefined && data !== null) {
        if (method === 'GET' || method === 'HEAD') {
          // GET data becomes the query string, as in WeChat.
          if (typeof data === 'object') {
            const query = new URLSearchParams(Object.entries(data).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]));
            if (query.toString()) url += (url.includes('?') ? '&' : '?') + query;
          }
        } else if (typeof data === 'string' || data instanceof ArrayBuffer) {
          body = data;
        } else if (contentType && /x-www-form-urlencoded/i.test(contentType)) {
          body = new URLSearchParams(data).toString();
        } else {
          body = JSON.stringify(data);
          if (!contentType) header['content-type'] = 'application/json';
        }
      }
      const controller = new AbortController();
      let why = 'abort';
      const timer = setTimeout(() => {
        why = 'timeout';
        controller.abort();
      }, options.timeout ?? DEFAULT_TIMEOUT);
      const started = performance.now();
      const entry = logHttp({ api, method, url, header, body });
      fetch(url, { method, headers: header, body, signal: controller.signal, referrerPolicy: 'no-referrer' })
        .then(async (res) => {
          let data;
          if (options.responseType === 'arraybuffer') data = await res.arrayBuffer();
          else {
            const text = await res.text();
            data = text;
            if ((options.dataType ?? 'json') === 'json') {
              try {
                data = JSON.parse(text);
              } catch {
                // not JSON: WeChat gives the text
              }
            }
          }
          clearTimeout(timer);
          const result = { data, statusCode: res.status, header: headersOf(res.headers) };
          entry.done({ status: res.status, ms: performance.now() - started, header: result.header, body: data });
          ok(options, api, result);
        })
        .catch((error) => {
          clearTimeout(timer);
          const message = controller.signal.aborted ? why : error.message;
          entry.fail(`request:fail ${message}`);
          fail(options, api, message);
        });
      return { abort: () => controller.abort() };
    },

    uploadFile(options) {
      const api = 'uploadFile';
      const file = files.get(options.filePath);
      const entry = logHttp({ api, method: 'POST', url: options.url, header: options.header, body: file ? `(multipart: ${options.name} = ${file.name ?? options.filePath}, ${file.size} bytes)` : '' });
      if (!file) {
        entry.fail('uploadFile:fail file not found');
        fail(options, api, `file not found: ${options.filePath}`);
        return { abort() {}, onProgressUpdate() {}, offProgressUpdate() {} };
      }
      const form = new FormData();
      for (const [name, value] of Object.entries(options.formData ?? {})) form.append(name, value);
      form.append(options.name, file, file.name ?? options.filePath.replace(/^wxfile:\/\//, ''));
      return sendXhr({
        api,
        method: 'POST',
        url: options.url,
        header: options.header,
        body: form,
        timeout: options.timeout,
        entry,
        options,
        onProgress: (event, progress) => ({ progress, totalBytesSent: event.loaded, totalBytesExpectedToSend: event.total }),
        onLoad: (xhr, ms) => {
          let shown = xhr.responseText;
          try {
            shown = JSON.parse(shown);
          } catch {
            // text
          }
          entry.done({ status: xhr.status, ms, header: xhrHeaders(xhr), body: shown });
          // uploadFile's data is the body as text, whatever the status.
          ok(options, api, { data: xhr.responseText, statusCode: xhr.status });
        },
      });
    },

    downloadFile(options) {
      const api = 'downloadFile';
      const entry = logHttp({ api, method: 'GET', url: options.url, header: options.header });
      return sendXhr({
        api,
        method: 'GET',
        url: options.url,
        header: options.header,
        timeout: options.timeout,
        responseType: 'blob',
        entry,
        options,
        onProgress: (event, progress) => ({ progress, totalBytesWritten: event.loaded, totalBytesExpectedToWrite: event.total }),
        onLoad: async (xhr, ms) => {
          const blob = xhr.response;
          // Saved whatever the status (WeChat's rule); the temporary path works as an <img> src.
          const tempFilePath = URL.createObjectURL(blob);
          files.set(tempFilePath, blob);
          let shown = `(${blob.size} bytes, ${blob.type || 'no type'}) → ${tempFilePath}`;
          if (xhr.status !== 200) {
            const text = await blob.text();
            texts.set(tempFilePath, text);
            shown = text;
          }
          entry.done({ status: xhr.status, ms, header: xhrHeaders(xhr), body: shown });
          ok(options, api, { tempFilePath, statusCode: xhr.status });
        },
      });
    },

    connectSocket(options) {
      const url = options.url;
      const header = options.header ?? {};
      const authorization = Object.entries(header).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
      const bearer = /^Bearer (\S+)$/.exec(authorization ?? '');
      // A browser cannot set headers on a WebSocket: the token goes as a subprotocol (docs/channels.md).
      const protocols = bearer ? ['minigate', `minigate.token.${bearer[1]}`] : (options.protocols ?? []);
      const log = logger.socket?.({ url, header, protocols }) ?? { open() {}, frame() {}, close() {}, error() {} };
      const listeners = { open: [], message: [], close: [], error: [] };
      const fire = (type, payload) => listeners[type].forEach((listener) => listener(payload));
      let socket;
      try {
        socket = new WebSocket(url, protocols);
      } catch (error) {
        log.error(error.message);
        fail(options, 'connectSocket', error.message);
        return { send() {}, close() {}, onOpen() {}, onMessage() {}, onClose() {}, onError() {} };
      }
      socket.onopen = () => {
        log.open(socket.protocol);
        fire('open', { header: {}, protocol: socket.protocol });
      };
      socket.onmessage = (event) => {
        log.frame('in', typeof event.data === 'string' ? event.data : '(binary)');
        fire('message', { data: event.data });
      };
      // A refused upgrade: error, then close with 1006 (the status is not shown, as in WeChat).
      socket.onerror = () => {
        log.error('the connection failed');
        fire('error', { errMsg: 'connectSocket:fail' });
      };
      socket.onclose = (event) => {
        log.close(event.code, event.reason);
        fire('close', { code: event.code, reason: event.reason });
      };
      ok(options, 'connectSocket', {});
      return {
        send(sendOptions) {
          if (socket.readyState !== WebSocket.OPEN) return fail(sendOptions, 'SocketTask.send', 'the socket is not open');
          log.frame('out', typeof sendOptions.data === 'string' ? sendOptions.data : '(binary)');
          socket.send(sendOptions.data);
          ok(sendOptions, 'SocketTask.send', {});
        },
        close(closeOptions = {}) {
          // Browsers allow only 1000 and 3000–4999 from a page.
          const code = closeOptions.code === 1000 || (closeOptions.code >= 3000 && closeOptions.code <= 4999) ? closeOptions.code : 1000;
          socket.close(code, closeOptions.reason);
          ok(closeOptions, 'SocketTask.close', {});
        },
        onOpen: (listener) => listeners.open.push(listener),
        onMessage: (listener) => listeners.message.push(listener),
        onClose: (listener) => listeners.close.push(listener),
        onError: (listener) => listeners.error.push(listener),
      };
    },

    chooseImage(options = {}) {
      pickFiles('chooseImage', options, 'image/*', (chosen) => ({
        tempFilePaths: chosen.map((c) => c.path),
        tempFiles: chosen.map((c) => ({ path: c.path, size: c.file.size })),
      }));
    },

    chooseMedia(options = {}) {
      const types = options.mediaType ?? ['image', 'video'];
      pickFiles('chooseMedia', options, types.map((t) => `${t}/*`).join(','), (chosen) => ({
        type: types.length === 1 ? types[0] : 'mix',
        tempFiles: chosen.map((c) => ({ tempFilePath: c.path, size: c.file.size, fileType: c.file.type.startsWith('video/') ? 'video' : 'image' })),
      }));
    },

    /**
     * WeChat Pay's cashier: the browser asks (confirm) as the cashier would; 支付 is the sandbox's
     * /__sandbox/pay/tap, which checks paySign as WeChat's client does and sends the notification.
     */
    requestPayment(options) {
      const { timeStamp, nonceStr, signType, paySign } = options;
      if (!globalThis.confirm(`微信支付（沙箱）\n${options.package}\n确认支付？`)) return fail(options, 'requestPayment', 'cancel');
      const started = performance.now();
      const body = JSON.stringify({ appId: appid, timeStamp, nonceStr, package: options.package, signType, paySign });
      const entry = logHttp({ api: 'wx.requestPayment', method: 'POST', url: `${sandbox}/pay/tap`, header: {}, body, note: 'the user taps 支付 (the sandbox pays and notifies minigate)' });
      fetch(`${sandbox}/pay/tap`, { method: 'POST', body, referrerPolicy: 'no-referrer' })
        .then(async (res) => {
          const data = await res.json();
          entry.done({ status: res.status, ms: performance.now() - started, header: headersOf(res.headers), body: data });
          if (!res.ok) return fail(options, 'requestPayment', data.error?.message ?? `sandbox answered ${res.status}`);
          ok(options, 'requestPayment', {});
        })
        .catch((error) => {
          entry.fail(`requestPayment:fail ${error.message}`);
          fail(options, 'requestPayment', error.message);
        });
    },

    getStorageSync(key) {
      const text = storage.getItem(`wx.${key}`);
      if (text === null) return ''; // WeChat's "nothing stored"
      try {
        return JSON.parse(text);
      } catch {
        return '';
      }
    },
    setStorageSync(key, value) {
      storage.setItem(`wx.${key}`, JSON.stringify(value));
    },
    removeStorageSync(key) {
      storage.removeItem(`wx.${key}`);
    },

    getFileSystemManager() {
      return {
        readFileSync(path, encoding) {
          if (!texts.has(path)) throw new Error(`readFileSync:fail no such file or directory, open ${path}`);
          const text = texts.get(path);
          return encoding ? text : new TextEncoder().encode(text).buffer;
        },
      };
    },
  };

  /** The picker: an <input type=file> opened from the tap that called it. */
  function pickFiles(api, options, accept, result) {
    const input = document.createElement('input');
    input.type = 'file';
    input.accept = accept;
    input.multiple = (options.count ?? 9) > 1;
    input.hidden = true;
    input.className = 'wx-file-input';
    document.body.append(input);
    input.addEventListener('change', () => {
      const chosen = Array.from(input.files ?? [])
        .slice(0, options.count ?? 9)
        .map((file) => ({ file, path: register(file, extensionOf(file.name)) }));
      input.remove();
      if (chosen.length === 0) return fail(options, api, 'cancel');
      ok(options, api, result(chosen));
    });
    input.addEventListener('cancel', () => {
      input.remove();
      fail(options, api, 'cancel');
    });
    input.click();
  }

  return wx;
}
