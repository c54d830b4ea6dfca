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

/** Attributes: api-base, token | token-url, sw-url, scope. */
export class TidingsPushButton extends HTMLElement {
  static readonly observedAttributes: string[];
  state: PushButtonState;
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
