/**
 * tidings-i18n.js — the message catalogues of the bell, its toasts, its push button and the
 * inbox (English, German, Spanish), and the lookup that picks one by locale.
 *
 *   import { translator } from './tidings-i18n.js';
 *   const t = translator('de-AT', { 'type.invoice_due': 'Rechnung fällig' });
 *   t('markAll');                              // "Alle als gelesen markieren"
 *   t('unreadLabel', { count: '3' });          // "Benachrichtigungen, 3 ungelesen"
 *
 * Invariants: every locale has every key of `en`, with the same `{placeholders}` (checked by
 * tests/js); a lookup never fails: host overrides first, then the chosen locale, then English,
 * then the key itself; a type label falls back to a label made from the type's name. Relative
 * times and dates are the browser's Intl in the same locale (tidings-core.js relativeTime).
 */

export const DEFAULT_LOCALE = 'en';

export const CATALOGUES = {
  en: {
    notifications: 'Notifications',
    unreadLabel: 'Notifications, {count} unread',
    unreadPrefix: 'Unread: ',
    earlier: '+{count} earlier',
    hideEarlier: 'Hide earlier',
    markAll: 'Mark all as read',
    empty: 'You’re all caught up',
    viewAll: 'View all',
    preferences: 'Preferences',
    dismiss: 'Dismiss',
    'state.open': 'Live',
    'state.connecting': 'Connecting…',
    'state.reconnecting': 'Reconnecting…',
    'state.closed': 'Offline',
    'push.unsupported': 'Push unavailable',
    'push.denied': 'Push blocked',
    'push.off': 'Enable push',
    'push.on': 'Push on',
    'push.busy': 'Enabling…',
    'push.turningOff': 'Turning off…',
    'push.error': 'Push failed — retry',
    'pushTitle.off': 'Get notifications on this device when the dashboard is closed',
    'pushTitle.on': 'Push is on for this device; click to turn it off',
    'pushTitle.denied': 'Notifications are blocked for this site in the browser settings',
    unreadOnly: 'Unread only',
    caughtUp: 'All caught up',
    caughtUpHint: 'New notifications will show up here.',
    status: 'Connection: {state}',
    filters: 'Show',
    'filter.all': 'All',
    'filter.unread': 'Unread',
    'filter.archived': 'Archived',
    'filter.snoozed': 'Snoozed',
    typeFilter: 'Type',
    allTypes: 'All types',
    today: 'Today',
    yesterday: 'Yesterday',
    loadMore: 'Load more',
    loadFailed: 'Could not load notifications.',
    actionFailed: 'That did not work. Please try again.',
    retry: 'Retry',
    emptyArchived: 'Nothing archived',
    emptySnoozed: 'Nothing snoozed',
    snoozedUntil: 'Snoozed until {time}',
    actions: 'Actions',
    'action.read': 'Mark as read',
    'action.unread': 'Mark as unread',
    'action.archive': 'Archive',
    'action.unarchive': 'Move to inbox',
    'action.snooze': 'Snooze',
    'action.unsnooze': 'Wake up now',
    'action.details': 'Details',
    'snooze.hour': 'For 1 hour',
    'snooze.tomorrow': 'Until tomorrow',
    'snooze.week': 'Until next week',
    'type.booking_created': 'Booking created',
    'type.booking_confirmed': 'Booking confirmed',
    'type.booking_cancelled': 'Booking cancelled',
    'type.booking_completed': 'Booking completed',
    'type.booking_no_show': 'Booking no show',
    'type.payment_received': 'Payment received',
    'type.payment_failed': 'Payment failed',
    'type.reminder': 'Reminder',
    'type.customer_created': 'Customer created',
    'type.system': 'System',
  },
  de: {
    notifications: 'Benachrichtigungen',
    unreadLabel: 'Benachrichtigungen, {count} ungelesen',
    unreadPrefix: 'Ungelesen: ',
    earlier: '+{count} frühere',
    hideEarlier: 'Frühere ausblenden',
    markAll: 'Alle als gelesen markieren',
    empty: 'Sie sind auf dem neuesten Stand',
    viewAll: 'Alle anzeigen',
    preferences: 'Einstellungen',
    dismiss: 'Schließen',
    'state.open': 'Live',
    'state.connecting': 'Verbinde…',
    'state.reconnecting': 'Verbinde erneut…',
    'state.closed': 'Offline',
    'push.unsupported': 'Push nicht verfügbar',
    'push.denied': 'Push blockiert',
    'push.off': 'Push aktivieren',
    'push.on': 'Push an',
    'push.busy': 'Aktiviere…',
    'push.turningOff': 'Schalte ab…',
    'push.error': 'Push fehlgeschlagen — erneut versuchen',
    'pushTitle.off': 'Benachrichtigungen auf diesem Gerät erhalten, wenn das Dashboard geschlossen ist',
    'pushTitle.on': 'Push ist auf diesem Gerät an; klicken zum Abschalten',
    'pushTitle.denied': 'Benachrichtigungen sind für diese Seite in den Browser-Einstellungen blockiert',
    unreadOnly: 'Nur ungelesene',
    caughtUp: 'Alles erledigt',
    caughtUpHint: 'Neue Benachrichtigungen erscheinen hier.',
    status: 'Verbindung: {state}',
    filters: 'Anzeigen',
    'filter.all': 'Alle',
    'filter.unread': 'Ungelesen',
    'filter.archived': 'Archiviert',
    'filter.snoozed': 'Zurückgestellt',
    typeFilter: 'Art',
    allTypes: 'Alle Arten',
    today: 'Heute',
    yesterday: 'Gestern',
    loadMore: 'Mehr laden',
    loadFailed: 'Benachrichtigungen konnten nicht geladen werden.',
    actionFailed: 'Das hat nicht geklappt. Bitte erneut versuchen.',
    retry: 'Erneut versuchen',
    emptyArchived: 'Nichts archiviert',
    emptySnoozed: 'Nichts zurückgestellt',
    snoozedUntil: 'Zurückgestellt bis {time}',
    actions: 'Aktionen',
    'action.read': 'Als gelesen markieren',
    'action.unread': 'Als ungelesen markieren',
    'action.archive': 'Archivieren',
    'action.unarchive': 'In den Posteingang',
    'action.snooze': 'Zurückstellen',
    'action.unsnooze': 'Jetzt wieder anzeigen',
    'action.details': 'Details',
    'snooze.hour': 'Für 1 Stunde',
    'snooze.tomorrow': 'Bis morgen',
    'snooze.week': 'Bis nächste Woche',
    'type.booking_created': 'Neue Buchung',
    'type.booking_confirmed': 'Buchung bestätigt',
    'type.booking_cancelled': 'Buchung storniert',
    'type.booking_completed': 'Buchung abgeschlossen',
    'type.booking_no_show': 'Nicht erschienen',
    'type.payment_received': 'Zahlung erhalten',
    'type.payment_failed': 'Zahlung fehlgeschlagen',
    'type.reminder': 'Erinnerung',
    'type.customer_created': 'Neuer Kunde',
    'type.system': 'System',
  },
  es: {
    notifications: 'Notificaciones',
    unreadLabel: 'Notificaciones, {count} sin leer',
    unreadPrefix: 'Sin leer: ',
    earlier: '+{count} anteriores',
    hideEarlier: 'Ocultar anteriores',
    markAll: 'Marcar todo como leído',
    empty: 'Estás al día',
    viewAll: 'Ver todo',
    preferences: 'Preferencias',
    dismiss: 'Cerrar',
    'state.open': 'En vivo',
    'state.connecting': 'Conectando…',
    'state.reconnecting': 'Reconectando…',
    'state.closed': 'Sin conexión',
    'push.unsupported': 'Push no disponible',
    'push.denied': 'Push bloqueado',
    'push.off': 'Activar push',
    'push.on': 'Push activado',
    'push.busy': 'Activando…',
    'push.turningOff': 'Desactivando…',
    'push.error': 'Push falló — reintentar',
    'pushTitle.off': 'Recibe notificaciones en este dispositivo cuando el panel está cerrado',
    'pushTitle.on': 'Push está activado en este dispositivo; haz clic para desactivarlo',
    'pushTitle.denied': 'Las notificaciones están bloqueadas para este sitio en la configuración del navegador',
    unreadOnly: 'Solo sin leer',
    caughtUp: 'Todo al día',
    caughtUpHint: 'Las notificaciones nuevas aparecerán aquí.',
    status: 'Conexión: {state}',
    filters: 'Mostrar',
    'filter.all': 'Todas',
    'filter.unread': 'Sin leer',
    'filter.archived': 'Archivadas',
    'filter.snoozed': 'Pospuestas',
    typeFilter: 'Tipo',
    allTypes: 'Todos los tipos',
    today: 'Hoy',
    yesterday: 'Ayer',
    loadMore: 'Cargar más',
    loadFailed: 'No se pudieron cargar las notificaciones.',
    actionFailed: 'No funcionó. Inténtalo de nuevo.',
    retry: 'Reintentar',
    emptyArchived: 'Nada archivado',
    emptySnoozed: 'Nada pospuesto',
    snoozedUntil: 'Pospuesta hasta {time}',
    actions: 'Acciones',
    'action.read': 'Marcar como leída',
    'action.unread': 'Marcar como no leída',
    'action.archive': 'Archivar',
    'action.unarchive': 'Mover a la bandeja',
    'action.snooze': 'Posponer',
    'action.unsnooze': 'Mostrar ahora',
    'action.details': 'Detalles',
    'snooze.hour': 'Durante 1 hora',
    'snooze.tomorrow': 'Hasta mañana',
    'snooze.week': 'Hasta la próxima semana',
    'type.booking_created': 'Reserva creada',
    'type.booking_confirmed': 'Reserva confirmada',
    'type.booking_cancelled': 'Reserva cancelada',
    'type.booking_completed': 'Reserva completada',
    'type.booking_no_show': 'No se presentó',
    'type.payment_received': 'Pago recibido',
    'type.payment_failed': 'Pago fallido',
    'type.reminder': 'Recordatorio',
    'type.customer_created': 'Cliente creado',
    'type.system': 'Sistema',
  },
};

