/**
 * A small minigate client for this example: log in, and one channel (WebSocket) with rooms.
 *
 *   const client = createClient({ baseUrl: 'https://api.example.com' });
 *   const channel = client.channel();
 *   channel.on('message', (frame) => …);
 *   channel.join('chat:lobby');
 *   channel.connect();
 *   channel.publish('chat:lobby', 'speak', { text: 'hi' }).then(…);   // resolves on the server's ack
 *
 * Login: wx.login → POST {baseUrl}/auth/login {code} → a session token, kept in storage. One login
 * at a time: callers that need a session while one is in flight share it.
 *
 * The channel: wx.connectSocket with `Authorization: Bearer <token>` (the token never goes in the
 * URL). It joins its rooms again after every reconnect, pings every 20 s (a link that stays silent
 * is dropped and redialled), and reconnects with jittered back-off. Close code 4001 means the
 * session ended: it logs in again, then reconnects. A refused upgrade does not tell a mini
 * program its HTTP status, so the session is checked (GET /auth/session): on 401 it logs in again.
 *
 * The protocol is in docs/channels.md. Plain ES2017, no build step.
 */
'use strict';

const SESSION_KEY = 'minigate.session';
const SANDBOX_OPENID_KEY = 'minigate.sandboxOpenid';
/** The server closes a socket with this when its session ends (logout, revoked, expired). */
const SESSION_ENDED = 4001;

function createClient(options) {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const sandbox = options.sandbox || null;
  let loggingIn = null;

  /** wx.request as a promise of the response, whatever its status. */
  function request(method, path, data, token) {
    return new Promise((resolve, reject) => {
      wx.request({
        url: baseUrl + path,
        method,
        data,
        header: token ? { Authorization: 'Bearer ' + token } : {},
        success: resolve,
        fail: (error) => reject(new Error(error.errMsg || 'request failed')),
      });
    });
  }

  /** What went wrong in a minigate answer: {"error":{"code","message"}}. */
  function failure(response) {
    const body = response.data && response.data.error;
    const error = new Error((body && body.message) || 'HTTP ' + response.statusCode);
    error.status = response.statusCode;
    error.code = body && body.code;
    return error;
  }

  function wxLogin() {
    return new Promise((resolve, reject) => {
      wx.login({
        success: (res) => (res.code ? resolve(res.code) : reject(new Error('wx.login gave no code'))),
        fail: (error) => reject(new Error(error.errMsg || 'wx.login failed')),
      });
    });
  }

  /**
   * Local development only: `minigate sandbox` stands in for WeChat, and a code from wx.login
   * (WeChat's) means nothing to it, so the sandbox mints the code, for the same user each time.
   */
  function sandboxLogin() {
    const openid = wx.getStorageSync(SANDBOX_OPENID_KEY);
    return new Promise((resolve, reject) => {
      wx.request({
        url: sandbox.url.replace(/\/+$/, '') + '/__sandbox/login',
        method: 'POST',
        data: openid ? { appid: sandbox.appid, openid } : { appid: sandbox.appid },
        success: (res) => {
          if (res.statusCode !== 200 || !res.data || !res.data.code) return reject(failure(res));
          wx.setStorageSync(SANDBOX_OPENID_KEY, res.data.openid);
          resolve(res.data.code);
        },
        fail: (error) => reject(new Error(error.errMsg || 'sandbox login failed')),
      });
    });
  }

  /** The stored session, {token, openid, expiresAt}, or null. */
  function session() {
    const saved = wx.getStorageSync(SESSION_KEY);
    return saved && saved.token ? saved : null;
  }

  /** Forgets the stored session (only if it is still `token`, when given). */
  function forget(token) {
    const saved = session();
    if (saved && (!token || saved.token === token)) wx.removeStorageSync(SESSION_KEY);
  }

  /** Logs in now; a login already under way is shared. */
  function login() {
    if (loggingIn) return loggingIn;
    const current = (sandbox ? sandboxLogin() : wxLogin())
      .then((code) => request('POST', '/auth/login', { code }))
      .then((response) => {
        if (response.statusCode !== 200 || !response.data || !response.data.token) throw failure(response);
        const saved = { token: response.data.token, openid: response.data.openid, expiresAt: response.data.expiresAt };
        wx.setStorageSync(SESSION_KEY, saved);
        return saved;
      });
    loggingIn = current;
    const done = () => {
      if (loggingIn === current) loggingIn = null;
    };
    current.then(done, done);
    return current;
  }

  /** The stored session, or a new login. */
  function ensureSession() {
    const saved = session();
    return saved ? Promise.resolve(saved) : login();
  }

  /** Asks minigate whether `token` still works; forgets it when not (401). Resolves true/false. */
  function checkSession(token) {
    return request('GET', '/auth/session', undefined, token).then((response) => {
      if (response.statusCode === 401) {
        forget(token);
        return false;
      }
      return true;
    });
  }

  const client = {
    baseUrl,
    session,
    login,
    ensureSession,
    checkSession,
    forget,
    /** A channel on this client's session; options: {url, heartbeatMs, minDelayMs, maxDelayMs}. */
    channel: (channelOptions) => createChannel(client, channelOptions || {}),
  };
  return client;
}

