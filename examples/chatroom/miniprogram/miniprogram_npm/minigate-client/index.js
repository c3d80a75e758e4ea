"use strict";
var __defProp = Object.defineProperty;
var __defProps = Object.defineProperties;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropDescs = Object.getOwnPropertyDescriptors;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __getOwnPropSymbols = Object.getOwnPropertySymbols;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __propIsEnum = Object.prototype.propertyIsEnumerable;
var __defNormalProp = (obj, key, value) => key in obj ? __defProp(obj, key, { enumerable: true, configurable: true, writable: true, value }) : obj[key] = value;
var __spreadValues = (a, b) => {
  for (var prop in b || (b = {}))
    if (__hasOwnProp.call(b, prop))
      __defNormalProp(a, prop, b[prop]);
  if (__getOwnPropSymbols)
    for (var prop of __getOwnPropSymbols(b)) {
      if (__propIsEnum.call(b, prop))
        __defNormalProp(a, prop, b[prop]);
    }
  return a;
};
var __spreadProps = (a, b) => __defProps(a, __getOwnPropDescs(b));
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);

// packages/client/src/index.ts
var index_exports = {};
__export(index_exports, {
  MinigateError: () => MinigateError,
  createChannel: () => createChannel,
  createClient: () => createClient
});
module.exports = __toCommonJS(index_exports);

// packages/protocol/src/errors.ts
var SESSION_ERRORS = ["SESSION_MISSING", "SESSION_INVALID", "SESSION_EXPIRED", "SESSION_REVOKED"];
function httpStatusErrorCode(status) {
  return `HTTP_${status}`;
}

// packages/protocol/src/channel.ts
var CHANNEL_CLOSE = {
  /** The client said goodbye, or the server is done with it. */
  NORMAL: 1e3,
  /** The server is shutting down (SIGTERM); reconnect, to another instance. */
  GOING_AWAY: 1001,
  /** A binary frame: this protocol is text (JSON) only. */
  UNSUPPORTED_DATA: 1003,
  /** A frame over channel.maxFrameBytes. */
  TOO_BIG: 1009,
  /** The session ended (revoked, logged out, expired): log in again before reconnecting. */
  SESSION_ENDED: 4001,
  /** The client did not read, and its outbound queue passed channel.maxQueueBytes. */
  SLOW: 4008,
  /** The client kept sending far over channel.messagesPerSecond. */
  FLOOD: 4029
};
var ROOM_NAME = /^[A-Za-z0-9_\-:.@]{1,200}$/;

// packages/client/src/errors.ts
var MinigateError = class _MinigateError extends Error {
  constructor(code, message, statusCode = 0, requestId) {
    super(message);
    this.name = "MinigateError";
    this.code = code;
    this.statusCode = statusCode;
    this.requestId = requestId;
    Object.setPrototypeOf(this, _MinigateError.prototype);
  }
  /** The error in a minigate answer (`{"error":{code,message,requestId}}`), or null. */
  static fromResponse(statusCode, body) {
    let value = body;
    if (typeof value === "string") {
      try {
        value = JSON.parse(value);
      } catch (e) {
        return null;
      }
    }
    const error = value && typeof value === "object" ? value.error : void 0;
    if (!error || typeof error !== "object") return null;
    const { code, message, requestId } = error;
    if (typeof code !== "string" || typeof message !== "string") return null;
    return new _MinigateError(code, message, statusCode, typeof requestId === "string" ? requestId : void 0);
  }
};
function sdkError(code, message, statusCode = 0) {
  return new MinigateError(code, message, statusCode);
}

