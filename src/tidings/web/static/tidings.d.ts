/**
 * Types for tidings.js: `connect()` (one resumable SSE stream per browser, shared by its tabs)
 * and the Feed API helpers. Hand-written; checked by `tsc --noEmit` over tests/js/types/.
 */

import type {
  ArchivedEvent,
  FeedItem,
  Notification,
  ReadEvent,
  RestoredEvent,
  SnoozedEvent,
  Unread,
  UnsnoozedEvent,
  View,
} from './tidings-core.js';

export type {
  Actor,
  Audience,
  ArchivedEvent,
  FeedItem,
  Json,
  Notification,
  ReadEvent,
  RestoredEvent,
  SnoozedEvent,
  Unread,
  UnsnoozedEvent,
  View,
} from './tidings-core.js';

/** The stream's event names, in the order a stream can send them. */
export const STREAM_EVENTS: readonly [
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
];

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** The server's application/problem+json body (RFC 9457) with tidings' stable `code`. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  instance?: string;
  [extension: string]: unknown;
}

/** A Feed API call failed. `code` is the problem's code, `http_<status>`, or 'network_error'. */
export class TidingsError extends Error {
  constructor(message: string, options?: { status?: number; code?: string; problem?: Problem | null });
  readonly name: 'TidingsError';
  /** The HTTP status; 0 when the request never got an answer. */
  status: number;
  code: string;
  problem: Problem | null;
}

/** What `getToken` may resolve to: the token, or the body of `POST /v1/tokens` (`{token}`). */
export type TokenResult = string | { token: string } | null | undefined;

/** How a Feed call reaches the server. `connect()`'s client fills these in for you. */
export interface RequestOptions {
  /** The origin (and path prefix) of tidings: "https://tidings.example.com"; '' for same-origin. */
  apiBase?: string;
  /** A stream token (JWT). */
  token?: string;
  /** Called for a token when there is none, and once more after a 401. */
  getToken?: () => TokenResult | Promise<TokenResult>;
  /** Send cookies cross-origin (cookie auth). */
  withCredentials?: boolean;
  signal?: AbortSignal;
  /** Keep the request alive across a navigation (same-origin only). */
  keepalive?: boolean;
  fetch?: typeof fetch;
}

export type FeedStatus = 'unread' | 'read' | 'archived' | 'snoozed' | 'all';

export interface FeedOptions extends RequestOptions {
  /** 'all' (default) is everything neither archived nor snoozed. */
  status?: FeedStatus;
  type?: string;
  /** 1–100, default 20. */
  limit?: number;
  /** `next_cursor` of the previous page. */
  cursor?: string | null;
}

export interface FeedPage {
  /** Newest first. */
  items: FeedItem[];
  /** null on the last page. */
  next_cursor: string | null;
}

export interface MarkReadOptions extends RequestOptions {
  /** With 'all': mark read only up to this id (the client passes its last id). */
  upTo?: number;
}

/** GET /v1/feed. */
export function feed(options?: FeedOptions): Promise<FeedPage>;
/** POST /v1/feed/read with ids, or 'all'. */
export function markRead(ids: number | readonly number[] | 'all' | { groups: readonly string[] }, options?: MarkReadOptions): Promise<{ unread: Unread }>;
/** POST /v1/feed/archive. */
export function archive(ids: number | readonly number[], options?: RequestOptions): Promise<{ unread: Unread }>;
/** POST /v1/feed/unread: unread again, whatever the watermark (a snooze on them ends). */
export function markUnread(ids: number | readonly number[], options?: RequestOptions): Promise<{ unread: Unread }>;
/** POST /v1/feed/unarchive: back in the inbox. */
export function unarchive(ids: number | readonly number[], options?: RequestOptions): Promise<{ unread: Unread }>;
/** POST /v1/feed/snooze: out of the inbox and the count until `until` (a Date, or ISO 8601 with a zone). */
export function snooze(ids: number | readonly number[], until: Date | string, options?: RequestOptions): Promise<{ unread: Unread }>;
/** GET /v1/feed/unread-count. */
export function unreadCount(options?: RequestOptions): Promise<Unread>;
/** Fetches a stream token from the host's token URL (rejects with a TidingsError carrying the status). */
export function fetchToken(tokenUrl: string): Promise<string>;

