/**
 * Types for tidings-core.js: the wire shapes every other module shares (a notification, the
 * unread count, the ready/reset view) and the pure helpers. Hand-written; kept in step with the
 * .js by `tsc --noEmit` over tests/js/types/ (tests/test_js.py).
 */

/** A JSON value, as the server stores a notification's `data`. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Who may see a notification: listed users, members of listed roles, or both (union). */
export interface Audience {
  users?: string[];
  roles?: string[];
}

/**
 * A stored notification as the server sends it (stream `notification` frames, publish answers).
 * `id` is the tenant's sequence number: unique per tenant, increasing in commit order.
 */
export interface Notification {
  id: number;
  /** `booking_created`, `payment_failed`, … or any lower-case dotted/underscored name. */
  type: string;
  title: string;
  body: string;
  data: { [key: string]: Json };
  /** An absolute http(s) URL or a same-site path; followed only when `isSafeLink` accepts it. */
  link: string | null;
  /** null: the whole tenant. */
  audience: Audience | null;
  /** ISO 8601, UTC ("2026-11-26T16:42:37.123456Z"). */
  created_at: string;
  /** Who caused it: that user gets it already read (never counted, toasted or pushed). */
  actor?: Actor | null;
  /** Collapse key (e.g. "booking:42"): the bell shows one card per group. null: its own card. */
  group?: string | null;
  /** Rendered from the tenant's per-type templates: the text in each locale of the type
   * (title/body are the default locale's). `localText(n, locale)` in tidings-i18n picks. */
  l10n?: { [locale: string]: { title: string; body: string } };
}

/** The user who caused a notification; `name` is for display. */
export interface Actor {
  id: string;
  name: string | null;
}

/** A notification with the user's read state: feed pages, `ready.latest`, the bell's list. */
export interface FeedItem extends Notification {
  read: boolean;
  archived?: boolean;
  /** ISO 8601, UTC, while snoozed; null (or absent) otherwise. */
  snoozed_until?: string | null;
}

/** The unread count: the server counts up to 99 and says `more` from 100 on. */
export interface Unread {
  count: number;
  more: boolean;
}

/** The `ready`/`reset` snapshot kept current by live events. Never mutated: reducers return a new one. */
export interface View {
  unread: Unread;
  /** The highest id this view has seen (0 for none). */
  latest_seq: number;
  /** Newest first, at most `LATEST_LIMIT`. */
  latest: FeedItem[];
  /** Whose stream (from `ready`/`reset`): a notification whose actor is this user arrives read. */
  user?: string;
}

/** A `read` stream event, or an optimistic one: `{ids}` or `{all, up_to}`; `unread` when the server sent it. */
export interface ReadEvent {
  ids?: number[];
  all?: boolean;
  up_to?: number | null;
  unread?: Unread;
}

/** An `archived` stream event. */
export interface ArchivedEvent {
  ids: number[];
  unread?: Unread;
}

/** An `unread` or `unarchived` stream event: the ids, the items to show (up to 5), the count. */
export interface RestoredEvent {
  ids: number[];
  items?: FeedItem[];
  unread?: Unread;
}

/** A `snoozed` stream event: out of the list and the count until `until` (ISO 8601, UTC). */
export interface SnoozedEvent {
  ids: number[];
  until: string;
  unread?: Unread;
}

/** An `unsnoozed` stream event: a snooze ended; the ids are unread again (no count in it). */
export interface UnsnoozedEvent {
  ids: number[];
  items: FeedItem[];
}

export interface BackoffOptions {
  base?: number;
  cap?: number;
  random?: () => number;
}

export interface Dedupe {
  /** The last id seen, or null. */
  readonly lastId: number | null;
  /** True (and advances) only for ids above the last one. */
  accept(id: unknown): boolean;
  /** Sets the last id (the server is authoritative on `reset`); returns it. */
  reset(id: unknown): number | null;
  /** Raises the last id without ever lowering it (a `ready` frame's id); returns it. */
  observe(id: unknown): number | null;
}

export const BACKOFF_BASE_MS: 1000;
export const BACKOFF_CAP_MS: 30000;
export const LATEST_LIMIT: 5;
export const UNREAD_CAP: 99;

export function backoffDelay(attempt: number, options?: BackoffOptions): number;
export function backoffCeiling(attempt: number, options?: Omit<BackoffOptions, 'random'>): number;
export function toSeq(value: unknown): number | null;
export function createDedupe(initial?: number | string | null): Dedupe;
export function badgeText(count: number, more?: boolean): string;
export function toEpochMs(value: string | number | Date | null | undefined): number;
export function relativeTime(date: string | number | Date, now?: number, locale?: string): string;
export function isSafeLink(link: unknown): boolean;
export function iconName(type: string): string;
export function buildStreamUrl(url: string, options?: { token?: string | null; lastEventId?: number | string | null }): string;
export function apiBaseFor(streamUrl: string): string;
export function leaderKey(absoluteStreamUrl: string, channel?: string): string;
export function normalizeUnread(unread: unknown): Unread;
export function normalizeSnapshot(data: unknown, limit?: number): View;
/** True when `user` caused `notification` (its actor): it is read for them. */
export function isOwn(notification: Notification | null | undefined, user: string | null | undefined): boolean;
export function withLatest(view: View, items: readonly FeedItem[] | null | undefined, limit?: number): View;
export function applyNotification(view: View, notification: Notification | FeedItem, limit?: number): { view: View; live: boolean };
export function applyRead(view: View, data: ReadEvent): View;
export function applyArchived(view: View, data: ArchivedEvent | { ids?: number[]; unread?: Unread }): View;
export function applyUnread(view: View, data: RestoredEvent | { ids?: number[]; items?: FeedItem[]; unread?: Unread }): View;
export function applySnoozed(view: View, data: SnoozedEvent | { ids?: number[]; unread?: Unread }): View;
export function applyRestored(
  view: View,
  data: RestoredEvent | UnsnoozedEvent | { ids?: number[]; items?: FeedItem[]; unread?: Unread },
  limit?: number,
): View;
