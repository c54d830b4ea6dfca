/**
 * tidings.js — the browser client of a tidings server: one resumable SSE stream per browser
 * (shared by its tabs), plus the Feed API.
 *
 *   import { connect } from '/static/tidings.js';
 *   const client = connect({ getToken: () => fetch('/api/tidings-token').then(r => r.json()).then(j => j.token) });
 *   client.on('notification', (n, meta) => console.log(n.title, meta.live));
 *
 * Guarantees (see docs/protocol.md):
 * - every notification is emitted at most once per client, in id order (`id <= lastId` is dropped);
 * - after any drop the stream resumes from the last id seen: natively (Last-Event-ID) while the
 *   EventSource says CONNECTING, otherwise with a fresh EventSource and `last_event_id`, after
 *   exponential backoff with full jitter (1 s base, 30 s cap, reset by `ready`);
 * - `expired`, or a stream refused before `ready`, fetches a fresh token through `getToken`;
 * - with `shared` (default), tabs elect one leader per stream through the Web Locks API; only the
 *   leader holds an EventSource and re-broadcasts every event on a BroadcastChannel. When the
 *   leader goes, the next tab takes the lock and resumes from the last id it saw.
 */

import {
  applyArchived,
  applyNotification,
  applyRead,
  applyRestored,
  applySnoozed,
  applyUnread,
  isOwn,
  apiBaseFor,
  backoffDelay,
  buildStreamUrl,
  leaderKey,
  normalizeSnapshot,
  toSeq,
} from './tidings-core.js';

export const STREAM_EVENTS = Object.freeze([
  'ready',
  'notification',
  'read',
  'archived',
  'unread',
  'unarchived',
  'snoozed',
  'unsnoozed',
  'reset',
  'expired',
  'bye',
]);

/** A Feed API call failed; `problem` is the server's application/problem+json body, if any. */
export class TidingsError extends Error {
  constructor(message, { status = 0, code = 'network_error', problem = null } = {}) {
    super(message);
    this.name = 'TidingsError';
    this.status = status;
    this.code = code;
    this.problem = problem;
  }
}

function report(err) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
  else setTimeout(() => { throw err; });
}

// ---------------------------------------------------------------------------------------------
// Tokens