/** The `{name}` placeholders of a message, sorted. */
export function placeholders(text) {
  return [...String(text).matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
}

/**
 * The supported locale for a tag, or for the browser's languages when `tag` is empty: exact
 * match, then by language ("de-AT" → "de"), else English.
 */
export function resolveLocale(tag, preferred = globalThis.navigator?.languages ?? []) {
  const wanted = tag ? [tag] : [...preferred];
  for (const candidate of wanted) {
    const lower = String(candidate).replace(/_/g, '-').toLowerCase();
    if (CATALOGUES[lower]) return lower;
    const language = lower.split('-')[0];
    if (CATALOGUES[language]) return language;
  }
  return DEFAULT_LOCALE;
}

function fill(text, values) {
  return String(text).replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** A label made from a type's name: "invoice.overdue" → "Invoice overdue". */
export function typeName(type) {
  const words = String(type ?? '').replace(/[._]/g, ' ').trim();
  return words ? words[0].toUpperCase() + words.slice(1) : '';
}

/**
 * `t(key, values)` for `locale` with the host's `overrides` ({key: text}) on top; `t.locale`
 * is the resolved locale, `t.type(type)` a type's label.
 */
export function translator(locale, overrides = {}) {
  const chosen = resolveLocale(locale);
  const own = CATALOGUES[chosen];
  const english = CATALOGUES[DEFAULT_LOCALE];
  const pick = (key) => overrides?.[key] ?? own[key] ?? english[key];
  const t = (key, values = {}) => fill(pick(key) ?? key, values);
  t.locale = chosen;
  t.type = (type) => {
    const found = pick(`type.${type}`);
    return found === undefined ? typeName(type) : fill(found, {});
  };
  return t;
}

/**
 * A notification's own text in `locale` (issue 10 item 5, docs/i18n.md): one rendered from the
 * tenant's per-type templates carries its other locales in `l10n` ({"de": {title, body}});
 * the exact tag wins, then its language, then another tag of that language, else `title`/`body`.
 */
export function localText(n, locale) {
  const variants = n?.l10n;
  if (variants && typeof variants === 'object' && locale) {
    const wanted = String(locale).replace(/_/g, '-').toLowerCase();
    const language = wanted.split('-')[0];
    const tags = Object.keys(variants).sort();
    const lower = (tag) => tag.toLowerCase();
    const found =
      tags.find((tag) => lower(tag) === wanted) ??
      tags.find((tag) => lower(tag) === language) ??
      tags.find((tag) => lower(tag).split('-')[0] === language);
    const text = found === undefined ? undefined : variants[found];
    if (typeof text?.title === 'string') return { title: text.title, body: typeof text.body === 'string' ? text.body : '' };
  }
  return { title: n?.title ?? '', body: n?.body ?? '' };
}
