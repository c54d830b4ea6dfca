/**
 * tidings.js — the browser client of a tidings server: one resumable SSE stream per browser
 * (shared by its tabs), the view it keeps current, plus the Feed API (./tidings-feed.js).
 *
 *   import { connect } from '/static/tidings.js';
 *   const client = connect({ getToken: () => fetch('/api/tidings-token').then(r => r.json()).then(j => j.token) });
 *   client.on('notification', (n, meta) => console.log(n.title, meta.live));
 *   client.on('view', (view) => render(view));   // {unread, latest_seq, latest}, after every change
 *
 * Guarantees (see docs/protocol.md):
 * - every notification is emitted at most once per client, in id order (`id <= lastId` is dropped);
 * - after any drop the stream resumes from the last id seen (./tidings-source.js: natively while
 *   the EventSource says CONNECTING, else a fresh one after backoff with full jitter);
 * - `expired`, or a stream refused before `ready`, fetches a fresh token through `getToken`;
 * - with `shared` (default), tabs elect one leader per stream through the Web Locks API; only the
 *   leader holds an EventSource and re-broadcasts every event on a BroadcastChannel. When the
 *   leader goes, the next tab takes the lock and resumes from the last id it saw;
 * - the client owns the view: it alone applies the reducers of tidings-core.js, and emits `view`
 *   (before the event that caused it) whenever `client.view` changes. UIs render that view.
 */

import {
  LATEST_LIMIT,
  applyArchived,
  applyNotification,
  applyRead,
  applyRestored,
  applySnoozed,
  applyUnread,
  isOwn,
  apiBaseFor,
  leaderKey,
  normalizeSnapshot,
  normalizeUnread,
  toSeq,
  withLatest,
} from './tidings-core.js';
import {
  archive,
  feed,
  markRead,
  markUnread,
  snooze,
  tokenSource,
  unarchive,
  unreadCount,
} from './tidings-feed.js';
import { createSource } from './tidings-source.js';
import { joinTabs } from './tidings-tabs.js';

export {
  TidingsError,
  archive,
  feed,
  fetchToken,
  markRead,
  markUnread,
  snooze,
  unarchive,
  unreadCount,
} from './tidings-feed.js';
export { STREAM_EVENTS } from './tidings-source.js';

/** The events that change an item's read state, and the reducer (tidings-core.js) of each. */
const STATE_EVENTS = {
  read: applyRead, archived: applyArchived, unread: applyUnread, snoozed: applySnoozed,
  unarchived: applyRestored, unsnoozed: applyRestored,
};

function report(err) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
  else setTimeout(() => { throw err; });
}

function absolute(url) {
  try {
    return new URL(url, globalThis.location?.href).href;
  } catch {
    return url;
  }
}

const randomId = () => globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;

/**
 * Opens the stream and returns the client. Options:
 * - url ('/v1/stream'), apiBase (derived from url), token, getToken (async () => string),
 *   lastEventId (resume point), withCredentials (cross-origin cookie auth);
 * - shared (true): one connection per browser, shared by tabs; channel ('default') separates
 *   streams that must not be shared (e.g. a user id);
 * - for tests and unusual hosts: EventSource, BroadcastChannel, locks, fetch, random,
 *   byeDelay (1000 ms), maxNativeRetries (5 native reconnect failures before backing off).
 */
