/**
 * tidings-groups.js — collapse keys (issue 10 item 3) and the one item renderer of the bell and
 * the inbox: `groupCards(latest)` folds items into one card per `group`; `cardRow()` renders one.
 *
 * Invariants: every item of `latest` is in exactly one card, in the order of its newest item
 * (`latest` is newest first); a card's `item` is the newest of its group, `earlier` the others
 * (newest first); `unread` when any of them is unread. An item without a group is a card of its
 * own. Pure but for `cardRow`, which puts data in the DOM only as text (tidings-dom.js `el`).
 */

import { el, timeEl, typeIcon } from './tidings-dom.js';
import { localText } from './tidings-i18n.js';

/** One card per group: [{key, item, earlier, unread}], newest card first. */
export function groupCards(latest) {
  const cards = [];
  const byKey = new Map();
  for (const n of Array.isArray(latest) ? latest : []) {
    const key = typeof n?.group === 'string' && n.group ? n.group : null;
    const card = key === null ? undefined : byKey.get(key);
    if (card) {
      card.earlier.push(n);
      card.unread = card.unread || !n.read;
      continue;
    }
    const fresh = { key, item: n, earlier: [], unread: !n.read };
    if (key !== null) byKey.set(key, fresh);
    cards.push(fresh);
  }
  return cards;
}

// Without a translator (tidings-i18n.js `translator`): English.
const ENGLISH = Object.assign(
  (key, vars = {}) =>
    ({ unreadPrefix: 'Unread: ', earlier: `+${vars.count} earlier`, hideEarlier: 'Hide earlier', snoozedUntil: `Snoozed until ${vars.time}` })[key] ?? key,
  { type: () => undefined },
);

/** The button of one item (`unread` for a card's head: any of its group unread). */
export function itemButton(n, locale, unread = !n.read, t = ENGLISH) {
  const text = localText(n, locale); // rendered per locale from templates (docs/i18n.md)
  return el(
    'button',
    {
      part: 'item',
      className: 'item',
      type: 'button',
      'data-id': n.id,
      'data-type': typeof n.type === 'string' ? n.type : null,
      'data-group': typeof n.group === 'string' ? n.group : null,
      'data-unread': unread ? 'true' : null,
    },
    typeIcon(n.type, 'icon', t.type(n.type)),
    el(
      'span',
      { className: 'text' },
      unread ? el('span', { className: 'sr-only', text: t('unreadPrefix') }) : null,
      el('span', { className: 'title', text: text.title }),
      text.body ? el('span', { className: 'body', text: text.body }) : null,
      timeEl(n.created_at, locale),
      n.snoozed_until ? el('span', { className: 'snoozed', text: t('snoozedUntil', { time: shortDate(n.snoozed_until, locale) }) }) : null,
    ),
    el('span', { className: 'mark', 'aria-hidden': 'true' }),
  );
}

function shortDate(iso, locale) {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return '';
  return new Date(ms).toLocaleString(locale, { weekday: 'short', hour: 'numeric', minute: '2-digit' });
}

/** The card holding item `id` and that item: {card, item}, or null. */
export function findCard(cards, id) {
  for (const card of cards) {
    const item = card.item.id === id ? card.item : card.earlier.find((n) => n.id === id);
    if (item) return { card, item };
  }
  return null;
}

/**
 * A card's `<li>`: its newest item, then "+N earlier" that shows the others when expanded.
 * `actions(n, unread)` (optional) gives each item's toolbar, a sibling of its button.
 */
export function cardRow(card, locale, expanded = false, t = ENGLISH, actions = null) {
  const row = el('li', { 'data-group': card.key, className: 'card' }, itemButton(card.item, locale, card.unread, t));
  if (actions) row.append(actions(card.item, card.unread));
  if (!card.earlier.length) return row;
  const label = expanded ? t('hideEarlier') : t('earlier', { count: String(card.earlier.length) });
  row.append(
    el('button', { part: 'earlier', className: 'text-btn earlier', type: 'button', 'aria-expanded': String(expanded), 'data-group': card.key, text: label }),
  );
  if (expanded) {
    const items = card.earlier.map((n) => el('li', { className: 'card' }, itemButton(n, locale, !n.read, t), actions ? actions(n, !n.read) : null));
    row.append(el('ul', { part: 'earlier-list', className: 'earlier-list', role: 'list' }, ...items));
  }
  return row;
}
