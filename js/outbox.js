/**
 * Outbox helpers of tidings/server: queue a notification in the host's own PostgreSQL
 * transaction (docs/outbox.md), dependency-free.
 *
 *   await client.query('BEGIN');
 *   … the business change …
 *   await insertOutbox(client, 'jump-joy', { type: 'booking_created', title: 'New booking' });
 *   await client.query('COMMIT'); // the notification exists exactly if this commits
 *
 * Invariants:
 * - `outboxRow` checks the notification as tidings will (the rules of `POST /v1/notifications`
 *   and the server's default limits, or the `limits` given) and throws a `TypeError` saying
 *   what is wrong, so a row tidings would move to `tidings_outbox_dead` never commits;
 * - `insertOutbox` runs one `INSERT … RETURNING id` on the client it is given, in that client's
 *   transaction; a `pg.Pool` (whose `query` takes any free connection, outside the caller's
 *   transaction) is refused.
 * The rules are those of src/tidings/client/_payload.py; tests/sdk/test_outbox.py checks both
 * against what tidings' consumer really refuses.
 */

const TENANT = /^[a-z0-9][a-z0-9-]{0,62}$/;
const TYPE = /^[a-z][a-z0-9_.]{0,63}$/;
const GROUP = /^[a-z][a-z0-9_.:-]{0,127}$/;
const ID = /^[A-Za-z0-9_.@:+-]{1,128}$/;
const BAD_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const MAX = Object.freeze({ title: 10000, body: 100000, link: 2048, users: 1000, roles: 100, name: 200, depth: 200 });
const FIELDS = new Set(['type', 'title', 'body', 'data', 'link', 'audience', 'actor', 'group']);
const SQL = 'INSERT INTO tidings_outbox (tenant, payload) VALUES ($1, $2::jsonb) RETURNING id';

/** tidings' default limits (TIDINGS_MAX_TITLE_CHARS, _BODY_CHARS, _DATA_BYTES, _AUDIENCE_TARGETS). */
export const OUTBOX_LIMITS = Object.freeze({ titleChars: 200, bodyChars: 2000, dataBytes: 8192, audienceTargets: 1000 });

function refuse(message) {
  throw new TypeError(`tidings: ${message}`);
}

const chars = (text) => [...text].length; // code points, as the server counts

function text(value, field, maximum) {
  if (typeof value !== 'string') refuse(`${field} must be a string`);
  if (chars(value) > maximum) refuse(`${field} is longer than ${maximum} characters`);
  clean(value, field);
  return value;
}

function clean(value, field) {
  const found = BAD_TEXT.exec(value);
  if (found) refuse(`${field} holds ${found[0] === '\u0000' ? 'NUL' : 'an unpaired UTF-16 surrogate'}, which tidings cannot store`);
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function json(value, field, depth) {
  if (value === null || value === undefined || typeof value === 'boolean') return; // undefined: JSON.stringify leaves it out
  if (typeof value === 'string') return clean(value, field);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) refuse(`${field} is NaN or infinite, which JSON cannot represent`);
    // A whole number is an integer to tidings once in jsonb (1e21 too), and at most 64 bits.
    // -(2 ** 63) itself is written "-9223372036854776000": beyond.
    if (Number.isInteger(value) && (value >= 2 ** 64 || value <= -(2 ** 63))) refuse(`${field} is a whole number beyond 64 bits`);
    return;
  }
  if (typeof value !== 'object') refuse(`${field} is a ${typeof value}, which is not JSON`);
  if (depth >= MAX.depth) refuse(`data is nested deeper than ${MAX.depth} levels`);
  if (Array.isArray(value)) return value.forEach((item, i) => json(item, `${field}[${i}]`, depth + 1));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) refuse(`${field} is a ${value.constructor?.name ?? 'object'}, not a plain JSON object`);
  for (const [key, item] of Object.entries(value)) {
    clean(key, `a key of ${field}`);
    json(item, `${field}.${key}`, depth + 1);
  }
}

function ids(value, field, maximum) {
  if (!Array.isArray(value)) refuse(`${field} must be an array of ids`);
  if (value.length > maximum) refuse(`${field} names more than ${maximum}`);
  for (const item of value) {
    if (typeof item !== 'string' || !ID.test(item)) refuse(`${field}: ${JSON.stringify(item)} is not a valid id (1-128 of A-Z a-z 0-9 _ . @ : + -)`);
  }
  return [...new Set(value)];
}

