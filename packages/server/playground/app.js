/**
 * The playground's mini program: three tabs (我的 / 聊天 / 图片) written against minigate-client
 * as a real mini program would be, with `wx` provided by wx-browser.js.
 */
import { createClient } from './sdk/minigate-client.mjs';
import { createLogPanel } from './log-panel.js';
import { createBrowserWx } from './wx-browser.js';

const ROOM = 'chat:lobby';
const $ = (selector) => document.querySelector(selector);

const panel = createLogPanel($('#log'));
$('#log-clear').addEventListener('click', () => panel.clear());

// What `minigate dev` tells the page: the dev app's AppID (wx.login asks the sandbox for its codes).
const config = await fetch('dev/config.json').then((res) => {
  if (!res.ok) throw new Error(`dev/config.json answered ${res.status}: open the playground from minigate dev`);
  return res.json();
});

// The mini program runtime's global `wx`, which minigate-client picks up by itself.
globalThis.wx = createBrowserWx({ appid: config.appid, sandbox: config.sandbox, logger: panel });
const client = createClient({ baseUrl: location.origin, appid: config.appid });

let channel = null;
const members = new Set();
const shown = new Set();

// ---- the frame: clock, tabs, toast ----

const tick = () => {
  const now = new Date();
  $('#clock').textContent = `${now.getHours()}:${String(now.getMinutes()).padStart(2, '0')}`;
};
tick();
setInterval(tick, 10_000);

function showTab(name) {
  for (const page of document.querySelectorAll('.page')) page.hidden = page.id !== `page-${name}`;
  for (const tab of document.querySelectorAll('.tabbar button')) {
    if (tab.dataset.tab === name) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  $('#nav-title').textContent = $(`#page-${name}`).dataset.title;
  if (name === 'chat') scrollMessages();
}
for (const tab of document.querySelectorAll('.tabbar button')) tab.addEventListener('click', () => showTab(tab.dataset.tab));

let toastTimer;
/** wx.showToast, roughly. */
function toast(text) {
  const node = $('#toast');
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (node.hidden = true), 2500);
}

/**
 * An error in the page's language: a Chinese phrase, with the stable code in brackets for looking
 * it up (docs/errors.md). The English message goes to the console for the developer.
 */
const ZH = {
  NETWORK: '网络不通',
  TIMEOUT: '超时了',
  ABORTED: '已取消',
  LOGIN_FAILED: '登录没成功',
  CHANNEL_CLOSED: '连接已断开',
  CHANNEL_QUEUE_FULL: '未连接，待发的消息太多',
  SESSION_MISSING: '还没登录',
  SESSION_INVALID: '登录已失效',
  SESSION_EXPIRED: '登录已过期',
  SESSION_REVOKED: '已退出登录',
  AUTH_CODE_INVALID: '登录凭证无效或已过期',
  AUTH_CODE_USED: '登录凭证已用过',
  RATE_LIMITED: '操作太频繁，稍后再试',
  BODY_TOO_LARGE: '文件太大',
  WECHAT_UNAVAILABLE: '微信接口暂时不可用',
  PAY_FAILED: '支付没成功',
  PAY_UNAVAILABLE: '微信支付暂时不可用',
};
function describe(error) {
  const code = error && typeof error.code === 'string' ? error.code : '';
  if (error?.message) console.info('[playground]', code, error.message);
  const phrase = ZH[code] ?? (/^HTTP_\d+$/.test(code) ? `服务器返回 ${code.slice(5)}` : '出错了');
  return code && !code.startsWith('HTTP_') ? `${phrase}（${code}）` : phrase;
}
const nick = (openid) => openid.slice(-4);
const hue = (openid) => [...openid].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 360, 7);

function avatar(openid, className = 'avatar') {
  const node = document.createElement('span');
  node.className = className;
  node.textContent = nick(openid);
  node.title = openid;
  node.style.setProperty('--hue', hue(openid));
  return node;
}

// ---- 我的: login, the session, logout ----

function renderMe() {
  const session = client.session;
  $('#login').hidden = Boolean(session);
  $('#refresh').hidden = $('#logout').hidden = !session;
  $('#who').textContent = session ? `用户 ${nick(session.openid)}` : '未登录';
  $('#openid').textContent = session ? session.openid : '';
  $('#avatar').textContent = session ? nick(session.openid) : '?';
  $('#avatar').style.setProperty('--hue', session ? hue(session.openid) : 0);
  $('#session-card').hidden = !session;
  $('#shop-card').hidden = !session;
  if (!session) $('#order').textContent = '';
  $('#pick').disabled = !session;
  $('#chat-empty').hidden = Boolean(session);
  if (!session) $('#profile').textContent = '';
}

async function loadProfile() {
  try {
    const res = await client.request({ url: '/auth/session' });
    $('#profile').textContent = JSON.stringify(res.data, null, 2);
  } catch (error) {
    toast(describe(error));
  }
  renderMe();
}

$('#login').addEventListener('click', async () => {
  $('#login').disabled = true;
  try {
    await client.login();
    await started();
  } catch (error) {
    toast(`登录失败：${describe(error)}`);
  } finally {
    $('#login').disabled = false;
  }
});
// The button comes disabled (index.html) and works from here on: the page's load event does not
// wait for this module's first await (dev/config.json), and a click before this line was lost.
$('#login').disabled = false;

$('#refresh').addEventListener('click', loadProfile);

// ---- 我的: a purchase — the shop (a business service) makes the order, client.pay() pays it ----

