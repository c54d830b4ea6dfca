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
 * [part=panel] [part=status][data-state] [part=unread-toggle][aria-pressed] [part=empty]
 * [part=item][data-id][data-unread] [part=action][data-action] [part=snooze-option][data-preset]
 * [part=mark-all] [part=view-all] [part=preferences]
 * [part=enable-push][data-state=off|on|busy|denied|error] [part=toast].
 * Items render as in <tidings-inbox> (tidings-groups.js, one icon map: `setTypeIcons`), with
 * their actions on hover or focus (always shown where there is no hover).
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
import { actionBar, runAction, snoozeUntil, targets } from './tidings-actions.js';
import { batched, CONNECTION_ATTRIBUTES, connectOptions, linkTo, pushAvailable, pushOptions, RELABEL, withMessages, WORDS } from './tidings-attrs.js';
import { adoptBellStyles } from './tidings-bell-styles.js';
import { badgeText, isSafeLink, LATEST_LIMIT, normalizeSnapshot, relativeTime, toEpochMs } from './tidings-core.js';
import { bellParts } from './tidings-dom.js';
import { cardRow, findCard, groupCards } from './tidings-groups.js';
import { arrowTarget, fitPanel, focusKey, refocus } from './tidings-panel.js';
import { PushToggle } from './tidings-push.js';
import { ToastStack } from './tidings-toasts.js';

export { setTypeIcons } from './tidings-dom.js';

const TICK_MS = 30000;
/** Replayed (not live) notifications younger than this were missed during a drop: toast them. */
const FRESH_REPLAY_MS = 60000;
const NAV_WAIT_MS = 400;

let panelSeq = 0;

export class TidingsBell extends withMessages(HTMLElement) {
  static observedAttributes = [...CONNECTION_ATTRIBUTES, 'view-all-url', 'preferences-url', 'locale', 'sw-url', 'no-push'];

  #client = null;
  #unsubscribe = [];
  /** The client's view as last rendered (`view` events); kept while a new client connects. */
  #view = normalizeSnapshot({});
  #state = 'connecting';
  #open = false;
  #expanded = new Set(); // the groups whose earlier items are shown
  #unreadOnly = false; // the Unread toggle: the latest five unread (feed status=unread)
  #unreadPage = [];
  #unreadTimer = null;
  #snoozing = null; // the item whose snooze presets are open
  #ticker = null;
  #reconnect = batched(() => this.isConnected && this.#connect());
  #push;
  #toasts;
  #ui;

