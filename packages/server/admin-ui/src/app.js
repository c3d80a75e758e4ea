// The admin console: a hash-routed single page on Preact + htm. Every value from the server is
// rendered as text (Preact escapes it), so an openid or user agent holding markup stays text.
import { h, render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import htm from 'htm';
import { lang, t } from './i18n.js';

const html = htm.bind(h);
document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
document.title = t('title');

// ---- the API -------------------------------------------------------------------------------
let csrf = '';
const listeners = new Set();
const setAuthed = (value) => listeners.forEach((f) => f(value));

async function api(path, options = {}) {
  const init = { method: options.method ?? 'GET', headers: {}, credentials: 'same-origin' };
  if (init.method !== 'GET') {
    init.headers['content-type'] = 'application/json';
    init.headers['x-csrf-token'] = csrf;
    init.body = JSON.stringify(options.body ?? {});
  }
  const res = await fetch(`api/${path}`, init);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    if (res.status === 401 && path !== 'login') setAuthed(false);
    const error = new Error(body.error?.message ?? `HTTP ${res.status}`);
    error.code = body.error?.code;
    throw error;
  }
  return body;
}

function useApi(path, deps = []) {
  const [state, setState] = useState({ data: null, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    api(path).then((data) => live && setState({ data, error: null }), (error) => live && setState({ data: null, error }));
    return () => (live = false);
  }, [path, tick, ...deps]);
  return [state.data, state.error, () => setTick((n) => n + 1)];
}

// ---- formatting ----------------------------------------------------------------------------
const locale = lang === 'zh' ? 'zh-CN' : 'en-GB';
const when = (ms) => (ms ? new Date(ms).toLocaleString(locale, { hour12: false }) : t('never'));
const duration = (s) => {
  if (s === null || s === undefined) return t('never');
  const a = Math.abs(s);
  const text = a >= 86400 ? `${Math.floor(a / 86400)}d ${Math.floor((a % 86400) / 3600)}h` : a >= 3600 ? `${Math.floor(a / 3600)}h ${Math.floor((a % 3600) / 60)}m` : a >= 60 ? `${Math.floor(a / 60)}m ${a % 60}s` : `${a}s`;
  return s < 0 ? `-${text}` : text;
};
const bytes = (n) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
const percent = (x) => `${(x * 100).toFixed(2)}%`;

// ---- pieces --------------------------------------------------------------------------------
/** A table sortable by any column (click its header) and filtered by the text of its cells. */
function Table({ columns, rows, id }) {
  const [sort, setSort] = useState({ key: null, dir: 1 });
  const [filter, setFilter] = useState('');
  const shown = useMemo(() => {
    const needle = filter.trim().toLowerCase();
    let out = needle ? rows.filter((r) => columns.some((c) => String(c.text ? c.text(r) : r[c.key] ?? '').toLowerCase().includes(needle))) : rows.slice();
    if (sort.key) {
      const col = columns.find((c) => c.key === sort.key);
      const val = (r) => (col.sort ? col.sort(r) : col.text ? col.text(r) : r[col.key]);
      out.sort((a, b) => {
        const x = val(a), y = val(b);
        return (x === y ? 0 : x === null || x === undefined ? 1 : y === null || y === undefined ? -1 : x < y ? -1 : 1) * sort.dir;
      });
    }
    return out;
  }, [rows, filter, sort]);
  const click = (key) => setSort((s) => ({ key, dir: s.key === key ? -s.dir : 1 }));
  return html`<div class="table">
    <input class="filter" type="search" placeholder=${t('filter')} value=${filter} onInput=${(e) => setFilter(e.target.value)} />
    <div class="scroll"><table id=${id}>
      <thead><tr>${columns.map((c) => html`<th onClick=${() => click(c.key)} class=${sort.key === c.key ? (sort.dir > 0 ? 'asc' : 'desc') : ''}>${c.label}</th>`)}</tr></thead>
      <tbody>${shown.length ? shown.map((r) => html`<tr>${columns.map((c) => html`<td data-label=${c.label}>${c.render ? c.render(r) : c.text ? c.text(r) : String(r[c.key] ?? t('never'))}</td>`)}</tr>`) : html`<tr><td colspan=${columns.length} class="empty">${t('none')}</td></tr>`}</tbody>
    </table></div>
  </div>`;
}