export interface ConnectOptions {
  /** The stream URL; default '/v1/stream'. Cross-origin: 'https://tidings.example.com/v1/stream'. */
  url?: string;
  /** The Feed API's base; default: derived from `url`. */
  apiBase?: string;
  token?: string;
  getToken?: () => TokenResult | Promise<TokenResult>;
  /** Resume after this id. */
  lastEventId?: number | string | null;
  withCredentials?: boolean;
  /** One connection per browser, shared by its tabs (default true). */
  shared?: boolean;
  /** Separates streams that must not be shared (e.g. a user id); default 'default'. */
  channel?: string;
  // For tests and unusual hosts:
  EventSource?: typeof EventSource;
  BroadcastChannel?: typeof BroadcastChannel;
  locks?: LockManager;
  fetch?: typeof fetch;
  random?: () => number;
  /** ms to wait after `bye` when it carries no hint (default 1000). */
  byeDelay?: number;
  /** Native reconnect failures before the client backs off on its own (default 5). */
  maxNativeRetries?: number;
}

export interface EventMeta {
  /** The frame's id (the tenant's sequence number), when it had one. */
  id?: number | null;
  /** True in a follower tab for the snapshot its leader handed over. */
  fromLeader?: boolean;
}

export interface NotificationMeta extends EventMeta {
  id: number;
  /** New since the snapshot (counted as unread), not replayed. */
  live: boolean;
}

/** The events of a client and their listeners' arguments. */
export interface ClientEvents {
  ready: (view: View, meta: EventMeta) => void;
  notification: (notification: Notification, meta: NotificationMeta) => void;
  read: (event: ReadEvent, meta: EventMeta) => void;
  archived: (event: ArchivedEvent, meta: EventMeta) => void;
  /** Marked unread again on some device (the items come back to the list if they had left it). */
  unread: (event: RestoredEvent, meta: EventMeta) => void;
  /** Back in the inbox from the archive. */
  unarchived: (event: RestoredEvent, meta: EventMeta) => void;
  /** Out of the list and the count until `until`. */
  snoozed: (event: SnoozedEvent, meta: EventMeta) => void;
  /** A snooze ended: the items are back, unread. */
  unsnoozed: (event: UnsnoozedEvent, meta: EventMeta) => void;
  /** The server's history no longer covers the resume point: this is the authoritative view. */
  reset: (view: View, meta: EventMeta) => void;
  /** The token expired; the client fetches a fresh one through `getToken` and reconnects. */
  expired: (event: { reason: string }, meta: EventMeta) => void;
  /** The server is going away; the client reconnects after the hint. */
  bye: (event: { reason?: string; retry?: number; retry_ms?: number }, meta: EventMeta) => void;
  state: (state: ConnectionState, previous: ConnectionState) => void;
  /** The client's view changed (emitted before the event that caused it); `cause` names it. */
  view: (view: View, meta: { cause: string }) => void;
}

export interface TidingsClient {
  readonly state: ConnectionState;
  /** The last notification id seen (the resume point), or null. */
  readonly lastId: number | null;
  /** The latest snapshot kept current by live events, or null before `ready`. */
  readonly view: View | null;
  readonly unread: Unread | null;
  /** True in the tab that holds the connection. */
  readonly isLeader: boolean;
  readonly shared: boolean;
  readonly apiBase: string;
  /** Subscribes; returns the function that unsubscribes. */
  on<K extends keyof ClientEvents>(type: K, listener: ClientEvents[K]): () => void;
  close(): void;
  /** A token (fresh through `getToken` when asked), or null for cookie auth. */
  token(fresh?: boolean): Promise<string | null>;
  feed(options?: FeedOptions): Promise<FeedPage>;
  markRead(ids: number | readonly number[] | 'all' | { groups: readonly string[] }, options?: MarkReadOptions): Promise<{ unread: Unread }>;
  archive(ids: number | readonly number[], options?: RequestOptions): Promise<{ unread: Unread }>;
  markUnread(ids: number | readonly number[], options?: RequestOptions): Promise<{ unread: Unread }>;
  unarchive(ids: number | readonly number[], options?: RequestOptions): Promise<{ unread: Unread }>;
  snooze(ids: number | readonly number[], until: Date | string, options?: RequestOptions): Promise<{ unread: Unread }>;
  unreadCount(options?: RequestOptions): Promise<Unread>;
  /** Re-reads the latest items (and, with `unread`, the count) from the Feed API; the last call wins. */
  refresh(options?: { unread?: boolean }): Promise<View | null>;
}

/** Opens the stream and returns the client. */
export function connect(options?: ConnectOptions): TidingsClient;
