/**
 * Types for tidings-inbox.js: the <tidings-inbox> custom element, the full "view all" page next
 * to <tidings-bell>. Importing the module defines the element (once; a second import is a no-op).
 *
 *   import 'tidings/inbox';
 *   const inbox = document.querySelector('tidings-inbox');   // TidingsInbox
 *   await inbox?.filter({ status: 'unread', type: 'payment_failed' });
 */

import type { ConnectionState, TidingsClient } from './tidings.js';
import type { FeedItem } from './tidings-core.js';
import type { Messages } from './tidings-i18n.js';
import type { TidingsClickDetail, TypeIcon } from './tidings-bell.js';

export type { TypeIcon } from './tidings-bell.js';

/** The filters: everything in the inbox, unread only, the archive, the snoozed items. */
export type InboxStatus = 'all' | 'unread' | 'archived' | 'snoozed';

/**
 * The element's attributes (strings in HTML). Changing token, token-url, stream-url, api-base,
 * channel or shared reconnects once; with the bell's values, both share one stream.
 */
export interface TidingsInboxAttributes {
  token?: string;
  'token-url'?: string;
  'stream-url'?: string;
  'api-base'?: string;
  channel?: string;
  shared?: 'true' | 'false';
  /** A BCP 47 tag: the catalogue (en, de, es) and the locale of dates; default the browser's. */
  locale?: string;
  /** An IANA time zone for the day headers ("America/Chicago"); default the browser's. */
  'time-zone'?: string;
  /** Comma-separated types for the type filter; default the catalogue's types and the ones seen. */
  types?: string;
  /** Items per page, 1–100 (default 20). */
  'page-size'?: string;
  /** A URL with `{id}`: a "Details" link per item (only same-origin paths or http(s)). */
  'details-url'?: string;
  theme?: 'dark' | 'light';
}

export interface TidingsInboxLoadDetail {
  status: InboxStatus;
  type: string;
  /** Items loaded so far for this filter. */
  count: number;
}

/** The element's events: all bubble and cross the shadow root (`composed`). */
export interface TidingsInboxEventMap extends HTMLElementEventMap {
  /** An item was activated; cancelable: `preventDefault()` keeps the page (it is still marked read). */
  'tidings-click': CustomEvent<TidingsClickDetail>;
  /** A page of the feed arrived. */
  'tidings-inbox-load': CustomEvent<TidingsInboxLoadDetail>;
}

/** The host's icons per type, shared with every bell on the page (same function as tidings/bell's). */
export function setTypeIcons(icons: Record<string, TypeIcon | null>): void;

export class TidingsInbox extends HTMLElement {
  static readonly observedAttributes: string[];
  /** The connect() client (null while disconnected). */
  readonly client: TidingsClient | null;
  readonly status: InboxStatus;
  /** The type filter ('' for every type). */
  readonly type: string;
  /** True while a page is being fetched. */
  readonly loading: boolean;
  /** The items shown, newest first. */
  readonly items: FeedItem[];
  /** Host overrides of any catalogue string, type labels too (`'type.booking_created'`). */
  messages: Messages;
  setMessages(messages: Messages): void;
  /** Shows a status and/or a type; resolves when the first page is in. */
  filter(options?: { status?: InboxStatus; type?: string }): Promise<void>;
  /** The next page; resolves at once when there is none. */
  loadMore(): Promise<void>;
  /** The first page of the current filter again. */
  reload(): Promise<void>;
  connectedCallback(): void;
  disconnectedCallback(): void;
  attributeChangedCallback(name: string, oldValue: string | null, newValue: string | null): void;

  addEventListener<K extends keyof TidingsInboxEventMap>(
    type: K,
    listener: (this: TidingsInbox, event: TidingsInboxEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof TidingsInboxEventMap>(
    type: K,
    listener: (this: TidingsInbox, event: TidingsInboxEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
}

/** The connection state the element mirrors as `data-state`. */
export type TidingsInboxState = ConnectionState;

declare global {
  interface HTMLElementTagNameMap {
    'tidings-inbox': TidingsInbox;
  }
}
