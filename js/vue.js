/**
 * tidings/vue — thin Vue 3 bindings (render functions, so no SFC compiler and no build step).
 *
 *   import { TidingsBell, useTidings } from 'tidings/vue';
 *   h(TidingsBell, { tokenUrl: '/api/tidings-token', onNotification: (d) => toast(d.notification.title) })
 *   <TidingsBell token-url="/api/tidings-token" @notification="onNew" />   (in a template)
 *
 * Invariants:
 * - render touches no DOM, so server rendering emits a plain `<tidings-bell …>` tag; the element's
 *   module is imported on mount (browser only) and upgrades the tag in place;
 * - props map to the element's attributes one to one (camelCase → kebab-case); the element's
 *   `tidings-*` events are re-emitted without the prefix with `(detail, event)`, except
 *   `tidings-click`, which is `itemClick` (`@item-click`: a `click` would hide the native one);
 * - `useTidings` owns one `connect()` client for the component's life and closes it on unmount.
 */

import { defineComponent, h, onBeforeUnmount, onMounted, shallowRef } from 'vue';

import { connect } from '../src/tidings/web/static/tidings.js';

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

/** Emitted name → the element's event. */
const EVENTS = {
  notification: 'tidings-notification',
  state: 'tidings-state',
  itemClick: 'tidings-click', // not `click`: that would swallow the native click listener
  open: 'tidings-open',
  close: 'tidings-close',
  push: 'tidings-push',
};

let defining = null;

/** Imports the element's module once (browser only); resolves when <tidings-bell> is defined. */
export function defineTidingsBell() {
  defining ??= import('../src/tidings/web/static/tidings-bell.js').then(() => customElements.whenDefined('tidings-bell'));
  return defining;
}

const props = {};
for (const name of Object.keys(ATTRIBUTES)) {
  props[name] = BOOLEAN.has(name) ? { type: Boolean, default: false } : { type: [String, Boolean], default: undefined };
}

/** `<tidings-bell>` as a Vue component; the template ref's `el` is the element. */
export const TidingsBell = defineComponent({
  name: 'TidingsBell',
  props,
  emits: Object.keys(EVENTS),
  setup(p, { emit, slots, expose }) {
    const el = shallowRef(null);
    const offs = [];
    expose({ el });
    onMounted(() => {
      defineTidingsBell().catch((err) => globalThis.reportError?.(err));
      for (const [name, type] of Object.entries(EVENTS)) {
        const listener = (event) => emit(name, event.detail, event);
        el.value.addEventListener(type, listener);
        offs.push(() => el.value?.removeEventListener(type, listener));
      }
    });
    onBeforeUnmount(() => offs.splice(0).forEach((off) => off()));
    return () => {
      const attrs = { ref: el };
      for (const [name, attr] of Object.entries(ATTRIBUTES)) {
        const value = p[name];
        if (value === undefined || value === null || (value === false && BOOLEAN.has(name))) continue;
        attrs[attr] = BOOLEAN.has(name) ? '' : String(value);
      }
      return h('tidings-bell', attrs, slots.default?.());
    };
  },
});

/**
 * The connect() client as reactive state for this component: `{ client, state, view, unread,
 * lastNotification }` (shallow refs). Connects on mount (browser), closes on unmount.
 */
export function useTidings(options = {}) {
  const client = shallowRef(null);
  const state = shallowRef('connecting');
  const view = shallowRef(null);
  const unread = shallowRef(null);
  const lastNotification = shallowRef(null);
  const offs = [];
  onMounted(() => {
    const c = connect(options);
    client.value = c;
    const sync = () => {
      state.value = c.state;
      view.value = c.view;
      unread.value = c.unread;
    };
    for (const type of ['state', 'ready', 'reset', 'read', 'archived']) offs.push(c.on(type, sync));
    offs.push(
      c.on('notification', (n) => {
        lastNotification.value = n;
        sync();
      }),
    );
    sync();
  });
  onBeforeUnmount(() => {
    offs.splice(0).forEach((off) => off());
    client.value?.close();
  });
  return { client, state, view, unread, lastNotification };
}
