/**
 * tidings-attrs.js — the attributes <tidings-bell> and <tidings-inbox> share, read the same way:
 * where tidings is (stream-url, api-base), how to get a token (token, token-url), whether tabs
 * share one stream (shared, channel), the bell's Web Push service worker (sw-url, no-push), and
 * their words: `locale` with the host's overrides of catalogue strings (`withMessages`).
 *
 * The defaults live next to this file: .../static/tidings-attrs.js → .../v1/stream and the API
 * at ..., so same-origin pages, cross-origin embeds and path prefixes just work.
 * Invariant: an element with the same attributes gets the same options, so a bell and an inbox
 * on one page share one stream (tidings.js: one leader per stream URL and channel).
 */

import { fetchToken } from './tidings-feed.js';
import { isSafeLink } from './tidings-core.js';
import { translator } from './tidings-i18n.js';

export const DEFAULT_STREAM_URL = new URL('../v1/stream', import.meta.url).href;
export const DEFAULT_API_BASE = new URL('..', import.meta.url).href.replace(/\/$/, '');
export const DEFAULT_SW_URL = new URL('./sw.js', import.meta.url).href;

/** The attributes that, changed, make an element reconnect. */
export const CONNECTION_ATTRIBUTES = Object.freeze(['token', 'token-url', 'stream-url', 'api-base', 'channel', 'shared']);

/**
 * `run` at most once per microtask however often the returned function is called: several
 * connection attributes often change together, and the element reconnects once.
 */
export function batched(run) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      run();
    });
  };
}

/** Where tidings is and how to get a token, for the stream, the Feed API and push alike. */
export function authOptions(host) {
  const tokenUrl = host.getAttribute('token-url');
  return {
    apiBase: host.getAttribute('api-base') ?? DEFAULT_API_BASE,
    token: host.getAttribute('token') || undefined,
    getToken: tokenUrl ? () => fetchToken(tokenUrl) : undefined,
  };
}

/** `connect()`'s options for an element. */
export function connectOptions(host) {
  return {
    ...authOptions(host),
    url: host.getAttribute('stream-url') || DEFAULT_STREAM_URL,
    channel: host.getAttribute('channel') || 'default',
    shared: host.getAttribute('shared') !== 'false',
  };
}

/** tidings-push.js's options: the auth and the service worker's absolute URL. */
export function pushOptions(host) {
  return { ...authOptions(host), swUrl: new URL(host.getAttribute('sw-url') || DEFAULT_SW_URL, document.baseURI).href };
}

/** Push needs the browser's support and a service worker on the page's own origin. */
export function pushAvailable(host) {
  if (host.hasAttribute('no-push') || !('PushManager' in window) || !navigator.serviceWorker) return false;
  try {
    return new URL(pushOptions(host).swUrl).origin === window.location.origin;
  } catch {
    return false;
  }
}

/** Points `link` at the URL in attribute `attr` when `isSafeLink` accepts it, else hides it. */
export function linkTo(link, host, attr) {
  const href = host.getAttribute(attr);
  const ok = Boolean(href) && isSafeLink(href);
  if (ok) link.setAttribute('href', href);
  else link.removeAttribute('href');
  link.hidden = !ok;
  return ok;
}

/** An element made `withMessages` re-renders every string in its method of this name. */
export const RELABEL = Symbol('tidings.relabel');
/** An element made `withMessages` reads its catalogue lookup at this name. */
export const WORDS = Symbol('tidings.words');

/**
 * `Base` with the host's overrides of catalogue strings: `messages` (a copy) and `setMessages`,
 * which call `this[RELABEL]()`; and `this[WORDS]`, the lookup for the `locale` attribute (else
 * the browser's languages) with those overrides, built again when either has changed.
 */
export function withMessages(Base) {
  return class extends Base {
    #messages = {};
    #words = null;
    #wordsLocale = null;

    /** Host overrides of any catalogue string, type labels too ({'markAll': '…', 'type.x': '…'}). */
    get messages() {
      return { ...this.#messages };
    }

    set messages(value) {
      this.setMessages(value);
    }

    /** Replace the host's overrides and re-render every string. */
    setMessages(value) {
      this.#messages = { ...(value ?? {}) };
      this.#words = null;
      this[RELABEL]();
    }

    get [WORDS]() {
      const locale = this.getAttribute('locale');
      if (this.#words === null || locale !== this.#wordsLocale) {
        this.#words = translator(locale, this.#messages);
        this.#wordsLocale = locale;
      }
      return this.#words;
    }
  };
}
