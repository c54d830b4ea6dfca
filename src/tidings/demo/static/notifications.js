// The "View all" page: the full history through the Feed API (filters, mark read, archive,
// load more), kept live by the bell's stream. Notification text only ever reaches the DOM as
// text, and a link is followed only when isSafeLink accepts it.
import { archive, feed, fetchToken, markRead } from '/static/tidings.js';
import { isSafeLink, relativeTime } from '/static/tidings-core.js';
import { typeIcon } from '/static/tidings-dom.js';

const PAGE = 20;
const root = document.querySelector('[data-feed]');
const list = root.querySelector('[data-list]');
const empty = root.querySelector('[data-empty]');
const errorBox = root.querySelector('[data-error]');
const more = root.querySelector('[data-action="more"]');
const typeFilter = root.querySelector('[data-type-filter]');

// One token for every Feed API call, renewed through /demo/token when the server says 401.
let cachedToken = null;
async function getToken() {
  try {
    cachedToken = await fetchToken('/demo/token');
  } catch (err) {
    if (err.status === 401) window.location.assign('/demo/login?next=/demo/notifications');
    throw err;
  }
  return cachedToken;
}
const auth = () => ({ token: cachedToken ?? undefined, getToken });

const state = { status: 'all', type: '', cursor: null, items: new Map(), loading: 0 };

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function button(label, action) {
  const b = el('button', 'btn btn-sm btn-secondary', label);
  b.type = 'button';
  b.dataset.action = action;
  return b;
}

function row(n) {
  const li = el('li', 'feed-item');
  li.dataset.id = String(n.id);
  li.dataset.type = typeof n.type === 'string' ? n.type : '';
  if (!n.read && !n.archived) li.dataset.unread = 'true';
  // The same icon as the bell's for this type (tidings-dom.js), coloured by demo.css.
  const badge = typeIcon(n.type, 'feed-icon');

  const body = el('div', 'feed-body');
  let title;
  if (isSafeLink(n.link)) {
    title = el('a', 'feed-title', n.title ?? '');
    title.href = n.link;
    title.dataset.action = 'open';
  } else {
    title = el('span', 'feed-title', n.title ?? '');
  }
  body.append(title);
  if (n.body) body.append(el('span', 'feed-text', n.body));
  const meta = el('span', 'feed-meta');
  if (!n.read && !n.archived) meta.append(el('span', 'unread-dot'));
  const time = el('time', '', relativeTime(n.created_at));
  time.dateTime = n.created_at ?? '';
  const ms = Date.parse(n.created_at);
  if (Number.isFinite(ms)) time.title = new Date(ms).toLocaleString();
  meta.append(time, el('span', '', '·'), el('span', '', String(n.type ?? '').replaceAll('_', ' ')));
  body.append(meta);

  const actions = el('div', 'feed-actions');
  if (!n.read && !n.archived) actions.append(button('Mark read', 'read'));
  if (!n.archived) actions.append(button('Archive', 'archive'));
  // The detail page: the message and its delivery log (push, e-mail digest). A button, so that
  // the only link in a row is the notification's own (when isSafeLink accepts it).
  const details = button('Delivery', 'details');
  details.classList.replace('btn-secondary', 'btn-ghost');
  details.title = 'Where this notification went besides the app';
  actions.append(details);
  li.append(badge, body, actions);
  return li;
}

function matches(n) {
  if (state.type && n.type !== state.type) return false;
  if (state.status === 'archived') return Boolean(n.archived);
  if (n.archived) return false;
  if (state.status === 'unread') return !n.read;
  return true;
}

function render() {
  const items = [...state.items.values()].filter(matches).sort((a, b) => b.id - a.id);
  list.replaceChildren(...items.map(row));
  empty.hidden = items.length > 0 || state.loading > 0;
  more.hidden = !state.cursor;
}

function showError(err) {
  errorBox.textContent = err?.message ? `Could not load notifications: ${err.message}` : 'Could not load notifications.';
  errorBox.hidden = false;
}

async function load({ reset = false } = {}) {
  if (reset) {
    state.items.clear();
    state.cursor = null;
  }
  state.loading += 1;
  list.setAttribute('aria-busy', 'true');
  errorBox.hidden = true;
  try {
    const page = await feed({ ...auth(), status: state.status, type: state.type || undefined, limit: PAGE, cursor: state.cursor ?? undefined });
    for (const n of page.items ?? []) state.items.set(n.id, n);
    state.cursor = page.next_cursor ?? null;
  } catch (err) {
    showError(err);
  } finally {
    state.loading -= 1;
    list.setAttribute('aria-busy', 'false');
    render();
  }
}

function update(ids, change) {
  for (const id of ids) {
    const n = state.items.get(id);
    if (n) state.items.set(id, { ...n, ...change });
  }
  render();
}

root.addEventListener('click', async (event) => {
  const target = event.target.closest('[data-action], [data-status]');
  if (!target) return;
  if (target.dataset.status) {
    state.status = target.dataset.status;
    for (const b of root.querySelectorAll('[data-status]')) {
      const on = b === target;
      b.classList.toggle('on', on);
      b.setAttribute('aria-pressed', String(on));
    }
    load({ reset: true });
    return;
  }
  const action = target.dataset.action;
  if (action === 'more') {
    load();
    return;
  }
  const id = Number(target.closest('[data-id]')?.dataset.id);
  if (!Number.isSafeInteger(id)) return;
  try {
    if (action === 'read') {
      await markRead([id], auth());
      update([id], { read: true });
    } else if (action === 'details') {
      window.location.assign(`/demo/notifications/${id}`);
    } else if (action === 'archive') {
      await archive([id], auth());
      update([id], { archived: true, read: true });
    } else if (action === 'open') {
      const n = state.items.get(id);
      if (n && !n.read) {
        event.preventDefault();
        await markRead([id], auth()).catch(() => {});
        window.location.assign(target.href);
      }
    }
  } catch (err) {
    showError(err);
  }
});

document.querySelector('[data-action="mark-all"]')?.addEventListener('click', async () => {
  try {
    await markRead('all', auth());
    for (const [id, n] of state.items) state.items.set(id, { ...n, read: true });
    render();
  } catch (err) {
    showError(err);
  }
});

typeFilter.addEventListener('change', () => {
  state.type = typeFilter.value;
  load({ reset: true });
});

// Live: new notifications from the bell's stream, and read/archive done in other tabs.
document.addEventListener('tidings-notification', (event) => {
  const n = event.detail?.notification;
  if (!n || state.items.has(n.id)) return;
  state.items.set(n.id, { ...n, read: false, archived: false });
  render();
});

customElements.whenDefined('tidings-bell').then(() => {
  const client = document.querySelector('tidings-bell')?.client;
  if (!client) return;
  client.on('read', (data) => {
    if (data?.all) {
      const upTo = Number(data.up_to ?? Infinity);
      update([...state.items.keys()].filter((id) => id <= upTo), { read: true });
    } else {
      update((data?.ids ?? []).map(Number), { read: true });
    }
  });
  client.on('archived', (data) => update((data?.ids ?? []).map(Number), { archived: true, read: true }));
});

setInterval(() => {
  for (const time of list.querySelectorAll('time[datetime]')) time.textContent = relativeTime(time.dateTime);
}, 30000);

load({ reset: true });