// packages/client/src/channel.ts
var { SESSION_ENDED } = CHANNEL_CLOSE;
var SEEN_IDS = 500;
var STABLE_MS = 1e4;
function createChannel(deps) {
  var _a, _b, _c, _d, _e, _f;
  const heartbeatMs = (_a = deps.heartbeatMs) != null ? _a : 2e4;
  const deadAfterMs = (_b = deps.deadAfterMs) != null ? _b : 45e3;
  const maxQueue = (_c = deps.maxQueue) != null ? _c : 100;
  const backoff = (_d = deps.backoffMs) != null ? _d : { min: 500, max: 3e4 };
  const ackTimeoutMs = (_e = deps.ackTimeoutMs) != null ? _e : 1e4;
  let state = "closed";
  let socket = null;
  let socketToken = "";
  let attempts = 0;
  let openedAt = 0;
  let opened = false;
  let everOpened = false;
  let stopped = false;
  let lastHeard = 0;
  let heartbeat;
  let retry;
  let nextId = 0;
  const rooms = new Set((_f = deps.rooms) != null ? _f : []);
  const queue = [];
  const acks = /* @__PURE__ */ new Map();
  const joins = /* @__PURE__ */ new Map();
  const leaves = /* @__PURE__ */ new Map();
  const seen = [];
  const seenSet = /* @__PURE__ */ new Set();
  const handlers = /* @__PURE__ */ new Map();
  function emit(type, payload) {
    const set = handlers.get(type);
    if (!set) return;
    for (const handler of Array.from(set)) {
      try {
        handler(payload);
      } catch (error) {
        setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  }
  function setState(next) {
    if (state === next) return;
    state = next;
    emit("state", next);
  }
  function send(frame) {
    if (!socket || !opened) return false;
    socket.send({ data: JSON.stringify(frame) });
    return true;
  }
  function sendOrQueue(frame) {
    if (send(frame)) return;
    if (queue.length >= maxQueue) throw sdkError("CHANNEL_QUEUE_FULL", `${maxQueue} frames are already waiting for the connection`);
    queue.push(JSON.stringify(frame));
  }
  function remember(id) {
    if (seenSet.has(id)) return false;
    seenSet.add(id);
    seen.push(id);
    if (seen.length > SEEN_IDS) seenSet.delete(seen.shift());
    return true;
  }
  function onFrame(text) {
    var _a2, _b2, _c2, _d2, _e2, _f2;
    lastHeard = Date.now();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch (e) {
      return;
    }
    switch (frame.type) {
      case "message":
        if (remember(frame.id)) emit("message", frame);
        return;
      case "presence":
        emit("presence", { room: frame.room, joins: (_a2 = frame.joins) != null ? _a2 : [], leaves: (_b2 = frame.leaves) != null ? _b2 : [] });
        return;
      case "joined": {
        const joined = __spreadValues(__spreadValues({ room: frame.room }, frame.presence ? { presence: frame.presence } : {}), frame.history ? { history: frame.history } : {});
        for (const m of (_c2 = frame.history) != null ? _c2 : []) remember(m.id);
        emit("joined", joined);
        for (const waiter of (_d2 = joins.get(frame.room)) != null ? _d2 : []) waiter.resolve(joined);
        joins.delete(frame.room);
        return;
      }
      case "left":
        emit("left", { room: frame.room });
        for (const done of (_e2 = leaves.get(frame.room)) != null ? _e2 : []) done();
        leaves.delete(frame.room);
        return;
      case "ack": {
        const pending = acks.get(frame.id);
        if (pending) {
          clearTimeout(pending.timer);
          acks.delete(frame.id);
          pending.resolve();
        }
        return;
      }
      case "error": {
        const error = new MinigateError(frame.code, (_f2 = frame.message) != null ? _f2 : frame.code);
        const pending = frame.id ? acks.get(frame.id) : void 0;
        if (pending) {
          clearTimeout(pending.timer);
          acks.delete(frame.id);
          pending.reject(error);
          return;
        }
        if (!frame.id && frame.room && joins.has(frame.room)) {
          rooms.delete(frame.room);
          for (const waiter of joins.get(frame.room)) waiter.reject(error);
          joins.delete(frame.room);
          return;
        }
        emit("error", error);
        return;
      }
      default:
        return;
    }
  }
  function connect() {
    if (stopped || socket) return;
    clearTimeout(retry);
    setState("connecting");
    deps.token().then(
      (token) => {
        if (stopped || socket) return;
        socketToken = token;
        opened = false;
        const failed = (errMsg) => {
          if (socket === task && !opened) lost(task, 1006, errMsg);
        };
        const task = deps.wx.connectSocket({
          url: deps.url,
          header: { Authorization: `Bearer ${token}` },
          fail: (err) => setTimeout(() => failed(err.errMsg), 0)
        });
        socket = task;
        task.onOpen(() => {
          if (socket !== task) return;
          opened = true;
          openedAt = Date.now();
          lastHeard = Date.now();
          setState("open");
          emit("open", { reconnect: everOpened });
          everOpened = true;
          for (const room of rooms) send({ type: "join", room });
          for (const text of queue.splice(0)) task.send({ data: text });
          heartbeat = setInterval(() => {
            if (Date.now() - lastHeard > deadAfterMs) return lost(task, 1006, "no answer to heartbeat");
            send({ type: "ping" });
          }, heartbeatMs);
        });
        task.onMessage((res) => {
          if (socket === task && typeof res.data === "string") onFrame(res.data);
        });
        task.onError((res) => failed(res.errMsg));
        task.onClose((res) => {
          if (socket === task) lost(task, res.code, res.reason);
        });
      },
      (error) => {
        emit("error", error instanceof MinigateError ? error : sdkError("LOGIN_FAILED", String(error)));
        schedule();
      }
    );
  }
  function lost(task, code, reason) {
    const wasOpen = opened;
    if (wasOpen && Date.now() - openedAt >= STABLE_MS) attempts = 0;
    socket = null;
    opened = false;
    clearInterval(heartbeat);
    try {
      task.close({ code: 1e3 });
    } catch (e) {
    }
    for (const [id, pending] of acks) {
      clearTimeout(pending.timer);
      pending.reject(sdkError("CHANNEL_CLOSED", "the connection closed before the server acknowledged the message"));
      acks.delete(id);
    }
    if (code === SESSION_ENDED) deps.sessionEnded(socketToken);
    emit("close", { code, reason: reason || "", willReconnect: !stopped });
    if (stopped) return;
    if (!wasOpen && code !== SESSION_ENDED && deps.verifySession) {
      deps.verifySession().then(schedule, schedule);
      return;
    }
    schedule();
  }
  function schedule() {
    if (stopped) return;
    setState("waiting");
    const ceiling = Math.min(backoff.max, backoff.min * Math.pow(2, attempts++));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    clearTimeout(retry);
    retry = setTimeout(connect, delay);
  }
  const channel = {
    get state() {
      return state;
    },
    get rooms() {
      return Array.from(rooms);
    },
    connect() {
      stopped = false;
      connect();
    },
    join(room) {
      if (!ROOM_NAME.test(room)) return Promise.reject(sdkError("CHANNEL_BAD_FRAME", `not a room name: ${room}`));
      rooms.add(room);
      return new Promise((resolve, reject) => {
        var _a2;
        const list = (_a2 = joins.get(room)) != null ? _a2 : [];
        list.push({ resolve, reject });
        joins.set(room, list);
        send({ type: "join", room });
      });
    },
    leave(room) {
      rooms.delete(room);
      return new Promise((resolve) => {
        var _a2;
        if (!send({ type: "leave", room })) return resolve();
        const list = (_a2 = leaves.get(room)) != null ? _a2 : [];
        list.push(resolve);
        leaves.set(room, list);
      });
    },
    publish(room, event, data) {
      if (stopped) return Promise.reject(sdkError("CHANNEL_CLOSED", "the channel is closed"));
      const id = `c${++nextId}`;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          acks.delete(id);
          reject(sdkError("TIMEOUT", `no ack within ${ackTimeoutMs} ms`));
        }, ackTimeoutMs + (opened ? 0 : backoff.max));
        acks.set(id, { resolve, reject, timer });
        try {
          sendOrQueue({ type: "publish", room, event, data: data === void 0 ? null : data, id });
        } catch (error) {
          clearTimeout(timer);
          acks.delete(id);
          reject(error);
        }
      });
    },
    on(type, handler) {
      let set = handlers.get(type);
      if (!set) handlers.set(type, set = /* @__PURE__ */ new Set());
      set.add(handler);
      return () => {
        set.delete(handler);
      };
    },
    close() {
      var _a2;
      if (stopped) return;
      stopped = true;
      clearTimeout(retry);
      clearInterval(heartbeat);
      const task = socket;
      socket = null;
      opened = false;
      queue.length = 0;
      for (const [, pending] of acks) {
        clearTimeout(pending.timer);
        pending.reject(sdkError("CHANNEL_CLOSED", "the channel was closed"));
      }
      acks.clear();
      for (const [, list] of joins) for (const waiter of list) waiter.reject(sdkError("CHANNEL_CLOSED", "the channel was closed"));
      joins.clear();
      if (task) {
        try {
          task.close({ code: 1e3, reason: "closed by the client" });
        } catch (e) {
        }
      }
      setState("closed");
      emit("close", { code: 1e3, reason: "closed by the client", willReconnect: false });
      (_a2 = deps.onClose) == null ? void 0 : _a2.call(deps);
    }
  };
  if (deps.autoConnect !== false) setTimeout(connect, 0);
  return channel;
}

