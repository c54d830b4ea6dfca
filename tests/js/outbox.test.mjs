// outboxRow of tidings/server: the row it builds, and what it refuses. The shared table
// tests/sdk/notification_cases.json is the one the Python SDK is held to; tests/sdk/test_outbox.py
// also puts every case through a real outbox and checks both SDKs against what tidings' consumer
// publishes and what it moves to tidings_outbox_dead.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { OUTBOX_LIMITS, outboxRow } from '../../js/server.js';

const cases = JSON.parse(readFileSync(new URL('../sdk/notification_cases.json', import.meta.url), 'utf8'));

function verdict(notification, options) {
  try {
    outboxRow('acme', notification, options);
    return true;
  } catch (err) {
    assert.ok(err instanceof TypeError, err);
    assert.match(err.message, /^tidings: /);
    return false;
  }
}

describe('outboxRow', () => {
  test('the row: tenant, payload as JSON text, and the query pg runs', () => {
    const notification = { type: 'booking_created', title: 'New booking', data: { booking_id: 4711 }, audience: { roles: ['staff'] } };
    const row = outboxRow('jump-joy', notification);
    assert.deepEqual(row, {
      tenant: 'jump-joy',
      payload: JSON.stringify(notification),
      text: 'INSERT INTO tidings_outbox (tenant, payload) VALUES ($1, $2::jsonb) RETURNING id',
      values: ['jump-joy', JSON.stringify(notification)],
    });
    for (const tenant of ['', 'Jump', '-x', 'a'.repeat(64), 'a_b', 7]) assert.throws(() => outboxRow(tenant, notification), TypeError, String(tenant));
  });

  test('the shared table of cases', () => {
    assert.ok(cases.length >= 50);
    for (const { name, ok, payload } of cases) assert.equal(verdict(payload), ok, name);
  });

  test('what only JavaScript can hold is refused', () => {
    const base = { type: 'system', title: 't' };
    for (const data of [{ n: NaN }, { n: Infinity }, { d: new Date() }, { m: new Map() }, { f: () => 1 }, { s: Symbol('x') }, { b: 10n }]) {
      assert.equal(verdict({ ...base, data }), false, Object.keys(data).join());
    }
    for (const field of ['data', 'body', 'title', 'type']) assert.equal(verdict({ ...base, [field]: null }), false, field);
    assert.equal(verdict({ ...base, data: { note: undefined, list: [1] } }), true); // JSON.stringify drops it
    assert.equal(verdict(null), false);
    assert.equal(verdict([base]), false);
    // A whole number is an integer once in jsonb, refused past 64 bits; -(2 ** 63) is written
    // "-9223372036854776000", past it too.
    assert.equal(verdict({ ...base, data: { n: 2 ** 63, m: -(2 ** 62), f: 0.5 } }), true);
    assert.equal(verdict({ ...base, data: { n: 2 ** 64 } }), false);
    assert.equal(verdict({ ...base, data: { n: -(2 ** 63) } }), false);
    assert.equal(verdict({ ...base, data: { n: 1e21 } }), false);
  });

  test('lengths are counted in characters (code points), as the server counts them', () => {
    const base = { type: 'system' };
    assert.equal(verdict({ ...base, title: '🎉'.repeat(200) }), true); // 400 UTF-16 units
    assert.equal(verdict({ ...base, title: '🎉'.repeat(201) }), false);
    assert.equal(verdict({ ...base, title: 't', body: 'é'.repeat(2000) }), true);
    assert.equal(verdict({ ...base, title: 't', body: 'é'.repeat(2001) }), false);
  });

  test("the server's limits: defaults, or the ones given", () => {
    assert.deepEqual(OUTBOX_LIMITS, { titleChars: 200, bodyChars: 2000, dataBytes: 8192, audienceTargets: 1000 });
    const long = { type: 'system', title: 'x'.repeat(500) };
    assert.equal(verdict(long), false);
    assert.equal(verdict(long, { limits: { titleChars: 1000 } }), true);
    const data = { type: 'system', title: 't', data: { s: 'x'.repeat(8184) } }; // {"s":"…"} = 8192 bytes
    assert.equal(verdict(data), true);
    assert.equal(verdict({ ...data, data: { s: 'x'.repeat(8185) } }), false);
    assert.equal(verdict({ ...data, data: { s: 'é'.repeat(4093) } }), false); // 2 bytes each
    const audience = { type: 'system', title: 't', audience: { users: Array.from({ length: 10 }, (_, i) => `u${i}`), roles: ['a', 'b'] } };
    assert.equal(verdict(audience), true);
    assert.equal(verdict(audience, { limits: { audienceTargets: 11 } }), false);
    assert.equal(verdict({ ...audience, audience: { users: ['u', 'u', 'u'] } }, { limits: { audienceTargets: 1 } }), true); // distinct
  });
});
