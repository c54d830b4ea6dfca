/**
 * tidings-core.js — the pure logic behind tidings.js and <tidings-bell>.
 *
 * No DOM, no network, no timers, no globals: every function here is deterministic given its
 * arguments (randomness and "now" are injected), so it runs and is tested under plain node.
 *
 * Invariants the callers rely on:
 * - a notification id is the tenant's sequence number; a client never shows an id twice
 *   (`createDedupe`) and a `reset` may move the last id *down* (the server's history was wiped);
 * - a view ({unread, latest_seq, latest}) is never mutated: the reducers return a new one;
 * - `isSafeLink` is the only gate between a notification's `link` and the browser's location.
 */

export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_CAP_MS = 30000;
export const LATEST_LIMIT = 5;
/** The server counts unread items up to 99 and says `more` from 100 on. */
export const UNREAD_CAP = 99;

// ---------------------------------------------------------------------------------------------
// Reconnect backoff

/**
 * Exponential backoff with full jitter: a uniformly random delay in [0, min(cap, base * 2^attempt)).
 * `attempt` counts from 0 (the first retry after a failure).
 */
export function backoffDelay(attempt, { base = BACKOFF_BASE_MS, cap = BACKOFF_CAP_MS, random = Math.random } = {}) {
  return Math.floor(random() * backoffCeiling(attempt, { base, cap }));
}

/** The upper bound of `backoffDelay` for an attempt. */
export function backoffCeiling(attempt, { base = BACKOFF_BASE_MS, cap = BACKOFF_CAP_MS } = {}) {
  const n = Math.max(0, Math.floor(Number(attempt) || 0));
  // 2 ** 31 is far past any cap; clamping the exponent keeps the arithmetic finite.
  return Math.min(cap, base * 2 ** Math.min(n, 31));
}

// ---------------------------------------------------------------------------------------------
// Sequence numbers and de-duplication

/** A sequence id from a number or a decimal string; null for anything else. */
export function toSeq(value) {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : null;
  if (typeof value === 'string' && /^\d{1,15}$/.test(value.trim())) return Number(value.trim());
  return null;
}

/**
 * Tracks the last notification id seen. `accept(id)` is true (and advances) only for ids above
 * it; `reset(id)` sets it unconditionally (the server is authoritative on `reset`);
 * `observe(id)` raises it without ever lowering it (a `ready` frame's id).
 */