function audienceOf(value, limits) {
  if (!isObject(value)) refuse("audience must be { users: [...], roles: [...] }");
  const extra = Object.keys(value).filter((key) => key !== 'users' && key !== 'roles');
  if (extra.length) refuse(`audience has unknown fields: ${extra.join(', ')}`);
  const out = {};
  if ('users' in value) out.users = ids(value.users, 'audience.users', MAX.users);
  if ('roles' in value) out.roles = ids(value.roles, 'audience.roles', MAX.roles);
  const named = (out.users?.length ?? 0) + (out.roles?.length ?? 0);
  if (named === 0) refuse('an audience names at least one user or role; omit it for everyone');
  if (named > limits.audienceTargets) refuse(`the audience names ${named} users and roles; at most ${limits.audienceTargets} are accepted`);
}

function actorOf(value) {
  if (!isObject(value)) refuse('actor must be { id, name }');
  const extra = Object.keys(value).filter((key) => key !== 'id' && key !== 'name');
  if (extra.length) refuse(`actor has unknown fields: ${extra.join(', ')}`);
  if (typeof value.id !== 'string' || !ID.test(value.id)) refuse(`actor.id: ${JSON.stringify(value.id)} is not a valid id`);
  if (value.name !== undefined && value.name !== null) text(value.name, 'actor.name', MAX.name);
}

function linkOk(value) {
  if ([...value].some((ch) => ch.codePointAt(0) < 0x21)) return false;
  if (value.startsWith('/')) return !value.startsWith('//') && !value.startsWith('/\\');
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)/.exec(value);
  if (scheme === null || !['http', 'https'].includes(scheme[1].toLowerCase()) || scheme[2] === '') return false;
  return scheme[2].includes('[') === scheme[2].includes(']'); // "http://[::1" is no URL
}

function check(notification, limits) {
  if (!isObject(notification)) refuse('a notification is an object { type, title, … }');
  const unknown = Object.keys(notification).filter((key) => !FIELDS.has(key));
  if (unknown.length) refuse(`unknown fields: ${unknown.join(', ')}`);
  const { type, title, body, data, link, audience, actor, group } = notification;
  if (typeof type !== 'string' || !TYPE.test(type)) refuse(`type ${JSON.stringify(type)}: 1-64 lower-case letters, digits, '_' and '.', starting with a letter`);
  text(title, 'title', Math.min(MAX.title, limits.titleChars));
  if (title.trim() === '') refuse('title must not be blank');
  if (body !== undefined) text(body, 'body', Math.min(MAX.body, limits.bodyChars));
  if (data !== undefined) {
    if (!isObject(data)) refuse('data must be a JSON object');
    json(data, 'data', 0);
    const size = new TextEncoder().encode(JSON.stringify(data)).length;
    if (size > limits.dataBytes) refuse(`data is ${size} bytes encoded; at most ${limits.dataBytes} are accepted`);
  }
  if (link !== undefined && link !== null && link !== '') {
    text(link, 'link', MAX.link);
    if (!linkOk(link)) refuse("link must be an http(s) URL or a path starting with '/'");
  }
  if (audience !== undefined && audience !== null) audienceOf(audience, limits);
  if (actor !== undefined && actor !== null) actorOf(actor);
  if (group !== undefined && group !== null && (typeof group !== 'string' || !GROUP.test(group))) {
    refuse(`group ${JSON.stringify(group)}: 1-128 of lower-case letters, digits, '_', '.', ':' and '-', starting with a letter`);
  }
}

/**
 * The `tidings_outbox` row for one publish, checked: `{ tenant, payload, text, values }`, where
 * `payload` is the JSON text and `{ text, values }` a query `pg` (or any `$1` driver) runs.
 * Options: `limits`, the server's (default OUTBOX_LIMITS).
 */
export function outboxRow(tenant, notification, { limits = OUTBOX_LIMITS } = {}) {
  if (typeof tenant !== 'string' || !TENANT.test(tenant)) refuse(`tenant ${JSON.stringify(tenant)}: 1-63 of a-z 0-9 and '-', not starting with '-'`);
  check(notification, { ...OUTBOX_LIMITS, ...limits });
  const payload = JSON.stringify(notification);
  return { tenant, payload, text: SQL, values: [tenant, payload] };
}

/**
 * Insert the notification into `tidings_outbox` through `client` (a `pg` Client or PoolClient
 * inside your BEGIN … COMMIT) and resolve to the row's id. Nothing is committed here.
 */
export async function insertOutbox(client, tenant, notification, options) {
  if (!client || typeof client.query !== 'function') refuse('insertOutbox() takes the pg client of your transaction');
  if ('totalCount' in client && typeof client.release !== 'function') {
    refuse('pass the client of your transaction (await pool.connect()), not the Pool: pool.query runs outside it');
  }
  const row = outboxRow(tenant, notification, options);
  const result = await client.query({ text: row.text, values: row.values });
  return Number(result.rows[0].id);
}
