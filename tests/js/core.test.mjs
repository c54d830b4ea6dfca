// Unit tests for the pure logic of the browser client: node --test tests/js/
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  apiBaseFor,
  applyArchived,
  applyNotification,
  applyRead,
  backoffCeiling,
  backoffDelay,
  badgeText,
  buildStreamUrl,
  createDedupe,
  iconName,
  isSafeLink,
  leaderKey,
  normalizeSnapshot,
  relativeTime,
  toSeq,
  withLatest,
} from '../../src/tidings/web/static/tidings-core.js';

describe('backoffDelay', () => {
  test('full jitter spans [0, base * 2^attempt)', () => {
    assert.equal(backoffDelay(0, { random: () => 0 }), 0);
    assert.equal(backoffDelay(0, { random: () => 0.5 }), 500);
    assert.equal(backoffDelay(0, { random: () => 0.999999 }), 999);
    assert.equal(backoffDelay(1, { random: () => 0.5 }), 1000);
    assert.equal(backoffDelay(3, { random: () => 0.5 }), 4000);
  });

  test('the ceiling doubles and stops at the cap', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 10, 100].map((a) => backoffCeiling(a)),
      [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000],
    );
    assert.equal(backoffDelay(50, { random: () => 0.999999 }), 29999);
    assert.equal(backoffDelay(1e9, { random: () => 1 - Number.EPSILON }) <= 30000, true);
  });

  test('custom base and cap', () => {
    assert.equal(backoffDelay(2, { base: 100, cap: 250, random: () => 0.5 }), 125);
    assert.equal(backoffCeiling(2, { base: 100, cap: 1000 }), 400);
  });

  test('real randomness stays in bounds for every attempt', () => {
    for (let attempt = 0; attempt < 12; attempt += 1) {
      const ceiling = backoffCeiling(attempt);
      for (let i = 0; i < 200; i += 1) {
        const d = backoffDelay(attempt);
        assert.ok(Number.isInteger(d) && d >= 0 && d < ceiling, `attempt ${attempt}: ${d}`);
      }
    }
  });

  test('nonsense attempts count as the first', () => {
    assert.equal(backoffCeiling(-3), 1000);
    assert.equal(backoffCeiling(Number.NaN), 1000);
  });
});

describe('createDedupe', () => {
  test('accepts only ids above the last one', () => {
    const d = createDedupe();
    assert.equal(d.lastId, null);
    assert.deepEqual([3, 4, 4, 2, 5, 5, 7].filter((id) => d.accept(id)), [3, 4, 5, 7]);
    assert.equal(d.lastId, 7);
  });

  test('starts from a resume point and reads string ids', () => {
    const d = createDedupe('10');
    assert.equal(d.accept(10), false);
    assert.equal(d.accept('11'), true);
    assert.equal(d.accept('junk'), false);
    assert.equal(d.accept(-1), false);
    assert.equal(d.lastId, 11);
  });

  test('observe never lowers, reset may', () => {
    const d = createDedupe(20);
    d.observe(15);
    assert.equal(d.lastId, 20);
    d.observe(25);
    assert.equal(d.lastId, 25);
    d.reset(3); // the server's history was wiped
    assert.equal(d.lastId, 3);
    assert.equal(d.accept(4), true);
  });

  test('toSeq', () => {
    assert.equal(toSeq(5), 5);
    assert.equal(toSeq('42'), 42);
    assert.equal(toSeq(' 7 '), 7);
    assert.equal(toSeq(1.5), null);
    assert.equal(toSeq('1e3'), null);
    assert.equal(toSeq(''), null);
    assert.equal(toSeq(null), null);
  });
});

describe('badgeText', () => {
  test('hidden at zero', () => {
    assert.equal(badgeText(0), '');
    assert.equal(badgeText(0, false), '');
    assert.equal(badgeText(undefined), '');
    assert.equal(badgeText(-2), '');
  });

  test('digits up to 9, then 9+', () => {
    assert.equal(badgeText(1), '1');
    assert.equal(badgeText(9), '9');
    assert.equal(badgeText(10), '9+');
    assert.equal(badgeText(99), '9+');
  });

  test('the more flag always reads 9+', () => {
    assert.equal(badgeText(3, true), '9+');
    assert.equal(badgeText(0, true), '9+');
    assert.equal(badgeText(99, true), '9+');
  });
});

