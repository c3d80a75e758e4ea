/**
 * The chat room: one room (chat:lobby) on minigate's channel. Who is in comes from presence,
 * recent messages from the room's history (in the `joined` frame), and every message, ours
 * included, from the server: a sent message shows once the room has it.
 */
const ROOM = 'chat:lobby';
/** Lines kept on screen. */
const MAX_LINES = 200;

const STATUS_TEXT = {
  connecting: '连接中…',
  open: '已连接',
  waiting: '重新连接中…',
  closed: '已断开',
};

Page({
  data: {
    status: 'connecting',
    statusText: STATUS_TEXT.connecting,
    online: 0,
    members: [], // [{openid, name, me}]
    messages: [], // [{id, kind: 'message' | 'system', name, text, mine}]
    draft: '',
    lastId: '',
  },

  onLoad() {
    this.client = getApp().minigate;
    this.present = new Set();
    this.seen = new Set();
    this.lines = [];
    this.lineSeq = 0;
    this.joinedOnce = false;

    const channel = (this.channel = this.client.channel());
    const here = (listener) => (frame) => frame.room === ROOM && listener.call(this, frame);
    this.unsubscribe = [
      channel.on('state', (state) => this.setData({ status: state, statusText: STATUS_TEXT[state] })),
      channel.on('joined', here(this.onJoined)),
      channel.on('presence', here(this.onPresence)),
      channel.on('message', here(this.onMessage)),
      channel.on('error', (error) => console.warn('chat: ' + error.code + ': ' + error.message)),
    ];
    // Joined now and again after every reconnect; a refusal (a rule, the session) is logged.
    channel.join(ROOM).catch((error) => console.warn('chat: ' + error.code + ': ' + error.message));

  },

  onUnload() {
    this.unsubscribe.forEach((off) => off());
    this.channel.close();
  },

  // ---- what the room says ----------------------------------------------------------------

  onJoined(frame) {
    // Who is in now (after a reconnect too: whoever left meanwhile is gone from the list).
    this.present = new Set(frame.presence || []);
    // The room's last messages: on a reconnect, those missed meanwhile (the rest are shown).
    const missed = (frame.history || []).filter((message) => !this.seen.has(message.id));
    missed.forEach((message) => this.addMessage(message));
    if (!this.joinedOnce) {
      if (missed.length) this.addSystem('以上是最近的 ' + missed.length + ' 条消息');
      this.addSystem('你已进入聊天室');
    } else {
      this.addSystem('已重新连接');
    }
    this.joinedOnce = true;
    this.show();
  },

  onPresence(frame) {
    const me = this.me();
    frame.joins.forEach((openid) => {
      if (this.present.has(openid)) return; // we may hear of ourselves joining too
      this.present.add(openid);
      if (openid !== me) this.addSystem(this.nameOf(openid) + ' 加入了聊天室');
    });
    frame.leaves.forEach((openid) => {
      if (!this.present.delete(openid)) return;
      if (openid !== me) this.addSystem(this.nameOf(openid) + ' 离开了聊天室');
    });
    this.show();
  },

  onMessage(frame) {
    this.addMessage(frame);
    this.show();
  },

  // ---- the composer ----------------------------------------------------------------------

  onInput(event) {
    this.setData({ draft: event.detail.value });
  },

  onSend() {
    const text = this.data.draft.trim();
    if (!text) return Promise.resolve();
    this.setData({ draft: '' });
    return this.channel.publish(ROOM, 'speak', { text }).catch((error) => {
      this.setData({ draft: text }); // give it back to try again
      wx.showToast({ title: '没有发出去：' + error.message, icon: 'none' });
    });
  },

  // ---- lines -----------------------------------------------------------------------------

  me() {
    const session = this.client.session;
    return session ? session.openid : '';
  },

  nameOf(openid) {
    if (openid === this.me()) return '我';
    return '用户' + openid.slice(-4);
  },

  addMessage(message) {
    if (this.seen.has(message.id) || message.event !== 'speak') return;
    this.seen.add(message.id);
    const data = message.data || {};
    const from = message.from || {};
    this.lines.push({
      id: 'line' + ++this.lineSeq,
      kind: 'message',
      openid: from.openid || '',
      name: from.server ? '系统' : this.nameOf(from.openid),
      // {text}; Wafer2 clients in the room (channel.wafer.room) send {word}, as its demo does.
      text: typeof data.text === 'string' ? data.text : typeof data.word === 'string' ? data.word : JSON.stringify(data),
      mine: !!from.openid && from.openid === this.me(),
    });
  },

  addSystem(text) {
    this.lines.push({ id: 'line' + ++this.lineSeq, kind: 'system', text });
  },

  show() {
    if (this.lines.length > MAX_LINES) this.lines.splice(0, this.lines.length - MAX_LINES);
    const me = this.me();
    const members = Array.from(this.present)
      .sort((a, b) => (a === me ? -1 : b === me ? 1 : a < b ? -1 : 1))
      .map((openid) => ({ openid, name: this.nameOf(openid), me: openid === me }));
    const last = this.lines[this.lines.length - 1];
    this.setData({
      online: members.length,
      members,
      messages: this.lines,
      lastId: last ? last.id : '',
    });
  },
});
