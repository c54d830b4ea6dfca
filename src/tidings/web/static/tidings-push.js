/**
 * Web Push for tidings: turn push on or off for this browser, and a tiny button that does it.
 *
 *   import { enablePush } from 'https://tidings.example.com/static/tidings-push.js';
 *   await enablePush({ getToken: async () => (await (await fetch('/api/tidings-token')).json()).token });
 *
 *   <script type="module" src="https://tidings.example.com/static/tidings-push.js"></script>
 *   <tidings-push-button token-url="/api/tidings-token"></tidings-push-button>
 *
 * enablePush({ apiBase, token | getToken, swUrl, scope, timeoutMs }) walks the steps in order and throws a
 * PushError whose `stage` says where it stopped: 'support' (no service worker / Push API /
 * Notification), 'permission' (the user said no), 'register' (service worker), 'key'
 * (GET /v1/push/key), 'subscribe' (pushManager.subscribe: the browser could not reach its push
 * service), 'save' (POST /v1/push/subscriptions). On success it returns
 * { subscription, id } — the browser's PushSubscription and the server's id for it.
 *
 * The service worker must be served from the page's origin. Same-origin embeds use
 * /static/sw.js next to this file; cross-origin embeds copy sw.js to their own origin and pass
 * `swUrl`. Button attributes: api-base, token | token-url, sw-url, scope. It emits
 * `tidings-push` events ({ detail: { state, error } }); stable selector: [part=button][data-state].
 */

import { fetchToken } from './tidings-feed.js';
import { translator } from './tidings-i18n.js';

const DEFAULT_API_BASE = new URL('..', import.meta.url).href.replace(/\/$/, '');
const DEFAULT_SW_URL = new URL('./sw.js', import.meta.url).href;
/** A browser that cannot reach its push service may never settle subscribe(): give up. */
const SUBSCRIBE_TIMEOUT_MS = 30000;

export class PushError extends Error {
  constructor(stage, message, cause) {
    super(message);
    this.name = 'PushError';
    this.stage = stage;
    if (cause !== undefined) this.cause = cause;
  }
}

/** Whether this browser can do Web Push at all. */
export function pushSupported() {
  return (
    typeof navigator !== 'undefined' &&
    'serviceWorker' in navigator &&
    typeof window !== 'undefined' &&
    'PushManager' in window &&
    'Notification' in window
  );
}

