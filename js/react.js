/**
 * tidings/react — thin React bindings (React 18 and 19; no JSX, so no build step of its own).
 *
 *   import { TidingsBell, useTidings } from 'tidings/react';
 *   <TidingsBell tokenUrl="/api/tidings-token" streamUrl="https://tidings.example.com/v1/stream"
 *                apiBase="https://tidings.example.com" onNotification={(d) => toast(d.notification.title)} />
 *
 * Invariants:
 * - nothing here touches the DOM during render, so server rendering emits a plain
 *   `<tidings-bell …>` tag; the element's module is imported in an effect (browser only) and
 *   upgrades the tag in place;
 * - props map to the element's attributes one to one (camelCase → kebab-case); listeners are
 *   added in an effect and always call the latest prop, so a new arrow function per render
 *   neither re-subscribes nor reconnects;
 * - `useTidings` owns one `connect()` client per (options key) and closes it on unmount.
 */

import { createElement, forwardRef, useEffect, useImperativeHandle, useRef, useState } from 'react';

import { connect } from '../src/tidings/web/static/tidings.js';

/** camelCase prop → the element's attribute. */
const ATTRIBUTES = {
  token: 'token',
  tokenUrl: 'token-url',
  streamUrl: 'stream-url',
  apiBase: 'api-base',
  viewAllUrl: 'view-all-url',
  preferencesUrl: 'preferences-url',
  channel: 'channel',
  shared: 'shared',
  noToasts: 'no-toasts',
  align: 'align',
  locale: 'locale',
  theme: 'theme',
  swUrl: 'sw-url',
  noPush: 'no-push',
};
const BOOLEAN = new Set(['noToasts', 'noPush']);

/** Listener prop → the element's event. */
const EVENTS = {
  onNotification: 'tidings-notification',
  onStateChange: 'tidings-state',
  onItemClick: 'tidings-click',
  onOpen: 'tidings-open',
  onClose: 'tidings-close',
  onPush: 'tidings-push',
};

let defining = null;

/** Imports the element's module once (browser only); resolves when <tidings-bell> is defined. */
export function defineTidingsBell() {
  defining ??= import('../src/tidings/web/static/tidings-bell.js').then(() => customElements.whenDefined('tidings-bell'));
  return defining;
}

function attributesOf(props) {
  const out = {};
  for (const [prop, attr] of Object.entries(ATTRIBUTES)) {
    const value = props[prop];
    if (value === undefined || value === null || (value === false && BOOLEAN.has(prop))) continue;
    out[attr] = BOOLEAN.has(prop) ? '' : String(value);
  }
  return out;
}

/** `<tidings-bell>` as a React component. The ref is the element (TidingsBell). */
export const TidingsBell = forwardRef(function TidingsBell(props, ref) {
  const element = useRef(null);
  const latest = useRef(props);
  latest.current = props;
  useImperativeHandle(ref, () => element.current, []);

  useEffect(() => {
    defineTidingsBell().catch((err) => globalThis.reportError?.(err));
    const node = element.current;
    if (!node) return undefined;
    const offs = Object.entries(EVENTS).map(([prop, type]) => {
      const listener = (event) => {
        const fn = latest.current[prop];
        if (typeof fn === 'function') fn(event.detail, event);
      };
      node.addEventListener(type, listener);
      return () => node.removeEventListener(type, listener);
    });
    return () => offs.forEach((off) => off());
  }, []);

  const { className, style, id, children } = props;
  return createElement('tidings-bell', { ref: element, className, style, id, ...attributesOf(props) }, children);
});

/**
 * The connect() client as React state: `{ client, state, view, unread, lastNotification }`.
 * `options` are connect()'s; the client is made again only when `key` (default: the stream URL,
 * API base and channel) changes. null client during server rendering.
 */
export function useTidings(options = {}, key = undefined) {
  const [snapshot, setSnapshot] = useState({ client: null, state: 'connecting', view: null, unread: null, lastNotification: null });
  const latest = useRef(options);
  latest.current = options;
  const identity = key ?? `${options.url ?? ''}|${options.apiBase ?? ''}|${options.channel ?? ''}`;

  useEffect(() => {
    const client = connect({ ...latest.current, getToken: latest.current.getToken && ((...a) => latest.current.getToken(...a)) });
    const sync = (patch = {}) => setSnapshot((s) => ({ ...s, client, state: client.state, view: client.view, unread: client.unread, ...patch }));
    const offs = [
      client.on('state', () => sync()),
      client.on('ready', () => sync()),
      client.on('reset', () => sync()),
      client.on('read', () => sync()),
      client.on('archived', () => sync()),
      client.on('notification', (n) => sync({ lastNotification: n })),
    ];
    sync();
    return () => {
      offs.forEach((off) => off());
      client.close();
    };
  }, [identity]);

  return snapshot;
}