function createChannel(client, options) {
  const url = options.url || client.baseUrl.replace(/^http/, 'ws') + '/channel';
  const heartbeatMs = options.heartbeatMs || 20000;
  const minDelayMs = options.minDelayMs || 500;
  const maxDelayMs = options.maxDelayMs || 30000;
  const ackTimeoutMs = options.ackTimeoutMs || 10000;

  const listeners = {};
  /** The rooms to be in: joined on every (re)connect. */
  const rooms = new Set();
  /** Publishes waiting for their ack: id → {resolve, reject, timer}. */
  const pending = new Map();
  /** The socket being dialled or open: {task, session, open}. */
  let current = null;
  let running = false;
  /** Bumped by connect() and close(), so that callbacks of an earlier run do nothing. */
  let generation = 0;
  let attempts = 0;
  let retryTimer = null;
  let heartbeat = null;
  let lastHeard = 0;
  let seq = 0;
  let status = 'closed';

  function emit(type, payload) {
    (listeners[type] || []).slice().forEach((listener) => {
      try {
        listener(payload);
      } catch (error) {
        console.error('minigate channel: a "' + type + '" listener threw', error);
      }
    });
  }

  function setStatus(next) {
    if (next === status) return;
    status = next;
    emit('status', next);
  }

  function send(frame) {
    if (!current || !current.open) return false;
    current.task.send({ data: JSON.stringify(frame), fail: () => undefined });
    return true;
  }

  function settle(id, error) {
    const waiting = pending.get(id);
    if (!waiting) return;
    pending.delete(id);
    clearTimeout(waiting.timer);
    if (error) waiting.reject(error);
    else waiting.resolve();
  }

  function failPending(message) {
    Array.from(pending.keys()).forEach((id) => settle(id, new Error(message)));
  }

  function handle(frame) {
    switch (frame.type) {
      case 'ack':
        settle(frame.id);
        return;
      case 'pong':
        return;
      case 'error': {
        if (frame.id && pending.has(frame.id)) {
          const error = new Error(frame.message);
          error.code = frame.code;
          settle(frame.id, error);
        }
        // A refused join: stop asking for that room on every reconnect.
        if (frame.room && (frame.code === 'CHANNEL_ROOM_FORBIDDEN' || frame.code === 'CHANNEL_TOO_MANY_ROOMS')) rooms.delete(frame.room);
        emit('error', frame);
        return;
      }
      default:
        // joined, left, message, presence
        emit(frame.type, frame);
    }
  }

  function stopHeartbeat() {
    clearInterval(heartbeat);
    heartbeat = null;
  }

  function startHeartbeat() {
    stopHeartbeat();
    heartbeat = setInterval(() => {
      if (Date.now() - lastHeard > heartbeatMs * 2.5) {
        // Not even a pong for two beats: the link is dead (WeChat may not say so for minutes).
        const dead = current;
        ended(dead, 1006, 'no answer to ping');
        dead.task.close({ code: 1000, reason: 'no answer to ping', fail: () => undefined });
        return;
      }
      send({ type: 'ping' });
    }, heartbeatMs);
  }

  /** The next attempt after a jittered, growing delay (a crowd reconnecting spreads out). */
  function retry(run) {
    if (run !== generation || retryTimer) return;
    const ceiling = Math.min(maxDelayMs, minDelayMs * Math.pow(2, attempts));
    attempts++;
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    setStatus('reconnecting');
    retryTimer = setTimeout(() => {
      retryTimer = null;
      dial(run);
    }, delay);
  }

  function dial(run) {
    if (run !== generation) return;
    setStatus(attempts === 0 ? 'connecting' : 'reconnecting');
    client
      .ensureSession()
      .then((session) => {
        if (run !== generation) return;
        const task = wx.connectSocket({
          url,
          header: { Authorization: 'Bearer ' + session.token },
          fail: () => undefined, // onError/onClose tell the rest
        });
        const socket = { task, session, open: false, run };
        current = socket;
        task.onOpen(() => {
          if (current !== socket) return;
          socket.open = true;
          attempts = 0;
          lastHeard = Date.now();
          rooms.forEach((room) => send({ type: 'join', room }));
          startHeartbeat();
          setStatus('open');
          emit('open');
        });
        task.onMessage((message) => {
          if (current !== socket) return;
          lastHeard = Date.now();
          let frame;
          try {
            frame = JSON.parse(message.data);
          } catch (error) {
            return; // not ours: the protocol is JSON text
          }
          if (frame && typeof frame.type === 'string') handle(frame);
        });
        // Some clients report a failed dial only through onError: both end the socket, once.
        task.onError((error) => ended(socket, 1006, (error && error.errMsg) || 'socket error'));
        task.onClose((event) => ended(socket, event && event.code, event && event.reason));
      })
      .catch((error) => {
        // No session (the login failed), or the socket could not even be made: try again later.
        if (run !== generation) return;
        if (current) current.task.close({ fail: () => undefined });
        current = null;
        emit('error', { type: 'error', code: error.code || 'LOGIN_FAILED', message: error.message });
        retry(run);
      });
  }

  /** The socket is gone: decide what comes next. */
  function ended(socket, code, reason) {
    if (!socket || current !== socket) return;
    current = null;
    stopHeartbeat();
    failPending('the connection closed');
    emit('close', { code, reason });
    if (socket.run !== generation) return;
    if (!socket.open) socket.task.close({ fail: () => undefined });
    if (code === SESSION_ENDED) {
      // Logged out or revoked: a new login, then a reconnect (after a short jittered delay).
      client.forget(socket.session.token);
      attempts = 0;
      retry(socket.run);
    } else if (!socket.open) {
      // Refused or unreachable. A 401 (session gone) is not shown to mini programs: ask.
      client.checkSession(socket.session.token).then(
        () => retry(socket.run),
        () => retry(socket.run),
      );
    } else {
      retry(socket.run);
    }
  }

  return {
    /** 'closed' | 'connecting' | 'open' | 'reconnecting'. */
    get status() {
      return status;
    },
    /** Listens to 'open', 'close', 'status', 'joined', 'left', 'message', 'presence', 'error'; returns an unsubscribe function. */
    on(type, listener) {
      (listeners[type] = listeners[type] || []).push(listener);
      return () => {
        const list = listeners[type] || [];
        const at = list.indexOf(listener);
        if (at !== -1) list.splice(at, 1);
      };
    },
    connect() {
      if (running) return;
      running = true;
      generation++;
      attempts = 0;
      dial(generation);
    },
    /** Joins now if connected, and again after every reconnect. */
    join(room) {
      rooms.add(room);
      send({ type: 'join', room });
    },
    leave(room) {
      rooms.delete(room);
      send({ type: 'leave', room });
    },
    /** Resolves when the server has delivered it to the room (its ack); rejects when offline or refused. */
    publish(room, event, data) {
      return new Promise((resolve, reject) => {
        const id = 'p' + ++seq;
        const timer = setTimeout(() => settle(id, new Error('no ack from the server')), ackTimeoutMs);
        pending.set(id, { resolve, reject, timer });
        if (!send({ type: 'publish', room, event, data, id })) settle(id, new Error('not connected'));
      });
    },
    /** Closes the socket and stops reconnecting (connect() starts again). */
    close() {
      running = false;
      generation++;
      clearTimeout(retryTimer);
      retryTimer = null;
      stopHeartbeat();
      failPending('the channel was closed');
      const socket = current;
      current = null;
      if (socket) socket.task.close({ code: 1000, reason: 'bye', fail: () => undefined });
      setStatus('closed');
    },
  };
}

module.exports = { createClient };
