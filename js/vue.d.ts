/**
 * Types for tidings/vue. Vue (3.3+) is a peer dependency.
 */

import type { DefineComponent, ShallowRef } from 'vue';

import type { ConnectOptions, ConnectionState, TidingsClient } from '../src/tidings/web/static/tidings.js';
import type { Notification, Unread, View } from '../src/tidings/web/static/tidings-core.js';
import type {
  TidingsBell as TidingsBellElement,
  TidingsClickDetail,
  TidingsNotificationDetail,
  TidingsPushDetail,
  TidingsStateDetail,
} from '../src/tidings/web/static/tidings-bell.js';

export type { TidingsBellElement };

/** The element's attributes in camelCase (kebab-case in templates). */
export interface TidingsBellProps {
  token?: string;
  tokenUrl?: string;
  streamUrl?: string;
  apiBase?: string;
  viewAllUrl?: string;
  preferencesUrl?: string;
  channel?: string;
  shared?: boolean | string;
  noToasts?: boolean;
  align?: 'left' | 'right';
  locale?: string;
  theme?: 'dark' | 'light';
  swUrl?: string;
  noPush?: boolean;
}

/** The element's `tidings-*` events, re-emitted without the prefix as (detail, event); `tidings-click` is `itemClick`. */
export type TidingsBellEmits = {
  notification: (detail: TidingsNotificationDetail, event: CustomEvent<TidingsNotificationDetail>) => void;
  state: (detail: TidingsStateDetail, event: CustomEvent<TidingsStateDetail>) => void;
  /** `tidings-click`: call `event.preventDefault()` to keep the page. */
  itemClick: (detail: TidingsClickDetail, event: CustomEvent<TidingsClickDetail>) => void;
  open: (detail: null, event: CustomEvent<null>) => void;
  close: (detail: null, event: CustomEvent<null>) => void;
  push: (detail: TidingsPushDetail, event: CustomEvent<TidingsPushDetail>) => void;
};

/** `<tidings-bell>` as a component; its exposed `el` is the element. */
export const TidingsBell: DefineComponent<TidingsBellProps, { el: ShallowRef<TidingsBellElement | null> }, {}, {}, {}, {}, {}, TidingsBellEmits>;

/** Imports the element's module once (browser only); resolves when it is defined. */
export function defineTidingsBell(): Promise<CustomElementConstructor>;

export interface TidingsState {
  client: ShallowRef<TidingsClient | null>;
  state: ShallowRef<ConnectionState>;
  view: ShallowRef<View | null>;
  unread: ShallowRef<Unread | null>;
  lastNotification: ShallowRef<Notification | null>;
}

/** connect() as reactive state for the calling component (connects on mount, closes on unmount). */
export function useTidings(options?: ConnectOptions): TidingsState;
