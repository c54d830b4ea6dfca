// tidings/server against a live tidings (tests/test_js.py starts it and passes its address):
// publish, batch, tokens, idempotent retries (a lost answer, a 503 from a proxy, a real 429),
// and bad input. Run: TIDINGS_URL=… TIDINGS_API_KEY=… node --test tests/js/live/
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { createPublisher, TidingsError } from '../../../js/server.js';

const { TIDINGS_URL: url, TIDINGS_API_KEY: apiKey, TIDINGS_LIMITED_URL: limitedUrl, TIDINGS_LIMITED_KEY: limitedKey } = process.env;
if (!url || !apiKey) throw new Error('set TIDINGS_URL and TIDINGS_API_KEY (tests/test_js.py does)');

const fast = { retries: 3, backoffBaseMs: 20, timeoutMs: 5000 };
const tidings = createPublisher({ url, apiKey, ...fast });
let token;

before(async () => {
  ({ token } = await tidings.mintToken({ user: 'node-test', roles: ['staff'] }));
});

/** The user's feed, newest first (the store's truth, not the publisher's answer). */
async function feedItems() {
  const response = await fetch(`${url}/v1/feed?limit=100`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200);
  return (await response.json()).items;
}

/** Publishes a marker: its id is the tenant's next seq, so nothing was stored in between. */
async function nextSeq() {
  return (await tidings.publish({ type: 'system', title: 'marker' })).id;
}

/** A loopback HTTP proxy to tidings whose first `mode` request is mangled, then forwards. */
async function proxy(mode) {
  const seen = [];
  let first = true;
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    seen.push({ method: req.method, path: req.url, key: req.headers['idempotency-key'] });
    const mangle = first;
    first = false;
    if (mangle && mode === '503') {
      res.writeHead(503, { 'Content-Type': 'application/problem+json', 'Retry-After': '0' });
      res.end(JSON.stringify({ title: 'Service Unavailable', status: 503, code: 'store_unavailable' }));
      return;
    }
    const headers = { ...req.headers };
    delete headers.host;
    delete headers['content-length'];
    const answer = await fetch(url + req.url, { method: req.method, headers, body: Buffer.concat(chunks) });
    const body = Buffer.from(await answer.arrayBuffer());
    if (mangle && mode === 'lost') {
      seen.at(-1).status = answer.status; // tidings committed it; the answer never arrives
      res.socket.destroy();
      return;
    }
    if (mangle && mode === 'slow') {
      seen.at(-1).status = answer.status; // committed; the answer comes after the client gave up
      await new Promise((resolve) => res.on('close', resolve));
      return;
    }
    res.writeHead(answer.status, { 'Content-Type': answer.headers.get('content-type') ?? 'application/json' });
    res.end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, seen, close: () => new Promise((r) => server.close(r)) };
}

describe('publish', () => {
  test('stores one notification and answers it', async () => {
    const n = await tidings.publish({
      type: 'booking_created',
      title: 'New booking: Castle XL',
      body: 'Sat 10:00',
      data: { booking_id: 42 },
      link: '/bookings/42',
      audience: { roles: ['staff'] },
    });
    assert.ok(Number.isInteger(n.id) && n.id > 0);
    assert.equal(n.title, 'New booking: Castle XL');
    assert.deepEqual(n.data, { booking_id: 42 });
    assert.deepEqual(n.audience, { roles: ['staff'] });
    const items = await feedItems();
    assert.equal(items[0].id, n.id);
    assert.equal(items[0].read, false);
  });

  test('a repeated Idempotency-Key answers the stored notification, never a second one', async () => {
    const key = `booking-43-${Date.now()}`;
    const one = await tidings.publish({ type: 'booking_created', title: 'Booking 43' }, { idempotencyKey: key });
    const two = await tidings.publish({ type: 'booking_created', title: 'Booking 43' }, { idempotencyKey: key });
    assert.equal(two.id, one.id);
    assert.equal((await feedItems()).filter((item) => item.title === 'Booking 43').length, 1);
    assert.equal(await nextSeq(), one.id + 1);
  });

  test('publishBatch stores all in order, and a repeated key answers the same ones', async () => {
    const key = `batch-${Date.now()}`;
    const items = [
      { type: 'payment_received', title: 'Paid 1' },
      { type: 'payment_received', title: 'Paid 2' },
      { type: 'reminder', title: 'Tomorrow' },
    ];
    const stored = await tidings.publishBatch(items, { idempotencyKey: key });
    assert.deepEqual(stored.map((n) => n.title), ['Paid 1', 'Paid 2', 'Tomorrow']);
    assert.deepEqual(stored.map((n) => n.id - stored[0].id), [0, 1, 2]);
    const again = await tidings.publishBatch(items, { idempotencyKey: key });
    assert.deepEqual(again.map((n) => n.id), stored.map((n) => n.id));
    assert.equal(await nextSeq(), stored[2].id + 1);
  });
});

