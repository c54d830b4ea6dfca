/**
 * Types for tidings-i18n.js: the message catalogues (en, de, es) of the bell, its toasts, its
 * push button and the inbox, and the lookup.
 *
 *   import { translator } from 'tidings/i18n';
 *   const t = translator('de', { markAll: 'Alles gelesen' });
 *   t('unreadLabel', { count: 3 });   // "Benachrichtigungen, 3 ungelesen"
 */

/** The shipped locales. */
export type SupportedLocale = 'en' | 'de' | 'es';

/** Keys of the English catalogue; type labels are `type.<type>` (any type name). */
export type MessageKey =
  | 'notifications'
  | 'unreadLabel'
  | 'unreadPrefix'
  | 'markAll'
  | 'empty'
  | 'viewAll'
  | 'preferences'
  | 'dismiss'
  | 'earlier'
  | 'hideEarlier'
  | 'unreadOnly'
  | 'caughtUp'
  | 'caughtUpHint'
  | 'status'
  | 'filters'
  | `filter.${'all' | 'unread' | 'archived' | 'snoozed'}`
  | 'typeFilter'
  | 'allTypes'
  | 'today'
  | 'yesterday'
  | 'loadMore'
  | 'loadFailed'
  | 'actionFailed'
  | 'retry'
  | 'emptyArchived'
  | 'emptySnoozed'
  | 'snoozedUntil'
  | 'actions'
  | `action.${'read' | 'unread' | 'archive' | 'unarchive' | 'snooze' | 'unsnooze' | 'details'}`
  | `snooze.${'hour' | 'tomorrow' | 'week'}`
  | `state.${'open' | 'connecting' | 'reconnecting' | 'closed'}`
  | `push.${'unsupported' | 'denied' | 'off' | 'on' | 'busy' | 'turningOff' | 'error'}`
  | `pushTitle.${'off' | 'on' | 'denied'}`
  | `type.${string}`;

/** Host overrides: any key, any text (placeholders as in English, e.g. `{count}`). */
export type Messages = Partial<Record<MessageKey, string>>;

export const DEFAULT_LOCALE: 'en';
export const CATALOGUES: Readonly<Record<SupportedLocale, Readonly<Record<string, string>>>>;

export interface Translator {
  (key: MessageKey, values?: Record<string, string | number>): string;
  /** The resolved locale. */
  readonly locale: SupportedLocale;
  /** A type's label: override, catalogue, else made from the name ("invoice_due" → "Invoice due"). */
  type(type: string): string;
}

/** Exact match, then by language ("de-AT" → "de"); an empty tag asks `preferred`; else "en". */
export function resolveLocale(tag?: string | null, preferred?: readonly string[]): SupportedLocale;
export function translator(locale?: string | null, overrides?: Messages): Translator;
export function placeholders(text: string): string[];
export function typeName(type: string): string;
/** A notification's text in `locale`: from its `l10n` (per-type templates), else its own. */
export function localText(
  n: { title?: string; body?: string; l10n?: Record<string, { title: string; body: string }> | null },
  locale?: string | null,
): { title: string; body: string };
