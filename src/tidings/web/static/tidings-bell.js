/**
 * <tidings-bell> — a notification bell for any page: unread badge, connection dot, a dropdown of
 * the latest five, and toasts for live notifications.
 *
 *   <script type="module" src="https://tidings.example.com/static/tidings-bell.js"></script>
 *   <tidings-bell token-url="/api/tidings-token" view-all-url="/notifications"></tidings-bell>
 *
 * Attributes: token | token-url, stream-url, api-base, view-all-url, preferences-url, channel,
 * shared ("false" for one connection per tab), no-toasts, align ("left"), locale, theme ("dark"),
 * sw-url (the service worker for Web Push; default /static/sw.js next to this file), no-push.
 * Stable selectors (open shadow root): [part=button] [part=badge] [part=dot][data-state]
 * [part=panel] [part=item][data-id][data-unread] [part=mark-all] [part=view-all]
 * [part=preferences] [part=enable-push][data-state=off|on|busy|denied|error] [part=toast].
 *
 * Web Push: where the browser has it ('PushManager' in window, navigator.serviceWorker) and the
 * service worker is same-origin with the page, the panel footer has an "Enable push" button
 * (./tidings-push.js with the bell's api-base and token): off → "Enable push", on → "Push on"
 * (a click turns it off), permission refused → "Push blocked". It emits `tidings-push` events
 * ({ detail: { state, error } }).
 *
 * Security: every piece of notification data reaches the DOM through textContent or an
 * attribute; nothing is parsed as HTML. A link is followed only when `isSafeLink` accepts it.
 */

import { connect } from './tidings.js';
import { disablePush, enablePush, pushState } from './tidings-push.js';
import {
  LATEST_LIMIT,
  applyArchived,
  applyNotification,
  applyRead,
  badgeText,
  iconName,
  isSafeLink,
  normalizeSnapshot,
  normalizeUnread,
  relativeTime,
  toEpochMs,
  withLatest,
} from './tidings-core.js';

const TOAST_MS = 6000;
const MAX_TOASTS = 3;
const TICK_MS = 30000;
/** Replayed (not live) notifications younger than this were missed during a drop: toast them. */
const FRESH_REPLAY_MS = 60000;
const NAV_WAIT_MS = 400;
/** The open panel keeps at least this many pixels from the viewport's edges. */
const PANEL_MARGIN = 8;

const STATE_TITLES = {
  open: 'Live',
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
  closed: 'Offline',
};

// The default stream and API live next to this file: .../static/tidings-bell.js → .../v1/stream.
// Same-origin pages get "/v1/stream" and "", cross-origin embeds and path prefixes just work.
const DEFAULT_STREAM_URL = new URL('../v1/stream', import.meta.url).href;
const DEFAULT_API_BASE = new URL('..', import.meta.url).href.replace(/\/$/, '');
const DEFAULT_SW_URL = new URL('./sw.js', import.meta.url).href;

const PUSH_LABELS = {
  off: 'Enable push',
  on: 'Push on',
  busy: 'Enabling…',
  denied: 'Push blocked',
  error: 'Push failed — retry',
};
const PUSH_TITLES = {
  off: 'Get notifications on this device when the dashboard is closed',
  on: 'Push is on for this device; click to turn it off',
  denied: 'Notifications are blocked for this site in the browser settings',
};

// ---------------------------------------------------------------------------------------------
// Icons: static shapes (24×24, stroked), built with createElementNS — never from data.

const CAL = [
  ['rect', { x: 3, y: 4, width: 18, height: 18, rx: 2 }],
  ['path', { d: 'M16 2v4M8 2v4M3 10h18' }],
];
const PERSON = [
  ['circle', { cx: 9, cy: 7, r: 4 }],
  ['path', { d: 'M2 21v-1a7 7 0 0 1 14 0v1' }],
];
const SHAPES = {
  bell: [['path', { d: 'M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9M10.3 21a1.94 1.94 0 0 0 3.4 0' }]],
  'calendar-plus': [...CAL, ['path', { d: 'M12 13v6M9 16h6' }]],
  'calendar-check': [...CAL, ['path', { d: 'm9 16 2 2 4-4' }]],
  'calendar-x': [...CAL, ['path', { d: 'm10 14 4 4M14 14l-4 4' }]],
  'check-circle': [['circle', { cx: 12, cy: 12, r: 10 }], ['path', { d: 'm8 12 3 3 5-6' }]],
  'user-x': [...PERSON, ['path', { d: 'm17 8 5 5M22 8l-5 5' }]],
  'user-plus': [...PERSON, ['path', { d: 'M19 8v6M16 11h6' }]],
  'credit-card': [['rect', { x: 2, y: 5, width: 20, height: 14, rx: 2 }], ['path', { d: 'M2 10h20M6 15h4' }]],
  'alert-triangle': [
    ['path', { d: 'M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z' }],
    ['path', { d: 'M12 9v4M12 17h.01' }],
  ],
  clock: [['circle', { cx: 12, cy: 12, r: 10 }], ['path', { d: 'M12 6v6l4 2' }]],
  info: [['circle', { cx: 12, cy: 12, r: 10 }], ['path', { d: 'M12 16v-4M12 8h.01' }]],
};

