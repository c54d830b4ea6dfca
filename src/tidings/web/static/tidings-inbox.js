/**
 * <tidings-inbox> — the full "view all" page next to <tidings-bell>: every notification of the
 * user through the Feed API, newest first under day headers, with filters, load more, per-item
 * actions, and live updates from the stream.
 *
 *   <script type="module" src="https://tidings.example.com/static/tidings-inbox.js"></script>
 *   <tidings-inbox token-url="/api/tidings-token"></tidings-inbox>
 *
 * Attributes: token | token-url, stream-url, api-base, channel, shared (as the bell's: with the
 * same ones, a bell and an inbox on a page share one stream), locale, time-zone (IANA; day
 * headers; default the browser's), types (comma-separated type filter; default the catalogue's
 * types and the ones seen), page-size (1–100, default 20), details-url (with `{id}`: a link per
 * item to the host's page about it), theme ("dark").
 * Stable selectors (open shadow root): [part=filter][data-status][aria-pressed]
 * [part=type-filter] [part=mark-all] [part=list][aria-busy] [part=day][data-day]
 * [part=item][data-id][data-unread] [part=action][data-action] [part=snooze-option][data-preset]
 * [part=more] [part=empty] [part=error].
 * Events (bubbling, composed): tidings-click (cancelable, as the bell's), tidings-inbox-load
 * ({detail: {status, type, count}} after each page).
 *
 * Invariants: items render exactly as in the bell (tidings-groups.js: one card per `group`, one
 * icon map); an item leaves the list when its state no longer fits the filter (read in
 * "Unread", archived anywhere but "Archived"); a page answered for an older filter is dropped;
 * every string comes from the catalogue (tidings-i18n.js) with the host's overrides; data
 * reaches the DOM only as text or attributes.
 */

import { connect } from './tidings.js';
import { actionBar, runAction, snoozeUntil, targets } from './tidings-actions.js';
import { batched, CONNECTION_ATTRIBUTES, connectOptions, RELABEL, withMessages, WORDS } from './tidings-attrs.js';
import { isSafeLink, relativeTime, toSeq } from './tidings-core.js';
import { dayKey, dayLabel } from './tidings-days.js';
import { el } from './tidings-dom.js';
import { cardRow, findCard, groupCards } from './tidings-groups.js';
import { CATALOGUES, DEFAULT_LOCALE } from './tidings-i18n.js';
import { adoptInboxStyles, inboxParts, STATUSES } from './tidings-inbox-parts.js';
import { focusKey, refocus } from './tidings-panel.js';

export { setTypeIcons } from './tidings-dom.js';

const TICK_MS = 30000;
const NAV_WAIT_MS = 400;
const PAGE_SIZE = 20;
const KNOWN_TYPES = Object.keys(CATALOGUES[DEFAULT_LOCALE]).filter((k) => k.startsWith('type.')).map((k) => k.slice(5));

/** The change a stream event makes to the items it names (`items` in the event win). */
const CHANGES = {
  read: { read: true },
  unread: { read: false, snoozed_until: null },
  archived: { archived: true, snoozed_until: null },
  unarchived: { archived: false },
  unsnoozed: { read: false, snoozed_until: null },
};

export class TidingsInbox extends withMessages(HTMLElement) {
  static observedAttributes = [...CONNECTION_ATTRIBUTES, 'locale', 'time-zone', 'types', 'page-size', 'details-url'];

  #client = null;
  #off = [];
  #items = new Map(); // id → feed item, as loaded and kept current by the stream
  #cursor = null;
  #status = 'all';
  #type = '';
  #loading = 0;
  #loadSeq = 0;
  #error = null;
  #readies = 0;
  #expanded = new Set();
  #snoozing = null;
  #ticker = null;
  #today = '';
  #reconnect = batched(() => this.isConnected && this.#connect());
  #ui;

