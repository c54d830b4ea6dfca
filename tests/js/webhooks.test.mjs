// verifyWebhook / signWebhook of tidings/server against the Standard Webhooks specification's
// published test vectors (its reference libraries' tests) and every way a delivery is refused.
// The same cases as tests/sdk/test_webhooks.py for the Python SDK.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { signWebhook, verifyWebhook, WebhookVerificationError } from '../../js/server.js';

const SPEC = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
const OTHERS = 'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=';
const ALMOST = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=';
const AT = SPEC.timestamp * 1000; // `now` is in ms
const EVENT = JSON.stringify({ type: 'notification.read', timestamp: '2026-11-26T20:00:00.000000Z', data: { tenant: 'acme', user: 'ann', ids: [7] } });

const specHeaders = (signature = SPEC.signature) => ({
  'webhook-id': SPEC.id,
  'webhook-timestamp': String(SPEC.timestamp),
  'webhook-signature': signature,
});

async function signed(body = EVENT, { at = SPEC.timestamp, secret = SPEC.secret } = {}) {
  return { 'webhook-id': 'msg_1', 'webhook-timestamp': String(at), 'webhook-signature': await signWebhook(secret, 'msg_1', at, body) };
}

async function refused(reason, promise) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof WebhookVerificationError, err);
    assert.equal(err.reason, reason, err.message);
    return true;
  });
}

describe('the specification vectors', () => {
  test('sign matches (with and without whsec_, key as bytes, body as bytes)', async () => {
    assert.equal(await signWebhook(SPEC.secret, SPEC.id, SPEC.timestamp, SPEC.body), SPEC.signature);
    const bare = SPEC.secret.slice('whsec_'.length);
    assert.equal(await signWebhook(bare, SPEC.id, SPEC.timestamp, Buffer.from(SPEC.body)), SPEC.signature);
    assert.equal(await signWebhook(Buffer.from(bare, 'base64'), SPEC.id, SPEC.timestamp, SPEC.body), SPEC.signature);
  });

  test('the vector verifies: its body {"test": …} is then found to be no tidings event', async () => {
    for (const secret of [SPEC.secret, SPEC.secret.slice(6)]) {
      await refused('invalid_payload', verifyWebhook(secret, specHeaders(), SPEC.body, { now: AT }));
    }
    await refused('invalid_signature', verifyWebhook(SPEC.secret, specHeaders(), SPEC.body + ' ', { now: AT }));
  });

  test('multi-signature header: v2, wrong v1 entries and the right one', async () => {
    const header = [OTHERS, OTHERS.replace('v1,', 'v2,'), SPEC.signature, OTHERS].join(' ');
    await refused('invalid_payload', verifyWebhook(SPEC.secret, specHeaders(header), SPEC.body, { now: AT }));
    await refused('invalid_signature', verifyWebhook(SPEC.secret, specHeaders(`${OTHERS} ${ALMOST}`), SPEC.body, { now: AT }));
  });

  test('signatures that do not match are refused', async () => {
    const bad = [ALMOST, 'v1,dawfeoifkpqwoekfpqoekf', SPEC.signature.slice(0, 8), 'v1,', `v1a,${SPEC.signature.slice(3)}`, SPEC.signature.slice(3), `v1;${SPEC.signature.slice(3)}`];
    for (const signature of bad) {
      await refused('invalid_signature', verifyWebhook(SPEC.secret, specHeaders(signature), SPEC.body, { now: AT }));
    }
  });
});

