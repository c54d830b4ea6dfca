/**
 * tidings/server — publish to tidings from Node (or any runtime with `fetch`), dependency-free.
 *
 *   import { createPublisher } from 'tidings/server';
 *   const tidings = createPublisher({ url: 'https://tidings.example.com', apiKey: process.env.TIDINGS_API_KEY });
 *   await tidings.publish({ type: 'booking_created', title: 'New booking: Castle XL' });
 *   const { token } = await tidings.mintToken({ user: 'u-42', roles: ['staff'] });
 *
 * Also here: `verifyWebhook` / `signWebhook` (./webhooks.js: tidings' signed webhook deliveries)
 * and `outboxRow` / `insertOutbox` (./outbox.js: a notification in your own transaction).
 *
 * Invariants:
 * - one logical publish is one Idempotency-Key, sent on every attempt (generated with
 *   crypto.randomUUID() unless the caller gives one), so a retry after a lost answer or a
 *   timeout never makes a second notification: the server answers the stored one (200);
 * - retried: network errors, per-attempt timeouts and 408/425/429/500/502/503/504, at most
 *   `retries` times; a `Retry-After` (seconds or an HTTP date) sets the wait, else exponential
 *   backoff with full jitter; no wait is longer than `maxDelayMs`. Other statuses are final;
 * - every failure is a `TidingsError` with the server's problem+json `status`, `code`,
 *   `detail` (and `problem`), or status 0 / code 'network_error' | 'timeout'; the caller's own
 *   `signal` aborting rejects with its reason at once and is never retried.
 */

export const RETRYABLE = Object.freeze([408, 425, 429, 500, 502, 503, 504]);

const DEFAULTS = Object.freeze({
  retries: 5,
  timeoutMs: 10000,
  backoffBaseMs: 500,
  maxDelayMs: 30000,
});

/** A publish, token or transport failure; `problem` is the server's problem+json body, if any. */
export class TidingsError extends Error {
  constructor(message, { status = 0, code = 'network_error', detail = null, problem = null, retryAfterMs = null, attempts = 1, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'TidingsError';
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.problem = problem;
    this.retryAfterMs = retryAfterMs;
    this.attempts = attempts;
  }

  /** True when trying again later may succeed (the status was retryable, or no answer came). */
  get retryable() {
    return this.status === 0 || RETRYABLE.includes(this.status);
  }
}

/** Full jitter: uniform in [0, min(cap, base * 2^attempt)); `attempt` counts from 0. */
export function backoffDelay(attempt, { base = DEFAULTS.backoffBaseMs, cap = DEFAULTS.maxDelayMs, random = Math.random } = {}) {
  return Math.floor(random() * Math.min(cap, base * 2 ** attempt));
}

/** `Retry-After` (delta seconds or an HTTP date) in ms from `now`; null when absent or unusable. */
export function parseRetryAfter(value, now = Date.now()) {
  if (value === null || value === undefined) return null;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/^[A-Za-z]{3},? .* GMT$/.test(text)) return null; // an HTTP date, not whatever Date.parse takes
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', abort);
      resolve();
    }
    function abort() {
      clearTimeout(timer);
      reject(signal.reason);
    }
    signal?.addEventListener('abort', abort, { once: true });
  });
}

async function problemOf(response) {
  const text = await response.text().catch(() => '');
  try {
    const body = text ? JSON.parse(text) : null;
    return body && typeof body === 'object' && !Array.isArray(body) ? body : null;
  } catch {
    return null;
  }
}

function errorFor(method, path, response, problem, attempts) {
  const status = response.status;
  const detail = problem?.detail ?? null;
  const code = typeof problem?.code === 'string' ? problem.code : `http_${status}`;
  return new TidingsError(`tidings: ${method} ${path} answered ${status} ${code}${detail ? `: ${detail}` : ''}`, {
    status,
    code,
    detail,
    problem,
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
    attempts,
  });
}

function requireString(value, what) {
  if (typeof value !== 'string' || value === '') throw new TypeError(`tidings: ${what} must be a non-empty string`);
  return value;
}

function idempotencyKey(given) {
  if (given === undefined || given === null) return globalThis.crypto.randomUUID();
  return requireString(given, 'idempotencyKey');
}

/**
 * A publisher bound to one tidings server and API key.
 * Options: url (default $TIDINGS_URL), apiKey (default $TIDINGS_API_KEY), retries (5),
 * timeoutMs per attempt (10000), backoffBaseMs (500), maxDelayMs (30000), fetch, random,
 * onRetry ({attempt, delayMs, status, code, error}) — called before each wait.
 */
