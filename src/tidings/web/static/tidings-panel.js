/**
 * tidings-panel.js — the bell's dropdown geometry and list keys: the open panel stays inside the
 * viewport, its list is as tall as the viewport lets it be (so the latest five show whole, no
 * cut-off), and the arrow keys move between items.
 *
 * Invariants: nothing here keeps state; `fitPanel` only writes the panel's transform and the
 * list's `--_fit` property (its max height, tidings-bell-styles.js).
 */

/** The open panel keeps at least this many pixels from the viewport's edges. */
export const PANEL_MARGIN = 8;

/** Moves `panel` back inside the viewport and lets `list` grow to the viewport's bottom. */
export function fitPanel(panel, list) {
  panel.style.transform = '';
  list.style.removeProperty('--_fit');
  const rect = panel.getBoundingClientRect();
  const width = document.documentElement.clientWidth || window.innerWidth;
  let dx = 0;
  if (rect.left < PANEL_MARGIN) dx = PANEL_MARGIN - rect.left;
  else if (rect.right > width - PANEL_MARGIN) dx = width - PANEL_MARGIN - rect.right;
  if (dx) panel.style.transform = `translateX(${Math.round(dx)}px)`;
  // The list may take what the viewport has below its top, less the panel's parts under it.
  const height = document.documentElement.clientHeight || window.innerHeight;
  const below = rect.bottom - list.getBoundingClientRect().bottom;
  const room = height - PANEL_MARGIN - below - list.getBoundingClientRect().top;
  list.style.setProperty('--_fit', `${Math.max(160, Math.floor(room))}px`);
}

/** The item a key moves focus to (ArrowDown/Up wrap, Home, End), or null for other keys. */
export function arrowTarget(key, items, current) {
  if (!items.length) return null;
  const at = items.indexOf(current);
  if (key === 'ArrowDown') return items[at < 0 ? 0 : (at + 1) % items.length];
  if (key === 'ArrowUp') return items[at < 0 ? items.length - 1 : (at - 1 + items.length) % items.length];
  if (key === 'Home') return items[0];
  if (key === 'End') return items[items.length - 1];
  return null;
}

/** Which control of `root` has focus, as {id, action, preset} (to find it again after a render). */
export function focusKey(root) {
  const active = root.activeElement;
  const id = active?.dataset?.id;
  return id ? { id, action: active.dataset.action, preset: active.dataset.preset } : null;
}

/**
 * Focuses the control `key` named in `container` after a render: the same action of the same
 * item, else the item itself, else `fallback` (the item left the list).
 */
export function refocus(container, key, fallback = null) {
  if (!key) return;
  const id = CSS.escape(key.id);
  const same =
    (key.preset && container.querySelector(`[data-id="${id}"][data-preset="${CSS.escape(key.preset)}"]`)) ||
    (key.action && container.querySelector(`[data-id="${id}"][data-action="${CSS.escape(key.action)}"]`)) ||
    container.querySelector(`[part~="item"][data-id="${id}"]`);
  (same ?? fallback)?.focus({ preventScroll: true });
}