describe('relativeTime', () => {
  const now = Date.parse('2026-11-25T18:00:00Z');
  const ago = (s) => new Date(now - s * 1000).toISOString();

  test('"now" under ten seconds', () => {
    assert.equal(relativeTime(ago(0), now, 'en'), 'now');
    assert.equal(relativeTime(ago(9), now, 'en'), 'now');
    assert.equal(relativeTime(new Date(now + 5000).toISOString(), now, 'en'), 'now');
  });

  test('seconds, minutes, hours, days', () => {
    assert.equal(relativeTime(ago(10), now, 'en'), '10 seconds ago');
    assert.equal(relativeTime(ago(59), now, 'en'), '59 seconds ago');
    assert.equal(relativeTime(ago(60), now, 'en'), '1 minute ago');
    assert.equal(relativeTime(ago(5 * 60 + 30), now, 'en'), '5 minutes ago');
    assert.equal(relativeTime(ago(3600), now, 'en'), '1 hour ago');
    assert.equal(relativeTime(ago(23 * 3600), now, 'en'), '23 hours ago');
    assert.equal(relativeTime(ago(86400), now, 'en'), 'yesterday');
    assert.equal(relativeTime(ago(3 * 86400), now, 'en'), '3 days ago');
  });

  test('future dates and other inputs', () => {
    assert.equal(relativeTime(new Date(now + 120000).toISOString(), now, 'en'), 'in 2 minutes');
    assert.equal(relativeTime(now - 3600 * 1000, now, 'en'), '1 hour ago');
    assert.equal(relativeTime(new Date(now - 120000), now, 'en'), '2 minutes ago');
    assert.equal(relativeTime('2026-11-25T16:59:59.123456Z', now, 'en'), '1 hour ago');
  });

  test('unparseable dates give an empty string', () => {
    assert.equal(relativeTime('not a date', now, 'en'), '');
    assert.equal(relativeTime(null, now, 'en'), '');
    assert.equal(relativeTime(undefined, now, 'en'), '');
  });

  test('localized', () => {
    assert.equal(relativeTime(ago(120), now, 'de'), 'vor 2 Minuten');
  });
});

describe('isSafeLink', () => {
  test('accepts http(s) and same-origin paths', () => {
    for (const ok of ['/ok', '/bookings/7', '/a?b=c#d', '/', 'https://ok', 'https://ok.example/x?y=1', 'http://ok.example', 'HTTPS://OK.EXAMPLE/']) {
      assert.equal(isSafeLink(ok), true, ok);
    }
  });

  test('refuses script and data schemes in any case or disguise', () => {
    for (const bad of [
      'javascript:alert(1)',
      'JAVASCRIPT:alert(1)',
      'JaVaScRiPt:alert(1)',
      ' javascript:alert(1)',
      '\tjavascript:alert(1)',
      'java\nscript:alert(1)',
      'javascript://%0aalert(1)',
      'data:text/html,<script>alert(1)</script>',
      'DATA:text/html;base64,PHNjcmlwdD4=',
      'vbscript:msgbox(1)',
      'blob:https://ok/123',
      'file:///etc/passwd',
      'mailto:a@b.c',
    ]) {
      assert.equal(isSafeLink(bad), false, JSON.stringify(bad));
    }
  });

  test('refuses protocol-relative and ambiguous paths', () => {
    for (const bad of ['//evil.com', '//evil.com/x', '/\\evil.com', '\\\\evil.com', '/\t/evil.com', ' /ok', 'ok', './ok', '../ok', '?x', '#x', 'https:evil.com', 'https:///evil.com', 'http://']) {
      assert.equal(isSafeLink(bad), false, JSON.stringify(bad));
    }
  });

  test('refuses non-strings and empty strings', () => {
    for (const bad of [undefined, null, '', 42, {}, ['/ok']]) assert.equal(isSafeLink(bad), false);
  });
});

describe('iconName', () => {
  test('one icon per known type', () => {
    const expected = {
      booking_created: 'calendar-plus',
      booking_confirmed: 'calendar-check',
      booking_cancelled: 'calendar-x',
      booking_completed: 'check-circle',
      booking_no_show: 'user-x',
      payment_received: 'credit-card',
      payment_failed: 'alert-triangle',
      reminder: 'clock',
      customer_created: 'user-plus',
      system: 'info',
    };
    for (const [type, icon] of Object.entries(expected)) assert.equal(iconName(type), icon, type);
  });

  test('falls back to the bell', () => {
    for (const type of ['invoice.sent', 'custom', '', undefined, null, 'constructor', '__proto__', 'toString']) {
      assert.equal(iconName(type), 'bell', String(type));
    }
  });

  test('reads dotted and mixed-case names', () => {
    assert.equal(iconName('booking.created'), 'calendar-plus');
    assert.equal(iconName('Payment_Failed'), 'alert-triangle');
  });
});

