/**
 * tidings-actions.js — the per-item actions of <tidings-bell> and <tidings-inbox>: read/unread,
 * archive/unarchive, snooze (with its presets) and "wake up now", as one toolbar per item, and
 * what each does on the server through a connect() client.
 *
 *   row.append(actionBar(n, { unread: !n.read, t }));      // [part~=action][data-action=…]
 *   await runAction(client, 'archive', targets(card, n));  // POST /v1/feed/archive
 *
 * Invariants: the toolbar offers only what fits the item's state (`actionsFor`); a card's head
 * stands for its group (reading it reads the group; archiving or snoozing it takes every item of
 * the card), an earlier item only for itself; labels come from the catalogue (`t`), data reaches
 * the DOM only as attributes (tidings-dom.js `el`).
 */

import { isSafeLink } from './tidings-core.js';
import { el, svgIcon } from './tidings-dom.js';

export const SNOOZE_PRESETS = Object.freeze(['hour', 'tomorrow', 'week']);
/** The hour (local) "tomorrow" and "next week" snoozes end at. */
const MORNING = 9;

const ICONS = { read: 'check', unread: 'circle-dot', archive: 'archive', unarchive: 'inbox', snooze: 'clock', unsnooze: 'bell' };

/**
 * When a snooze preset ends, in the browser's time zone: 'hour' one hour from `now`, 'tomorrow'
 * at 9:00 the next day, 'week' at 9:00 next Monday.
 */
export function snoozeUntil(preset, now = new Date()) {
  const at = new Date(now.getTime());
  if (preset === 'hour') return new Date(at.getTime() + 3600 * 1000);
  at.setHours(MORNING, 0, 0, 0);
  if (preset === 'tomorrow') at.setDate(at.getDate() + 1);
  else if (preset === 'week') at.setDate(at.getDate() + ((8 - at.getDay()) % 7 || 7));
  else throw new TypeError(`tidings: unknown snooze preset ${JSON.stringify(preset)}`);
  return at;
}

/** The actions an item offers in its state (`unread`: as shown, for a card its group's). */
export function actionsFor(n, unread = !n.read) {
  if (n.archived) return ['unarchive'];
  if (n.snoozed_until) return ['unsnooze', 'archive'];
  return [unread ? 'read' : 'unread', 'snooze', 'archive'];
}

/**
 * The toolbar of one item: `[part~=action][data-action][data-id]` icon buttons labelled from
 * the catalogue; with `snoozing`, the presets (`[part~=snooze-option][data-preset]`); with
 * `details` (a safe URL), a link to the host's page about the item.
 */
export function actionBar(n, { unread = !n.read, t, snoozing = false, details = null }) {
  const bar = el('span', { part: 'actions', className: 'actions', role: 'group', 'aria-label': t('actions') });
  for (const kind of actionsFor(n, unread)) {
    const label = t(`action.${kind}`);
    const props = { part: 'action', className: 'action', type: 'button', 'data-action': kind, 'data-id': n.id, 'aria-label': label, title: label };
    if (kind === 'snooze') props['aria-expanded'] = String(snoozing);
    bar.append(el('button', props, svgIcon(ICONS[kind])));
  }
  if (details && isSafeLink(details)) {
    const label = t('action.details');
    const props = { part: 'action details', className: 'action', href: details, 'data-action': 'details', 'data-id': n.id };
    bar.append(el('a', { ...props, 'aria-label': label, title: label }, svgIcon('arrow-right')));
  }
  if (snoozing) {
    const options = SNOOZE_PRESETS.map((preset) =>
      el('button', { part: 'snooze-option', className: 'text-btn', type: 'button', 'data-preset': preset, 'data-id': n.id, text: t(`snooze.${preset}`) }),
    );
    bar.append(el('span', { part: 'snooze-menu', className: 'snooze-menu', role: 'group', 'aria-label': t('action.snooze') }, ...options));
  }
  return bar;
}

/** What an action on item `n` touches: the whole card when `n` is its head, else `n` alone. */
export function targets(card, n) {
  const head = card && card.item.id === n.id;
  const all = head ? [card.item, ...card.earlier] : [n];
  return { ids: all.map((x) => x.id), head: n.id, group: head && card.key && card.unread ? card.key : null };
}

/**
 * Runs `action` on the server; resolves with its answer. `until` (a Date) for 'snooze'.
 * 'unread' turns only the item itself unread; 'read' of a card's head reads its group.
 */
export function runAction(client, action, { ids, head, group = null }, until = null) {
  switch (action) {
    case 'read':
      return client.markRead(group ? { groups: [group] } : ids);
    case 'unread':
      return client.markUnread([head]);
    case 'unsnooze':
      return client.markUnread(ids);
    case 'archive':
      return client.archive(ids);
    case 'unarchive':
      return client.unarchive(ids);
    case 'snooze':
      return client.snooze(ids, until);
    default:
      return Promise.reject(new TypeError(`tidings: unknown action ${JSON.stringify(action)}`));
  }
}