$('#pay').addEventListener('click', async () => {
  $('#pay').disabled = true;
  try {
    const made = await client.request({ url: '/playground/shop/order', method: 'POST' });
    const { outcome } = await client.pay(made.data.payment);
    if (outcome === 'cancelled') return toast('已取消支付');
    // 'paid' is the user's word; the shop asks minigate (which asked WeChat Pay) before it counts.
    const order = await client.request({ url: `/playground/shop/order/${made.data.outTradeNo}` });
    $('#order').textContent = JSON.stringify(order.data, null, 2);
    toast(order.data.state === 'SUCCESS' ? '支付成功' : `订单状态 ${order.data.state}`);
  } catch (error) {
    toast(`支付失败：${describe(error)}`);
  } finally {
    $('#pay').disabled = false;
  }
});

$('#logout').addEventListener('click', async () => {
  await client.logout(); // closes the channel too
  channel = null;
  members.clear();
  shown.clear();
  $('#messages').replaceChildren();
  // The next user must not see this one's pictures.
  $('#pictures').replaceChildren();
  $('#upload-status').innerHTML = UPLOAD_HINT;
  renderPresence();
  setChatState('closed');
  renderMe();
});

// ---- 聊天: a channel on the session, one room with presence and history ----

const STATES = { connecting: '连接中…', open: '已连接', waiting: '重连中…', closed: '未连接' };

function setChatState(state) {
  $('#chat-state').dataset.state = state;
  $('#chat-state').textContent = STATES[state];
  $('#chat-input').disabled = $('#chat-send').disabled = state !== 'open';
}

function renderPresence() {
  const me = client.session?.openid;
  const list = [...members].sort((a, b) => (a === me ? -1 : b === me ? 1 : a.localeCompare(b)));
  $('#presence').replaceChildren(
    ...(list.length ? [Object.assign(document.createElement('span'), { className: 'count', textContent: `在线 ${list.length}` })] : []),
    ...list.map((openid) => {
      const chip = avatar(openid, 'member');
      if (openid === me) chip.classList.add('me');
      return chip;
    }),
  );
}

function scrollMessages() {
  const list = $('#messages');
  list.scrollTop = list.scrollHeight;
}

function addMessage(message) {
  if (shown.has(message.id)) return; // history after a reconnect repeats what was shown
  shown.add(message.id);
  const openid = message.from.openid ?? 'server';
  const item = document.createElement('li');
  item.className = `msg${openid === client.session?.openid ? ' mine' : ''}`;
  const bubble = document.createElement('div');
  bubble.className = 'bubble';
  bubble.textContent = typeof message.data?.text === 'string' ? message.data.text : JSON.stringify(message.data);
  const time = new Date(message.ts);
  bubble.title = `${message.event} · ${time.toLocaleTimeString()}`;
  item.append(avatar(openid), bubble);
  $('#messages').append(item);
  scrollMessages();
}

function openChannel() {
  if (channel) return;
  channel = client.channel({ rooms: [ROOM] });
  channel.on('state', setChatState);
  channel.on('joined', ({ room, presence = [], history = [] }) => {
    if (room !== ROOM) return;
    members.clear();
    for (const openid of presence) members.add(openid);
    renderPresence();
    history.forEach(addMessage);
  });
  channel.on('presence', ({ room, joins, leaves }) => {
    if (room !== ROOM) return;
    for (const openid of joins) members.add(openid);
    for (const openid of leaves) members.delete(openid);
    renderPresence();
  });
  channel.on('message', (message) => {
    if (message.room === ROOM) addMessage(message);
  });
  channel.on('error', (error) => toast(describe(error)));
}

$('#composer').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $('#chat-input');
  const text = input.value.trim();
  if (!text || !channel) return;
  input.value = '';
  try {
    await channel.publish(ROOM, 'speak', { text }); // resolves on the server's ack
  } catch (error) {
    input.value = text;
    toast(`没发出去：${describe(error)}`);
  }
});

// ---- 图片: wx.chooseImage → uploadFile → downloadFile → <img> ----

function formatSize(bytes) {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

const UPLOAD_HINT = $('#upload-status').innerHTML;

async function roundTrip(filePath) {
  const status = $('#upload-status');
  try {
    status.textContent = '上传中…';
    const file = await client.uploadFile({
      filePath,
      formData: { from: 'playground' },
      onProgress: ({ progress }) => (status.textContent = `上传中… ${progress}%`),
    });
    status.textContent = `已上传 ${file.id}，下载中…`;
    const { tempFilePath } = await client.downloadFile({ url: file.url });
    const item = document.createElement('li');
    item.className = 'picture';
    const img = document.createElement('img');
    img.className = 'downloaded';
    img.alt = file.name;
    img.src = tempFilePath;
    const caption = document.createElement('div');
    caption.className = 'caption';
    caption.textContent = `${file.name} · ${file.contentType} · ${formatSize(file.size)}`;
    const id = document.createElement('code');
    id.textContent = `GET /files/${file.id}`;
    caption.append(document.createElement('br'), id);
    item.append(img, caption);
    $('#pictures').prepend(item);
    status.textContent = '上传再下载回来的图片：';
  } catch (error) {
    status.textContent = `上传失败：${describe(error)}`;
  }
}

$('#pick').addEventListener('click', () => {
  wx.chooseImage({
    count: 1,
    success: (res) => roundTrip(res.tempFilePaths[0]),
    fail: (err) => {
      if (!/cancel/.test(err.errMsg)) toast(err.errMsg);
    },
  });
});

// ---- start: a session kept from before (this tab's storage) carries on ----

async function started() {
  renderMe();
  openChannel();
  await loadProfile();
}

renderMe();
setChatState('closed');
if (client.session) started();