describe('stream URLs', () => {
  test('buildStreamUrl adds token and resume point', () => {
    assert.equal(buildStreamUrl('/v1/stream'), '/v1/stream');
    assert.equal(buildStreamUrl('/v1/stream', { token: 'a.b+c/=' }), '/v1/stream?access_token=a.b%2Bc%2F%3D');
    assert.equal(buildStreamUrl('/v1/stream', { token: 't', lastEventId: 42 }), '/v1/stream?access_token=t&last_event_id=42');
    assert.equal(buildStreamUrl('/v1/stream', { lastEventId: 0 }), '/v1/stream?last_event_id=0');
    assert.equal(buildStreamUrl('/v1/stream?x=1#frag', { lastEventId: '7' }), '/v1/stream?x=1&last_event_id=7');
    assert.equal(buildStreamUrl('/v1/stream', { lastEventId: null }), '/v1/stream');
  });

  test('apiBaseFor', () => {
    assert.equal(apiBaseFor('/v1/stream'), '');
    assert.equal(apiBaseFor('https://t.example/v1/stream?x=1'), 'https://t.example');
    assert.equal(apiBaseFor('https://t.example/tidings/v1/stream'), 'https://t.example/tidings');
    assert.equal(apiBaseFor('/elsewhere'), '');
  });

  test('leaderKey separates streams and channels', () => {
    assert.equal(leaderKey('https://a/v1/stream?access_token=x'), 'default@https://a/v1/stream');
    assert.notEqual(leaderKey('https://a/v1/stream', 'u1'), leaderKey('https://a/v1/stream', 'u2'));
  });
});

describe('the view reducers', () => {
  const n = (id, extra = {}) => ({ id, type: 'system', title: `n${id}`, created_at: '2026-11-25T18:00:00Z', ...extra });
  const snap = normalizeSnapshot({
    unread: { count: 2, more: false },
    latest_seq: 10,
    latest: [n(8, { read: true }), n(10, { read: false }), n(9, { read: false })],
  });

  test('normalizeSnapshot sorts newest first and caps at five', () => {
    assert.deepEqual(snap.latest.map((x) => x.id), [10, 9, 8]);
    const big = normalizeSnapshot({ latest: [1, 2, 3, 4, 5, 6, 7].map((id) => n(id)) });
    assert.deepEqual(big.latest.map((x) => x.id), [7, 6, 5, 4, 3]);
    assert.equal(big.latest_seq, 7);
    assert.deepEqual(normalizeSnapshot(undefined), { unread: { count: 0, more: false }, latest_seq: 0, latest: [] });
  });

  test('a live notification counts, a replayed one does not', () => {
    const live = applyNotification(snap, n(11));
    assert.equal(live.live, true);
    assert.deepEqual(live.view.unread, { count: 3, more: false });
    assert.equal(live.view.latest_seq, 11);
    assert.deepEqual(live.view.latest.map((x) => x.id), [11, 10, 9, 8]);

    const replayed = applyNotification(snap, n(10));
    assert.equal(replayed.live, false);
    assert.deepEqual(replayed.view.unread, snap.unread);
    assert.deepEqual(replayed.view.latest.map((x) => x.id), [10, 9, 8]);
  });

  test('the count tops out at 99 with more', () => {
    const full = normalizeSnapshot({ unread: { count: 99 }, latest_seq: 1 });
    const next = applyNotification(full, n(2)).view;
    assert.deepEqual(next.unread, { count: 99, more: true });
  });

  test('read by ids, with and without the server count', () => {
    const optimistic = applyRead(snap, { ids: [10] });
    assert.equal(optimistic.latest.find((x) => x.id === 10).read, true);
    assert.deepEqual(optimistic.unread, { count: 1, more: false });
    const again = applyRead(optimistic, { ids: [10, 8] });
    assert.deepEqual(again.unread, { count: 1, more: false });
    const server = applyRead(snap, { ids: [10], unread: { count: 5, more: false } });
    assert.deepEqual(server.unread, { count: 5, more: false });
  });

  test('read all up to a seq', () => {
    const upTo9 = applyRead(snap, { all: true, up_to: 9 });
    assert.deepEqual(upTo9.latest.map((x) => x.read), [false, true, true]);
    assert.equal(upTo9.unread.count, 1);
    const all = applyRead(snap, { all: true });
    assert.ok(all.latest.every((x) => x.read));
    assert.deepEqual(all.unread, { count: 0, more: false });
    assert.equal(snap.latest[0].read, false, 'the reducers never mutate');
  });

  test('archived items leave the list', () => {
    const next = applyArchived(snap, { ids: [9] });
    assert.deepEqual(next.latest.map((x) => x.id), [10, 8]);
    assert.equal(next.unread.count, 1);
    const server = applyArchived(snap, { ids: [8], unread: { count: 2, more: false } });
    assert.deepEqual(server.unread, { count: 2, more: false });
  });

  test('withLatest takes a feed page', () => {
    const next = withLatest(snap, [n(12, { read: false }), n(11, { read: true, archived: true }), n(7, { read: true })]);
    assert.deepEqual(next.latest.map((x) => x.id), [12, 7]);
    assert.equal(next.latest_seq, 12);
    assert.deepEqual(next.unread, snap.unread);
  });
});