describe('mintToken', () => {
  test('a token for a user opens that user\'s feed; a string is a user id', async () => {
    const minted = await tidings.mintToken('u-77');
    assert.equal(minted.user, 'u-77');
    assert.ok(minted.tenant);
    assert.ok(Date.parse(minted.expires_at) > Date.now());
    const response = await fetch(`${url}/v1/feed/unread-count`, { headers: { Authorization: `Bearer ${minted.token}` } });
    assert.equal(response.status, 200);
  });

  test('bad input is a 422 TidingsError, not retried', async () => {
    const retries = [];
    const strict = createPublisher({ url, apiKey, ...fast, onRetry: (info) => retries.push(info) });
    const err = await strict.mintToken({ user: '', roles: 'staff' }).catch((e) => e);
    assert.ok(err instanceof TidingsError, String(err));
    assert.equal(err.status, 422);
    assert.equal(err.code, 'validation_failed');
    assert.equal(err.attempts, 1);
    assert.deepEqual(retries, []);
  });
});

describe('bad input changes nothing', () => {
  test('an invalid notification: 422 validation_failed with the problem, one attempt, nothing stored', async () => {
    const before = await nextSeq();
    const retries = [];
    const strict = createPublisher({ url, apiKey, ...fast, onRetry: (info) => retries.push(info) });
    const err = await strict.publish({ type: 'Not A Type', title: ' ' }).catch((e) => e);
    assert.ok(err instanceof TidingsError, String(err));
    assert.equal(err.name, 'TidingsError');
    assert.equal(err.status, 422);
    assert.equal(err.code, 'validation_failed');
    assert.equal(typeof err.detail, 'string');
    assert.equal(err.problem.status, 422);
    assert.equal(err.retryable, false);
    assert.equal(err.attempts, 1);
    assert.deepEqual(retries, []);
    assert.equal(await nextSeq(), before + 1);
  });

  test('an unknown field, a batch over 100, an Idempotency-Key over 200 characters: 422', async () => {
    const before = await nextSeq();
    for (const attempt of [
      () => tidings.publish({ type: 'system', title: 'x', colour: 'red' }),
      () => tidings.publishBatch(Array.from({ length: 101 }, () => ({ type: 'system', title: 'x' }))),
      () => tidings.publish({ type: 'system', title: 'x' }, { idempotencyKey: 'k'.repeat(201) }),
      () => tidings.publishBatch([{ type: 'system', title: 'x' }], { idempotencyKey: 'k'.repeat(198) }),
    ]) {
      const err = await attempt().catch((e) => e);
      assert.ok(err instanceof TidingsError, String(err));
      assert.equal(err.status, 422, err.message);
    }
    assert.equal(await nextSeq(), before + 1);
  });

  test('a wrong API key: 401 invalid_credentials, not retried', async () => {
    const retries = [];
    const wrong = createPublisher({ url, apiKey: 'tk_wrong', ...fast, onRetry: (info) => retries.push(info) });
    const err = await wrong.publish({ type: 'system', title: 'x' }).catch((e) => e);
    assert.ok(err instanceof TidingsError, String(err));
    assert.equal(err.status, 401);
    assert.equal(err.code, 'invalid_credentials');
    assert.deepEqual(retries, []);
  });

  test('arguments the publisher can refuse itself: TypeError before any request', async () => {
    await assert.rejects(tidings.publish([{ type: 'system', title: 'x' }]), TypeError);
    await assert.rejects(tidings.publishBatch({ type: 'system', title: 'x' }), TypeError);
    await assert.rejects(tidings.publish({ type: 'system', title: 'x' }, { idempotencyKey: '' }), TypeError);
    assert.throws(() => createPublisher({ url, apiKey: '' }), TypeError);
    assert.throws(() => createPublisher({ url, apiKey, retries: -1 }), TypeError);
  });
});

