/**
 * tidings-source.js — the one EventSource a stream leader holds, and its reconnect policy.
 * `connect()` (tidings.js) starts it in the tab that leads; everything it reads goes to `handle`.
 *
 * Invariants:
 * - at most one EventSource at a time; a frame from a replaced one is ignored (`es === src`);
 * - while the browser says CONNECTING it resumes natively (Last-Event-ID), up to
 *   `maxNativeRetries` failures; otherwise a fresh EventSource resumes from `lastId()` after
 *   exponential backoff with full jitter, reset by `ready`/`reset`;
 * - `expired`, or a refusal before `ready`, asks `tokens` for a fresh token (once per attempt);
 * - `bye` reconnects after the server's hint (or `byeDelay`) plus jitter.
 */

import { backoffDelay, buildStreamUrl, toSeq } from './tidings-core.js';

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

/**
 * `hooks`: lastId() → the resume point; state('open' | 'connecting' | 'closed');
 * handle(name, data, meta) for every frame; freshToken(token) when one was fetched;
 * report(err) for what nobody else can handle.
 */
export function createSource({ url, ES, tokens, withCredentials, random, byeDelay, maxNativeRetries }, hooks) {
  let active = false;
  let es = null;
  let timer = null;
  let attempt = 0;
  let gen = 0;
  let readyOnThis = false;
  let nativeErrors = 0;
  let wantFreshToken = false;
  const CLOSED = ES?.CLOSED ?? 2;

  function drop() {
    gen += 1;
    if (es) es.close();
    es = null;
    clearTimeout(timer);
    timer = null;
  }

  function schedule(delay = backoffDelay(attempt++, { random })) {
    drop();
    if (!active) return;
    hooks.state('connecting');
    timer = setTimeout(open, delay);
  }

  async function open() {
    drop();
    if (!active) return;
    const my = gen;
    hooks.state('connecting');
    let tok;
    try {
      tok = await tokens.get(wantFreshToken);
    } catch {
      if (my === gen) schedule();
      return;
    }
    if (my !== gen || !active) return;
    if (wantFreshToken && tok) hooks.freshToken(tok);
    wantFreshToken = false;
    if (typeof ES !== 'function') {
      hooks.report(new Error('tidings: EventSource is not available'));
      hooks.state('closed');
      return;
    }
    const src = new ES(buildStreamUrl(url, { token: tok, lastEventId: hooks.lastId() }), { withCredentials });
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
    hooks.state('connecting');
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
        hooks.state('open');
        hooks.handle(name, data, { id: frameId });
        break;
      case 'notification':
        hooks.handle(name, data, { id: frameId });
        break;
      case 'expired':
        hooks.handle(name, data);
        wantFreshToken = tokens.canRefresh;
        schedule();
        break;
      case 'bye': {
        hooks.handle(name, data);
        const hint = Number(data?.retry ?? data?.retry_ms);
        const wait = Number.isFinite(hint) && hint > 0 ? hint : byeDelay;
        schedule(wait + Math.floor(random() * wait));
        break;
      }
      default:
        hooks.handle(name, data);
    }
  }

  // Back online, or back from the back/forward cache with a dead EventSource: connect now
  // rather than at the end of a backoff.
  const onOnline = () => {
    if (active && timer) open();
  };
  const onPageShow = (event) => {
    if (!event.persisted || !active || timer) return;
    if (!es || es.readyState === CLOSED) open();
  };
  globalThis.addEventListener?.('online', onOnline);
  globalThis.addEventListener?.('pageshow', onPageShow);

  return {
    /** Opens the stream (this tab leads now). */
    start() {
      if (active) return;
      active = true;
      open();
    },
    /** Closes the stream for good. */
    close() {
      active = false;
      drop();
      globalThis.removeEventListener?.('online', onOnline);
      globalThis.removeEventListener?.('pageshow', onPageShow);
    },
  };
}