  constructor() {
    super();
    this.attachShadow({ mode: 'open' });
    this.#ui = inboxParts();
    adoptInboxStyles(this.shadowRoot);
    this.shadowRoot.append(this.#ui.root);
    this.#ui.root.addEventListener('click', (e) => this.#onClick(e));
    this.#ui.type.addEventListener('change', () => this.filter({ type: this.#ui.type.value }));
    this[RELABEL]();
  }

  // -- public surface -------------------------------------------------------------------------

  /** The connect() client (null while disconnected). */
  get client() {
    return this.#client;
  }

  get status() {
    return this.#status;
  }

  get type() {
    return this.#type;
  }

  /** True while a page is being fetched. */
  get loading() {
    return this.#loading > 0;
  }

  /** The items shown, newest first (a card's earlier items included). */
  get items() {
    return this.#visible();
  }

  /** Shows `status` ('all' | 'unread' | 'archived' | 'snoozed') and/or `type` ('' for all). */
  filter({ status = this.#status, type = this.#type } = {}) {
    if (!STATUSES.includes(status)) throw new TypeError(`tidings: unknown status ${JSON.stringify(status)}`);
    this.#status = status;
    this.#type = String(type ?? '');
    this.#snoozing = null;
    this.#renderFilters();
    return this.#load({ reset: true });
  }

  /** The next page (the feed's cursor). */
  loadMore() {
    return this.#cursor ? this.#load() : Promise.resolve();
  }

  /** Everything from the server again, as far as it was loaded. */
  reload() {
    return this.#load({ reset: true });
  }

  // -- lifecycle ------------------------------------------------------------------------------

  connectedCallback() {
    this.#connect();
    this.#ticker = setInterval(() => this.#tick(), TICK_MS);
    window.addEventListener('tidings-icons', this.#onIcons);
  }

  disconnectedCallback() {
    this.#disconnect();
    clearInterval(this.#ticker);
    window.removeEventListener('tidings-icons', this.#onIcons);
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue === newValue) return;
    if (name === 'locale' || name === 'time-zone' || name === 'types' || name === 'details-url') {
      this[RELABEL]();
      return;
    }
    if (name === 'page-size') return;
    if (this.isConnected && this.#client) this.#reconnect();
  }

  #connect() {
    this.#disconnect();
    const client = connect(connectOptions(this));
    this.#client = client;
    this.#readies = 0;
    this.#off = [
      client.on('notification', (n) => this.#onNotification(n)),
      client.on('snoozed', (data) => this.#apply(data, { snoozed_until: data?.until ?? null })),
      ...Object.entries(CHANGES).map(([type, change]) => client.on(type, (data) => this.#apply(data, change))),
      // a reconnect may have missed read-state events (they have no id): the truth again
      client.on('ready', () => this.#readies++ > 0 && this.reload()),
      client.on('reset', () => this.reload()),
      client.on('view', () => this.#renderMarkAll()),
      client.on('state', (state) => {
        this.dataset.state = state;
      }),
    ];
    this.#load({ reset: true });
  }

  #disconnect() {
    for (const off of this.#off) off();
    this.#off = [];
    this.#client?.close();
    this.#client = null;
  }

  // -- data -----------------------------------------------------------------------------------

  #pageSize() {
    const n = Number(this.getAttribute('page-size'));
    return Number.isInteger(n) && n >= 1 && n <= 100 ? n : PAGE_SIZE;
  }

  async #load({ reset = false } = {}) {
    const client = this.#client;
    if (!client) return;
    if (reset) {
      this.#loadSeq += 1;
      this.#items.clear();
      this.#cursor = null;
    }
    const seq = this.#loadSeq;
    const { status, type } = this;
    this.#loading += 1;
    this.#error = null;
    this.#render();
    try {
      const page = await client.feed({ status, type: type || undefined, limit: this.#pageSize(), cursor: reset ? undefined : this.#cursor ?? undefined });
      if (seq !== this.#loadSeq) return; // the filter changed meanwhile
      for (const n of page?.items ?? []) this.#items.set(n.id, n);
      this.#cursor = page?.next_cursor ?? null;
      this.#emit('tidings-inbox-load', { status, type, count: this.#items.size });
    } catch {
      if (seq === this.#loadSeq) this.#error = 'loadFailed';
    } finally {
      this.#loading -= 1;
      this.#render();
    }
  }

  #onNotification(n) {
    if (this.#items.has(n.id) || this.#status === 'archived' || this.#status === 'snoozed') return;
    this.#items.set(n.id, { ...n, read: Boolean(n.read), archived: false, snoozed_until: null });
    this.#render();
  }

  /** A read-state event (from this tab, another one, or another device): its items change. */
  #apply(data, change) {
    for (const item of Array.isArray(data?.items) ? data.items : []) {
      const id = toSeq(item?.id);
      if (id !== null && (this.#items.has(id) || this.#fits(item))) this.#items.set(id, { ...item, id });
    }
    const upTo = toSeq(data?.up_to);
    const ids = data?.all ? [...this.#items.keys()].filter((id) => upTo === null || id <= upTo) : (data?.ids ?? []).map(toSeq);
    for (const id of ids) {
      const n = this.#items.get(id);
      if (n) this.#items.set(id, { ...n, ...change });
    }
    this.#render();
  }

  #fits(n) {
    if (this.#type && n.type !== this.#type) return false;
    if (this.#status === 'archived') return Boolean(n.archived);
    if (n.archived) return false;
    if (this.#status === 'snoozed') return Boolean(n.snoozed_until);
    if (n.snoozed_until) return false;
    return this.#status !== 'unread' || !n.read;
  }

  #visible() {
    return [...this.#items.values()].filter((n) => this.#fits(n)).sort((a, b) => b.id - a.id);
  }

  // -- actions --------------------------------------------------------------------------------

  #onClick(e) {
    const status = e.target.closest?.('[part~="filter"]');
    if (status) return this.filter({ status: status.dataset.status });
    if (e.target.closest?.('[part~="more"]')) return this.loadMore();
    if (e.target.closest?.('[part~="retry"]')) return this.reload();
    if (e.target.closest?.('[part~="mark-all"]')) return this.#markAll();
    const action = e.target.closest?.('button[part~="action"], [part~="snooze-option"]');
    if (action) return this.#onAction(action);
    const more = e.target.closest?.('[part~="earlier"]');
    if (more) {
      if (!this.#expanded.delete(more.dataset.group)) this.#expanded.add(more.dataset.group);
      return this.#render();
    }
    const item = e.target.closest?.('[part~="item"]');
    const found = item && findCard(groupCards(this.#visible()), Number(item.dataset.id));
    if (found) this.#activate(found.item, e, targets(found.card, found.item));
    return undefined;
  }

  async #onAction(button) {
    const id = Number(button.dataset.id);
    const found = findCard(groupCards(this.#visible()), id);
    if (!found || !this.#client) return;
    const { action, preset } = button.dataset;
    if (action === 'snooze') {
      this.#snoozing = this.#snoozing === id ? null : id;
      this.#render();
      return;
    }
    this.#snoozing = null;
    const kind = preset ? 'snooze' : action;
    const until = preset ? snoozeUntil(preset) : null;
    const target = targets(found.card, found.item);
    // At once here; the stream's event confirms it (and tells the other tabs).
    const change = {
      read: { read: true }, unread: { read: false }, archive: { archived: true }, unarchive: { archived: false },
      snooze: { snoozed_until: until?.toISOString() }, unsnooze: { snoozed_until: null, read: false },
    }[kind];
    this.#apply({ ids: kind === 'unread' ? [target.head] : target.ids }, change);
    try {
      await runAction(this.#client, kind, target, until);
    } catch {
      this.#error = 'actionFailed';
      this.reload();
    }
  }

  async #markAll() {
    if (!this.#client) return;
    this.#apply({ all: true }, { read: true });
    await this.#client.markRead('all').catch(() => this.reload());
  }

  async #activate(n, event, { group }) {
    const proceed = this.#emit('tidings-click', { notification: n }, true);
    let pending = null;
    if ((group || !n.read) && this.#client) {
      this.#apply({ ids: group ? [] : [n.id] }, { read: true });
      pending = this.#client.markRead(group ? { groups: [group] } : [n.id]).catch(() => this.reload());
    }
    if (!proceed || !isSafeLink(n.link)) return;
    if (event && (event.ctrlKey || event.metaKey || event.shiftKey)) {
      window.open(n.link, '_blank', 'noopener');
      return;
    }
    if (pending) await Promise.race([pending, new Promise((r) => setTimeout(r, NAV_WAIT_MS))]);
    window.location.assign(n.link);
  }

  #emit(name, detail, cancelable = false) {
    return this.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true, cancelable }));
  }

  // -- rendering ------------------------------------------------------------------------------

  get #t() {
    return this[WORDS];
  }

  #locale() {
    return this.getAttribute('locale') || this.#t.locale;
  }

  #timeZone() {
    return this.getAttribute('time-zone') || undefined;
  }

  #onIcons = () => this.#render();

  [RELABEL]() {
    const t = this.#t;
    const ui = this.#ui;
    ui.filters.setAttribute('aria-label', t('filters'));
    for (const b of ui.filters.children) b.textContent = t(`filter.${b.dataset.status}`);
    ui.typeLabel.textContent = t('typeFilter');
    ui.markAll.textContent = t('markAll');
    ui.more.textContent = t('loadMore');
    ui.retry.textContent = t('retry');
    this.#renderFilters();
    this.#render();
  }

  #renderFilters() {
    const ui = this.#ui;
    for (const b of ui.filters.children) b.setAttribute('aria-pressed', String(b.dataset.status === this.#status));
    const listed = (this.getAttribute('types') ?? '').split(',').map((x) => x.trim()).filter(Boolean);
    const types = new Set(listed.length ? listed : [...KNOWN_TYPES, ...[...this.#items.values()].map((n) => n.type)]);
    if (this.#type) types.add(this.#type);
    const options = [...types].filter((x) => typeof x === 'string' && x).map((x) => [x, this.#t.type(x)]);
    options.sort((a, b) => a[1].localeCompare(b[1], this.#locale()));
    ui.type.replaceChildren(el('option', { value: '', text: this.#t('allTypes') }), ...options.map(([value, text]) => el('option', { value, text })));
    ui.type.value = this.#type;
  }

  #render() {
    const ui = this.#ui;
    const t = this.#t;
    const focused = ui.list.contains(this.shadowRoot.activeElement) ? focusKey(this.shadowRoot) : null;
    const visible = this.#visible();
    const locale = this.#locale();
    const timeZone = this.#timeZone();
    const now = Date.now();
    const details = this.getAttribute('details-url');
    const bar = (n, unread) =>
      actionBar(n, { unread, t, snoozing: this.#snoozing === n.id, details: details?.includes('{id}') ? details.replaceAll('{id}', String(n.id)) : null });
    const sections = [];
    for (const card of groupCards(visible)) {
      const key = dayKey(card.item.created_at, timeZone);
      if (sections.at(-1)?.key !== key) sections.push({ key, rows: [] });
      sections.at(-1).rows.push(cardRow(card, locale, this.#expanded.has(card.key), t, bar));
    }
    ui.list.replaceChildren(
      ...sections.map(({ key, rows }) =>
        el('section', { className: 'day-group', 'data-day': key },
          el('h3', { part: 'day', className: 'day', 'data-day': key, text: dayLabel(key, now, { locale, timeZone, t }) }),
          el('ul', { className: 'cards', role: 'list' }, ...rows)),
      ),
    );
    this.#today = dayKey(now, timeZone);
    ui.list.setAttribute('aria-busy', String(this.#loading > 0));
    const empty = visible.length === 0 && this.#loading === 0 && !this.#error;
    ui.empty.hidden = !empty;
    const emptyKey = { archived: 'emptyArchived', snoozed: 'emptySnoozed' }[this.#status] ?? 'caughtUp';
    ui.emptyTitle.textContent = t(emptyKey);
    ui.emptyHint.textContent = emptyKey === 'caughtUp' ? t('caughtUpHint') : '';
    ui.more.hidden = !this.#cursor;
    ui.more.disabled = this.#loading > 0;
    ui.error.hidden = !this.#error;
    ui.errorText.textContent = this.#error ? t(this.#error) : '';
    this.#renderMarkAll();
    if (!this.#type && !this.hasAttribute('types') && visible.some((n) => ![...ui.type.options].some((o) => o.value === n.type))) {
      this.#renderFilters();
    }
    refocus(ui.list, focused, ui.list);
  }

  /** "Mark all as read" is off when the stream says nothing is unread. */
  #renderMarkAll() {
    const unread = this.#client?.view?.unread;
    this.#ui.markAll.disabled = Boolean(unread) && unread.count === 0 && !unread.more && !this.#visible().some((n) => !n.read);
  }

  #tick() {
    if (dayKey(Date.now(), this.#timeZone()) !== this.#today) {
      this.#render(); // past midnight: "Today" is "Yesterday" now
      return;
    }
    for (const time of this.shadowRoot.querySelectorAll('time[datetime]')) {
      time.textContent = relativeTime(time.getAttribute('datetime'), Date.now(), this.#locale());
    }
  }
}

if (!customElements.get('tidings-inbox')) customElements.define('tidings-inbox', TidingsInbox);