/** base64url (the VAPID public key) → Uint8Array, for applicationServerKey. */
export function urlBase64ToUint8Array(text) {
  const padded = text + '='.repeat((4 - (text.length % 4)) % 4);
  const raw = atob(padded.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(raw, (ch) => ch.charCodeAt(0));
}

function sameKey(buffer, key) {
  if (!buffer) return false;
  const a = new Uint8Array(buffer);
  return a.length === key.length && a.every((byte, i) => byte === key[i]);
}

async function authHeaders(opts) {
  const token = typeof opts.getToken === 'function' ? await opts.getToken() : opts.token;
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function activated(registration) {
  if (registration.active) return registration;
  const worker = registration.installing || registration.waiting;
  if (!worker) throw new PushError('register', 'the service worker did not install');
  await new Promise((resolve, reject) => {
    const check = () => {
      if (worker.state === 'activated') resolve();
      else if (worker.state === 'redundant') reject(new PushError('register', 'the service worker was rejected'));
    };
    worker.addEventListener('statechange', check);
    check();
  });
  return registration;
}

function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function step(stage, work) {
  try {
    return await work();
  } catch (error) {
    if (error instanceof PushError) throw error;
    throw new PushError(stage, `${stage}: ${error && error.message ? error.message : error}`, error);
  }
}

/** Ask permission, register the service worker, subscribe, and tell tidings. */
export async function enablePush(opts = {}) {
  const apiBase = (opts.apiBase ?? DEFAULT_API_BASE).replace(/\/$/, '');
  const swUrl = opts.swUrl ?? DEFAULT_SW_URL;
  if (!pushSupported()) throw new PushError('support', 'this browser has no Web Push');
  const permission = await step('permission', async () =>
    Notification.permission === 'default' ? Notification.requestPermission() : Notification.permission,
  );
  if (permission !== 'granted') throw new PushError('permission', `notifications are ${permission}`);
  const registration = await step('register', async () =>
    activated(await navigator.serviceWorker.register(swUrl, opts.scope ? { scope: opts.scope } : undefined)),
  );
  const key = await step('key', async () => {
    const response = await fetch(`${apiBase}/v1/push/key`, { headers: { Accept: 'application/json' } });
    if (!response.ok) throw new Error(`GET /v1/push/key answered ${response.status}`);
    return urlBase64ToUint8Array((await response.json()).public_key);
  });
  const subscription = await step('subscribe', async () => {
    let current = await registration.pushManager.getSubscription();
    if (current && !sameKey(current.options && current.options.applicationServerKey, key)) {
      await current.unsubscribe();
      current = null;
    }
    return (
      current ||
      withTimeout(
        registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }),
        opts.timeoutMs ?? SUBSCRIBE_TIMEOUT_MS,
        'the browser got no answer from its push service',
      )
    );
  });
  const saved = await step('save', async () => {
    const response = await fetch(`${apiBase}/v1/push/subscriptions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(await authHeaders(opts)) },
      body: JSON.stringify(subscription.toJSON()),
    });
    if (!response.ok) throw new Error(`POST /v1/push/subscriptions answered ${response.status}`);
    return response.json();
  });
  return { subscription, id: saved.id };
}

async function registrationFor(opts) {
  if (!pushSupported()) return undefined;
  // A relative sw-url ("/sw.js") is relative to the page, as in serviceWorker.register().
  const swUrl = new URL(opts.swUrl ?? DEFAULT_SW_URL, window.location.href).href;
  return navigator.serviceWorker.getRegistration(opts.scope ?? new URL('./', swUrl).href);
}

/** Unsubscribe this browser and tell tidings to forget it. */
export async function disablePush(opts = {}) {
  const apiBase = (opts.apiBase ?? DEFAULT_API_BASE).replace(/\/$/, '');
  const registration = await registrationFor(opts);
  const subscription = registration && (await registration.pushManager.getSubscription());
  if (!subscription) return false;
  await fetch(`${apiBase}/v1/push/subscriptions`, {
    method: 'DELETE',
    headers: { 'Content-Type': 'application/json', ...(await authHeaders(opts)) },
    body: JSON.stringify({ endpoint: subscription.endpoint }),
  });
  await subscription.unsubscribe();
  return true;
}

/** 'unsupported' | 'denied' | 'on' | 'off' for this browser. */
export async function pushState(opts = {}) {
  if (!pushSupported()) return 'unsupported';
  if (Notification.permission === 'denied') return 'denied';
  const registration = await registrationFor(opts);
  const subscription = registration && (await registration.pushManager.getSubscription());
  return subscription ? 'on' : 'off';
}

/** States whose button has a tooltip in the catalogue ('pushTitle.<state>'). */
const TITLED = new Set(['off', 'on', 'denied']);

/**
 * The one push on/off control, behind <tidings-push-button> and the bell's "Enable push": keeps
 * `button` (text, title, data-state, disabled) in step with this browser's push state, and
 * dispatches `tidings-push` ({ detail: { state, error } }) on `host` when the state settles on a
 * new value or an attempt fails. `options()` gives the PushOptions; `available()` false reads
 * as 'unsupported' without asking the browser; `onShow(state)` runs after each change.
 * Only the latest sync or toggle may show its result.
 */
export class PushToggle {
  #seq = 0;

  constructor(host, button, { options, available = () => true, onShow = () => {}, state = undefined, text = undefined }) {
    // `text(key)`: the catalogue lookup (tidings-i18n.js); default: the host's `locale` attribute.
    const own = text ?? ((key) => translator(host.getAttribute?.('locale'))(key));
    Object.assign(this, { host, button, options, available, onShow, state, text: own });
  }

  /** Reads this browser's state (on load, when options change, when the control is shown). */
  async sync() {
    const seq = ++this.#seq;
    let state = 'unsupported';
    if (this.available()) {
      try {
        state = await pushState(this.options());
      } catch {
        state = 'off';
      }
    }
    if (seq === this.#seq) this.show(state);
  }

  show(state, error) {
    const { button } = this;
    const changed = state !== this.state;
    this.state = state;
    button.dataset.state = state;
    button.textContent = this.text(`push.${state}`);
    button.title = TITLED.has(state) ? this.text(`pushTitle.${state}`) : error?.message ? String(error.message) : '';
    button.disabled = state === 'busy' || state === 'denied' || state === 'unsupported';
    this.onShow(state);
    if (state !== 'busy' && (changed || error)) {
      this.host.dispatchEvent(new CustomEvent('tidings-push', { detail: { state, error }, bubbles: true, composed: true }));
    }
  }

  /** Off → on, on → off; a refused permission shows 'denied', any other failure 'error'. */
  async toggle() {
    const before = this.state;
    if (before === 'busy' || before === 'denied' || before === 'unsupported') return;
    const seq = ++this.#seq;
    this.show('busy');
    if (before === 'on') this.button.textContent = this.text('push.turningOff');
    let state;
    let failure;
    try {
      if (before === 'on') await disablePush(this.options());
      else await enablePush(this.options());
      state = before === 'on' ? 'off' : 'on';
    } catch (error) {
      state = error?.stage === 'permission' ? 'denied' : 'error';
      failure = error;
    }
    if (seq === this.#seq) this.show(state, failure);
  }
}

export class TidingsPushButton extends HTMLElement {
  static get observedAttributes() {
    return ['api-base', 'token', 'token-url', 'sw-url', 'scope'];
  }

  #toggle;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent =
      'button{font:inherit;padding:.35em .8em;border-radius:6px;border:1px solid #d1d5db;' +
      'background:#fff;cursor:pointer}button[data-state=on]{border-color:#16a34a;color:#166534}' +
      'button:disabled{opacity:.6;cursor:default}';
    this.button = document.createElement('button');
    this.button.type = 'button';
    this.button.setAttribute('part', 'button');
    this.button.addEventListener('click', () => this.toggle());
    root.append(style, this.button);
    this.#toggle = new PushToggle(this, this.button, { options: () => this.options() });
    this.show('off');
  }

  connectedCallback() {
    this.#toggle.sync();
  }

  /** 'unsupported' | 'denied' | 'off' | 'on' | 'busy' | 'error' */
  get state() {
    return this.#toggle.state;
  }

  options() {
    const tokenUrl = this.getAttribute('token-url');
    return {
      apiBase: this.getAttribute('api-base') ?? undefined,
      token: this.getAttribute('token') ?? undefined,
      getToken: tokenUrl ? () => fetchToken(tokenUrl) : undefined,
      swUrl: this.getAttribute('sw-url') ?? undefined,
      scope: this.getAttribute('scope') ?? undefined,
    };
  }

  show(state, error) {
    this.#toggle.show(state, error);
  }

  toggle() {
    return this.#toggle.toggle();
  }
}

if (typeof customElements !== 'undefined' && !customElements.get('tidings-push-button')) {
  customElements.define('tidings-push-button', TidingsPushButton);
}
