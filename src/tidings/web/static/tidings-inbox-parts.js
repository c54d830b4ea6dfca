/**
 * tidings-inbox-parts.js — <tidings-inbox>'s shadow DOM (unattached, its parts by name) and its
 * stylesheet: the item styles it shares with the bell (tidings-bell-styles.js ITEM_CSS) and its
 * own page layout, which works from 320 px up (toolbar and item actions wrap; the text column
 * keeps at least 16rem before the actions move under it).
 */

import { adoptStyles, ITEM_CSS } from './tidings-bell-styles.js';
import { el, svgIcon } from './tidings-dom.js';

/** The filters, in the order they are shown. */
export const STATUSES = Object.freeze(['all', 'unread', 'archived', 'snoozed']);

let typeSeq = 0;

/** The inbox's parts; text is filled in by the element (its catalogue). */
export function inboxParts() {
  const typeId = `tidings-inbox-type-${++typeSeq}`;
  const filters = el('div', { part: 'filters', className: 'filters', role: 'group' },
    ...STATUSES.map((status) => el('button', { part: 'filter', className: 'filter', type: 'button', 'data-status': status, 'aria-pressed': String(status === 'all') })));
  const typeLabel = el('label', { className: 'sr-only', for: typeId });
  const type = el('select', { part: 'type-filter', className: 'type', id: typeId });
  const markAll = el('button', { part: 'mark-all', className: 'text-btn mark-all', type: 'button' });
  const list = el('div', { part: 'list', className: 'days', 'aria-live': 'polite', 'aria-busy': 'true', tabindex: '-1' });
  const emptyTitle = el('strong', { className: 'empty-title' });
  const emptyHint = el('span', { className: 'empty-hint' });
  const empty = el('div', { part: 'empty', className: 'empty', hidden: true },
    el('span', { className: 'empty-icon', 'aria-hidden': 'true' }, svgIcon('check-circle')), emptyTitle, emptyHint);
  const errorText = el('span');
  const retry = el('button', { part: 'retry', className: 'text-btn', type: 'button' });
  const error = el('p', { part: 'error', className: 'error', role: 'alert', hidden: true }, errorText, retry);
  const more = el('button', { part: 'more', className: 'more', type: 'button', hidden: true });
  const root = el('div', { className: 'inbox' },
    el('div', { part: 'toolbar', className: 'toolbar' }, filters, typeLabel, type, markAll),
    error, list, empty, el('div', { className: 'foot' }, more));
  return { root, filters, typeLabel, type, markAll, list, empty, emptyTitle, emptyHint, error, errorText, retry, more };
}

/** The inbox's stylesheet: the shared item styles, then the page's own. */
export const INBOX_CSS = ITEM_CSS + `
:host { display: block; min-width: 0; container-type: inline-size; }
.inbox {
  background: var(--_bg); color: var(--_fg); border: 1px solid var(--_border); border-radius: var(--_radius);
  overflow: hidden;
}
.toolbar {
  display: flex; flex-wrap: wrap; align-items: center; gap: 8px; padding: 12px; border-bottom: 1px solid var(--_border);
}
.filters { display: inline-flex; flex-wrap: wrap; gap: 2px; padding: 2px; border-radius: 8px; background: var(--_hover); }
.filter {
  border: 0; background: none; padding: 5px 10px; border-radius: 6px; cursor: pointer; color: var(--_muted); font-size: 13px;
}
.filter[aria-pressed="true"] { background: var(--_bg); color: var(--_fg); font-weight: 600; box-shadow: 0 1px 2px rgba(17, 24, 39, 0.08); }
.filter:focus-visible, .type:focus-visible, .more:focus-visible { outline: 2px solid var(--_accent); outline-offset: 1px; }
.type {
  font: inherit; font-size: 13px; color: var(--_fg); background: var(--_bg); min-width: 0; max-width: 100%;
  border: 1px solid var(--_border); border-radius: 8px; padding: 5px 8px;
}
.mark-all { margin-left: auto; }
.days:focus { outline: none; }
.day {
  margin: 0; padding: 14px 16px 6px; font-size: 12px; font-weight: 600; letter-spacing: 0.02em;
  text-transform: uppercase; color: var(--_muted);
}
.cards { list-style: none; margin: 0; padding: 0; }
.card {
  display: flex; flex-wrap: wrap; align-items: center; border-top: 1px solid var(--_border);
}
.card > .item { flex: 1 1 16rem; min-width: 0; padding: 12px 16px; }
.card > .item, .card > .item:hover { background: transparent; }
.card:has(> .item[data-unread]) { background: var(--_unread); }
.card:hover { background: var(--_hover); }
.card > .actions { flex: none; flex-wrap: wrap; justify-content: flex-end; margin-left: auto; padding: 4px 8px; max-width: 100%; }
.card > .earlier, .card > .earlier-list { flex: 1 0 100%; }
.earlier-list .card { border-top: 0; }
.empty { padding: 48px 16px; }
.error { margin: 0; padding: 10px 16px; display: flex; flex-wrap: wrap; align-items: center; gap: 8px; color: var(--tidings-danger, #b91c1c); background: color-mix(in srgb, var(--tidings-danger, #dc2626) 8%, transparent); }
.foot { display: flex; justify-content: center; padding: 0 12px; }
.more {
  font: inherit; margin: 12px 0; padding: 8px 16px; border: 1px solid var(--_border); border-radius: 8px;
  background: var(--_bg); color: var(--_fg); cursor: pointer;
}
.more:hover:not(:disabled) { background: var(--_hover); }
.more:disabled { opacity: 0.6; cursor: progress; }
@container (max-width: 420px) {
  .toolbar { padding: 10px; }
  .type { flex: 1 1 8rem; }
  .card > .item { padding: 10px 12px; gap: 10px; }
  .card > .actions { margin-top: -8px; padding: 0 8px 6px; }
  .day { padding: 12px 12px 4px; }
}
`;

/** The inbox's styles: one constructable stylesheet for every inbox on the page. */
export function adoptInboxStyles(root) {
  adoptStyles(root, INBOX_CSS);
}
