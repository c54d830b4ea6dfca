/**
 * Types for tidings/server: the dependency-free Node publisher (see docs/node.md).
 */

import type { Audience, Json, Notification } from '../src/tidings/web/static/tidings-core.js';

export type { Audience, Json, Notification } from '../src/tidings/web/static/tidings-core.js';

/** What a publisher sends (`POST /v1/notifications`). Unknown fields are refused (422). */
export interface NewNotification {
  /** Lower-case letters, digits, '_' and '.', starting with a letter (1–64). */
  type: string;
  /** Not blank, up to 10,000 characters. */
  title: string;
  body?: string;
  data?: { [key: string]: Json };
  /** An absolute http(s) URL or a same-site path ("/bookings/42"). */
  link?: string | null;
  /** Omit (or null) for the whole tenant. */
  audience?: Audience | null;
  /** Collapse key (issue 10), e.g. "booking:42": lower-case letters, digits, '_', '.', ':' and '-', starting with a letter (1–128). */
  group?: string | null;
  /** The user who caused it: it is read for them, never pushed or e-mailed to them. */
  actor?: { id: string; name?: string | null } | null;
}

/** `POST /v1/tokens`: a stream token for one of the host's users. */
export interface TokenRequest {
  user: string;
  roles?: string[];
  email?: string | null;
  /** Seconds, 1 to TIDINGS_TOKEN_MAX_TTL (3600 by default); default TIDINGS_TOKEN_DEFAULT_TTL (900). */
  ttl?: number;
}

export interface MintedToken {
  token: string;
  /** ISO 8601, UTC. */
  expires_at: string;
  tenant: string;
  user: string;
}

/** The server's application/problem+json body (RFC 9457) with tidings' stable `code`. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  [extension: string]: unknown;
}

/** The statuses that are retried: 408, 425, 429, 500, 502, 503, 504. */
export const RETRYABLE: readonly number[];

export type TransportErrorCode = 'network_error' | 'timeout';

/** A publish, token or transport failure. */
export class TidingsError extends Error {
  constructor(
    message: string,
    options?: {
      status?: number;
      code?: string;
      detail?: string | null;
      problem?: Problem | null;
      retryAfterMs?: number | null;
      attempts?: number;
      cause?: unknown;
    },
  );
  readonly name: 'TidingsError';
  /** The HTTP status; 0 when no answer came (network error, timeout). */
  status: number;
  /** The problem's `code` ("validation_failed", "rate_limited", …), `http_<status>`, or a TransportErrorCode. */
  code: string;
  detail: string | null;
  problem: Problem | null;
  /** The last answer's Retry-After in ms, when it had one. */
  retryAfterMs: number | null;
  /** How many requests were made. */
  attempts: number;
  /** True when trying again later may succeed. */
  readonly retryable: boolean;
}

export interface RetryInfo {
  /** 1 for the first retry. */
  attempt: number;
  delayMs: number;
  status: number;
  code: string;
  error: TidingsError;
}

export interface PublisherOptions {
  /** The tidings base URL; default $TIDINGS_URL. */
  url?: string;
  /** An API key of the tenant (scopes `publish`, `tokens`); default $TIDINGS_API_KEY. */
  apiKey?: string;
  /** Retries after the first attempt (default 5); 0 disables retrying. */
  retries?: number;
  /** Per attempt (default 10000). */
  timeoutMs?: number;
  /** Backoff base (default 500): the n-th retry waits up to base * 2^(n-1). */
  backoffBaseMs?: number;
  /** No wait (backoff or Retry-After) is longer (default 30000). */
  maxDelayMs?: number;
  fetch?: typeof fetch;
  random?: () => number;
  /** Called before each wait between attempts. */
  onRetry?: (info: RetryInfo) => void;
}

export interface PublishOptions {
  /** 1–200 printable ASCII characters (197 for a batch); default: a fresh UUID per call. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export interface Publisher {
  /** The base URL, without a trailing slash. */
  readonly url: string;
  /** The stored notification; the same one again for a repeated Idempotency-Key. */
  publish(notification: NewNotification, options?: PublishOptions): Promise<Notification>;
  /** Up to 100 in one transaction: all stored, or none. */
  publishBatch(notifications: readonly NewNotification[], options?: PublishOptions): Promise<Notification[]>;
  mintToken(user: string | TokenRequest, options?: { signal?: AbortSignal }): Promise<MintedToken>;
}

export function createPublisher(options?: PublisherOptions): Publisher;