export function connect(options = {}) {
  const {
    url = '/v1/stream',
    token,
    getToken,
    lastEventId = null,
    shared = true,
    channel = 'default',
    withCredentials = false,
    random = Math.random,
    byeDelay = 1000,
    maxNativeRetries = 5,
  } = options;
  const BC = options.BroadcastChannel ?? globalThis.BroadcastChannel;
  const locks = options.locks ?? globalThis.navigator?.locks;
  const apiBase = options.apiBase ?? apiBaseFor(absolute(url));
  const tokens = tokenSource(token, getToken);
  const rest = { apiBase, tokens, withCredentials, fetch: options.fetch };
  const listeners = new Map();
  const tabId = randomId();

  let state = 'connecting';
  let lastId = toSeq(lastEventId);
  let view = null;
  let closed = false;
  let everOpen = false;
  let leading = false;
  let refreshSeq = 0;

  // -- events ---------------------------------------------------------------------------------

  function emit(type, ...args) {
    for (const fn of [...(listeners.get(type) ?? [])]) {
      try {
        fn(...args);
      } catch (err) {
        report(err);
      }
    }
  }

  function post(message) {
    if (!tabs || !leading) return;
    try {
      tabs.post(message);
    } catch (err) {
      report(err);
    }
  }

  function setState(next, { broadcast = true } = {}) {
    if (next === state) return;
    const prev = state;
    state = next;
    if (next === 'open') everOpen = true;
    if (broadcast) post({ t: 'state', state: next });
    emit('state', next, prev);
  }

  /** The one place `view` changes; `cause` is the event (or client call) that changed it. */
  function setView(next, cause) {
    if (closed || next === view) return;
    view = next;
    emit('view', view, { cause });
  }

  /** Applies one stream event to this client (leader: from its EventSource; follower: relayed). */
  function handle(type, data, meta = {}) {
    if (closed) return;
    let out = data;
    let next = view;
    const outMeta = { ...meta };
    switch (type) {
      case 'notification': {
        const id = toSeq(data?.id) ?? toSeq(meta.id);
        if (id === null || (lastId !== null && id <= lastId)) return; // seen already
        lastId = id;
        out = { ...data, id };
        if (view && isOwn(out, view.user)) out.read = true; // the user's own action: read
        let live = meta.live;
        if (view) {
          const applied = applyNotification(view, out);
          next = applied.view;
          live ??= applied.live;
        }
        outMeta.id = id;
        outMeta.live = live ?? true;
        break;
      }
      case 'ready': {
        const id = toSeq(meta.id);
        if (id !== null && (lastId === null || id > lastId)) lastId = id;
        next = normalizeSnapshot(data);
        out = next;
        break;
      }
      case 'reset': {
        lastId = toSeq(meta.id) ?? toSeq(data?.latest_seq) ?? lastId;
        next = normalizeSnapshot(data);
        out = next;
        outMeta.id = lastId;
        break;
      }
      default: // a read-state event: its reducer, if it has one
        if (view && STATE_EVENTS[type]) next = STATE_EVENTS[type](view, data ?? {});
        break;
    }
    post({ t: 'event', type, data: out, meta: outMeta });
    setView(next, type);
    emit(type, out, outMeta);
  }

  // -- the leader's EventSource (./tidings-source.js) ------------------------------------------

  const source = createSource(
    { url, ES: options.EventSource ?? globalThis.EventSource, tokens, withCredentials, random, byeDelay, maxNativeRetries },
    {
      lastId: () => lastId,
      state: (next) => setState(next === 'connecting' && everOpen ? 'reconnecting' : next),
      handle,
      freshToken: (tok) => post({ t: 'token', token: tok }),
      report,
    },
  );

  function lead() {
    if (closed || leading) return;
    leading = true;
    source.start();
  }

  // -- sharing between tabs (./tidings-tabs.js) -----------------------------------------------

  const canShare = shared && typeof BC === 'function' && typeof locks?.request === 'function';
  let tabs = null;

  function onPeer(msg) {
    if (closed || !msg || typeof msg !== 'object') return;
    if (leading) {
      if (msg.t === 'hello') {
        tabs.post({ t: 'snapshot', to: msg.from, view, state, lastId, token: tokens.current });
      }
      return; // a leader takes no orders from followers
    }
    switch (msg.t) {
      case 'event':
        handle(msg.type, msg.data, msg.meta ?? {});
        break;
      case 'state':
        setState(msg.state, { broadcast: false });
        break;
      case 'token':
        tokens.adopt(msg.token);
        break;
      case 'snapshot':
        if (msg.to !== tabId) break;
        tokens.adopt(msg.token);
        if (msg.view) {
          const id = toSeq(msg.lastId);
          if (id !== null && (lastId === null || id > lastId)) lastId = id;
          setView(normalizeSnapshot(msg.view), 'ready');
          emit('ready', view, { id: lastId, fromLeader: true });
        }
        if (msg.state) setState(msg.state, { broadcast: false });
        break;
      default:
        break;
    }
  }

  if (canShare) {
    tabs = joinTabs({ BC, locks, key: leaderKey(absolute(url), channel) }, { onLead: lead, onMessage: onPeer, report });
    tabs.post({ t: 'hello', from: tabId });
  } else {
    Promise.resolve().then(lead);
  }

  // -- the client object ----------------------------------------------------------------------

  function close() {
    if (closed) return;
    closed = true;
    source.close();
    leading = false;
    tabs?.close();
    setState('closed', { broadcast: false });
    listeners.clear();
  }

  return {
    /** 'connecting' | 'open' | 'reconnecting' | 'closed' */
    get state() { return state; },
    /** The last notification id seen (the resume point), or null. */
    get lastId() { return lastId; },
    /** The latest snapshot ({unread, latest_seq, latest}) kept current by live events, or null. */
    get view() { return view; },
    get unread() { return view ? view.unread : null; },
    /** True in the tab that holds the connection. */
    get isLeader() { return leading; },
    get shared() { return canShare; },
    get apiBase() { return apiBase; },
    /**
     * Subscribes to 'view' | 'notification' | 'read' | 'archived' | 'unread' | 'unarchived' |
     * 'snoozed' | 'unsnoozed' | 'state' | 'ready' | 'reset' | 'expired' | 'bye'.
     */
    on(type, fn) {
      if (typeof fn !== 'function') throw new TypeError('tidings: on() needs a function');
      if (!listeners.has(type)) listeners.set(type, new Set());
      listeners.get(type).add(fn);
      return () => listeners.get(type)?.delete(fn);
    },
    close,
    /** A fresh token (through getToken when available), or null for cookie auth. */
    token(fresh = false) { return tokens.get(fresh); },
    feed(opts = {}) { return feed({ ...rest, ...opts }); },
    /**
     * Marks read on the server, and in this tab's view at once (the stream's `read` event
     * confirms it); for 'all', the answer's unread count is taken as it comes.
     */
    markRead(ids, opts = {}) {
      const all = ids === 'all';
      const upTo = all ? (opts.upTo ?? lastId) : undefined;
      const request = markRead(ids, { ...rest, ...opts, upTo });
      // {groups: [...]}: the view's items of those groups now; the answer brings the count.
      const groups = Array.isArray(ids?.groups) ? ids.groups : null;
      const some = groups ? view?.latest.filter((n) => groups.includes(n.group)).map((n) => n.id) : [].concat(ids);
      if (view) setView(applyRead(view, all ? { all: true, up_to: upTo ?? undefined } : { ids: some }), 'markRead');
      if (!all && !groups) return request;
      return request.then((answer) => {
        if (answer?.unread && view) setView({ ...view, unread: normalizeUnread(answer.unread) }, 'markRead');
        return answer;
      });
    },
    archive(ids, opts = {}) { return archive(ids, { ...rest, ...opts }); },
    markUnread(ids, opts = {}) { return markUnread(ids, { ...rest, ...opts }); },
    unarchive(ids, opts = {}) { return unarchive(ids, { ...rest, ...opts }); },
    snooze(ids, until, opts = {}) { return snooze(ids, until, { ...rest, ...opts }); },
    unreadCount(opts = {}) { return unreadCount({ ...rest, ...opts }); },
    /**
     * Re-reads the latest items from the Feed API into the view (after a `reset`, or when
     * archiving emptied slots); with `{unread: true}` the unread count too. The last call wins.
     */
    async refresh({ unread: withCount = false } = {}) {
      const seq = ++refreshSeq;
      const [page, count] = await Promise.all([
        feed({ ...rest, limit: LATEST_LIMIT }),
        withCount ? unreadCount(rest) : null,
      ]);
      if (seq !== refreshSeq || !view) return view;
      const next = withLatest(view, page?.items ?? []);
      setView(count ? { ...next, unread: normalizeUnread(count) } : next, 'refresh');
      return view;
    },
  };
}
