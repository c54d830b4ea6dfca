/**
 * Types for tidings-bell.js: the <tidings-bell> custom element. Importing the module defines
 * the element (once; a second import is a no-op).
 *
 *   import 'tidings/bell';
 *   const bell = document.querySelector('tidings-bell');   // TidingsBell
 *   bell?.addEventListener('tidings-notification', (e) => e.detail.notification.title);
 */

import type { ConnectionState, TidingsClient } from './tidings.js';
import type { FeedItem, Notification, View } from './tidings-core.js';
import type { PushButtonState } from './tidings-push.js';
import type { Messages } from './tidings-i18n.js';

/**
 * The element's attributes (all strings in HTML; boolean ones count by presence).
 * Changing token, token-url, stream-url, api-base, channel or shared reconnects once.
 */
export interface TidingsBellAttributes {
  /** A stream token. Prefer `token-url` (tokens are short-lived). */
  token?: string;
  /** A URL on the host app that answers `{"token": "..."}` for the signed-in user. */
  'token-url'?: string;
  /** Default: /v1/stream next to the module's origin and prefix. */
  'stream-url'?: string;
  /** Default: the module's origin and prefix. */
  'api-base'?: string;
  'view-all-url'?: string;
  'preferences-url'?: string;
  /** Separates streams that must not be shared between tabs (e.g. a user id). */
  channel?: string;
  /** "false": one connection per tab instead of one per browser. */
  shared?: 'true' | 'false';
  /** Present: no toasts for live notifications. */
  'no-toasts'?: '' | boolean;
  /** "left": the panel opens to the left. */
  align?: 'left' | 'right';
  /**
   * A BCP 47 tag: the catalogue of every string (en, de, es; "de-AT" → de) and the locale of
   * relative times and dates. Default: the best match of `navigator.languages`, else "en".
   */
  locale?: string;
  /** "dark": dark colours; anything else is light. */
  theme?: 'dark' | 'light';
  /** The Web Push service worker (page origin); default /static/sw.js next to this module. */
  'sw-url'?: string;
  /** Present: no "Enable push" button. */
  'no-push'?: '' | boolean;
}

export interface TidingsNotificationDetail {
  notification: Notification;
  /** New since the snapshot (not a replay after a reconnect). */
  live: boolean;
}

export interface TidingsStateDetail {
  state: ConnectionState;
}

export interface TidingsClickDetail {
  notification: FeedItem;
}

export interface TidingsPushDetail {
  state: PushButtonState;
  error?: unknown;
}

/** The element's events: all bubble and cross the shadow root (`composed`). */
export interface TidingsBellEventMap extends HTMLElementEventMap {
  /** A notification arrived (live or replayed). */
  'tidings-notification': CustomEvent<TidingsNotificationDetail>;
  /** The connection dot changed. */
  'tidings-state': CustomEvent<TidingsStateDetail>;
  /** An item was activated; cancelable: `preventDefault()` keeps the page (it is still marked read). */
  'tidings-click': CustomEvent<TidingsClickDetail>;
  'tidings-open': CustomEvent<null>;
  'tidings-close': CustomEvent<null>;
  /** The "Enable push" button changed state. */
  'tidings-push': CustomEvent<TidingsPushDetail>;
}

/** A built-in icon (`setTypeIcons`), or a function that draws the host's own for a type. */
export type TypeIcon =
  | 'bell' | 'calendar-plus' | 'calendar-check' | 'calendar-x' | 'check-circle' | 'user-x' | 'user-plus'
  | 'credit-card' | 'alert-triangle' | 'clock' | 'info' | 'check' | 'circle-dot' | 'archive' | 'inbox' | 'arrow-right'
  | ((type: string) => Element);

/**
 * The host's icons per notification type, over the defaults (one map for every bell and inbox
 * on the page; `null` restores a type's default; an unknown type shows the bell). Re-renders them.
 */
export function setTypeIcons(icons: Record<string, TypeIcon | null>): void;

export class TidingsBell extends HTMLElement {
  static readonly observedAttributes: string[];
  /** The connect() client (null while disconnected). */
  readonly client: TidingsClient | null;
  /** The unread count as shown by the badge (capped at 99; see `unreadMore`). */
  readonly unread: number;
  /** True when there are 100 or more unread notifications. */
  readonly unreadMore: boolean;
  /** The current view: {unread, latest_seq, latest}. */
  readonly view: View;
  readonly state: ConnectionState;
  /** Whether the panel is open. */
  readonly expanded: boolean;
  /** Host overrides of any catalogue string, type labels too (`'type.booking_created'`). */
  messages: Messages;
  /** Replaces the host's overrides and re-renders every string. */
  setMessages(messages: Messages): void;
  /** Opens the panel and focuses it. */
  show(): void;
  hide(): void;
  connectedCallback(): void;
  disconnectedCallback(): void;
  attributeChangedCallback(name: string, oldValue: string | null, newValue: string | null): void;

  addEventListener<K extends keyof TidingsBellEventMap>(
    type: K,
    listener: (this: TidingsBell, event: TidingsBellEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof TidingsBellEventMap>(
    type: K,
    listener: (this: TidingsBell, event: TidingsBellEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
}

declare global {
  interface HTMLElementTagNameMap {
    'tidings-bell': TidingsBell;
  }
}
