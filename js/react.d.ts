/**
 * Types for tidings/react. React (18 or 19) is a peer dependency; `@types/react` gives `react`'s types.
 */

import type { CSSProperties, ForwardRefExoticComponent, ReactNode, RefAttributes } from 'react';

import type { ConnectOptions, ConnectionState, TidingsClient } from '../src/tidings/web/static/tidings.js';
import type { Notification, Unread, View } from '../src/tidings/web/static/tidings-core.js';
import type {
  TidingsBell as TidingsBellElement,
  TidingsClickDetail,
  TidingsNotificationDetail,
  TidingsPushDetail,
  TidingsStateDetail,
} from '../src/tidings/web/static/tidings-bell.js';

export type { TidingsBellElement };

/** The element's attributes in camelCase (see TidingsBellAttributes), plus its events. */
export interface TidingsBellProps {
  token?: string;
  tokenUrl?: string;
  streamUrl?: string;
  apiBase?: string;
  viewAllUrl?: string;
  preferencesUrl?: string;
  channel?: string;
  shared?: boolean;
  noToasts?: boolean;
  align?: 'left' | 'right';
  locale?: string;
  theme?: 'dark' | 'light';
  swUrl?: string;
  noPush?: boolean;
  className?: string;
  style?: CSSProperties;
  id?: string;
  children?: ReactNode;
  onNotification?: (detail: TidingsNotificationDetail, event: CustomEvent<TidingsNotificationDetail>) => void;
  onStateChange?: (detail: TidingsStateDetail, event: CustomEvent<TidingsStateDetail>) => void;
  /** Call `event.preventDefault()` to keep the page (the item is still marked read). */
  onItemClick?: (detail: TidingsClickDetail, event: CustomEvent<TidingsClickDetail>) => void;
  onOpen?: (detail: null, event: CustomEvent<null>) => void;
  onClose?: (detail: null, event: CustomEvent<null>) => void;
  onPush?: (detail: TidingsPushDetail, event: CustomEvent<TidingsPushDetail>) => void;
}

/** `<tidings-bell>` as a component; the ref is the element. */
export const TidingsBell: ForwardRefExoticComponent<TidingsBellProps & RefAttributes<TidingsBellElement>>;

/** Imports the element's module once (browser only); resolves when it is defined. */
export function defineTidingsBell(): Promise<CustomElementConstructor>;

export interface TidingsState {
  /** null during server rendering and before the first effect. */
  client: TidingsClient | null;
  state: ConnectionState;
  view: View | null;
  unread: Unread | null;
  lastNotification: Notification | null;
}

/** connect() as React state; the client is made again only when `key` changes. */
export function useTidings(options?: ConnectOptions, key?: string): TidingsState;
