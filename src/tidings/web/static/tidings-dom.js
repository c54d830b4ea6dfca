/**
 * tidings-dom.js — the DOM pieces every tidings UI is built from: `el()`, `timeEl()` and the
 * icons of notification types. <tidings-bell> and the demo's "View all" page both use them, so a
 * type shows the same icon everywhere.
 *
 *   import { typeIcon } from '/static/tidings-dom.js';
 *   row.append(typeIcon('booking_cancelled'));   // <span class="icon" data-icon="calendar-x"><svg>…
 *
 * Invariants: data reaches the DOM only as text or attribute values (never parsed as HTML);
 * which type gets which icon is `iconName` in tidings-core.js (the one map; an unknown type gets
 * the bell) under the host's `setTypeIcons` overrides; the shapes are static 24×24 stroked paths
 * built with createElementNS — never from data.
 */

import { iconName, relativeTime, toEpochMs } from './tidings-core.js';

/** An element with props (`text` → textContent, `className`, other keys → attributes). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = String(v);
    else if (k === 'className') node.className = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  node.append(...children.filter(Boolean));
  return node;
}

/** `<time datetime title>` reading "5 minutes ago" (refresh it with `relativeTime`). */
export function timeEl(createdAt, locale = undefined, className = 'time') {
  const time = el('time', { className });
  if (typeof createdAt === 'string' && createdAt) {
    time.setAttribute('datetime', createdAt);
    const ms = toEpochMs(createdAt);
    if (Number.isFinite(ms)) time.title = new Date(ms).toLocaleString(locale);
    time.textContent = relativeTime(createdAt, Date.now(), locale);
  }
  return time;
}

const CAL = [
  ['rect', { x: 3, y: 4, width: 18, height: 18, rx: 2 }],
  ['path', { d: 'M16 2v4M8 2v4M3 10h18' }],
];
const PERSON = [
  ['circle', { cx: 9, cy: 7, r: 4 }],
  ['path', { d: 'M2 21v-1a7 7 0 0 1 14 0v1' }],
];
const SHAPES = {
  bell: [['path', { d: 'M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9M10.3 21a1.94 1.94 0 0 0 3.4 0' }]],
  'calendar-plus': [...CAL, ['path', { d: 'M12 13v6M9 16h6' }]],
  'calendar-check': [...CAL, ['path', { d: 'm9 16 2 2 4-4' }]],
  'calendar-x': [...CAL, ['path', { d: 'm10 14 4 4M14 14l-4 4' }]],
  'check-circle': [['circle', { cx: 12, cy: 12, r: 10 }], ['path', { d: 'm8 12 3 3 5-6' }]],
  'user-x': [...PERSON, ['path', { d: 'm17 8 5 5M22 8l-5 5' }]],
  'user-plus': [...PERSON, ['path', { d: 'M19 8v6M16 11h6' }]],
  'credit-card': [['rect', { x: 2, y: 5, width: 20, height: 14, rx: 2 }], ['path', { d: 'M2 10h20M6 15h4' }]],
  'alert-triangle': [
    ['path', { d: 'M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z' }],
    ['path', { d: 'M12 9v4M12 17h.01' }],
  ],
  clock: [['circle', { cx: 12, cy: 12, r: 10 }], ['path', { d: 'M12 6v6l4 2' }]],
  info: [['circle', { cx: 12, cy: 12, r: 10 }], ['path', { d: 'M12 16v-4M12 8h.01' }]],
  // the per-item actions (tidings-actions.js)
  check: [['path', { d: 'M20 6 9 17l-5-5' }]],
  'circle-dot': [['circle', { cx: 12, cy: 12, r: 9 }], ['circle', { cx: 12, cy: 12, r: 3 }]],
  archive: [['rect', { x: 2, y: 3, width: 20, height: 5, rx: 1 }], ['path', { d: 'M4 8v11a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8M10 12h4' }]],
  inbox: [['path', { d: 'M22 12h-6l-2 3h-4l-2-3H2' }], ['path', { d: 'M5.5 5.1 2 12v6a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2v-6l-3.5-6.9A2 2 0 0 0 16.8 4H7.2a2 2 0 0 0-1.7 1.1z' }]],
  'arrow-right': [['path', { d: 'M5 12h14M13 6l6 6-6 6' }]],
};

/** The names `svgIcon` draws (a host may map a type to any of them: `setTypeIcons`). */
export const ICON_NAMES = Object.freeze(Object.keys(SHAPES));

// The host's icons per type, over `iconName`'s defaults: one map for every bell and inbox.
const HOST_ICONS = new Map();
const typeKey = (type) => String(type ?? '').trim().toLowerCase().replace(/[.\-\s]+/g, '_');

/**
 * The host's icon for some types: `{type: name}` (one of `ICON_NAMES`) or `{type: () => Element}`
 * (its own picture, e.g. an <img>); `null` gives a type its default back. Bells and inboxes on
 * the page re-render (a `tidings-icons` event on window).
 */