/** A line chart of one series, drawn as SVG. */
function Chart({ label, points, field, color }) {
  const w = 360, hgt = 110, pad = 24;
  const values = points.map((p) => p[field]);
  const max = Math.max(1, ...values);
  const x = (i) => pad + (i * (w - pad - 6)) / Math.max(1, values.length - 1);
  const y = (v) => hgt - 18 - (v * (hgt - 30)) / max;
  const line = values.map((v, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const total = values.reduce((a, b) => a + b, 0);
  return html`<figure class="chart">
    <figcaption>${label} <b>${total}</b> <small>${t('lastHour')}</small></figcaption>
    <svg viewBox="0 0 ${w} ${hgt}" role="img" aria-label=${label}>
      <line x1=${pad} y1=${hgt - 18} x2=${w - 6} y2=${hgt - 18} class="axis" />
      <text x="2" y="16" class="tick">${max}</text><text x="2" y=${hgt - 18} class="tick">0</text>
      ${values.length > 1 ? html`<path d=${line} fill="none" stroke=${color} stroke-width="2" />` : html`<text x=${w / 2} y=${hgt / 2} class="tick" text-anchor="middle">${t('none')}</text>`}
    </svg>
  </figure>`;
}

function Action({ label, run, danger, id }) {
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState('');
  const click = async () => {
    if (danger && !confirm(t('confirm'))) return;
    setBusy(true);
    setMsg('');
    try {
      await run();
      setMsg(t('done'));
    } catch (error) {
      setMsg(`${error.code ?? ''} ${error.message}`);
    } finally {
      setBusy(false);
    }
  };
  return html`<span class="action"><button id=${id} class=${danger ? 'danger' : ''} disabled=${busy} onClick=${click}>${label}</button>${msg && html`<small class="msg">${msg}</small>`}</span>`;
}

const Loading = ({ error }) => html`<p class=${error ? 'error' : 'muted'}>${error ? `${error.code ?? ''} ${error.message}` : '…'}</p>`;

// ---- pages ---------------------------------------------------------------------------------
function Overview() {
  const [o, error] = useApi('overview');
  const [series] = useApi('series');
  if (!o) return html`<${Loading} error=${error} />`;
  const points = series?.points ?? [];
  const card = (label, value, id) => html`<div class="card" id=${id}><small>${label}</small><b>${value}</b></div>`;
  return html`<div class="cards">
      ${card(t('version'), o.version)}${card(t('uptime'), duration(o.uptimeSeconds))}${card(t('rps'), o.requestsPerSecond ?? t('off'))}
      ${card(t('errorRate'), o.errorRate === null ? t('off') : percent(o.errorRate))}${card(t('loginsToday'), o.loginsToday, 'logins-today')}${card(t('openSessions'), o.openSessions, 'open-sessions')}
      ${card(t('connections'), o.channelConnections ?? t('off'))}
      ${card(t('relay'), o.relay ? o.relay.online.join(', ') || t('relayNone') : t('off'), 'relay-online')}
      ${o.certificates.map((c) => card(c.names.join(', '), `${c.daysLeft} ${t('daysLeft')}`))}
    </div>
    ${o.metrics === 'off'
      ? html`<p class="muted" id="charts-note">${t('metricsOff')}</p>`
      : html`<div class="charts">
          <${Chart} label=${t('requests')} points=${points} field="requests" color="#2563eb" />
          <${Chart} label=${t('errors')} points=${points} field="errors" color="#dc2626" />
          <${Chart} label=${t('logins')} points=${points} field="logins" color="#16a34a" />
        </div>
        <p class="muted" id="charts-note"><small>${t(o.metrics === 'worker' ? 'fromWorker' : 'fromProcess')}</small></p>`}
    <h3>${t('instances')}</h3>
    <${Table} id="instances" rows=${o.instances} columns=${[
      { key: 'host', label: t('host') },
      { key: 'pid', label: t('pid') },
      { key: 'startedAt', label: t('started'), text: (r) => when(r.startedAt), sort: (r) => r.startedAt },
      { key: 'self', label: '', text: (r) => (r.self ? t('self') : '') },
    ]} />`;
}

function Users() {
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  const [picked, setPicked] = useState(null);
  const [data, error] = useApi(`users?q=${encodeURIComponent(query)}`);
  return html`<form class="search" onSubmit=${(e) => (e.preventDefault(), setQuery(q), setPicked(null))}>
      <input id="user-search" type="search" placeholder=${t('search')} value=${q} onInput=${(e) => setQ(e.target.value)} />
      <button type="submit">${t('go')}</button>
    </form>
    ${!data ? html`<${Loading} error=${error} />` : html`<${Table} id="users" rows=${data.users} columns=${[
      { key: 'appid', label: t('appid') },
      { key: 'openid', label: t('openid'), render: (r) => html`<a href="#" class="openid" onClick=${(e) => (e.preventDefault(), setPicked(r))}>${r.openid}</a>` , text: (r) => r.openid },
      { key: 'unionid', label: t('unionid') },
      { key: 'lastSeenAt', label: t('lastSeen'), text: (r) => when(r.lastSeenAt), sort: (r) => r.lastSeenAt },
    ]} />`}
    ${picked && html`<${Sessions} key=${picked.appid + picked.openid} user=${picked} />`}`;
}

function Sessions({ user }) {
  const path = `users/${encodeURIComponent(user.appid)}/${encodeURIComponent(user.openid)}`;
  const [data, error, reload] = useApi(`${path}/sessions`);
  return html`<section class="panel" id="sessions">
    <h3>${t('sessionsOf')} ${user.openid}</h3>
    <${Action} id="revoke-all" label=${t('revokeAll')} danger=${true} run=${async () => (await api(`${path}/revoke`, { method: 'POST' }), reload())} />
    ${!data ? html`<${Loading} error=${error} />` : html`<${Table} id="session-table" rows=${data.sessions} columns=${[
      { key: 'createdAt', label: t('created'), text: (r) => when(r.createdAt), sort: (r) => r.createdAt },
      { key: 'lastSeenAt', label: t('lastSeen'), text: (r) => when(r.lastSeenAt), sort: (r) => r.lastSeenAt },
      { key: 'status', label: t('status'), render: (r) => html`<span class=${`pill ${r.status}`}>${r.status}</span>`, text: (r) => r.status },
      { key: 'clientAddress', label: t('address') },
      { key: 'userAgent', label: t('userAgent'), render: (r) => html`<span class="ua">${r.userAgent ?? t('never')}</span>`, text: (r) => r.userAgent ?? '' },
      { key: 'id', label: '', render: (r) => (r.status === 'active' ? html`<${Action} label=${t('revoke')} danger=${true} run=${async () => (await api(`sessions/${r.id}/revoke`, { method: 'POST' }), reload())} />` : ''), text: () => '' },
    ]} />`}
  </section>`;
}

function Tokens() {
  const [data, error, reload] = useApi('tokens');
  if (!data) return html`<${Loading} error=${error} />`;
  return html`<${Table} id="tokens" rows=${data.apps} columns=${[
    { key: 'appid', label: t('appid') },
    { key: 'tokenMode', label: t('mode') },
    { key: 'ageSeconds', label: t('tokenAge'), text: (r) => duration(r.ageSeconds), sort: (r) => r.ageSeconds },
    { key: 'expiresInSeconds', label: t('expiresIn'), text: (r) => duration(r.expiresInSeconds), sort: (r) => r.expiresInSeconds },
    { key: 'refreshes', label: t('refreshes') },
    { key: 'forcedRefreshes', label: t('forced') },
    { key: 'lastError', label: t('lastError'), text: (r) => (r.lastError ? `${when(r.lastError.at)} ${r.lastError.code} ${r.lastError.message}` : t('never')) },
    { key: 'refresh', label: '', render: (r) => html`<${Action} id=${`refresh-${r.appid}`} label=${t('forceRefresh')} danger=${true} run=${async () => (await api(`tokens/${r.appid}/refresh`, { method: 'POST' }), reload())} />`, text: () => '' },
  ]} />`;
}

function Channels() {
  const [data, error] = useApi('channels');
  const [room, setRoom] = useState(null);
  if (!data) return html`<${Loading} error=${error} />`;
  return html`<p class="muted">${t('connections')}: <b>${data.connections}</b></p>
    <${Table} id="rooms" rows=${data.rooms} columns=${[
      { key: 'room', label: t('room'), render: (r) => html`<a href="#" onClick=${(e) => (e.preventDefault(), setRoom(r.room))}>${r.room}</a>`, text: (r) => r.room },
      { key: 'users', label: t('members') },
    ]} />
    <form class="search" onSubmit=${(e) => (e.preventDefault(), setRoom(e.target.elements.room.value))}>
      <input name="room" placeholder=${t('room')} value=${room ?? ''} /><button type="submit">${t('go')}</button>
    </form>
    ${room && html`<${Room} key=${room} name=${room} />`}`;
}

function Room({ name }) {
  const [data, error, reload] = useApi(`channels/${encodeURIComponent(name)}`);
  const [event, setEvent] = useState('notice');
  const [body, setBody] = useState('{"text":"hello"}');
  return html`<section class="panel"><h3>${t('room')} ${name}</h3>
    ${!data ? html`<${Loading} error=${error} />` : html`
      <p>${t('members')}: ${data.members.length ? data.members.join(', ') : t('none')}</p>
      <${Table} id="history" rows=${data.history} columns=${[
        { key: 'ts', label: t('at'), text: (r) => when(r.ts), sort: (r) => r.ts },
        { key: 'from', label: t('from'), text: (r) => (typeof r.from === 'string' ? r.from : JSON.stringify(r.from ?? 'server')) },
        { key: 'event', label: t('event') },
        { key: 'data', label: t('data'), text: (r) => JSON.stringify(r.data) },
      ]} />`}
    <div class="publish">
      <input value=${event} onInput=${(e) => setEvent(e.target.value)} placeholder=${t('event')} />
      <input value=${body} onInput=${(e) => setBody(e.target.value)} placeholder=${t('data')} />
      <${Action} label=${t('publish')} run=${async () => {
        let data;
        try { data = JSON.parse(body); } catch { data = body; }
        await api(`channels/${encodeURIComponent(name)}/publish`, { method: 'POST', body: { event, data } });
        reload();
      }} />
    </div></section>`;
}

function Files() {
  const [owner, setOwner] = useState('');
  const [query, setQuery] = useState('');
  const [data, error, reload] = useApi(`files?owner=${encodeURIComponent(query)}`);
  return html`<form class="search" onSubmit=${(e) => (e.preventDefault(), setQuery(owner))}>
      <input type="search" placeholder=${t('owner')} value=${owner} onInput=${(e) => setOwner(e.target.value)} /><button type="submit">${t('go')}</button>
    </form>
    ${!data ? html`<${Loading} error=${error} />` : html`
      <p class="muted">${t('storage')}: <b>${bytes(data.used.bytes)}</b> (${data.used.files} ${t('files_count')})</p>
      <${Table} id="files" rows=${data.files} columns=${[
        { key: 'name', label: t('fileName') },
        { key: 'openid', label: t('owner') },
        { key: 'contentType', label: t('type') },
        { key: 'size', label: t('size'), text: (r) => bytes(r.size), sort: (r) => r.size },
        { key: 'createdAt', label: t('created'), text: (r) => when(r.createdAt), sort: (r) => r.createdAt },
        { key: 'id', label: '', render: (r) => html`<${Action} label=${t('delete')} danger=${true} run=${async () => (await api(`files/${r.id}/delete`, { method: 'POST' }), reload())} />`, text: () => '' },
      ]} />`}`;
}

function Outbox() {
  const [status, setStatus] = useState('');
  const [data, error, reload] = useApi(`outbox?status=${status}`);
  useEffect(() => {
    const timer = setInterval(reload, 3000);
    return () => clearInterval(timer);
  }, []);
  return html`<div class="tabs">${['', 'pending', 'failed', 'delivered'].map((s) => html`<button class=${s === status ? 'on' : ''} onClick=${() => setStatus(s)}>${t(s || 'all')}</button>`)}</div>
    ${!data ? html`<${Loading} error=${error} />` : html`<${Table} id="outbox" rows=${data.deliveries} columns=${[
      { key: 'createdAt', label: t('created'), text: (r) => when(r.createdAt), sort: (r) => r.createdAt },
      { key: 'kind', label: t('kind') },
      { key: 'appid', label: t('appid') },
      { key: 'status', label: t('status'), render: (r) => html`<span class=${`pill ${r.status}`}>${t(r.status)}</span>`, text: (r) => r.status },
      { key: 'attempts', label: t('attempts') },
      { key: 'lastError', label: t('lastError'), render: (r) => html`<code>${r.lastError ?? t('never')}</code>`, text: (r) => r.lastError ?? '' },
      { key: 'id', label: '', render: (r) => (r.status === 'delivered' ? '' : html`<${Action} id=${`retry-${r.id}`} label=${t('retry')} run=${async () => (await api(`outbox/${r.id}/retry`, { method: 'POST' }), reload())} />`), text: () => '' },
    ]} />`}`;
}

function Certificates() {
  const [data, error, reload] = useApi('certificates');
  if (!data) return html`<${Loading} error=${error} />`;
  const check = data.check;
  return html`<${Table} id="certificates" rows=${data.certificates} columns=${[
      { key: 'names', label: t('names'), text: (r) => r.names.join(', ') },
      { key: 'issuer', label: t('issuer') },
      { key: 'notAfter', label: t('expires'), text: (r) => when(Date.parse(r.notAfter)), sort: (r) => r.notAfter },
      { key: 'daysLeft', label: t('daysLeft') },
      { key: 'source', label: t('source') },
    ]} />
    <h3>${t('acme')}</h3>
    <p>${data.acme.enabled ? html`${t('enabled')} · ${t('domains')}: ${data.acme.domains.join(', ')} · ${t('directory')}: ${data.acme.directory} · ${data.acme.certificate ? `${data.acme.certificate.daysLeft} ${t('daysLeft')}` : '—'}` : t('disabled')}</p>
    <h3>${t('lastCheck')}</h3>
    <${Action} id="check-now" label=${t('checkNow')} run=${async () => (await api('check', { method: 'POST' }), reload())} />
    ${check ? html`<p class="muted">${when(check.at)}</p><${Table} id="check" rows=${check.report.results.flatMap((r) => r.checks.map((c) => ({ url: r.url, ...c })))} columns=${[
      { key: 'url', label: t('url') },
      { key: 'title', label: t('check') },
      { key: 'verdict', label: t('verdict'), render: (r) => html`<span class=${`pill ${r.verdict}`}>${r.verdict}</span>`, text: (r) => r.verdict },
      { key: 'detail', label: t('detail') },
    ]} />` : html`<p class="muted">${t('noCheck')}</p>`}`;
}

function Audit() {
  const [data, error] = useApi('audit');
  if (!data) return html`<${Loading} error=${error} />`;
  return html`<${Table} id="audit" rows=${data.entries} columns=${[
    { key: 'at', label: t('at'), text: (r) => when(r.at), sort: (r) => r.at },
    { key: 'actor', label: t('actor') },
    { key: 'action', label: t('action') },
    { key: 'target', label: t('target') },
    { key: 'address', label: t('address') },
    { key: 'detail', label: t('detail') },
  ]} />`;
}

const PAGES = { overview: Overview, users: Users, tokens: Tokens, channels: Channels, files: Files, outbox: Outbox, certificates: Certificates, audit: Audit };

function Login({ onDone }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    setBusy(true);
    setError('');
    try {
      const answer = await api('login', { method: 'POST', body: { name: f.name.value, password: f.password.value, totp: f.totp.value || undefined } });
      csrf = answer.csrf;
      onDone(answer.name);
    } catch (err) {
      setError(err.code === 'ADMIN_LOGIN_FAILED' ? t('loginFailed') : err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="login" onSubmit=${submit}>
    <h1>${t('title')}</h1>
    <label>${t('name')}<input name="name" autocomplete="username" required /></label>
    <label>${t('password')}<input name="password" type="password" autocomplete="current-password" required /></label>
    <label>${t('totp')}<input name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" /></label>
    <button type="submit" disabled=${busy}>${t('login')}</button>
    ${error && html`<p class="error" id="login-error">${error}</p>`}
  </form>`;
}

function App() {
  const [who, setWho] = useState(undefined);
  const [page, setPage] = useState(location.hash.slice(2) || 'overview');
  useEffect(() => {
    const onAuth = (value) => !value && setWho(null);
    listeners.add(onAuth);
    api('session').then((s) => ((csrf = s.csrf), setWho(s.name)), () => setWho(null));
    const onHash = () => setPage(location.hash.slice(2) || 'overview');
    addEventListener('hashchange', onHash);
    return () => (listeners.delete(onAuth), removeEventListener('hashchange', onHash));
  }, []);
  if (who === undefined) return html`<p class="muted">…</p>`;
  if (who === null) return html`<${Login} onDone=${setWho} />`;
  const Page = PAGES[page] ?? Overview;
  return html`<div class="shell">
    <nav>
      <b class="brand">minigate</b>
      ${Object.keys(PAGES).map((p) => html`<a href=${`#/${p}`} id=${`nav-${p}`} class=${p === page ? 'on' : ''}>${t(p)}</a>`)}
      <span class="who">${who} <button class="link" onClick=${async () => (await api('logout', { method: 'POST' }).catch(() => undefined), setWho(null))}>${t('logout')}</button></span>
    </nav>
    <main><h2>${t(PAGES[page] ? page : 'overview')}</h2><${Page} key=${page} /></main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('root'));