const SVG_NS = 'http://www.w3.org/2000/svg';

function svgIcon(name) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  const attrs = {
    viewBox: '0 0 24 24',
    fill: 'none',
    stroke: 'currentColor',
    'stroke-width': '2',
    'stroke-linecap': 'round',
    'stroke-linejoin': 'round',
    'aria-hidden': 'true',
    focusable: 'false',
  };
  for (const [k, v] of Object.entries(attrs)) svg.setAttribute(k, v);
  for (const [tag, shapeAttrs] of SHAPES[name] ?? SHAPES.bell) {
    const shape = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(shapeAttrs)) shape.setAttribute(k, String(v));
    svg.append(shape);
  }
  return svg;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = String(v);
    else if (k === 'className') node.className = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  node.append(...children.filter(Boolean));
  return node;
}

async function fetchToken(tokenUrl) {
  const response = await fetch(tokenUrl, {
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { Accept: 'application/json' },
  });
  if (!response.ok) throw new Error(`tidings: ${tokenUrl} answered ${response.status}`);
  const body = await response.json();
  if (!body || typeof body.token !== 'string') throw new Error(`tidings: ${tokenUrl} sent no token`);
  return body.token;
}

const STYLES = `
:host {
  --_accent: var(--tidings-accent, #4f46e5);
  --_bg: var(--tidings-bg, #ffffff);
  --_fg: var(--tidings-fg, #111827);
  --_muted: var(--tidings-muted, #6b7280);
  --_border: var(--tidings-border, #e5e7eb);
  --_hover: var(--tidings-hover, #f3f4f6);
  --_unread: var(--tidings-unread-bg, #f5f6ff);
  --_radius: var(--tidings-radius, 12px);
  --_shadow: var(--tidings-shadow, 0 12px 32px rgba(17, 24, 39, 0.12), 0 2px 6px rgba(17, 24, 39, 0.06));
  display: inline-block;
  position: relative;
  font-family: var(--tidings-font, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif);
  font-size: 14px;
  line-height: 1.4;
  color: var(--_fg);
}
:host([hidden]) { display: none; }
:host([theme="dark"]) {
  --_bg: var(--tidings-bg, #1f2937);
  --_fg: var(--tidings-fg, #f9fafb);
  --_muted: var(--tidings-muted, #9ca3af);
  --_border: var(--tidings-border, #374151);
  --_hover: var(--tidings-hover, #273244);
  --_unread: var(--tidings-unread-bg, #252f4a);
  --_accent: var(--tidings-accent, #818cf8);
}
[hidden] { display: none !important; }
button { font: inherit; color: inherit; }
.sr-only {
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap;
}
.bell {
  position: relative; display: inline-grid; place-items: center;
  width: var(--tidings-button-size, 40px); height: var(--tidings-button-size, 40px);
  padding: 0; border: 0; border-radius: 999px; cursor: pointer;
  background: var(--tidings-button-bg, transparent); color: var(--tidings-button-fg, currentColor);
  transition: background-color 0.15s;
}
.bell:hover { background: var(--_hover); }
.bell:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
.bell > svg { width: 22px; height: 22px; }
.badge {
  position: absolute; top: 1px; right: 1px; box-sizing: border-box;
  min-width: 18px; height: 18px; padding: 0 5px; border-radius: 9px;
  background: var(--tidings-badge-bg, #ef4444); color: var(--tidings-badge-fg, #ffffff);
  font-size: 11px; font-weight: 700; line-height: 18px; text-align: center;
  font-variant-numeric: tabular-nums; box-shadow: 0 0 0 2px var(--_bg); pointer-events: none;
}
.dot {
  position: absolute; bottom: 6px; right: 6px; width: 8px; height: 8px; border-radius: 50%;
  background: var(--tidings-dot-closed, #9ca3af); box-shadow: 0 0 0 2px var(--_bg);
  transition: background-color 0.3s;
}
.dot[data-state="open"] { background: var(--tidings-dot-open, #22c55e); }
.dot[data-state="connecting"], .dot[data-state="reconnecting"] { background: var(--tidings-dot-connecting, #f59e0b); }
.panel {
  position: absolute; top: calc(100% + 8px); right: 0; z-index: var(--tidings-z, 1000);
  width: var(--tidings-panel-width, 360px); max-width: calc(100vw - 16px); box-sizing: border-box;
  background: var(--_bg); color: var(--_fg); border: 1px solid var(--_border);
  border-radius: var(--_radius); box-shadow: var(--_shadow); overflow: hidden; text-align: left;
}
:host([align="left"]) .panel { right: auto; left: 0; }
.head {
  display: flex; align-items: center; justify-content: space-between; gap: 8px;
  padding: 12px 12px 12px 16px; border-bottom: 1px solid var(--_border);
}
.heading { margin: 0; font-size: 15px; font-weight: 600; }
.text-btn {
  border: 0; background: none; padding: 4px 8px; border-radius: 6px; cursor: pointer;
  color: var(--_accent); font-size: 13px; font-weight: 500;
}
.text-btn:hover:not(:disabled) { background: var(--_hover); }
.text-btn:disabled { color: var(--_muted); cursor: default; opacity: 0.7; }
.text-btn:focus-visible, .foot a:focus-visible { outline: 2px solid var(--_accent); outline-offset: 1px; }
.list { list-style: none; margin: 0; padding: 4px 0; max-height: var(--tidings-list-max-height, 420px); overflow-y: auto; }
.item {
  position: relative; display: flex; align-items: flex-start; gap: 12px; box-sizing: border-box;
  width: 100%; padding: 10px 14px 10px 16px; border: 0; background: transparent;
  text-align: left; cursor: pointer;
}
.item:hover { background: var(--_hover); }
.item[data-unread] { background: var(--_unread); }
.item[data-unread]:hover { background: var(--_hover); }
.item:focus-visible { outline: 2px solid var(--_accent); outline-offset: -2px; }
.icon {
  --_c: var(--_accent);
  flex: none; display: grid; place-items: center; width: 32px; height: 32px; border-radius: 50%;
  color: var(--_c); background: color-mix(in srgb, var(--_c) 13%, transparent);
}
.icon > svg { width: 16px; height: 16px; }
.icon[data-icon="credit-card"], .icon[data-icon="check-circle"] { --_c: var(--tidings-success, #16a34a); }
.icon[data-icon="alert-triangle"], .icon[data-icon="calendar-x"] { --_c: var(--tidings-danger, #dc2626); }
.icon[data-icon="clock"], .icon[data-icon="user-x"] { --_c: var(--tidings-warning, #d97706); }
.icon[data-icon="user-plus"] { --_c: var(--tidings-info, #7c3aed); }
.icon[data-icon="info"] { --_c: var(--_muted); }
.text { flex: 1; min-width: 0; display: flex; flex-direction: column; gap: 2px; }
.title { overflow-wrap: anywhere; }
.item[data-unread] .title { font-weight: 600; }
.body {
  color: var(--_muted); font-size: 13px; overflow-wrap: anywhere;
  display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden;
}
.time { color: var(--_muted); font-size: 12px; }
.mark { flex: none; width: 8px; height: 8px; margin-top: 6px; border-radius: 50%; background: var(--_accent); visibility: hidden; }
.item[data-unread] .mark { visibility: visible; }
.empty { margin: 0; padding: 32px 16px; text-align: center; color: var(--_muted); }
.foot {
  display: flex; align-items: center; justify-content: space-between; gap: 8px;
  padding: 10px 16px; border-top: 1px solid var(--_border);
}
.foot a { color: var(--_accent); font-size: 13px; font-weight: 500; text-decoration: none; border-radius: 4px; }
.foot a:hover { text-decoration: underline; }
.foot { flex-wrap: wrap; }
.push-btn[data-state="on"] { color: var(--tidings-success, #16a34a); }
.push-btn[data-state="denied"], .push-btn[data-state="error"] { color: var(--_muted); }
.toasts {
  position: fixed; z-index: var(--tidings-toast-z, 2147483000);
  right: var(--tidings-toast-right, 16px); bottom: var(--tidings-toast-bottom, 16px);
  display: flex; flex-direction: column; gap: 8px;
  width: var(--tidings-toast-width, 340px); max-width: calc(100vw - 32px); pointer-events: none;
}
.toast {
  pointer-events: auto; display: flex; align-items: flex-start;
  background: var(--_bg); color: var(--_fg); border: 1px solid var(--_border);
  border-radius: var(--_radius); box-shadow: var(--_shadow);
  animation: tidings-in 0.18s ease-out;
}
.toast-main {
  flex: 1; min-width: 0; display: flex; align-items: flex-start; gap: 12px;
  padding: 12px 0 12px 14px; border: 0; background: none; text-align: left; cursor: pointer;
  border-radius: var(--_radius);
}
.toast-main:focus-visible, .toast-close:focus-visible { outline: 2px solid var(--_accent); outline-offset: -2px; }
.toast-main .title { font-weight: 600; }
.toast-close {
  flex: none; border: 0; background: none; cursor: pointer; color: var(--_muted);
  padding: 8px 10px; margin: 4px; border-radius: 8px; font-size: 18px; line-height: 1;
}
.toast-close:hover { background: var(--_hover); color: var(--_fg); }
@keyframes tidings-in { from { opacity: 0; transform: translateY(8px); } }
@media (prefers-reduced-motion: reduce) { .toast { animation: none; } .dot, .bell { transition: none; } }
`;

