/**
 * tidings-days.js — the inbox's day headers: which calendar day a notification falls on in the
 * user's time zone, and that day's name ("Today", "Yesterday", else a date in the user's locale).
 *
 *   dayKey('2026-11-26T23:30:00Z', 'America/Chicago');   // "2026-11-26"
 *   dayLabel('2026-11-24', Date.now(), { locale: 'de', t });   // "Dienstag, 24. November"
 *
 * Pure (no DOM, "now" is passed in). An unknown time zone is the browser's own; an unparseable
 * date has the key '' (its items sit under no header of a real day).
 */

const FORMATS = new Map();

function dayFormat(timeZone) {
  const key = timeZone || '';
  let fmt = FORMATS.get(key);
  if (!fmt) {
    const opts = { year: 'numeric', month: '2-digit', day: '2-digit' };
    try {
      fmt = new Intl.DateTimeFormat('en-US', { ...opts, timeZone: timeZone || undefined });
    } catch {
      fmt = new Intl.DateTimeFormat('en-US', opts); // an unknown zone: the browser's
    }
    FORMATS.set(key, fmt);
  }
  return fmt;
}

/** "YYYY-MM-DD" of `date` (ISO string, Date or epoch ms) in `timeZone`; '' when unparseable. */
export function dayKey(date, timeZone = undefined) {
  const ms = date instanceof Date ? date.getTime() : typeof date === 'number' ? date : Date.parse(date);
  if (!Number.isFinite(ms)) return '';
  const parts = Object.fromEntries(dayFormat(timeZone).formatToParts(ms).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

/** The key `days` calendar days after `key` (negative: before). */
export function shiftDay(key, days) {
  const [y, m, d] = key.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/**
 * The header of day `key`: t('today'), t('yesterday'), else weekday and date in `locale` (the
 * year only when it is not this year's).
 */
export function dayLabel(key, now, { locale = undefined, timeZone = undefined, t }) {
  if (!key) return '';
  const today = dayKey(now, timeZone);
  if (key === today) return t('today');
  if (key === shiftDay(today, -1)) return t('yesterday');
  const [y, m, d] = key.split('-').map(Number);
  const opts = { weekday: 'long', month: 'long', day: 'numeric', timeZone: 'UTC' };
  if (String(y) !== today.slice(0, 4)) opts.year = 'numeric';
  try {
    return new Intl.DateTimeFormat(locale, opts).format(Date.UTC(y, m - 1, d, 12));
  } catch {
    return key;
  }
}