// packages/client/src/wx.ts
function globalWx() {
  return typeof wx === "undefined" ? void 0 : wx;
}

// packages/client/src/client.ts
var DEFAULT_STORAGE_KEY = "minigate.session";
function createClient(options) {
  var _a, _b;
  const wx2 = (_a = options.wx) != null ? _a : globalWx();
  if (!wx2) throw new Error("minigate-client: no wx (run it in a mini program, or pass options.wx)");
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  const storageKey = (_b = options.storageKey) != null ? _b : DEFAULT_STORAGE_KEY;
  const timeout = options.timeout;
  let session = readSession();
  let loggingIn = null;
  const channels = /* @__PURE__ */ new Set();
  const absolute = (url) => /^(https?|wss?):\/\//.test(url) ? url : `${baseUrl}${url.startsWith("/") ? "" : "/"}${url}`;
  const origin = (url) => {
    var _a2, _b2;
    return ((_b2 = (_a2 = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(url)) == null ? void 0 : _a2[0]) != null ? _b2 : "").toLowerCase();
  };
  const sendsSession = (url, auth) => auth != null ? auth : origin(absolute(url)) === origin(baseUrl);
  function readSession() {
    try {
      const saved = wx2.getStorageSync(storageKey);
      return saved && typeof saved === "object" && typeof saved.token === "string" ? saved : null;
    } catch (e) {
      return null;
    }
  }
  function forget(token) {
    if (token !== void 0 && session && session.token !== token) return;
    session = null;
    try {
      wx2.removeStorageSync(storageKey);
    } catch (e) {
    }
  }
  function rawRequest(req, track) {
    return new Promise((resolve, reject) => {
      var _a2, _b2, _c;
      const task = wx2.request(__spreadProps(__spreadValues({
        url: absolute(req.url),
        method: (_a2 = req.method) != null ? _a2 : "GET",
        data: req.data,
        header: __spreadValues({}, req.header)
      }, ((_b2 = req.timeout) != null ? _b2 : timeout) ? { timeout: (_c = req.timeout) != null ? _c : timeout } : {}), {
        success: resolve,
        fail: (err) => reject(networkError(err))
      }));
      track == null ? void 0 : track(task);
    });
  }
  function getCode() {
    if (options.getCode) return options.getCode();
    return new Promise(
      (resolve, reject) => wx2.login({
        success: (res) => res.code ? resolve(res.code) : reject(sdkError("LOGIN_FAILED", "wx.login gave no code")),
        fail: (err) => reject(sdkError("LOGIN_FAILED", err.errMsg || "wx.login failed"))
      })
    );
  }
  async function doLogin(extra) {
    var _a2;
    const code = await getCode();
    const res = await rawRequest({ url: "/auth/login", method: "POST", data: __spreadValues(__spreadValues({ code }, options.appid ? { appid: options.appid } : {}), extra), header: { "content-type": "application/json" } });
    const body = res.data;
    if (res.statusCode !== 200 || !body || typeof body.token !== "string") {
      throw (_a2 = MinigateError.fromResponse(res.statusCode, res.data)) != null ? _a2 : sdkError("LOGIN_FAILED", `login answered ${res.statusCode}`, res.statusCode);
    }
    const fresh = __spreadValues(__spreadValues({
      token: body.token,
      openid: String(body.openid),
      expiresAt: Number(body.expiresAt)
    }, body.unionid ? { unionid: body.unionid } : {}), body.user ? { user: body.user } : {});
    session = fresh;
    try {
      wx2.setStorageSync(storageKey, fresh);
    } catch (e) {
    }
    return fresh;
  }
  function login(extra = {}) {
    if (!loggingIn) {
      loggingIn = doLogin(extra);
      const clear = () => {
        loggingIn = null;
      };
      loggingIn.then(clear, clear);
    }
    return loggingIn;
  }
  async function ensureSession() {
    if (loggingIn) return loggingIn;
    if (session && session.expiresAt > Date.now()) return session;
    return login();
  }
  const isSessionFailure = (statusCode, body) => {
    if (statusCode !== 401) return false;
    const error = MinigateError.fromResponse(statusCode, body);
    return !error || SESSION_ERRORS.indexOf(error.code) >= 0;
  };
  function withSession(auth, attempt, callbacks) {
    let current;
    let aborted = false;
    const track = (task) => {
      current = task;
      if (aborted) task.abort();
    };
    const run = async () => {
      var _a2;
      for (let round = 0; ; round++) {
        if (aborted) throw sdkError("ABORTED", "aborted");
        const token = auth ? (await ensureSession()).token : null;
        if (aborted) throw sdkError("ABORTED", "aborted");
        const answer = await attempt(token, track);
        if (auth && round === 0 && isSessionFailure(answer.statusCode, answer.body)) {
          forget(token);
          continue;
        }
        if (answer.statusCode < 200 || answer.statusCode >= 300) {
          throw (_a2 = MinigateError.fromResponse(answer.statusCode, answer.body)) != null ? _a2 : sdkError(httpStatusErrorCode(answer.statusCode), `the server answered ${answer.statusCode}`, answer.statusCode);
        }
        return answer.value;
      }
    };
    const promise = run().catch((error) => {
      if (aborted) throw sdkError("ABORTED", "aborted");
      throw error instanceof MinigateError ? error : sdkError("NETWORK", error.message);
    });
    const abort = () => {
      aborted = true;
      current == null ? void 0 : current.abort();
    };
    if (callbacks.success || callbacks.fail || callbacks.complete) {
      const settle = (call) => {
        var _a2;
        try {
          call();
        } finally {
          try {
            (_a2 = callbacks.complete) == null ? void 0 : _a2.call(callbacks);
          } catch (error) {
            rethrowLater(error);
          }
        }
      };
      promise.then(
        (value) => settle(() => {
          var _a2;
          return (_a2 = callbacks.success) == null ? void 0 : _a2.call(callbacks, value);
        }),
        (error) => settle(() => {
          var _a2;
          return (_a2 = callbacks.fail) == null ? void 0 : _a2.call(callbacks, error);
        })
      ).catch(rethrowLater);
      return { abort };
    }
    return Object.assign(promise, { abort });
  }
  const bearer = (token) => token ? { Authorization: `Bearer ${token}` } : {};
  const client = {
    get session() {
      return session;
    },
    login: () => login(),
    loginWithUserInfo: (detail) => {
      forget();
      return login(__spreadValues({ encryptedData: detail.encryptedData, iv: detail.iv }, detail.rawData ? { rawData: detail.rawData, signature: detail.signature } : {}));
    },
    request: ((req) => {
      return withSession(
        sendsSession(req.url, req.auth),
        async (token, track) => {
          const res = await rawRequest({ url: req.url, method: req.method, data: req.data, header: __spreadValues(__spreadValues({}, req.header), bearer(token)), timeout: req.timeout }, track);
          return { statusCode: res.statusCode, body: res.data, value: { data: res.data, statusCode: res.statusCode, header: res.header } };
        },
        req
      );
    }),
    uploadFile: ((req) => {
      var _a2;
      return withSession(
        sendsSession((_a2 = req.url) != null ? _a2 : "/files", void 0),
        (token, track) => new Promise((resolve, reject) => {
          var _a3, _b2, _c, _d;
          const task = wx2.uploadFile(__spreadProps(__spreadValues(__spreadProps(__spreadValues({
            url: absolute((_a3 = req.url) != null ? _a3 : "/files"),
            filePath: req.filePath,
            name: (_b2 = req.name) != null ? _b2 : "file"
          }, req.formData ? { formData: req.formData } : {}), {
            header: __spreadValues(__spreadValues({}, req.header), bearer(token))
          }), ((_c = req.timeout) != null ? _c : timeout) ? { timeout: (_d = req.timeout) != null ? _d : timeout } : {}), {
            success: (res) => {
              let body = res.data;
              try {
                body = JSON.parse(res.data);
              } catch (e) {
              }
              resolve({ statusCode: res.statusCode, body, value: body });
            },
            fail: (err) => reject(networkError(err))
          }));
          if (req.onProgress && task.onProgressUpdate) task.onProgressUpdate(req.onProgress);
          track(task);
        }),
        req
      );
    }),
    downloadFile: ((req) => {
      const url = /^[a-f0-9]{32}$/.test(req.url) ? `/files/${req.url}` : req.url;
      return withSession(
        sendsSession(url, req.auth),
        (token, track) => new Promise((resolve, reject) => {
          var _a2, _b2;
          const task = wx2.downloadFile(__spreadProps(__spreadValues(__spreadValues({
            url: absolute(url),
            header: __spreadValues(__spreadValues({}, req.header), bearer(token))
          }, ((_a2 = req.timeout) != null ? _a2 : timeout) ? { timeout: (_b2 = req.timeout) != null ? _b2 : timeout } : {}), req.filePath ? { filePath: req.filePath } : {}), {
            success: (res) => {
              const path = res.tempFilePath || res.filePath || "";
              let body = null;
              if (res.statusCode !== 200 && path && wx2.getFileSystemManager) {
                try {
                  body = wx2.getFileSystemManager().readFileSync(path, "utf8");
                } catch (e) {
                  body = null;
                }
              }
              resolve({ statusCode: res.statusCode, body, value: { tempFilePath: path, statusCode: res.statusCode } });
            },
            fail: (err) => reject(networkError(err))
          }));
          if (req.onProgress && task.onProgressUpdate) task.onProgressUpdate(req.onProgress);
          track(task);
        }),
        req
      );
    }),
    async getPhoneNumber(code) {
      const res = await client.request({
        url: "/auth/phone",
        method: "POST",
        data: { code },
        header: { "content-type": "application/json" }
      });
      return res.data;
    },
    async decrypt(getData) {
      for (let round = 0; ; round++) {
        const { encryptedData, iv } = await getData();
        try {
          const res = await client.request({ url: "/auth/decrypt", method: "POST", data: { encryptedData, iv }, header: { "content-type": "application/json" } });
          return res.data.data;
        } catch (error) {
          if (round > 0 || !(error instanceof MinigateError) || error.code !== "SESSION_KEY_STALE") throw error;
          forget(session == null ? void 0 : session.token);
          await login();
        }
      }
    },
    async requestSubscribeMessage(tmplIds) {
      if (!wx2.requestSubscribeMessage) throw sdkError("NOT_SUPPORTED", "wx.requestSubscribeMessage is not available");
      const result = await new Promise((resolve, reject) => {
        wx2.requestSubscribeMessage({ tmplIds, success: resolve, fail: (err) => reject(sdkError("SUBSCRIBE_FAILED", err.errMsg || "requestSubscribeMessage failed")) });
      });
      await client.request({ url: "/auth/subscriptions", method: "POST", data: { result }, header: { "content-type": "application/json" } });
      return result;
    },
    pay(params, callbacks) {
      const promise = new Promise((resolve, reject) => {
        if (!wx2.requestPayment) {
          reject(sdkError("NOT_SUPPORTED", "wx.requestPayment is not available"));
          return;
        }
        const { timeStamp, nonceStr, package: pkg, signType, paySign } = params;
        wx2.requestPayment({
          timeStamp,
          nonceStr,
          package: pkg,
          signType,
          paySign,
          success: () => resolve({ outcome: "paid" }),
          fail: (err) => {
            const errMsg = err && err.errMsg || "requestPayment:fail";
            if (/cancel/i.test(errMsg)) resolve({ outcome: "cancelled" });
            else reject(sdkError("PAY_FAILED", errMsg));
          }
        });
      });
      if (!callbacks || !callbacks.success && !callbacks.fail && !callbacks.complete) return promise;
      promise.then(
        (result) => {
          var _a2, _b2;
          (_a2 = callbacks.success) == null ? void 0 : _a2.call(callbacks, result);
          (_b2 = callbacks.complete) == null ? void 0 : _b2.call(callbacks);
        },
        (error) => {
          var _a2, _b2;
          (_a2 = callbacks.fail) == null ? void 0 : _a2.call(callbacks, error);
          (_b2 = callbacks.complete) == null ? void 0 : _b2.call(callbacks);
        }
      );
      return promise.catch(() => ({ outcome: "failed" }));
    },
    channel(channelOptions = {}) {
      var _a2;
      const channel = createChannel(__spreadValues({
        wx: wx2,
        url: absolute((_a2 = channelOptions.path) != null ? _a2 : "/channel").replace(/^http/, "ws"),
        token: () => ensureSession().then((s) => s.token),
        sessionEnded: (token) => forget(token),
        verifySession: () => client.request({ url: "/auth/session" }),
        onClose: () => channels.delete(channel)
      }, channelOptions));
      channels.add(channel);
      return channel;
    },
    async logout() {
      const token = session == null ? void 0 : session.token;
      for (const channel of channels) channel.close();
      forget();
      if (token) {
        await rawRequest({ url: "/auth/logout", method: "POST", header: { Authorization: `Bearer ${token}` } }).catch(() => void 0);
      }
    }
  };
  return client;
}
function rethrowLater(error) {
  setTimeout(() => {
    throw error;
  }, 0);
}
function networkError(err) {
  const message = err && err.errMsg || "request failed";
  return sdkError(/abort/i.test(message) ? "ABORTED" : /timeout/i.test(message) ? "TIMEOUT" : "NETWORK", message);
}