let panelSeq = 0;

export class TidingsBell extends HTMLElement {
  static observedAttributes = [
    'token',
    'token-url',
    'stream-url',
    'api-base',
    'channel',
    'shared',
    'view-all-url',
    'preferences-url',
    'locale',
    'sw-url',
    'no-push',
  ];

  #client = null;
  #unsubscribe = [];
  #view = normalizeSnapshot({});
  #state = 'connecting';
  #open = false;
  #ticker = null;
  #reconnectQueued = false;
  #refreshSeq = 0;
  #push = 'unsupported';
  #pushSeq = 0;
  #ui;

  constructor() {
    super();
    this.attachShadow({ mode: 'open' });
    this.#ui = this.#build();
    this.#renderBadge();
    this.#renderDot();
    this.#renderList();
    this.#renderFooter();
  }

  // -- public surface -------------------------------------------------------------------------

  /** The connect() client (null while disconnected). */
  get client() {
    return this.#client;
  }

  /** The unread count as shown by the badge (the server caps it at 99; see `unreadMore`). */
  get unread() {
    return this.#view.unread.count;
  }

  /** True when there are more unread notifications than `unread` says (100 or more). */
  get unreadMore() {
    return this.#view.unread.more;
  }

  /** The current view: {unread, latest_seq, latest}. */
  get view() {
    return this.#view;
  }

