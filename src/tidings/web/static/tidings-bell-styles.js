/**
 * tidings-bell-styles.js — the styles of <tidings-bell>'s shadow root (and the item styles it
 * shares with <tidings-inbox>), each stylesheet built once per page.
 *
 * A plain module (no build step, no CSS module scripts), so that one
 * `<script type="module" src=".../tidings-bell.js">` loads it from any origin like the other
 * modules (the server sends CORS headers for /static/*). Hosts theme the bell through the
 * `--tidings-*` custom properties and `::part()`, never by reaching into the shadow root.
 */

/** The item renderer's styles (tidings-groups.js, tidings-actions.js), the bell's and the inbox's. */
export const ITEM_CSS = `
:host {
  --_accent: var(--tidings-accent, #4f46e5);
  --_bg: var(--tidings-bg, #ffffff);
  --_fg: var(--tidings-fg, #111827);
  --_muted: var(--tidings-muted, #6b7280);
  --_border: var(--tidings-border, #e5e7eb);
  --_hover: var(--tidings-hover, #f3f4f6);
  --_unread: var(--tidings-unread-bg, #f5f6ff);
  --_radius: var(--tidings-radius, 12px);
  --_shadow: var(--tidings-shadow, 0 12px 32px rgba(17, 24, 39, 0.12), 0 2px 6px rgba(17, 24, 39, 0.06));
  font-family: var(--tidings-font, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif);
  font-size: 14px;
  line-height: 1.4;
  color: var(--_fg);
}
:host([hidden]) { display: none; }
:host([theme="dark"]) {
  --_bg: var(--tidings-bg, #1f2937);
  --_fg: var(--tidings-fg, #f9fafb);
  --_muted: var(--tidings-muted, #9ca3af);
  --_border: var(--tidings-border, #374151);
  --_hover: var(--tidings-hover, #273244);
  --_unread: var(--tidings-unread-bg, #252f4a);
  --_accent: var(--tidings-accent, #818cf8);
}
[hidden] { display: none !important; }
button { font: inherit; color: inherit; }
.sr-only {
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap;
}
.text-btn {
  border: 0; background: none; padding: 4px 8px; border-radius: 6px; cursor: pointer;
  color: var(--_accent); font-size: 13px; font-weight: 500;
}
.text-btn:hover:not(:disabled) { background: var(--_hover); }
.text-btn:disabled { color: var(--_muted); cursor: default; opacity: 0.7; }
.text-btn:focus-visible, .foot a:focus-visible { outline: 2px solid var(--_accent); outline-offset: 1px; }
.item {
  position: relative; display: flex; align-items: flex-start; gap: 12px; box-sizing: border-box;
  width: 100%; padding: 10px 14px 10px 16px; border: 0; background: transparent;
  text-align: left; cursor: pointer;
}
.item:hover { background: var(--_hover); }
.item[data-unread] { background: var(--_unread); }
.item[data-unread]:hover { background: var(--_hover); }
.item:focus-visible { outline: 2px solid var(--_accent); outline-offset: -2px; }
.icon {
  --_c: var(--_accent);
  flex: none; display: grid; place-items: center; width: 32px; height: 32px; border-radius: 50%;
  color: var(--_c); background: color-mix(in srgb, var(--_c) 13%, transparent);
}
.icon > svg { width: 16px; height: 16px; }
.icon[data-icon="credit-card"], .icon[data-icon="check-circle"] { --_c: var(--tidings-success, #16a34a); }
.icon[data-icon="alert-triangle"], .icon[data-icon="calendar-x"] { --_c: var(--tidings-danger, #dc2626); }
.icon[data-icon="clock"], .icon[data-icon="user-x"] { --_c: var(--tidings-warning, #d97706); }
.icon[data-icon="user-plus"] { --_c: var(--tidings-info, #7c3aed); }
.icon[data-icon="info"] { --_c: var(--_muted); }
.text { flex: 1; min-width: 0; display: flex; flex-direction: column; gap: 2px; }
.title { overflow-wrap: anywhere; }
.item[data-unread] .title { font-weight: 600; }
.body {
  color: var(--_muted); font-size: 13px; overflow-wrap: anywhere;
  display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden;
}
.time { color: var(--_muted); font-size: 12px; }
.mark { flex: none; width: 8px; height: 8px; margin-top: 6px; border-radius: 50%; background: var(--_accent); visibility: hidden; }
.item[data-unread] .mark { visibility: visible; }
.earlier { display: block; margin: 0 0 4px 52px; font-size: 12px; }
.earlier-list { list-style: none; margin: 0; padding: 0 0 0 24px; }
.card { position: relative; list-style: none; }
.actions { display: flex; align-items: center; gap: 2px; }
.action {
  display: inline-grid; place-items: center; width: 32px; height: 32px; padding: 0; box-sizing: border-box;
  border: 0; border-radius: 8px; background: transparent; color: var(--_muted); cursor: pointer; text-decoration: none;
}
.action:hover { background: var(--_hover); color: var(--_fg); }
.action:focus-visible, .snooze-menu button:focus-visible { outline: 2px solid var(--_accent); outline-offset: -2px; }
.action[aria-expanded="true"] { color: var(--_accent); }
.action > svg { width: 16px; height: 16px; }
.snooze-menu { display: flex; flex-wrap: wrap; gap: 2px; flex-basis: 100%; justify-content: flex-end; }
.snoozed { color: var(--tidings-warning, #b45309); font-size: 12px; }
.empty { margin: 0; padding: 32px 16px; text-align: center; color: var(--_muted); display: flex; flex-direction: column; align-items: center; gap: 4px; }
.empty-icon { display: grid; place-items: center; width: 40px; height: 40px; border-radius: 50%; color: var(--tidings-success, #16a34a); background: color-mix(in srgb, var(--tidings-success, #16a34a) 12%, transparent); }
.empty-icon > svg { width: 22px; height: 22px; }
.empty-title { color: var(--_fg); font-weight: 600; }
.empty-hint { font-size: 13px; }
`;