describe('verifyWebhook', () => {
  test('a tidings delivery verifies into its event, from any kind of headers and body', async () => {
    const headers = await signed();
    const event = await verifyWebhook(SPEC.secret, headers, EVENT, { now: AT + 1000 });
    assert.deepEqual(event, {
      id: 'msg_1',
      type: 'notification.read',
      timestamp: '2026-11-26T20:00:00.000000Z',
      data: { tenant: 'acme', user: 'ann', ids: [7] },
      payload: JSON.parse(EVENT),
      attemptedAt: SPEC.timestamp,
    });
    const shouting = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    const bytes = new TextEncoder().encode(EVENT);
    for (const [given, body] of [
      [new Headers(headers), bytes],
      [new Map(Object.entries(headers)), bytes.buffer],
      [shouting, Buffer.from(EVENT)],
    ]) {
      assert.deepEqual(await verifyWebhook(SPEC.secret, given, body, { now: AT }), event);
    }
  });

  test('a missing or blank header is refused', async () => {
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const headers = await signed();
      delete headers[name];
      await refused('missing_header', verifyWebhook(SPEC.secret, headers, EVENT, { now: AT }));
      headers[name] = '  ';
      await refused('missing_header', verifyWebhook(SPEC.secret, headers, EVENT, { now: AT }));
    }
  });

  test('a timestamp that is not integer Unix seconds is refused', async () => {
    for (const stamp of ['hello', '1614265330.5', '-1614265330', '1e9', '０']) {
      const headers = { ...(await signed()), 'webhook-timestamp': stamp };
      await refused('invalid_timestamp', verifyWebhook(SPEC.secret, headers, EVENT, { now: AT }));
    }
  });

  test('stale and future attempts are refused at the tolerance (5 minutes by default)', async () => {
    const headers = await signed();
    for (const now of [AT - 300000, AT + 300000]) {
      assert.equal((await verifyWebhook(SPEC.secret, headers, EVENT, { now })).attemptedAt, SPEC.timestamp);
    }
    await refused('timestamp_too_old', verifyWebhook(SPEC.secret, headers, EVENT, { now: AT + 301000 }));
    await refused('timestamp_too_new', verifyWebhook(SPEC.secret, headers, EVENT, { now: AT - 301000 }));
    await refused('timestamp_too_old', verifyWebhook(SPEC.secret, headers, EVENT, { now: AT + 31000, tolerance: 30 }));
    const live = Math.floor(Date.now() / 1000);
    assert.equal((await verifyWebhook(SPEC.secret, await signed(EVENT, { at: live }), EVENT)).type, 'notification.read');
    await refused('timestamp_too_old', verifyWebhook(SPEC.secret, await signed(EVENT, { at: live - 600 }), EVENT));
  });

  test('the id and the timestamp are signed', async () => {
    const moved = { ...(await signed()), 'webhook-timestamp': String(SPEC.timestamp + 100) };
    await refused('invalid_signature', verifyWebhook(SPEC.secret, moved, EVENT, { now: AT }));
    const renamed = { ...(await signed()), 'webhook-id': 'msg_2' };
    await refused('invalid_signature', verifyWebhook(SPEC.secret, renamed, EVENT, { now: AT }));
  });

  test('rotation: several secrets, several signatures, repeated signature headers', async () => {
    const old = `whsec_${Buffer.alloc(32, 'o').toString('base64')}`;
    const neu = `whsec_${Buffer.alloc(32, 'n').toString('base64')}`;
    const byOld = await signed(EVENT, { secret: old });
    const second = await signWebhook(neu, 'msg_1', SPEC.timestamp, EVENT);
    const byBoth = { ...byOld, 'webhook-signature': `${byOld['webhook-signature']} ${second}` };
    assert.equal((await verifyWebhook([neu, old], byOld, EVENT, { now: AT })).id, 'msg_1');
    assert.equal((await verifyWebhook([neu], byBoth, EVENT, { now: AT })).id, 'msg_1');
    await refused('invalid_signature', verifyWebhook(neu, byOld, EVENT, { now: AT }));
    // Node's req.headers gives an array for a repeated header; fetch's Headers joins with ", ".
    const nodeStyle = { ...byOld, 'webhook-signature': [byOld['webhook-signature'], second] };
    assert.equal((await verifyWebhook(neu, nodeStyle, EVENT, { now: AT })).id, 'msg_1');
    const fetchStyle = new Headers({ 'webhook-id': 'msg_1', 'webhook-timestamp': String(SPEC.timestamp) });
    fetchStyle.append('webhook-signature', second);
    fetchStyle.append('webhook-signature', byOld['webhook-signature']);
    assert.equal((await verifyWebhook(neu, fetchStyle, EVENT, { now: AT })).id, 'msg_1');
  });

  test('a signed body that is no event is refused', async () => {
    for (const body of ['[1, 2]', '{"data": {}}', '{"type": 7}', 'not json', new Uint8Array([0xff, 0xfe])]) {
      await refused('invalid_payload', verifyWebhook(SPEC.secret, await signed(body), body, { now: AT }));
    }
  });

  test('a secret that is no key is the caller\'s TypeError', async () => {
    for (const secret of ['', 'whsec_', 'whsec_not base64!', new Uint8Array(), [], 42]) {
      await assert.rejects(verifyWebhook(secret, await signed(), EVENT, { now: AT }), TypeError);
    }
  });
});