export function setTypeIcons(map) {
  for (const [type, icon] of Object.entries(map ?? {})) {
    if (icon === null || icon === undefined) HOST_ICONS.delete(typeKey(type));
    else if (typeof icon === 'function' || Object.hasOwn(SHAPES, icon)) HOST_ICONS.set(typeKey(type), icon);
    else throw new TypeError(`tidings: unknown icon ${JSON.stringify(icon)} (one of ${ICON_NAMES.join(', ')}, or a function)`);
  }
  globalThis.dispatchEvent?.(new Event('tidings-icons'));
}

const SVG_NS = 'http://www.w3.org/2000/svg';
const SVG_ATTRS = {
  viewBox: '0 0 24 24',
  fill: 'none',
  stroke: 'currentColor',
  'stroke-width': '2',
  'stroke-linecap': 'round',
  'stroke-linejoin': 'round',
  'aria-hidden': 'true',
  focusable: 'false',
};

/** An <svg> for an icon name (`iconName`'s answers); the bell for an unknown name. */
export function svgIcon(name) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  for (const [k, v] of Object.entries(SVG_ATTRS)) svg.setAttribute(k, v);
  for (const [tag, shapeAttrs] of SHAPES[name] ?? SHAPES.bell) {
    const shape = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(shapeAttrs)) shape.setAttribute(k, String(v));
    svg.append(shape);
  }
  return svg;
}

/** `<span class="{className}" data-icon="{name}">` around the icon of a notification type. */
export function typeIcon(type, className = 'icon', label = undefined) {
  const own = typeof type === 'string' ? HOST_ICONS.get(typeKey(type)) : undefined;
  const name = typeof own === 'string' ? own : own ? 'custom' : iconName(type);
  const span = document.createElement('span');
  span.className = className;
  if (label) span.title = label; // the type's label in the page's language (tidings-i18n.js)
  span.dataset.icon = name;
  let picture = null;
  if (typeof own === 'function') {
    try {
      picture = own(type);
    } catch {
      picture = null;
    }
  }
  span.append(picture instanceof Element ? picture : svgIcon(name));
  return span;
}

/** The bell's shadow DOM, unattached: its parts by name (tidings-bell.js wires them). Text is
 * filled in by the bell (its catalogue); `panelId` ties the button, panel and heading. */
export function bellParts(panelId) {
  const headingId = `${panelId}-heading`;

  const badge = el('span', { part: 'badge', className: 'badge', 'aria-hidden': 'true', hidden: true });
  const dot = el('span', { part: 'dot', className: 'dot', 'data-state': 'connecting', 'aria-hidden': 'true' });
  const button = el(
    'button',
    { part: 'button', className: 'bell', type: 'button', 'aria-haspopup': 'dialog', 'aria-expanded': 'false', 'aria-controls': panelId },
    svgIcon('bell'),
    badge,
    dot,
  );

  const markAll = el('button', { part: 'mark-all', className: 'text-btn', type: 'button' });
  const unreadOnly = el('button', { part: 'unread-toggle', className: 'text-btn toggle', type: 'button', 'aria-pressed': 'false' });
  // The connection's state in words next to the heading (the dot on the button is only a colour).
  const statusText = el('span', { className: 'status-text' });
  const status = el('span', { part: 'status', className: 'status', 'data-state': 'connecting' }, el('span', { className: 'status-dot', 'aria-hidden': 'true' }), statusText);
  const list = el('ul', { part: 'list', className: 'list', role: 'list', 'aria-labelledby': headingId });
  const emptyTitle = el('strong', { className: 'empty-title' });
  const emptyHint = el('span', { className: 'empty-hint' });
  const empty = el('div', { part: 'empty', className: 'empty' }, el('span', { className: 'empty-icon', 'aria-hidden': 'true' }, svgIcon('check-circle')), emptyTitle, emptyHint);
  const viewAll = el('a', { part: 'view-all' });
  const prefs = el('a', { part: 'preferences' });
  const heading = el('h2', { className: 'heading', id: headingId });
  const push = el('button', { part: 'enable-push', className: 'text-btn push-btn', type: 'button', hidden: true });
  const foot = el('div', { className: 'foot' }, viewAll, prefs, push);
  const panel = el(
    'div',
    { part: 'panel', className: 'panel', id: panelId, role: 'dialog', 'aria-labelledby': headingId, tabindex: '-1', hidden: true },
    el('div', { className: 'head' }, heading, status, el('span', { className: 'tools' }, unreadOnly, markAll)),
    list,
    empty,
    foot,
  );
  const toasts = el('div', { part: 'toasts', className: 'toasts', 'aria-live': 'polite', 'aria-atomic': 'false', 'aria-relevant': 'additions' });

  return { button, badge, dot, panel, heading, status, statusText, list, empty, emptyTitle, emptyHint, markAll, unreadOnly, viewAll, prefs, push, foot, toasts };
}
