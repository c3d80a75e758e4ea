/**
 * The network panel beside the phone: every request the mini program makes (method, URL,
 * status, time) and every WebSocket frame in and out, as they happen. Click a line for the
 * headers and bodies. It is the `logger` of wx-browser.js.
 */

const MAX_ENTRIES = 400;
const MAX_BODY = 4000;

export function createLogPanel(list) {
  let sockets = 0;

  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  const clock = () => {
    const d = new Date();
    const pad = (n, w = 2) => String(n).padStart(w, '0');
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  };

  /** A URL on this origin as its path. */
  const short = (url) => {
    try {
      const u = new URL(url, location.href);
      return u.host === location.host ? u.pathname + u.search : u.href;
    } catch {
      return String(url);
    }
  };

  const show = (value) => {
    if (value === undefined || value === '') return '';
    let text = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
    if (typeof value === 'string') {
      try {
        text = JSON.stringify(JSON.parse(value), null, 2);
      } catch {
        // plain text
      }
    }
    return text.length > MAX_BODY ? `${text.slice(0, MAX_BODY)}\n… (${text.length - MAX_BODY} more characters)` : text;
  };

  const headerText = (headers) =>
    Object.entries(headers ?? {})
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n');

  function section(detail, title, text) {
    if (!text) return;
    if (title) detail.append(el('h4', '', title));
    detail.append(el('pre', '', text));
  }

  function add(kind, cells) {
    const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 24;
    const item = el('li', `entry ${kind}`);
    const details = el('details');
    const summary = el('summary');
    summary.append(el('span', 'time', clock()), ...cells);
    const detail = el('div', 'detail');
    details.append(summary, detail);
    item.append(details);
    list.append(item);
    while (list.children.length > MAX_ENTRIES) list.firstElementChild.remove();
    if (stick) list.scrollTop = list.scrollHeight;
    return { item, summary, detail };
  }

  const statusClass = (status) => `status s${String(status)[0]}`;

  return {
    /** A request: a line now, its status and time when the answer comes. */
    http({ api, method, url, header, body, note }) {
      const status = el('span', 'status pending', '…');
      const ms = el('span', 'ms', '');
      const label = api === 'request' ? '' : api.replace(/File$/, '');
      const { item, detail } = add('http', [
        el('span', 'method', method),
        ...(label ? [el('span', `api api-${label.replace('.', '-')}`, label)] : []),
        el('span', 'url', short(url)),
        status,
        ms,
      ]);
      item.dataset.method = method;
      item.dataset.path = short(url).split('?')[0];
      if (note) detail.append(el('p', 'note', note));
      section(detail, 'Request headers', headerText(header));
      section(detail, 'Request body', show(body));
      return {
        done(result) {
          status.className = statusClass(result.status);
          status.textContent = String(result.status);
          ms.textContent = `${Math.round(result.ms)} ms`;
          item.dataset.status = String(result.status);
          section(detail, 'Response headers', headerText(result.header));
          section(detail, 'Response body', show(result.body));
        },
        fail(errMsg) {
          status.className = 'status failed';
          status.textContent = 'failed';
          item.dataset.status = 'failed';
          section(detail, 'Error', errMsg);
        },
      };
    },

    /** A WebSocket: a line for the connection, one per frame. */
    socket({ url, header, protocols }) {
      const n = ++sockets;
      const status = el('span', 'status pending', '…');
      const { item, detail } = add('ws', [el('span', 'method', 'WS'), el('span', 'url', `${short(url.replace(/^ws/, 'http'))} #${n}`), status]);
      item.dataset.path = short(url.replace(/^ws/, 'http'));
      detail.append(el('p', 'note', 'wx.connectSocket: a browser cannot send the Authorization header on a WebSocket, so the token goes as a subprotocol.'));
      section(detail, 'wx.connectSocket header', headerText(header));
      section(detail, 'Sec-WebSocket-Protocol', protocols.join(', '));
      const line = (kind, arrow, text, extra) => {
        const { item: row, detail: rowDetail } = add(`frame ${kind}`, [el('span', 'arrow', arrow), el('span', 'sock', `#${n}`), el('span', 'text', text)]);
        row.dataset.dir = kind;
        if (extra) section(rowDetail, '', extra);
        return row;
      };
      return {
        open(protocol) {
          status.className = 'status s1';
          status.textContent = `101 ${protocol}`;
          item.dataset.status = '101';
        },
        frame(dir, text) {
          const row = line(dir, dir === 'out' ? '↑' : '↓', text, show(text));
          try {
            row.dataset.type = JSON.parse(text).type;
          } catch {
            // not JSON
          }
        },
        close(code, reason) {
          line('close', '×', `closed ${code}${reason ? ` ${reason}` : ''}`);
          status.className = 'status closed';
          status.textContent = `closed ${code}`;
        },
        error(message) {
          line('error', '!', message);
        },
      };
    },

    clear() {
      list.replaceChildren();
    },
  };
}