/** One token cache per client: a static token first, `getToken()` when it is missing or stale. */
function tokenSource(token, getToken) {
  let current = token || null;
  let pending = null;
  return {
    get current() {
      return current;
    },
    get canRefresh() {
      return typeof getToken === 'function';
    },
    /** A token another tab fetched: used as a cache, never over a token given to this tab. */
    adopt(value) {
      if (typeof value === 'string' && value && !token) current = value;
    },
    async get(fresh = false) {
      if (current && !fresh) return current;
      if (typeof getToken !== 'function') return current;
      pending ??= Promise.resolve()
        .then(() => getToken())
        .then((value) => {
          if (typeof value === 'string' && value) current = value;
          else if (value && typeof value.token === 'string') current = value.token;
          return current;
        })
        .finally(() => {
          pending = null;
        });
      return pending;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Feed API

function sameOrigin(base) {
  if (!base) return true;
  try {
    return new URL(base, globalThis.location?.href).origin === globalThis.location?.origin;
  } catch {
    return false;
  }
}

async function call(method, path, opts = {}, body = undefined) {
  const { apiBase = '', signal } = opts;
  // keepalive lets a mark-read survive the navigation that follows it; browsers refuse it for
  // requests that need a CORS preflight, so it is only asked for on our own origin.
  const keepalive = Boolean(opts.keepalive) && sameOrigin(apiBase);
  const credentials = opts.withCredentials ? 'include' : 'same-origin';
  const tokens = opts.tokens ?? tokenSource(opts.token, opts.getToken);
  const doFetch = opts.fetch ?? globalThis.fetch;
  const send = async (fresh) => {
    const token = await tokens.get(fresh);
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return doFetch(apiBase + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials,
      cache: 'no-store',
      keepalive,
      signal,
    });
  };
  let response;
  try {
    response = await send(false);
    if (response.status === 401 && tokens.canRefresh) response = await send(true);
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw new TidingsError(`tidings: ${method} ${path} failed: ${err?.message ?? err}`);
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const problem = json && typeof json === 'object' ? json : null;
    throw new TidingsError(problem?.detail || problem?.title || `tidings: ${method} ${path} answered ${response.status}`, {
      status: response.status,
      code: problem?.code || `http_${response.status}`,
      problem,
    });
  }
  return json;
}

function idList(ids) {
  const list = (Array.isArray(ids) ? ids : [ids]).map(toSeq).filter((id) => id !== null);
  if (list.length === 0) throw new TypeError('tidings: expected one or more notification ids');
  return list;
}

/**
 * GET /v1/feed. `opts`: status ('unread'|'read'|'archived'|'all'), type, limit (1–100), cursor,
 * plus the connection options apiBase, token, getToken, signal.
 * Resolves to {items: [...], next_cursor}.
 */
export function feed(opts = {}) {
  const q = new URLSearchParams();
  for (const key of ['status', 'type', 'limit', 'cursor']) {
    if (opts[key] !== undefined && opts[key] !== null && opts[key] !== '') q.set(key, String(opts[key]));
  }
  const qs = q.toString();
  return call('GET', `/v1/feed${qs ? `?${qs}` : ''}`, opts);
}

/** POST /v1/feed/read with ids, or 'all' (optionally `opts.upTo`). Resolves to {unread}. */
export function markRead(ids, opts = {}) {
  let body;
  if (ids === 'all') {
    body = { all: true };
    const upTo = toSeq(opts.upTo);
    if (upTo !== null) body.up_to = upTo;
  } else {
    body = { ids: idList(ids) };
  }
  return call('POST', '/v1/feed/read', { keepalive: true, ...opts }, body);
}

/** POST /v1/feed/archive. Resolves to {unread}. */
export function archive(ids, opts = {}) {
  return call('POST', '/v1/feed/archive', { keepalive: true, ...opts }, { ids: idList(ids) });
}

/** POST /v1/feed/unread: unread again (a snooze on them ends). Resolves to {unread}. */
export function markUnread(ids, opts = {}) {
  return call('POST', '/v1/feed/unread', { keepalive: true, ...opts }, { ids: idList(ids) });
}

/** POST /v1/feed/unarchive: back in the inbox. Resolves to {unread}. */
export function unarchive(ids, opts = {}) {
  return call('POST', '/v1/feed/unarchive', { keepalive: true, ...opts }, { ids: idList(ids) });
}

/** POST /v1/feed/snooze until `until` (a Date or an ISO string with a zone). Resolves to {unread}. */
export function snooze(ids, until, opts = {}) {
  const when = until instanceof Date ? until.toISOString() : String(until);
  return call('POST', '/v1/feed/snooze', { keepalive: true, ...opts }, { ids: idList(ids), until: when });
}

/** GET /v1/feed/unread-count. Resolves to {count, more}. */
export function unreadCount(opts = {}) {
  return call('GET', '/v1/feed/unread-count', opts);
}

// ---------------------------------------------------------------------------------------------
// The stream

function absolute(url) {
  try {
    return new URL(url, globalThis.location?.href).href;
  } catch {
    return url;
  }
}

function randomId() {
  return globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

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
  const ES = options.EventSource ?? globalThis.EventSource;
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
    if (!bc || !leading) return;
    try {
      bc.postMessage(message);
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

  /** Applies one stream event to this client (leader: from its EventSource; follower: relayed). */
  function handle(type, data, meta = {}) {
    if (closed) return;
    let out = data;
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
          const next = applyNotification(view, out);
          view = next.view;
          live ??= next.live;
        }
        outMeta.id = id;
        outMeta.live = live ?? true;
        break;
      }
      case 'ready': {
        const id = toSeq(meta.id);
        if (id !== null && (lastId === null || id > lastId)) lastId = id;
        view = normalizeSnapshot(data);
        out = view;
        break;
      }
      case 'reset': {
        lastId = toSeq(meta.id) ?? toSeq(data?.latest_seq) ?? lastId;
        view = normalizeSnapshot(data);
        out = view;
        outMeta.id = lastId;
        break;
      }
      case 'read':
        if (view) view = applyRead(view, data ?? {});
        break;
      case 'archived':
        if (view) view = applyArchived(view, data ?? {});
        break;
      case 'unread':
        if (view) view = applyUnread(view, data ?? {});
        break;
      case 'snoozed':
        if (view) view = applySnoozed(view, data ?? {});
        break;
      case 'unarchived':
      case 'unsnoozed':
        if (view) view = applyRestored(view, data ?? {});
        break;
      default:
        break;
    }
    post({ t: 'event', type, data: out, meta: outMeta });
    emit(type, out, outMeta);
  }

  // -- the leader's EventSource ---------------------------------------------------------------

  let es = null;
  let timer = null;
  let attempt = 0;
  let gen = 0;
  let readyOnThis = false;
  let nativeErrors = 0;
  let wantFreshToken = false;

  function drop() {
    gen += 1;
    if (es) es.close();
    es = null;
    clearTimeout(timer);
    timer = null;
  }

  function schedule(delay = backoffDelay(attempt++, { random })) {
    drop();
    if (closed || !leading) return;
    setState(everOpen ? 'reconnecting' : 'connecting');
    timer = setTimeout(open, delay);
  }

  async function open() {
    drop();
    if (closed || !leading) return;
    const my = gen;
    setState(everOpen ? 'reconnecting' : 'connecting');
    let tok;
    try {
      tok = await tokens.get(wantFreshToken);
    } catch (err) {
      if (my === gen) schedule();
      return;
    }
    if (my !== gen || closed || !leading) return;
    if (wantFreshToken && tok) post({ t: 'token', token: tok });
    wantFreshToken = false;
    if (typeof ES !== 'function') {
      report(new Error('tidings: EventSource is not available'));
      setState('closed');
      return;
    }
    const src = new ES(buildStreamUrl(url, { token: tok, lastEventId: lastId }), { withCredentials });
    es = src;
    readyOnThis = false;
    nativeErrors = 0;
    for (const name of STREAM_EVENTS) {
      src.addEventListener(name, (event) => {
        if (es === src) onFrame(name, event);
      });
    }
    src.addEventListener('error', () => {
      if (es === src) onError(src);
    });
  }

  function onError(src) {
    const CLOSED = ES.CLOSED ?? 2;
    if (src.readyState === CLOSED) {
      // Refused (4xx/5xx, wrong content type): no native retry. A refusal before `ready` is
      // most likely an expired or revoked token.
      if (!readyOnThis && tokens.canRefresh) wantFreshToken = true;
      schedule();
      return;
    }
    // CONNECTING: the browser retries on its own with Last-Event-ID.
    readyOnThis = false;
    nativeErrors += 1;
    setState(everOpen ? 'reconnecting' : 'connecting');
    if (nativeErrors > maxNativeRetries) schedule();
  }

  function onFrame(name, event) {
    let data = {};
    try {
      data = event.data ? JSON.parse(event.data) : {};
    } catch {
      return; // not ours: the protocol's data is always one line of JSON
    }
    const frameId = event.lastEventId === '' ? null : toSeq(event.lastEventId);
    switch (name) {
      case 'ready':
      case 'reset':
        readyOnThis = true;
        attempt = 0;
        nativeErrors = 0;
        setState('open');
        handle(name, data, { id: frameId });
        break;
      case 'notification':
        handle(name, data, { id: frameId });
        break;
      case 'expired':
        handle(name, data);
        wantFreshToken = tokens.canRefresh;
        schedule();
        break;
      case 'bye': {
        handle(name, data);
        const hint = Number(data?.retry ?? data?.retry_ms);
        const wait = Number.isFinite(hint) && hint > 0 ? hint : byeDelay;
        schedule(wait + Math.floor(random() * wait));
        break;
      }
      default:
        handle(name, data);
    }
  }

  function lead() {
    if (closed || leading) return;
    leading = true;
    open();
  }

  // -- sharing between tabs -------------------------------------------------------------------

  let bc = null;
  let releaseLock = null;
  const lockAbort = typeof AbortController === 'function' ? new AbortController() : null;
  const canShare = shared && typeof BC === 'function' && typeof locks?.request === 'function';

  function onPeer(msg) {
    if (closed || !msg || typeof msg !== 'object') return;
    if (leading) {
      if (msg.t === 'hello') {
        bc.postMessage({ t: 'snapshot', to: msg.from, view, state, lastId, token: tokens.current });
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
          view = normalizeSnapshot(msg.view);
          emit('ready', view, { id: lastId, fromLeader: true });
        }
        if (msg.state) setState(msg.state, { broadcast: false });
        break;
      default:
        break;
    }
  }

  if (canShare) {
    const key = leaderKey(absolute(url), channel);
    bc = new BC(`tidings:${key}`);
    bc.onmessage = (event) => onPeer(event.data);
    const lockOpts = lockAbort ? { signal: lockAbort.signal } : {};
    Promise.resolve()
      .then(() =>
        locks.request(`tidings-leader:${key}`, lockOpts, () => {
          if (closed) return undefined;
          lead();
          return new Promise((resolve) => {
            releaseLock = resolve;
          });
        }),
      )
      .catch((err) => {
        if (closed || err?.name === 'AbortError') return;
        report(err);
        lead(); // locks failed: better one stream per tab than none
      });
    bc.postMessage({ t: 'hello', from: tabId });
  } else {
    Promise.resolve().then(lead);
  }

  // Back online, or back from the back/forward cache with a dead EventSource: connect now
  // rather than at the end of a backoff.
  const onOnline = () => {
    if (leading && timer) open();
  };
  const onPageShow = (event) => {
    if (!event.persisted || !leading || timer) return;
    if (!es || es.readyState === (ES.CLOSED ?? 2)) open();
  };
  globalThis.addEventListener?.('online', onOnline);
  globalThis.addEventListener?.('pageshow', onPageShow);

  // -- the client object ----------------------------------------------------------------------

  function close() {
    if (closed) return;
    closed = true;
    drop();
    leading = false;
    releaseLock?.();
    lockAbort?.abort();
    bc?.close();
    globalThis.removeEventListener?.('online', onOnline);
    globalThis.removeEventListener?.('pageshow', onPageShow);
    setState('closed', { broadcast: false });
    listeners.clear();
  }

  return {
    /** 'connecting' | 'open' | 'reconnecting' | 'closed' */
    get state() {
      return state;
    },
    /** The last notification id seen (the resume point), or null. */
    get lastId() {
      return lastId;
    },
    /** The latest snapshot ({unread, latest_seq, latest}) kept current by live events, or null. */
    get view() {
      return view;
    },
    get unread() {
      return view ? view.unread : null;
    },
    /** True in the tab that holds the connection. */
    get isLeader() {
      return leading;
    },
    get shared() {
      return canShare;
    },
    get apiBase() {
      return apiBase;
    },
    /**
     * Subscribes to 'notification' | 'read' | 'archived' | 'unread' | 'unarchived' | 'snoozed' |
     * 'unsnoozed' | 'state' | 'ready' | 'reset' | 'expired'.
     */
    on(type, fn) {
      if (typeof fn !== 'function') throw new TypeError('tidings: on() needs a function');
      if (!listeners.has(type)) listeners.set(type, new Set());
      listeners.get(type).add(fn);
      return () => listeners.get(type)?.delete(fn);
    },
    close,
    /** A fresh token (through getToken when available), or null for cookie auth. */
    token(fresh = false) {
      return tokens.get(fresh);
    },
    feed(opts = {}) {
      return feed({ ...rest, ...opts });
    },
    markRead(ids, opts = {}) {
      const upTo = ids === 'all' ? (opts.upTo ?? lastId) : undefined;
      return markRead(ids, { ...rest, ...opts, upTo });
    },
    archive(ids, opts = {}) {
      return archive(ids, { ...rest, ...opts });
    },
    markUnread(ids, opts = {}) {
      return markUnread(ids, { ...rest, ...opts });
    },
    unarchive(ids, opts = {}) {
      return unarchive(ids, { ...rest, ...opts });
    },
    snooze(ids, until, opts = {}) {
      return snooze(ids, until, { ...rest, ...opts });
    },
    unreadCount(opts = {}) {
      return unreadCount({ ...rest, ...opts });
    },
  };
}