/** The bell's stylesheet: the items' styles and its own. */
export const BELL_CSS = ITEM_CSS + `
:host { display: inline-block; position: relative; }
.bell {
  position: relative; display: inline-grid; place-items: center;
  width: var(--tidings-button-size, 40px); height: var(--tidings-button-size, 40px);
  padding: 0; border: 0; border-radius: 999px; cursor: pointer;
  background: var(--tidings-button-bg, transparent); color: var(--tidings-button-fg, currentColor);
  transition: background-color 0.15s;
}
.bell:hover { background: var(--_hover); }
.bell:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
.bell > svg { width: 22px; height: 22px; }
.badge {
  position: absolute; top: 1px; right: 1px; box-sizing: border-box;
  min-width: 18px; height: 18px; padding: 0 5px; border-radius: 9px;
  background: var(--tidings-badge-bg, #ef4444); color: var(--tidings-badge-fg, #ffffff);
  font-size: 11px; font-weight: 700; line-height: 18px; text-align: center;
  font-variant-numeric: tabular-nums; box-shadow: 0 0 0 2px var(--_bg); pointer-events: none;
}
.dot {
  position: absolute; bottom: 6px; right: 6px; width: 8px; height: 8px; border-radius: 50%;
  background: var(--tidings-dot-closed, #9ca3af); box-shadow: 0 0 0 2px var(--_bg);
  transition: background-color 0.3s;
}
.dot[data-state="open"] { background: var(--tidings-dot-open, #22c55e); }
.dot[data-state="connecting"], .dot[data-state="reconnecting"] { background: var(--tidings-dot-connecting, #f59e0b); }
.panel {
  position: absolute; top: calc(100% + 8px); right: 0; z-index: var(--tidings-z, 1000);
  width: var(--tidings-panel-width, 360px); max-width: calc(100vw - 16px); box-sizing: border-box;
  background: var(--_bg); color: var(--_fg); border: 1px solid var(--_border);
  border-radius: var(--_radius); box-shadow: var(--_shadow); overflow: hidden; text-align: left;
  display: flex; flex-direction: column;
}
:host([align="left"]) .panel { right: auto; left: 0; }
.head {
  display: flex; align-items: center; justify-content: space-between; gap: 8px;
  padding: 12px 12px 12px 16px; border-bottom: 1px solid var(--_border); flex-wrap: wrap;
}
.status { display: inline-flex; align-items: center; gap: 5px; margin-right: auto; color: var(--_muted); font-size: 12px; }
.status-dot { width: 8px; height: 8px; border-radius: 50%; background: var(--tidings-dot-closed, #9ca3af); }
.status[data-state="open"] .status-dot { background: var(--tidings-dot-open, #22c55e); }
.status[data-state="connecting"] .status-dot, .status[data-state="reconnecting"] .status-dot { background: var(--tidings-dot-connecting, #f59e0b); }
.tools { display: flex; flex-wrap: wrap; gap: 2px; margin-left: auto; }
.toggle[aria-pressed="true"] { background: color-mix(in srgb, var(--_accent) 12%, transparent); }
.heading { margin: 0; font-size: 15px; font-weight: 600; }
.list {
  list-style: none; margin: 0; padding: 4px 0; overflow-y: auto; overscroll-behavior: contain;
  /* every one of the latest five fits; the bell fits --_fit to the viewport when it opens */
  max-height: min(var(--tidings-list-max-height, 100vh), var(--_fit, 75vh));
}
.card .actions {
  position: absolute; top: 6px; right: 8px; padding: 2px; border-radius: 10px; flex-wrap: wrap; max-width: 70%;
  justify-content: flex-end; background: var(--_bg); box-shadow: 0 1px 4px rgba(17, 24, 39, 0.12);
  opacity: 0; pointer-events: none; transition: opacity 0.1s;
}
.card:hover > .actions, .card:focus-within > .actions { opacity: 1; pointer-events: auto; }
@media (hover: none) {
  .card .actions { position: static; opacity: 1; pointer-events: auto; box-shadow: none; background: none; max-width: none; padding: 0 10px 6px 56px; justify-content: flex-start; }
}
.foot {
  display: flex; align-items: center; justify-content: space-between; gap: 8px;
  padding: 10px 16px; border-top: 1px solid var(--_border);
}
.foot a { color: var(--_accent); font-size: 13px; font-weight: 500; text-decoration: none; border-radius: 4px; }
.foot a:hover { text-decoration: underline; }
.foot { flex-wrap: wrap; }
.push-btn[data-state="on"] { color: var(--tidings-success, #16a34a); }
.push-btn[data-state="denied"], .push-btn[data-state="error"] { color: var(--_muted); }
.toasts {
  position: fixed; z-index: var(--tidings-toast-z, 2147483000);
  right: var(--tidings-toast-right, 16px); bottom: var(--tidings-toast-bottom, 16px);
  display: flex; flex-direction: column; gap: 8px;
  width: var(--tidings-toast-width, 340px); max-width: calc(100vw - 32px); pointer-events: none;
}
.toast {
  pointer-events: auto; display: flex; align-items: flex-start;
  background: var(--_bg); color: var(--_fg); border: 1px solid var(--_border);
  border-radius: var(--_radius); box-shadow: var(--_shadow);
  animation: tidings-in 0.18s ease-out;
}
.toast-main {
  flex: 1; min-width: 0; display: flex; align-items: flex-start; gap: 12px;
  padding: 12px 0 12px 14px; border: 0; background: none; text-align: left; cursor: pointer;
  border-radius: var(--_radius);
}
.toast-main:focus-visible, .toast-close:focus-visible { outline: 2px solid var(--_accent); outline-offset: -2px; }
.toast-main .title { font-weight: 600; }
.toast-close {
  flex: none; border: 0; background: none; cursor: pointer; color: var(--_muted);
  padding: 8px 10px; margin: 4px; border-radius: 8px; font-size: 18px; line-height: 1;
}
.toast-close:hover { background: var(--_hover); color: var(--_fg); }
@keyframes tidings-in { from { opacity: 0; transform: translateY(8px); } }
@media (prefers-reduced-motion: reduce) { .toast { animation: none; } .dot, .bell { transition: none; } }
`;

const sheets = new Map();

/**
 * Gives `root` the stylesheet `css`: one constructable stylesheet per text, shared by every
 * element on the page, or a <style> element where a browser cannot adopt one (older engines,
 * another document).
 */
export function adoptStyles(root, css) {
  try {
    let sheet = sheets.get(css);
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      sheets.set(css, sheet);
    }
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
  } catch {
    const style = document.createElement('style');
    style.textContent = css;
    root.prepend(style);
  }
}

/** The bell's styles (`adoptStyles` with BELL_CSS). */
export function adoptBellStyles(root) {
  adoptStyles(root, BELL_CSS);
}