  get state() {
    return this.#state;
  }

  get expanded() {
    return this.#open;
  }

  show() {
    this.#setOpen(true, { focus: true });
  }

  hide() {
    this.#setOpen(false);
  }

  // -- lifecycle ------------------------------------------------------------------------------

  connectedCallback() {
    this.#connect();
    this.#syncPush();
    this.#ticker = setInterval(() => this.#tick(), TICK_MS);
    document.addEventListener('pointerdown', this.#onDocumentPointer, true);
    window.addEventListener('resize', this.#onResize);
  }

  disconnectedCallback() {
    this.#disconnect();
    clearInterval(this.#ticker);
    this.#ticker = null;
    document.removeEventListener('pointerdown', this.#onDocumentPointer, true);
    window.removeEventListener('resize', this.#onResize);
    for (const toast of [...this.#ui.toasts.children]) this.#dismiss(toast);
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue === newValue) return;
    if (name === 'view-all-url' || name === 'preferences-url') {
      this.#renderFooter();
      return;
    }
    if (name === 'locale') {
      this.#tick();
      return;
    }
    if (name === 'sw-url' || name === 'no-push') {
      this.#syncPush();
      return;
    }
    if (!this.isConnected || !this.#client || this.#reconnectQueued) return;
    this.#reconnectQueued = true; // several attributes often change together: reconnect once
    queueMicrotask(() => {
      this.#reconnectQueued = false;
      if (this.isConnected) this.#connect();
    });
  }

  #connect() {
    this.#disconnect();
    const tokenUrl = this.getAttribute('token-url');
    const client = connect({
      url: this.getAttribute('stream-url') || DEFAULT_STREAM_URL,
      apiBase: this.getAttribute('api-base') ?? DEFAULT_API_BASE,
      token: this.getAttribute('token') || undefined,
      getToken: tokenUrl ? () => fetchToken(tokenUrl) : undefined,
      channel: this.getAttribute('channel') || 'default',
      shared: this.getAttribute('shared') !== 'false',
    });
    this.#client = client;
    this.#unsubscribe = [
      client.on('ready', (view) => this.#onSnapshot(view)),
      client.on('reset', (view) => {
        this.#onSnapshot(view);
        this.#refresh();
      }),
      client.on('notification', (n, meta) => this.#onNotification(n, meta)),
      client.on('read', (data) => this.#update(applyRead(this.#view, data))),
      client.on('archived', (data) => this.#onArchived(data)),
      client.on('state', (state) => this.#onState(state)),
    ];
    this.#onState(client.state);
  }

  #disconnect() {
    for (const off of this.#unsubscribe) off();
    this.#unsubscribe = [];
    if (this.#client) {
      this.#client.close();
      this.#client = null;
      this.#onState('closed');
    }
  }

  // -- events ---------------------------------------------------------------------------------

  #onSnapshot(view) {
    this.#update(normalizeSnapshot(view));
  }

  #onNotification(n, meta = {}) {
    this.#update(applyNotification(this.#view, n).view);
    const fresh = Date.now() - toEpochMs(n.created_at) < FRESH_REPLAY_MS;
    const toast = Boolean(meta.live) || fresh;
    this.dispatchEvent(
      new CustomEvent('tidings-notification', { detail: { notification: n, live: Boolean(meta.live) }, bubbles: true, composed: true }),
    );
    if (toast && !this.hasAttribute('no-toasts')) this.#toast(n);
  }

  #onArchived(data) {
    const before = this.#view.latest.length;
    this.#update(applyArchived(this.#view, data));
    if (before >= LATEST_LIMIT && this.#view.latest.length < LATEST_LIMIT) this.#refresh();
    const ids = new Set((data?.ids ?? []).map(Number));
    for (const toast of [...this.#ui.toasts.children]) {
      if (ids.has(Number(toast.dataset.id))) this.#dismiss(toast);
    }
  }

  #onState(state) {
    if (state === this.#state) return;
    this.#state = state;
    this.#renderDot();
    this.#renderBadge();
    this.dispatchEvent(new CustomEvent('tidings-state', { detail: { state }, bubbles: true, composed: true }));
  }

  #update(view) {
    this.#view = view;
    this.#renderBadge();
    this.#renderList();
  }

  /** Re-reads the latest five from the Feed API (after reset, or when archiving emptied slots). */
  async #refresh() {
    const client = this.#client;
    if (!client) return;
    const seq = ++this.#refreshSeq;
    try {
      const page = await client.feed({ limit: LATEST_LIMIT });
      if (seq !== this.#refreshSeq || client !== this.#client) return;
      this.#update(withLatest(this.#view, page?.items ?? []));
    } catch {
      // the next ready/reset brings the truth
    }
  }

  /** After a failed optimistic update: feed and count from the server. */
  async #resync() {
    const client = this.#client;
    if (!client) return;
    try {
      const [page, unread] = await Promise.all([client.feed({ limit: LATEST_LIMIT }), client.unreadCount()]);
      if (client !== this.#client) return;
      this.#update({ ...withLatest(this.#view, page?.items ?? []), unread: normalizeUnread(unread) });
    } catch {
      // offline: the next ready brings the truth
    }
  }

  async #activate(n, event) {
    const detail = { notification: n };
    const proceed = this.dispatchEvent(
      new CustomEvent('tidings-click', { detail, bubbles: true, composed: true, cancelable: true }),
    );
    let pending = null;
    if (!n.read && this.#client) {
      this.#update(applyRead(this.#view, { ids: [n.id] }));
      pending = this.#client.markRead([n.id]).catch(() => this.#resync());
    }
    if (!proceed || !isSafeLink(n.link)) return;
    if (event && (event.ctrlKey || event.metaKey || event.shiftKey)) {
      window.open(n.link, '_blank', 'noopener');
      return;
    }
    this.#setOpen(false);
    // Give the mark-read a moment to leave before the page goes (same-origin uses keepalive).
    if (pending) await Promise.race([pending, new Promise((r) => setTimeout(r, NAV_WAIT_MS))]);
    window.location.assign(n.link);
  }

  #markAll() {
    const client = this.#client;
    if (!client) return;
    this.#update(applyRead(this.#view, { all: true, up_to: client.lastId ?? undefined }));
    client
      .markRead('all')
      .then((answer) => {
        if (answer?.unread && client === this.#client) {
          this.#update({ ...this.#view, unread: normalizeUnread(answer.unread) });
        }
      })
      .catch(() => this.#resync());
  }

  // -- DOM ------------------------------------------------------------------------------------

  #build() {
    const root = this.shadowRoot;
    const panelId = `tidings-panel-${++panelSeq}`;
    const headingId = `${panelId}-heading`;

    const badge = el('span', { part: 'badge', className: 'badge', 'aria-hidden': 'true', hidden: true });
    const dot = el('span', { part: 'dot', className: 'dot', 'data-state': 'connecting', 'aria-hidden': 'true' });
    const button = el(
      'button',
      { part: 'button', className: 'bell', type: 'button', 'aria-haspopup': 'dialog', 'aria-expanded': 'false', 'aria-controls': panelId },
      svgIcon('bell'),
      badge,
      dot,
    );

    const markAll = el('button', { part: 'mark-all', className: 'text-btn', type: 'button', text: 'Mark all as read' });
    const list = el('ul', { part: 'list', className: 'list', role: 'list', 'aria-labelledby': headingId });
    const empty = el('p', { className: 'empty', text: 'You’re all caught up' });
    const viewAll = el('a', { part: 'view-all', text: 'View all' });
    const prefs = el('a', { part: 'preferences', text: 'Preferences' });
    const push = el('button', { part: 'enable-push', className: 'text-btn push-btn', type: 'button', hidden: true });
    const foot = el('div', { className: 'foot' }, viewAll, prefs, push);
    const panel = el(
      'div',
      { part: 'panel', className: 'panel', id: panelId, role: 'dialog', 'aria-labelledby': headingId, tabindex: '-1', hidden: true },
      el('div', { className: 'head' }, el('h2', { className: 'heading', id: headingId, text: 'Notifications' }), markAll),
      list,
      empty,
      foot,
    );
    const toasts = el('div', { part: 'toasts', className: 'toasts', 'aria-live': 'polite', 'aria-atomic': 'false', 'aria-relevant': 'additions' });

    root.append(el('style', { text: STYLES }), button, panel, toasts);

    button.addEventListener('click', () => this.#setOpen(!this.#open, { focus: true }));
    button.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        this.#setOpen(true, { focus: e.key === 'ArrowDown' ? 'first' : 'last' });
      }
    });
    root.addEventListener('keydown', (e) => this.#onKey(e));
    markAll.addEventListener('click', () => this.#markAll());
    push.addEventListener('click', () => this.#togglePush());
    list.addEventListener('click', (e) => {
      const item = e.target.closest?.('[part~="item"]');
      if (!item) return;
      const id = Number(item.dataset.id);
      const n = this.#view.latest.find((x) => x.id === id);
      if (n) this.#activate(n, e);
    });
    return { button, badge, dot, panel, list, empty, markAll, viewAll, prefs, push, foot, toasts };
  }

  #onKey(e) {
    if (e.key === 'Escape' && this.#open) {
      e.preventDefault();
      this.#setOpen(false, { focus: true });
      return;
    }
    if (!this.#open || !this.#ui.panel.contains(e.target)) return;
    const items = [...this.#ui.list.querySelectorAll('[part~="item"]')];
    if (!items.length) return;
    const at = items.indexOf(this.shadowRoot.activeElement);
    let next = null;
    if (e.key === 'ArrowDown') next = items[at < 0 ? 0 : (at + 1) % items.length];
    else if (e.key === 'ArrowUp') next = items[at < 0 ? items.length - 1 : (at - 1 + items.length) % items.length];
    else if (e.key === 'Home') next = items[0];
    else if (e.key === 'End') next = items[items.length - 1];
    if (next) {
      e.preventDefault();
      next.focus();
    }
  }

  #onDocumentPointer = (e) => {
    if (this.#open && !e.composedPath().includes(this)) this.#setOpen(false);
  };

  #setOpen(open, { focus = false } = {}) {
    const { panel, button, list } = this.#ui;
    if (open === this.#open) {
      if (!open && focus) button.focus();
      return;
    }
    this.#open = open;
    panel.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    if (open) {
      this.#tick();
      if (this.#push !== 'busy') this.#syncPush(); // permission may have changed meanwhile
      this.#fitPanel();
      if (focus) {
        const items = list.querySelectorAll('[part~="item"]');
        const target = focus === 'last' ? items[items.length - 1] : items[0];
        (target ?? panel).focus();
      }
    } else if (focus) {
      button.focus();
    } else if (panel.contains(this.shadowRoot.activeElement)) {
      button.focus({ preventScroll: true });
    }
    this.dispatchEvent(new CustomEvent(open ? 'tidings-open' : 'tidings-close', { bubbles: true, composed: true }));
  }

  #onResize = () => {
    if (this.#open) this.#fitPanel();
  };

  /** Keeps the open panel inside the viewport: a bell near the left edge of a narrow screen
   * would otherwise push its right-aligned panel off the screen. */
  #fitPanel() {
    const { panel } = this.#ui;
    panel.style.transform = '';
    const rect = panel.getBoundingClientRect();
    const width = document.documentElement.clientWidth || window.innerWidth;
    let dx = 0;
    if (rect.left < PANEL_MARGIN) dx = PANEL_MARGIN - rect.left;
    else if (rect.right > width - PANEL_MARGIN) dx = width - PANEL_MARGIN - rect.right;
    if (dx) panel.style.transform = `translateX(${Math.round(dx)}px)`;
  }

  #locale() {
    return this.getAttribute('locale') || 'en';
  }

  #timeEl(createdAt) {
    const time = el('time', { className: 'time' });
    if (typeof createdAt === 'string' && createdAt) {
      time.setAttribute('datetime', createdAt);
      const ms = toEpochMs(createdAt);
      if (Number.isFinite(ms)) time.title = new Date(ms).toLocaleString(this.#locale());
      time.textContent = relativeTime(createdAt, Date.now(), this.#locale());
    }
    return time;
  }

  #tick() {
    const now = Date.now();
    for (const time of this.shadowRoot.querySelectorAll('time[datetime]')) {
      time.textContent = relativeTime(time.getAttribute('datetime'), now, this.#locale());
    }
  }

  #renderBadge() {
    const { count, more } = this.#view.unread;
    const text = badgeText(count, more);
    const { badge, button, markAll } = this.#ui;
    badge.textContent = text;
    badge.hidden = text === '';
    let label = text ? `Notifications, ${count}${more ? '+' : ''} unread` : 'Notifications';
    if (this.#state !== 'open') label += `, ${STATE_TITLES[this.#state] ?? ''}`.replace(/…$/, '');
    button.setAttribute('aria-label', label);
    markAll.disabled = count === 0 && !more;
    if (this.isConnected) this.toggleAttribute('data-has-unread', text !== '');
  }

  #renderDot() {
    const { dot } = this.#ui;
    dot.dataset.state = this.#state;
    dot.title = STATE_TITLES[this.#state] ?? '';
    if (this.isConnected) this.dataset.state = this.#state;
  }

  #renderList() {
    const { list, empty } = this.#ui;
    const focused = this.shadowRoot.activeElement?.closest?.('[part~="item"]')?.dataset.id;
    const rows = this.#view.latest.map((n) => {
      const unread = !n.read;
      const name = iconName(n.type);
      const item = el(
        'button',
        {
          part: 'item',
          className: 'item',
          type: 'button',
          'data-id': n.id,
          'data-type': typeof n.type === 'string' ? n.type : null,
          'data-unread': unread ? 'true' : null,
        },
        el('span', { className: 'icon', 'data-icon': name }, svgIcon(name)),
        el(
          'span',
          { className: 'text' },
          unread ? el('span', { className: 'sr-only', text: 'Unread: ' }) : null,
          el('span', { className: 'title', text: n.title ?? '' }),
          n.body ? el('span', { className: 'body', text: n.body }) : null,
          this.#timeEl(n.created_at),
        ),
        el('span', { className: 'mark', 'aria-hidden': 'true' }),
      );
      return el('li', {}, item);
    });
    list.replaceChildren(...rows);
    list.hidden = rows.length === 0;
    empty.hidden = rows.length !== 0;
    if (focused) list.querySelector(`[data-id="${Number(focused)}"]`)?.focus();
  }

  #renderFooter() {
    const { viewAll, prefs, push, foot } = this.#ui;
    for (const [link, attr] of [
      [viewAll, 'view-all-url'],
      [prefs, 'preferences-url'],
    ]) {
      const href = this.getAttribute(attr);
      if (href && isSafeLink(href)) {
        link.setAttribute('href', href);
        link.hidden = false;
      } else {
        link.removeAttribute('href');
        link.hidden = true;
      }
    }
    foot.hidden = viewAll.hidden && prefs.hidden && push.hidden;
  }

  // -- web push -------------------------------------------------------------------------------

  #pushOptions() {
    const tokenUrl = this.getAttribute('token-url');
    return {
      apiBase: this.getAttribute('api-base') ?? DEFAULT_API_BASE,
      token: this.getAttribute('token') || undefined,
      getToken: tokenUrl ? () => fetchToken(tokenUrl) : undefined,
      swUrl: new URL(this.getAttribute('sw-url') || DEFAULT_SW_URL, document.baseURI).href,
    };
  }

  /** Push needs the browser's support and a service worker on the page's own origin. */
  #pushAvailable() {
    if (this.hasAttribute('no-push') || !('PushManager' in window) || !navigator.serviceWorker) return false;
    try {
      return new URL(this.#pushOptions().swUrl).origin === window.location.origin;
    } catch {
      return false;
    }
  }

  async #syncPush() {
    const seq = ++this.#pushSeq;
    let state = 'unsupported';
    if (this.#pushAvailable()) {
      try {
        state = await pushState(this.#pushOptions());
      } catch {
        state = 'off';
      }
    }
    if (seq === this.#pushSeq) this.#showPush(state);
  }

  #showPush(state, error) {
    const { push } = this.#ui;
    const changed = state !== this.#push;
    this.#push = state;
    push.hidden = state === 'unsupported';
    push.dataset.state = state;
    push.textContent = PUSH_LABELS[state] ?? '';
    push.title = PUSH_TITLES[state] ?? (error?.message ? String(error.message) : '');
    push.disabled = state === 'busy' || state === 'denied';
    this.#renderFooter();
    if (state !== 'busy' && (changed || error)) {
      this.dispatchEvent(new CustomEvent('tidings-push', { detail: { state, error }, bubbles: true, composed: true }));
    }
  }

  async #togglePush() {
    const before = this.#push;
    if (before === 'busy' || before === 'denied' || before === 'unsupported') return;
    const seq = ++this.#pushSeq;
    this.#showPush('busy');
    this.#ui.push.textContent = before === 'on' ? 'Turning off…' : PUSH_LABELS.busy;
    let state;
    let failure;
    try {
      if (before === 'on') await disablePush(this.#pushOptions());
      else await enablePush(this.#pushOptions());
      state = before === 'on' ? 'off' : 'on';
    } catch (error) {
      state = error?.stage === 'permission' ? 'denied' : 'error';
      failure = error;
    }
    if (seq === this.#pushSeq) this.#showPush(state, failure);
  }

  // -- toasts ---------------------------------------------------------------------------------

  #toast(n) {
    const { toasts } = this.#ui;
    const name = iconName(n.type);
    const main = el(
      'button',
      { className: 'toast-main', part: 'toast-body', type: 'button' },
      el('span', { className: 'icon', 'data-icon': name }, svgIcon(name)),
      el(
        'span',
        { className: 'text' },
        el('span', { className: 'title', text: n.title ?? '' }),
        n.body ? el('span', { className: 'body', text: n.body }) : null,
        this.#timeEl(n.created_at),
      ),
    );
    const close = el('button', { className: 'toast-close', part: 'toast-close', type: 'button', 'aria-label': 'Dismiss', title: 'Dismiss' });
    close.append(el('span', { 'aria-hidden': 'true', text: '×' }));
    const toast = el('div', { part: 'toast', className: 'toast', 'data-id': n.id, 'data-type': typeof n.type === 'string' ? n.type : null }, main, close);

    let remaining = TOAST_MS;
    let startedAt = 0;
    let timer = null;
    let holds = 0;
    const run = () => {
      startedAt = Date.now();
      timer = setTimeout(() => this.#dismiss(toast), remaining);
    };
    const pause = () => {
      if (holds++ === 0 && timer) {
        clearTimeout(timer);
        timer = null;
        remaining = Math.max(1000, remaining - (Date.now() - startedAt));
      }
    };
    const resume = () => {
      if (holds > 0 && --holds === 0 && toast.isConnected) run();
    };
    toast.addEventListener('mouseenter', pause);
    toast.addEventListener('mouseleave', resume);
    toast.addEventListener('focusin', pause);
    toast.addEventListener('focusout', (e) => {
      if (!toast.contains(e.relatedTarget)) resume();
    });
    toast._tidingsStop = () => clearTimeout(timer);
    close.addEventListener('click', () => this.#dismiss(toast));
    main.addEventListener('click', (e) => {
      this.#dismiss(toast);
      const current = this.#view.latest.find((x) => x.id === n.id) ?? n;
      this.#activate(current, e);
    });

    toasts.append(toast);
    while (toasts.children.length > MAX_TOASTS) this.#dismiss(toasts.firstElementChild);
    run();
  }

  #dismiss(toast) {
    if (!toast) return;
    toast._tidingsStop?.();
    const hadFocus = toast.contains(this.shadowRoot.activeElement);
    toast.remove();
    if (hadFocus) this.#ui.button.focus({ preventScroll: true });
  }
}

if (!customElements.get('tidings-bell')) customElements.define('tidings-bell', TidingsBell);