export function createPublisher(options = {}) {
  const env = globalThis.process?.env ?? {};
  const url = requireString(options.url ?? env.TIDINGS_URL, 'url (or TIDINGS_URL)').replace(/\/+$/, '');
  const apiKey = requireString(options.apiKey ?? env.TIDINGS_API_KEY, 'apiKey (or TIDINGS_API_KEY)');
  const retries = options.retries ?? DEFAULTS.retries;
  const timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs;
  const base = options.backoffBaseMs ?? DEFAULTS.backoffBaseMs;
  const cap = options.maxDelayMs ?? DEFAULTS.maxDelayMs;
  const random = options.random ?? Math.random;
  const doFetch = options.fetch ?? globalThis.fetch;
  const onRetry = options.onRetry;
  if (!Number.isInteger(retries) || retries < 0) throw new TypeError('tidings: retries must be an integer >= 0');
  if (typeof doFetch !== 'function') throw new TypeError('tidings: no fetch in this runtime; pass options.fetch');

  /** One request with retries. `headers` are the same on every attempt (the Idempotency-Key). */
  async function request(method, path, body, { headers = {}, signal } = {}) {
    const payload = JSON.stringify(body);
    for (let attempt = 0; ; attempt += 1) {
      signal?.throwIfAborted();
      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(), timeoutMs);
      const abort = () => timeout.abort();
      signal?.addEventListener('abort', abort, { once: true });
      let failure;
      let wait = null;
      try {
        const response = await doFetch(url + path, {
          method,
          headers: {
            Accept: 'application/json',
            'Content-Type': 'application/json',
            Authorization: `Bearer ${apiKey}`,
            ...headers,
          },
          body: payload,
          signal: timeout.signal,
        });
        if (response.ok) return await response.json();
        failure = errorFor(method, path, response, await problemOf(response), attempt + 1);
        if (!RETRYABLE.includes(response.status)) throw failure;
        wait = failure.retryAfterMs;
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (err instanceof TidingsError) {
          if (!err.retryable) throw err;
          failure = err;
        } else {
          const timedOut = timeout.signal.aborted;
          failure = new TidingsError(`tidings: ${method} ${path} ${timedOut ? `timed out after ${timeoutMs} ms` : `failed: ${err?.message ?? err}`}`, {
            code: timedOut ? 'timeout' : 'network_error',
            attempts: attempt + 1,
            cause: err,
          });
        }
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', abort);
      }
      if (attempt >= retries) throw failure;
      const delayMs = Math.min(cap, wait ?? backoffDelay(attempt, { base, cap, random }));
      onRetry?.({ attempt: attempt + 1, delayMs, status: failure.status, code: failure.code, error: failure });
      await sleep(delayMs, signal);
    }
  }

  return {
    url,
    /** POST /v1/notifications: the stored notification (the same one again for a repeated key). */
    async publish(notification, { idempotencyKey: key, signal } = {}) {
      if (!notification || typeof notification !== 'object' || Array.isArray(notification)) {
        throw new TypeError('tidings: publish() takes one notification object');
      }
      return request('POST', '/v1/notifications', notification, { headers: { 'Idempotency-Key': idempotencyKey(key) }, signal });
    },
    /** POST /v1/notifications/batch: up to 100, all stored in one transaction or none. */
    async publishBatch(notifications, { idempotencyKey: key, signal } = {}) {
      if (!Array.isArray(notifications)) throw new TypeError('tidings: publishBatch() takes an array of notifications');
      const answer = await request(
        'POST',
        '/v1/notifications/batch',
        { notifications },
        { headers: { 'Idempotency-Key': idempotencyKey(key) }, signal },
      );
      return answer.notifications;
    },
    /** POST /v1/tokens: a stream token for one of the host's users (key scope `tokens`). */
    async mintToken(user, { signal } = {}) {
      const body = typeof user === 'string' ? { user } : user;
      if (!body || typeof body !== 'object') throw new TypeError('tidings: mintToken() takes a user id or {user, roles, email, ttl}');
      return request('POST', '/v1/tokens', body, { signal });
    },
  };
}

let shared = null;

function fromEnv() {
  shared ??= createPublisher();
  return shared;
}

/** `createPublisher()` from TIDINGS_URL and TIDINGS_API_KEY, made on first use. */
export async function publish(notification, options) {
  return fromEnv().publish(notification, options);
}

export async function publishBatch(notifications, options) {
  return fromEnv().publishBatch(notifications, options);
}

export async function mintToken(user, options) {
  return fromEnv().mintToken(user, options);
}

export { signWebhook, verifyWebhook, WebhookVerificationError } from './webhooks.js';
export { insertOutbox, OUTBOX_LIMITS, outboxRow } from './outbox.js';
