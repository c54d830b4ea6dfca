/**
 * Verifying tidings' webhook deliveries (Standard Webhooks, symmetric `v1` signatures); part of
 * tidings/server, dependency-free: Web Crypto only (Node 20+, Deno, Bun, Cloudflare Workers).
 *
 *   const event = await verifyWebhook(process.env.TIDINGS_WEBHOOK_SECRET, req.headers, rawBody);
 *
 * A delivery is a POST of `{"type", "timestamp", "data"}` with the headers `webhook-id` (the
 * same on every retry), `webhook-timestamp` (integer Unix seconds of this attempt) and
 * `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`.
 *
 * Invariants:
 * - nothing is parsed before a signature matched, and the HMAC covers the raw body bytes as
 *   received (never re-serialised JSON);
 * - signatures are checked with `crypto.subtle.verify` (a constant-time comparison);
 * - an attempt signed more than `tolerance` seconds away from the clock is refused (replays);
 * - every refusal is a `WebhookVerificationError` with a stable `reason`; a secret that is no
 *   key (not base64, empty) is the caller's mistake: a `TypeError`.
 */

const PREFIX = 'whsec_';
const DIGITS = /^[0-9]{1,12}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const encoder = new TextEncoder();

/** A delivery that must not be trusted; answer 4xx and do not act on it. */
export class WebhookVerificationError extends Error {
  constructor(reason, message) {
    super(`tidings webhook: ${message}`);
    this.name = 'WebhookVerificationError';
    this.reason = reason;
  }
}

function decodeBase64(text) {
  const padded = text + '='.repeat((4 - (text.length % 4)) % 4);
  if (!BASE64.test(padded)) return null;
  try {
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

function encodeBase64(bytes) {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

function keyBytes(secret) {
  let key;
  if (typeof secret === 'string') {
    const text = secret.trim();
    key = decodeBase64(text.startsWith(PREFIX) ? text.slice(PREFIX.length) : text);
    if (key === null) throw new TypeError("tidings: a webhook secret is 'whsec_' followed by base64");
  } else if (secret instanceof Uint8Array) {
    key = secret;
  } else {
    throw new TypeError('tidings: a webhook secret is a string or a Uint8Array');
  }
  if (key.length === 0) throw new TypeError('tidings: a webhook secret must not be empty');
  return key;
}

function importKey(secret) {
  return globalThis.crypto.subtle.importKey('raw', keyBytes(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
}

function rawBody(body) {
  if (typeof body === 'string') return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError('tidings: the body is the raw request body: a string, Uint8Array (Buffer) or ArrayBuffer');
}

function signedContent(id, timestamp, body) {
  const head = encoder.encode(`${id}.${timestamp}.`);
  const content = new Uint8Array(head.length + body.length);
  content.set(head);
  content.set(body, head.length);
  return content;
}

/** `webhook-signature` entry (`v1,<base64>`) for a delivery: to test a receiver of your own. */
export async function signWebhook(secret, id, timestamp, body) {
  const key = await importKey(secret);
  const mac = await globalThis.crypto.subtle.sign('HMAC', key, signedContent(id, String(Math.floor(timestamp)), rawBody(body)));
  return `v1,${encodeBase64(new Uint8Array(mac))}`;
}

/** [name, value] pairs of a fetch `Headers`, a `Map`, Node's `req.headers` or a plain object. */
function pairs(headers) {
  if (headers && typeof headers.entries === 'function' && typeof headers[Symbol.iterator] === 'function') return [...headers.entries()];
  if (headers && typeof headers === 'object') return Object.entries(headers);
  throw new TypeError('tidings: headers are a Headers, a Map or an object of the request headers');
}

function header(headers, name) {
  const values = pairs(headers)
    .filter(([key]) => String(key).toLowerCase() === name)
    .flatMap(([, value]) => (Array.isArray(value) ? value : [value]))
    .map((value) => String(value ?? '').trim())
    .filter(Boolean);
  if (values.length === 0) throw new WebhookVerificationError('missing_header', `the ${name} header is missing`);
  if (name === 'webhook-signature') return values.join(' ');
  if (new Set(values).size > 1) throw new WebhookVerificationError('missing_header', `${name} is sent more than once`);
  return values[0];
}

/** The decoded `v1` signatures; other schemes (`v1a`) and malformed entries are passed over. */
function signatures(value) {
  const found = [];
  for (const entry of value.split(/\s+/)) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const bytes = decodeBase64(entry.slice(comma + 1).replace(/,$/, '')); // Headers joins repeats with ", "
    if (bytes !== null && bytes.length > 0) found.push(bytes);
  }
  return found;
}

function eventOf(id, attemptedAt, body) {
  let payload;
  try {
    payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw new WebhookVerificationError('invalid_payload', 'the body is not JSON');
  }
  if (!payload || typeof payload !== 'object' || Array.isArray(payload) || typeof payload.type !== 'string') {
    throw new WebhookVerificationError('invalid_payload', 'the body is not an event ({"type", "timestamp", "data"})');
  }
  const data = payload.data && typeof payload.data === 'object' && !Array.isArray(payload.data) ? payload.data : {};
  return { id, type: payload.type, timestamp: String(payload.timestamp ?? ''), data, payload, attemptedAt };
}

/**
 * The event of a delivery whose signature and timestamp check out: `{ id, type, timestamp,
 * data, payload, attemptedAt }`; else rejects with a `WebhookVerificationError`.
 * `secret`: the endpoint's `whsec_…` secret, or an array of them (old and new while rotating).
 * Options: `tolerance` (seconds, default 300), `now` (ms since the epoch, default Date.now()).
 */
export async function verifyWebhook(secret, headers, body, { tolerance = 300, now } = {}) {
  const secrets = Array.isArray(secret) ? secret : [secret];
  if (secrets.length === 0) throw new TypeError('tidings: no webhook secret given');
  const keys = await Promise.all(secrets.map(importKey));
  const id = header(headers, 'webhook-id');
  const stamp = header(headers, 'webhook-timestamp');
  const given = signatures(header(headers, 'webhook-signature'));
  if (!DIGITS.test(stamp)) throw new WebhookVerificationError('invalid_timestamp', 'webhook-timestamp is not an integer Unix time');
  const attemptedAt = Number(stamp);
  const clock = (now ?? Date.now()) / 1000;
  if (attemptedAt < clock - tolerance) {
    throw new WebhookVerificationError('timestamp_too_old', `signed ${Math.round(clock - attemptedAt)} s ago (tolerance ${tolerance})`);
  }
  if (attemptedAt > clock + tolerance) {
    throw new WebhookVerificationError('timestamp_too_new', `signed ${Math.round(attemptedAt - clock)} s in the future (tolerance ${tolerance})`);
  }
  const raw = rawBody(body);
  const content = signedContent(id, stamp, raw);
  let matched = false;
  for (const key of keys) {
    for (const signature of given) {
      if (await globalThis.crypto.subtle.verify('HMAC', key, signature, content)) matched = true;
    }
  }
  if (!matched) throw new WebhookVerificationError('invalid_signature', 'no webhook-signature matches the secret');
  return eventOf(id, attemptedAt, raw);
}