describe('retries', () => {
  let lost;
  let slow;
  let unavailable;
  before(async () => {
    lost = await proxy('lost');
    slow = await proxy('slow');
    unavailable = await proxy('503');
  });
  after(async () => {
    await lost.close();
    await slow.close();
    await unavailable.close();
  });

  test('a committed publish whose answer was lost is retried with the same key: one notification', async () => {
    const retries = [];
    const viaProxy = createPublisher({ url: lost.url, apiKey, ...fast, onRetry: (info) => retries.push(info) });
    const n = await viaProxy.publish({ type: 'booking_confirmed', title: 'Lost answer' });
    assert.equal(lost.seen.length, 2);
    assert.equal(lost.seen[0].status, 201); // stored the first time
    assert.ok(lost.seen[0].key);
    assert.equal(lost.seen[1].key, lost.seen[0].key);
    assert.equal(retries.length, 1);
    assert.equal(retries[0].code, 'network_error');
    assert.equal((await feedItems()).filter((item) => item.title === 'Lost answer').length, 1);
    assert.equal(await nextSeq(), n.id + 1);
  });

  test('a committed publish whose answer came too late (timeoutMs) is retried with the same key', async () => {
    const retries = [];
    const viaProxy = createPublisher({ url: slow.url, apiKey, ...fast, timeoutMs: 1500, onRetry: (info) => retries.push(info) });
    const n = await viaProxy.publish({ type: 'booking_confirmed', title: 'Slow answer' });
    assert.equal(slow.seen.length, 2);
    assert.equal(slow.seen[0].status, 201);
    assert.equal(slow.seen[1].key, slow.seen[0].key);
    assert.deepEqual(retries.map((r) => [r.status, r.code]), [[0, 'timeout']]);
    assert.equal((await feedItems()).filter((item) => item.title === 'Slow answer').length, 1);
    assert.equal(await nextSeq(), n.id + 1);
  });

  test('503 with Retry-After is retried after the server\'s wait', async () => {
    const retries = [];
    const viaProxy = createPublisher({ url: unavailable.url, apiKey, ...fast, onRetry: (info) => retries.push(info) });
    const n = await viaProxy.publish({ type: 'system', title: 'After a 503' });
    assert.equal(retries.length, 1);
    assert.equal(retries[0].status, 503);
    assert.equal(retries[0].code, 'store_unavailable');
    assert.equal(retries[0].delayMs, 0); // Retry-After: 0
    assert.equal(unavailable.seen[1].key, unavailable.seen[0].key);
    assert.equal(n.title, 'After a 503');
  });

  test('no server at all: network_error after `retries` retries with backoff', async () => {
    const closed = await proxy('lost');
    await closed.close();
    const retries = [];
    const gone = createPublisher({ url: closed.url, apiKey, retries: 2, backoffBaseMs: 10, onRetry: (info) => retries.push(info) });
    const err = await gone.publish({ type: 'system', title: 'x' }).catch((e) => e);
    assert.ok(err instanceof TidingsError, String(err));
    assert.equal(err.status, 0);
    assert.equal(err.code, 'network_error');
    assert.equal(err.attempts, 3);
    assert.deepEqual(retries.map((r) => r.attempt), [1, 2]);
    assert.ok(retries.every((r, i) => r.delayMs >= 0 && r.delayMs < 10 * 2 ** i));
  });

  test('the caller\'s signal stops retrying at once', async () => {
    const closed = await proxy('lost');
    await closed.close();
    const controller = new AbortController();
    const gone = createPublisher({ url: closed.url, apiKey, retries: 10, backoffBaseMs: 5000, onRetry: () => controller.abort(new Error('stop')) });
    await assert.rejects(gone.publish({ type: 'system', title: 'x' }, { signal: controller.signal }), /stop/);
  });

  test('429 from the real rate limit: Retry-After honoured, then stored once', { skip: !limitedUrl && 'TIDINGS_LIMITED_URL not set' }, async () => {
    const once = createPublisher({ url: limitedUrl, apiKey: limitedKey, retries: 0 });
    const retries = [];
    const patient = createPublisher({ url: limitedUrl, apiKey: limitedKey, retries: 3, onRetry: (info) => retries.push(info) });
    // The limit is 2 per 2 seconds: a batch of two spends it.
    await once.publishBatch([{ type: 'system', title: 'a' }, { type: 'system', title: 'b' }]);
    const refused = await once.publish({ type: 'system', title: 'refused' }).catch((e) => e);
    assert.ok(refused instanceof TidingsError, String(refused));
    assert.equal(refused.status, 429);
    assert.equal(refused.code, 'rate_limited');
    assert.equal(refused.retryable, true);
    assert.ok(refused.retryAfterMs >= 1000 && refused.retryAfterMs <= 2000, String(refused.retryAfterMs));
    const started = Date.now();
    const n = await patient.publish({ type: 'system', title: 'patient' });
    assert.equal(n.title, 'patient');
    assert.ok(retries.length >= 1);
    assert.equal(retries[0].status, 429);
    assert.ok(retries[0].delayMs >= 1000, String(retries[0].delayMs));
    assert.ok(Date.now() - started >= 1000);
  });
});
