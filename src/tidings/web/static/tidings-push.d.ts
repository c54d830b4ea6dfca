/**
 * Types for tidings-push.js: Web Push on or off for this browser, and <tidings-push-button>.
 * Importing the module defines the element (where `customElements` exists).
 */

import type { TokenResult } from './tidings.js';

export type PushStage = 'support' | 'permission' | 'register' | 'key' | 'subscribe' | 'save';
export type PushState = 'unsupported' | 'denied' | 'on' | 'off';
export type PushButtonState = PushState | 'busy' | 'error';

/** Where `enablePush` stopped, in `stage`. */
export class PushError extends Error {
  constructor(stage: PushStage, message: string, cause?: unknown);
  readonly name: 'PushError';
  stage: PushStage;
}

export interface PushOptions {
  /** The origin (and prefix) of tidings; default: next to this module. */
  apiBase?: string;
  token?: string;
  getToken?: () => TokenResult | Promise<TokenResult>;
  /** The service worker, on the page's own origin; default /static/sw.js next to this module. */
  swUrl?: string;
  scope?: string;
  /** Give up on pushManager.subscribe() after this many ms (default 30000). */
  timeoutMs?: number;
}

export function pushSupported(): boolean;
export function urlBase64ToUint8Array(text: string): Uint8Array;
export function enablePush(options?: PushOptions): Promise<{ subscription: PushSubscription; id: string | number }>;
export function disablePush(options?: PushOptions): Promise<boolean>;
export function pushState(options?: PushOptions): Promise<PushState>;

export interface TidingsPushEventDetail {
  state: PushButtonState;
  error?: unknown;
}

export interface PushToggleOptions {
  /** The push options to use on each toggle (read at the time). */
  options: () => PushOptions;
  /** False hides the control's function (e.g. no service worker URL): state 'unsupported'. */
  available?: () => boolean;
  /** Called after every state change (the host element mirrors it). */
  onShow?: (state: PushButtonState) => void;
  state?: PushButtonState;
}

/** The one push control behind the bell's button and `<tidings-push-button>`: drives a button
 * element and dispatches `tidings-push` on its host when the state changes or an attempt fails. */
export class PushToggle {
  constructor(host: HTMLElement, button: HTMLButtonElement, options: PushToggleOptions);
  readonly host: HTMLElement;
  readonly button: HTMLButtonElement;
  state: PushButtonState | undefined;
  sync(): Promise<void>;
  show(state: PushButtonState, error?: unknown): void;
  toggle(): Promise<void>;
}

/** Attributes: api-base, token | token-url, sw-url, scope. */
export class TidingsPushButton extends HTMLElement {
  static readonly observedAttributes: string[];
  readonly state: PushButtonState;
  button: HTMLButtonElement;
  options(): PushOptions;
  show(state: PushButtonState, error?: unknown): void;
  toggle(): Promise<void>;
}

declare global {
  interface HTMLElementTagNameMap {
    'tidings-push-button': TidingsPushButton;
  }
  interface HTMLElementEventMap {
    'tidings-push': CustomEvent<TidingsPushEventDetail>;
  }
}