/** The same, on a publisher made on first use from $TIDINGS_URL and $TIDINGS_API_KEY. */
export function publish(notification: NewNotification, options?: PublishOptions): Promise<Notification>;
export function publishBatch(notifications: readonly NewNotification[], options?: PublishOptions): Promise<Notification[]>;
export function mintToken(user: string | TokenRequest, options?: { signal?: AbortSignal }): Promise<MintedToken>;

export function backoffDelay(attempt: number, options?: { base?: number; cap?: number; random?: () => number }): number;
export function parseRetryAfter(value: string | null | undefined, now?: number): number | null;

// ---- Webhook deliveries (js/webhooks.js; docs/webhooks.md#verifying-a-delivery) ----------------

/** Why a delivery was refused. */
export type WebhookRefusal =
  | 'missing_header'
  | 'invalid_timestamp'
  | 'timestamp_too_old'
  | 'timestamp_too_new'
  | 'invalid_signature'
  | 'invalid_payload';

/** A delivery that must not be trusted: answer it with a 4xx and do not act on it. */
export class WebhookVerificationError extends Error {
  constructor(reason: WebhookRefusal, message: string);
  readonly name: 'WebhookVerificationError';
  readonly reason: WebhookRefusal;
}

/** A verified delivery. */
export interface WebhookEvent<T extends { [key: string]: Json } = { [key: string]: Json }> {
  /** `webhook-id`: the same on every retry of this event; process each id once. */
  id: string;
  /** `notification.read`, `push.failed`, … (docs/webhooks.md). */
  type: string;
  /** When the event happened, as sent (ISO 8601). */
  timestamp: string;
  data: T;
  /** The whole body, parsed. */
  payload: { [key: string]: Json };
  /** Unix seconds this attempt was signed (`webhook-timestamp`). */
  attemptedAt: number;
}

/** `whsec_<base64>` as tidings shows it, bare base64, or the raw key. */
export type WebhookSecret = string | Uint8Array;

/** A fetch `Headers`, a `Map`, Node's `req.headers` or a plain object; names in any case. */
export type WebhookHeaders =
  | Headers
  | ReadonlyMap<string, string>
  | { readonly [name: string]: string | readonly string[] | undefined };

/**
 * The event of a delivery whose signature (HMAC-SHA256, constant-time) and timestamp check out;
 * rejects with a WebhookVerificationError otherwise. `body` is the raw request body as received.
 */
export function verifyWebhook(
  secret: WebhookSecret | readonly WebhookSecret[],
  headers: WebhookHeaders,
  body: string | Uint8Array | ArrayBuffer,
  options?: { /** Seconds either way (default 300). */ tolerance?: number; /** ms since the epoch (default Date.now()). */ now?: number },
): Promise<WebhookEvent>;

/** The `webhook-signature` entry (`v1,<base64>`) tidings sends: to test a receiver. */
export function signWebhook(secret: WebhookSecret, id: string, timestamp: number, body: string | Uint8Array | ArrayBuffer): Promise<string>;

// ---- The outbox (js/outbox.js; docs/outbox.md) ------------------------------------------------

/** The limits of the tidings server that consumes the outbox (its TIDINGS_MAX_* settings). */
export interface OutboxLimits {
  titleChars: number;
  bodyChars: number;
  /** Size of `data` as UTF-8 JSON. */
  dataBytes: number;
  /** Distinct users plus roles an audience names. */
  audienceTargets: number;
}

/** tidings' defaults: 200, 2000, 8192, 1000. */
export const OUTBOX_LIMITS: Readonly<OutboxLimits>;

export interface OutboxRow {
  tenant: string;
  /** The JSON text stored in `payload`. */
  payload: string;
  /** `INSERT INTO tidings_outbox … VALUES ($1, $2::jsonb) RETURNING id`. */
  text: string;
  values: [tenant: string, payload: string];
}

/** The row for one publish, checked as tidings will (TypeError saying what is wrong). */
export function outboxRow(tenant: string, notification: NewNotification, options?: { limits?: Partial<OutboxLimits> }): OutboxRow;

/** What insertOutbox needs of a client: `pg`'s Client and PoolClient have it. */
export interface OutboxClient {
  query(config: { text: string; values: unknown[] }): Promise<{ rows: Array<{ id: string | number }> }>;
}

/** Insert into `tidings_outbox` in the client's transaction; resolves to the row's id. */
export function insertOutbox(
  client: OutboxClient,
  tenant: string,
  notification: NewNotification,
  options?: { limits?: Partial<OutboxLimits> },
): Promise<number>;