  constructor() {
    super();
    this.attachShadow({ mode: 'open' });
    this.#ui = this.#build();
    this.#push = new PushToggle(this, this.#ui.push, {
      options: () => pushOptions(this),
      available: () => pushAvailable(this),
      onShow: (state) => {
        this.#ui.push.hidden = state === 'unsupported';
        this.#renderFooter();
      },
      state: 'unsupported',
      text: (key) => this.#t(key),
    });
    this.#toasts = new ToastStack(this.#ui.toasts, {
      // the item as the list shows it now (it may have been read meanwhile)
      onActivate: (n, e) => this.#activate(this.#view.latest.find((x) => x.id === n.id) ?? n, e),
      onFocusLost: () => this.#ui.button.focus({ preventScroll: true }),
      locale: () => this.#locale(),
      text: (key) => this.#t(key),
      typeLabel: (type) => this.#t.type(type),
    });
    this.#renderTexts();
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
    this.#push.sync();
    this.#ticker = setInterval(() => this.#tick(), TICK_MS);
    document.addEventListener('pointerdown', this.#onDocumentPointer, true);
    window.addEventListener('resize', this.#onResize);
    window.addEventListener('tidings-icons', this.#onIcons);
  }

  disconnectedCallback() {
    this.#disconnect();
    clearInterval(this.#ticker);
    clearTimeout(this.#unreadTimer);
    this.#ticker = null;
    document.removeEventListener('pointerdown', this.#onDocumentPointer, true);
    window.removeEventListener('resize', this.#onResize);
    window.removeEventListener('tidings-icons', this.#onIcons);
    this.#toasts.clear();
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue === newValue) return;
    if (name === 'view-all-url' || name === 'preferences-url') {
      this.#renderFooter();
      return;
    }
    if (name === 'locale') {
      this[RELABEL]();
      return;
    }
    if (name === 'sw-url' || name === 'no-push') {
      this.#push.sync();
      return;
    }
    if (this.isConnected && this.#client) this.#reconnect();
  }

  #connect() {
    this.#disconnect();
    const client = connect(connectOptions(this));
    this.#client = client;
    this.#unsubscribe = [
      client.on('view', (view, meta) => this.#onView(view, meta)),
      client.on('reset', () => this.#refresh()),
      client.on('notification', (n, meta) => this.#onNotification(n, meta)),
      ...['archived', 'snoozed'].map((type) => client.on(type, (data) => this.#toasts.clear(data?.ids ?? []))),
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

  /** The client's view changed: render it. Archiving that emptied slots refills them. */
  #onView(view, { cause } = {}) {
    const before = this.#view.latest.length;
    this.#view = view;
    this.#renderBadge();
    this.#renderList();
    if (cause === 'archived' && before >= LATEST_LIMIT && view.latest.length < LATEST_LIMIT) this.#refresh();
    if (this.#unreadOnly) this.#fetchUnread();
  }

  /** The items the list shows: the latest five, or (Unread toggle) the latest five unread. */
  #shown() {
    if (!this.#unreadOnly) return this.#view.latest;
    const byId = new Map(this.#unreadPage.map((n) => [n.id, n]));
    for (const n of this.#view.latest) byId.set(n.id, n); // the view is the newer truth
    return [...byId.values()].filter((n) => !n.read).sort((a, b) => b.id - a.id).slice(0, LATEST_LIMIT);
  }

  #toggleUnread() {
    this.#ui.unreadOnly.setAttribute('aria-pressed', String((this.#unreadOnly = !this.#unreadOnly)));
    this.#unreadPage = [];
    this.#renderList();
    if (this.#unreadOnly) this.#fetchUnread();
  }

  /** The unread page again, soon (several view changes in a row fetch once). */
  #fetchUnread() {
    clearTimeout(this.#unreadTimer);
    this.#unreadTimer = setTimeout(() => {
      this.#client?.feed({ status: 'unread', limit: LATEST_LIMIT }).then((page) => {
        if (!this.#unreadOnly) return;
        this.#unreadPage = page?.items ?? [];
        this.#renderList();
      }, () => {});
    }, 50);
  }

  /** An item's action ([part~=action] or a snooze preset) on the server; the stream's event
   * (or, for read, the client at once) updates the view. */
  #onAction(button) {
    const id = Number(button.dataset.id);
    const found = findCard(groupCards(this.#shown()), id);
    if (!found || !this.#client) return;
    const { action, preset } = button.dataset;
    if (action === 'snooze') {
      this.#snoozing = this.#snoozing === id ? null : id;
      this.#renderList();
      return;
    }
    this.#snoozing = null;
    const until = preset ? snoozeUntil(preset) : null;
    runAction(this.#client, preset ? 'snooze' : action, targets(found.card, found.item), until).catch(() => this.#resync());
  }

  #onNotification(n, meta = {}) {
    const fresh = Date.now() - toEpochMs(n.created_at) < FRESH_REPLAY_MS;
    // The user's own action arrives read (connect() marks it): no toast for it.
    const toast = !n.read && (Boolean(meta.live) || fresh);
    this.dispatchEvent(
      new CustomEvent('tidings-notification', { detail: { notification: n, live: Boolean(meta.live) }, bubbles: true, composed: true }),
    );
    if (toast && !this.hasAttribute('no-toasts')) this.#toasts.show(n);
  }

  #onState(state) {
    if (state === this.#state) return;
    this.#state = state;
    this.#renderDot();
    this.#renderBadge();
    this.dispatchEvent(new CustomEvent('tidings-state', { detail: { state }, bubbles: true, composed: true }));
  }

  /** Re-reads the latest five into the client's view (after reset, or archiving emptied slots). */
  #refresh() {
    this.#client?.refresh().catch(() => {}); // the next ready/reset brings the truth
  }

  /** After a failed optimistic update: feed and count from the server. */
  #resync() {
    this.#client?.refresh({ unread: true }).catch(() => {}); // offline: the next ready brings it
  }

  #toggleEarlier(key) {
    if (!this.#expanded.delete(key)) this.#expanded.add(key);
    this.#renderList();
    this.#ui.list.querySelector(`[part~="earlier"][data-group="${CSS.escape(key)}"]`)?.focus();
  }

  async #activate(n, event, group = null) {
    const detail = { notification: n };
    const proceed = this.dispatchEvent(
      new CustomEvent('tidings-click', { detail, bubbles: true, composed: true, cancelable: true }),
    );
    let pending = null;
    if ((group || !n.read) && this.#client) {
      pending = this.#client.markRead(group ? { groups: [group] } : [n.id]).catch(() => this.#resync());
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

  // -- DOM ------------------------------------------------------------------------------------

  #build() {
    const root = this.shadowRoot;
    const panelId = `tidings-panel-${++panelSeq}`;
    const parts = bellParts(panelId);
    const { button, panel, list, markAll, push, toasts } = parts;

    adoptBellStyles(root);
    root.append(button, panel, toasts);

    button.addEventListener('click', () => this.#setOpen(!this.#open, { focus: true }));
    button.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        this.#setOpen(true, { focus: e.key === 'ArrowDown' ? 'first' : 'last' });
      }
    });
    root.addEventListener('keydown', (e) => this.#onKey(e));
    markAll.addEventListener('click', () => this.#client?.markRead('all').catch(() => this.#resync()));
    parts.unreadOnly.addEventListener('click', () => this.#toggleUnread());
    push.addEventListener('click', () => this.#push.toggle());
    list.addEventListener('click', (e) => {
      const action = e.target.closest?.('button[part~="action"], [part~="snooze-option"]');
      if (action) return this.#onAction(action);
      const more = e.target.closest?.('[part~="earlier"]');
      if (more) return this.#toggleEarlier(more.dataset.group);
      const item = e.target.closest?.('[part~="item"]');
      const id = Number(item?.dataset.id);
      const found = findCard(groupCards(this.#shown()), id);
      // A card's head stands for its group: reading it reads the group (issue 10 item 3).
      if (found) this.#activate(found.item, e, targets(found.card, found.item).group);
    });
    return parts;
  }

  #onKey(e) {
    if (e.key === 'Escape' && this.#open) {
      e.preventDefault();
      this.#setOpen(false, { focus: true });
      return;
    }
    if (!this.#open || !this.#ui.panel.contains(e.target)) return;
    const items = [...this.#ui.list.querySelectorAll('[part~="item"]')];
    const next = arrowTarget(e.key, items, this.shadowRoot.activeElement);
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
      if (this.#push.state !== 'busy') this.#push.sync(); // permission may have changed meanwhile
      fitPanel(panel, list);
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

  // A bell near the edge of a narrow screen would push its panel off it (tidings-panel.js).
  #onResize = () => {
    if (this.#open) fitPanel(this.#ui.panel, this.#ui.list);
  };

  #onIcons = () => this.#renderList();

  /** The catalogue lookup for the `locale` attribute (else the browser's languages) + overrides. */
  get #t() {
    return this[WORDS];
  }

  /** After a locale or override change: every string again. */
  [RELABEL]() {
    this.#renderTexts();
    this.#renderBadge();
    this.#renderDot();
    this.#renderList();
    if (this.#push.state) this.#push.show(this.#push.state);
  }

  #renderTexts() {
    const keys = {
      heading: 'notifications', markAll: 'markAll', unreadOnly: 'unreadOnly', emptyTitle: 'caughtUp', emptyHint: 'caughtUpHint',
      viewAll: 'viewAll', prefs: 'preferences',
    };
    for (const [part, key] of Object.entries(keys)) this.#ui[part].textContent = this.#t(key);
  }

  #locale() {
    return this.getAttribute('locale') || this.#t.locale;
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
    let label = text ? this.#t('unreadLabel', { count: `${count}${more ? '+' : ''}` }) : this.#t('notifications');
    if (this.#state !== 'open') label += `, ${this.#t(`state.${this.#state}`)}`.replace(/…$/, '');
    button.setAttribute('aria-label', label);
    button.title = `${label}${this.#state === 'open' ? ` · ${this.#t('state.open')}` : ''}`; // the dot, in words
    markAll.disabled = count === 0 && !more;
    if (this.isConnected) this.toggleAttribute('data-has-unread', text !== '');
  }

  #renderDot() {
    const { dot, status, statusText } = this.#ui;
    dot.dataset.state = this.#state;
    status.dataset.state = this.#state;
    dot.title = this.#t(`state.${this.#state}`);
    statusText.textContent = dot.title;
    status.title = this.#t('status', { state: dot.title });
    if (this.isConnected) this.dataset.state = this.#state;
  }

  #renderList() {
    const { list, empty, panel } = this.#ui;
    const focused = list.contains(this.shadowRoot.activeElement) ? focusKey(this.shadowRoot) : null;
    const bar = (n, unread) => actionBar(n, { unread, t: this.#t, snoozing: this.#snoozing === n.id });
    const cards = groupCards(this.#shown());
    const rows = cards.map((card) => cardRow(card, this.#locale(), this.#expanded.has(card.key), this.#t, bar));
    list.replaceChildren(...rows);
    list.hidden = rows.length === 0;
    empty.hidden = rows.length !== 0;
    refocus(list, focused, panel);
  }

  #renderFooter() {
    const { viewAll, prefs, push, foot } = this.#ui;
    const links = [linkTo(viewAll, this, 'view-all-url'), linkTo(prefs, this, 'preferences-url')];
    foot.hidden = !links.some(Boolean) && push.hidden;
  }
}

if (!customElements.get('tidings-bell')) customElements.define('tidings-bell', TidingsBell);
