/**
 * tidings-toasts.js — the bell's toasts: one per notification shown while it is new, in a
 * container the bell owns ([part=toasts], aria-live).
 *
 * Invariants:
 * - at most `MAX_TOASTS` at a time: a new one dismisses the oldest;
 * - a toast leaves after `TOAST_MS`, a clock that pauses while it is hovered or holds focus;
 * - a dismissed toast that held focus hands it back (`onFocusLost`), never to <body>;
 * - its text reaches the DOM only as text (tidings-dom.js).
 */

import { el, timeEl, typeIcon } from './tidings-dom.js';
import { localText, translator } from './tidings-i18n.js';

export const TOAST_MS = 6000;
export const MAX_TOASTS = 3;

export class ToastStack {
  /** `onActivate(notification, event)` when its body is clicked; `locale()` for its time;
   * `text(key)` and `typeLabel(type)` from the catalogue (tidings-i18n.js). */
  constructor(container, { onActivate, onFocusLost, locale, text = translator('en'), typeLabel = translator('en').type }) {
    Object.assign(this, { container, onActivate, onFocusLost, locale, text, typeLabel });
  }

  show(n) {
    const text = localText(n, this.locale()); // rendered per locale from templates
    const main = el(
      'button',
      { className: 'toast-main', part: 'toast-body', type: 'button' },
      typeIcon(n.type, 'icon', this.typeLabel(n.type)),
      el(
        'span',
        { className: 'text' },
        el('span', { className: 'title', text: text.title }),
        text.body ? el('span', { className: 'body', text: text.body }) : null,
        timeEl(n.created_at, this.locale()),
      ),
    );
    const close = el('button', { className: 'toast-close', part: 'toast-close', type: 'button', 'aria-label': this.text('dismiss'), title: this.text('dismiss') });
    close.append(el('span', { 'aria-hidden': 'true', text: '×' }));
    const toast = el('div', { part: 'toast', className: 'toast', 'data-id': n.id, 'data-type': typeof n.type === 'string' ? n.type : null }, main, close);

    let remaining = TOAST_MS;
    let startedAt = 0;
    let timer = null;
    let holds = 0;
    const run = () => {
      startedAt = Date.now();
      timer = setTimeout(() => this.dismiss(toast), remaining);
    };
    const pause = () => {
      if (holds++ === 0 && timer) {
        clearTimeout(timer);
        timer = null;
        remaining = Math.max(1000, remaining - (Date.now() - startedAt));
      }
    };
    const resume = () => {
      if (holds > 0 && --holds === 0 && toast.isConnected) run();
    };
    toast.addEventListener('mouseenter', pause);
    toast.addEventListener('mouseleave', resume);
    toast.addEventListener('focusin', pause);
    toast.addEventListener('focusout', (e) => {
      if (!toast.contains(e.relatedTarget)) resume();
    });
    toast._tidingsStop = () => clearTimeout(timer);
    close.addEventListener('click', () => this.dismiss(toast));
    main.addEventListener('click', (e) => {
      this.dismiss(toast);
      this.onActivate(n, e);
    });

    this.container.append(toast);
    while (this.container.children.length > MAX_TOASTS) this.dismiss(this.container.firstElementChild);
    run();
  }

  dismiss(toast) {
    if (!toast) return;
    toast._tidingsStop?.();
    const hadFocus = toast.contains(this.container.getRootNode().activeElement);
    toast.remove();
    if (hadFocus) this.onFocusLost();
  }

  /** Dismisses the toasts of these notification ids (all of them without `ids`). */
  clear(ids = null) {
    const wanted = ids && new Set([...ids].map(Number));
    for (const toast of [...this.container.children]) {
      if (!wanted || wanted.has(Number(toast.dataset.id))) this.dismiss(toast);
    }
  }
}