export function createDedupe(initial = null) {
  let last = toSeq(initial);
  return {
    get lastId() {
      return last;
    },
    accept(id) {
      const seq = toSeq(id);
      if (seq === null) return false;
      if (last !== null && seq <= last) return false;
      last = seq;
      return true;
    },
    observe(id) {
      const seq = toSeq(id);
      if (seq !== null && (last === null || seq > last)) last = seq;
      return last;
    },
    reset(id) {
      const seq = toSeq(id);
      if (seq !== null) last = seq;
      return last;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Badge and time text

/** '' (hidden) for 0, '1'..'9', and '9+' for 10 or more or when the server says `more`. */
export function badgeText(count, more = false) {
  const n = Math.max(0, Math.floor(Number(count) || 0));
  if (more || n >= 10) return '9+';
  return n === 0 ? '' : String(n);
}

const RTF_CACHE = new Map();
function rtf(locale) {
  const key = locale ?? '';
  let fmt = RTF_CACHE.get(key);
  if (!fmt) {
    fmt = new Intl.RelativeTimeFormat(locale, { numeric: 'auto', style: 'long' });
    RTF_CACHE.set(key, fmt);
  }
  return fmt;
}

/** Parses an ISO date (or Date, or epoch ms) to epoch ms; NaN when unusable. */
export function toEpochMs(value) {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value) return Date.parse(value);
  return NaN;
}

/**
 * "now" under 10 s, then seconds, minutes, hours and days ("5 minutes ago", "yesterday").
 * Future dates (clock skew) read the same way forwards. '' for an unparseable date.
 */
export function relativeTime(date, now = Date.now(), locale = undefined) {
  const then = toEpochMs(date);
  const ref = toEpochMs(now);
  if (!Number.isFinite(then) || !Number.isFinite(ref)) return '';
  const diff = (then - ref) / 1000; // negative = past
  const abs = Math.abs(diff);
  const fmt = rtf(locale);
  if (abs < 10) return fmt.format(0, 'second');
  const sign = diff < 0 ? -1 : 1;
  if (abs < 60) return fmt.format(sign * Math.floor(abs), 'second');
  if (abs < 3600) return fmt.format(sign * Math.floor(abs / 60), 'minute');
  if (abs < 86400) return fmt.format(sign * Math.floor(abs / 3600), 'hour');
  return fmt.format(sign * Math.floor(abs / 86400), 'day');
}

// ---------------------------------------------------------------------------------------------
// Links and icons

// C0 controls, DEL, whitespace and backslashes: a URL parser strips or rewrites them
// ("/\evil.com" and "/\t/evil.com" both become "//evil.com"), so they are refused outright.
const UNSAFE_CHARS = /[\u0000-\u0020\u007f\\]/;

/**
 * True only for absolute http(s) URLs and same-origin paths ("/x", not "//host").
 * Everything else — javascript:, data:, vbscript:, blob:, mailto:, leading spaces, relative
 * paths without a leading slash — is refused.
 */
export function isSafeLink(link) {
  if (typeof link !== 'string' || link.length === 0 || link.length > 2048) return false;
  if (UNSAFE_CHARS.test(link)) return false;
  if (link[0] === '/') return link[1] !== '/';
  if (!/^https?:\/\/[^/]/i.test(link)) return false;
  try {
    const url = new URL(link);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.host !== '';
  } catch {
    return false;
  }
}

const ICONS = {
  booking_created: 'calendar-plus',
  booking_confirmed: 'calendar-check',
  booking_cancelled: 'calendar-x',
  booking_completed: 'check-circle',
  booking_no_show: 'user-x',
  payment_received: 'credit-card',
  payment_failed: 'alert-triangle',
  reminder: 'clock',
  customer_created: 'user-plus',
  system: 'info',
};

/** The icon name for a notification type ("booking.created" reads as "booking_created"). */
export function iconName(type) {
  if (typeof type !== 'string') return 'bell';
  const key = type.trim().toLowerCase().replace(/[.\-\s]+/g, '_');
  return Object.hasOwn(ICONS, key) ? ICONS[key] : 'bell';
}

// ---------------------------------------------------------------------------------------------
// URLs

/** Appends `access_token` and `last_event_id` to a stream URL, keeping any query and fragment. */
export function buildStreamUrl(url, { token = null, lastEventId = null } = {}) {
  const hashAt = url.indexOf('#');
  const base = hashAt === -1 ? url : url.slice(0, hashAt);
  const params = [];
  if (token) params.push(`access_token=${encodeURIComponent(token)}`);
  const seq = toSeq(lastEventId);
  if (seq !== null) params.push(`last_event_id=${seq}`);
  if (params.length === 0) return base;
  const sep = base.includes('?') ? (/[?&]$/.test(base) ? '' : '&') : '?';
  return base + sep + params.join('&');
}

/** The API base that belongs to a stream URL: "https://t.example/v1/stream" → "https://t.example". */
export function apiBaseFor(streamUrl) {
  const path = String(streamUrl).split(/[?#]/)[0];
  const m = /^(.*)\/v1\/stream\/?$/.exec(path);
  return m ? m[1] : '';
}

/** The leader-election key shared by the tabs that should share one stream. */
export function leaderKey(absoluteStreamUrl, channel = 'default') {
  const path = String(absoluteStreamUrl).split(/[?#]/)[0];
  return `${channel || 'default'}@${path}`;
}

// ---------------------------------------------------------------------------------------------
// The view: the ready/reset snapshot kept current by live events

export function normalizeUnread(unread) {
  const count = Math.max(0, Math.min(UNREAD_CAP, Math.floor(Number(unread?.count) || 0)));
  return { count, more: Boolean(unread?.more) };
}

function byIdDesc(a, b) {
  return b.id - a.id;
}

function normalizeItem(item) {
  return { ...item, id: toSeq(item.id), read: Boolean(item.read) };
}

/** A clean view from `ready`/`reset` data (or a feed page): newest first, at most `limit`. */
export function normalizeSnapshot(data, limit = LATEST_LIMIT) {
  const latest = (Array.isArray(data?.latest) ? data.latest : [])
    .filter((n) => n && typeof n === 'object' && toSeq(n.id) !== null)
    .map(normalizeItem)
    .sort(byIdDesc)
    .slice(0, limit);
  const top = latest.length ? latest[0].id : 0;
  const view = {
    unread: normalizeUnread(data?.unread),
    latest_seq: Math.max(toSeq(data?.latest_seq) ?? 0, top),
    latest,
  };
  // Whose stream (ready/reset carry it): a notification this user caused arrives read.
  if (typeof data?.user === 'string') view.user = data.user;
  return view;
}

/**
 * True when `user` caused `notification` (its `actor`): the server stores it read for them, so
 * a client shows it read, never counts it and never toasts it (docs/protocol.md, "actor").
 */
export function isOwn(notification, user) {
  return typeof user === 'string' && notification?.actor?.id === user;
}

/** The view with a feed page's items as its latest list. */
export function withLatest(view, items, limit = LATEST_LIMIT) {
  const next = normalizeSnapshot({ ...view, latest: (items || []).filter((n) => !n?.archived) }, limit);
  return { ...next, latest_seq: Math.max(view.latest_seq, next.latest_seq) };
}

function bump(unread) {
  const count = unread.count + 1;
  return count > UNREAD_CAP ? { count: UNREAD_CAP, more: true } : { count, more: unread.more };
}

/**
 * A notification arrived. It is "live" (new to this view, counted as unread) when its id is
 * above the snapshot's latest_seq; replayed ones at or below it are already in the snapshot.
 */
export function applyNotification(view, notification, limit = LATEST_LIMIT) {
  const item = normalizeItem(notification);
  if (isOwn(item, view.user)) item.read = true;
  const live = item.id > view.latest_seq;
  const latest = view.latest
    .filter((n) => n.id !== item.id)
    .concat(item)
    .sort(byIdDesc)
    .slice(0, limit);
  return {
    view: {
      ...view,
      unread: live && !item.read ? bump(view.unread) : view.unread,
      latest_seq: Math.max(view.latest_seq, item.id),
      latest,
    },
    live,
  };
}

function idSet(ids) {
  return new Set((Array.isArray(ids) ? ids : []).map(toSeq).filter((id) => id !== null));
}

/**
 * A `read` event ({ids} or {all, up_to}, with or without the server's `unread`). Without
 * `unread` (an optimistic update) the count is lowered by the items that turned read.
 */
export function applyRead(view, data) {
  const ids = idSet(data?.ids);
  const upTo = toSeq(data?.up_to);
  const all = Boolean(data?.all);
  let changed = 0;
  const latest = view.latest.map((n) => {
    const hit = all ? upTo === null || n.id <= upTo : ids.has(n.id);
    if (!hit || n.read) return n;
    changed += 1;
    return { ...n, read: true };
  });
  let unread;
  if (data?.unread) unread = normalizeUnread(data.unread);
  else if (all && (upTo === null || upTo >= view.latest_seq)) unread = { count: 0, more: false };
  else unread = { count: Math.max(0, view.unread.count - changed), more: view.unread.more };
  return { ...view, latest, unread };
}

/** An `archived` event: the items leave the list; the server's `unread` wins when present. */
export function applyArchived(view, data) {
  const ids = idSet(data?.ids);
  const gone = view.latest.filter((n) => ids.has(n.id));
  const latest = view.latest.filter((n) => !ids.has(n.id));
  const unread = data?.unread
    ? normalizeUnread(data.unread)
    : { count: Math.max(0, view.unread.count - gone.filter((n) => !n.read).length), more: view.unread.more };
  return { ...view, latest, unread };
}

function serverUnread(view, data, fallback) {
  return data?.unread ? normalizeUnread(data.unread) : fallback;
}

function withCount(unread, delta) {
  const count = unread.count + delta;
  if (count > UNREAD_CAP) return { count: UNREAD_CAP, more: true };
  return { count: Math.max(0, count), more: unread.more };
}

/**
 * An `unread` event ({ids, items?, unread}): the items turn unread (with `items`, they are put
 * back in the list, e.g. from a snooze); the server's `unread` wins.
 */
export function applyUnread(view, data) {
  if (Array.isArray(data?.items) && data?.unread) return applyRestored(view, data);
  const ids = idSet(data?.ids);
  let changed = 0;
  const latest = view.latest.map((n) => {
    if (!ids.has(n.id) || !n.read) return n;
    changed += 1;
    return { ...n, read: false };
  });
  return { ...view, latest, unread: serverUnread(view, data, withCount(view.unread, changed)) };
}

/** A `snoozed` event ({ids, until, unread}): the items leave the list until the snooze ends. */
export function applySnoozed(view, data) {
  return applyArchived(view, data);
}

/**
 * An `unarchived` or `unsnoozed` event ({ids, items, unread?}): the items (feed items, newest
 * first) come back into the list. `unsnoozed` carries no `unread`: each id is unread again,
 * and was not counted while snoozed, so the count rises by the number of ids.
 */
export function applyRestored(view, data, limit = LATEST_LIMIT) {
  const back = (Array.isArray(data?.items) ? data.items : [])
    .filter((n) => n && typeof n === 'object' && toSeq(n.id) !== null && !n.archived)
    .map(normalizeItem);
  const ids = new Set(back.map((n) => n.id));
  const latest = view.latest
    .filter((n) => !ids.has(n.id))
    .concat(back)
    .sort(byIdDesc)
    .slice(0, limit);
  const woken = idSet(data?.ids).size;
  return { ...view, latest, unread: serverUnread(view, data, withCount(view.unread, woken)) };
}
