/**
 * tidings-feed.js — the Feed API (GET /v1/feed, mark read, archive, unread count) and the token
 * a browser uses for it. tidings.js re-exports everything here; `connect()`'s client binds it to
 * its stream's api base and token.
 *
 * Invariants:
 * - one token cache per client (`tokenSource`): a static token first, `getToken()` when it is
 *   missing, and once more (fresh) after a 401;
 * - a failed call rejects with a `TidingsError` whose `problem` is the server's
 *   application/problem+json body (RFC 9457), when there is one; nothing here retries otherwise.
 */

import { toSeq } from './tidings-core.js';

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

// ---------------------------------------------------------------------------------------------
// Tokens

/** One token cache per client: a static token first, `getToken()` when it is missing or stale. */
export function tokenSource(token, getToken) {
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

/**
 * The token fetcher every browser module shares: GET `tokenUrl` on the page's own backend
 * (cookies included), which answers `{"token": "..."}` for the signed-in user.
 * Rejects with a TidingsError (its `status` is the answer's) when there is no token.
 */
export async function fetchToken(tokenUrl) {
  const response = await fetch(tokenUrl, {
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { Accept: 'application/json' },
  });
  if (!response.ok) {
    throw new TidingsError(`tidings: ${tokenUrl} answered ${response.status}`, {
      status: response.status,
      code: `http_${response.status}`,
    });
  }
  const body = await response.json();
  if (!body || typeof body.token !== 'string') throw new TidingsError(`tidings: ${tokenUrl} sent no token`);
  return body.token;
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
  } else if (Array.isArray(ids?.groups)) {
    body = { groups: ids.groups.map(String) }; // every item of those collapse keys
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
