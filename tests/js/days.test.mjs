// <tidings-inbox>'s pure helpers under plain node: day headers in a time zone and locale
// (tidings-days.js), the actions an item offers, what they touch, and when a snooze preset ends
// (tidings-actions.js; its toolbar needs a DOM and is tested in tests/browser/).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { dayKey, dayLabel, shiftDay } from '../../src/tidings/web/static/tidings-days.js';
import { groupCards, findCard } from '../../src/tidings/web/static/tidings-groups.js';
import { actionsFor, snoozeUntil, targets } from '../../src/tidings/web/static/tidings-actions.js';
import { translator } from '../../src/tidings/web/static/tidings-i18n.js';

const NOW = Date.parse('2026-11-26T15:00:00Z');

describe('day headers', () => {
  test('the calendar day is the time zone’s', () => {
    assert.equal(dayKey('2026-11-27T03:30:00Z', 'UTC'), '2026-11-27');
    assert.equal(dayKey('2026-11-27T03:30:00Z', 'America/Chicago'), '2026-11-26');
    assert.equal(dayKey('2026-11-26T23:30:00Z', 'Europe/Berlin'), '2026-11-27');
    assert.equal(dayKey('not a date', 'UTC'), '');
    assert.equal(dayKey('2026-11-27T03:30:00Z', 'No/Such_Zone').length, 10); // the browser's zone
  });

  test('month and year boundaries', () => {
    assert.equal(shiftDay('2026-03-01', -1), '2026-02-28');
    assert.equal(shiftDay('2026-01-01', -1), '2025-12-31');
    assert.equal(shiftDay('2026-12-31', 1), '2027-01-01');
  });

  test('Today, Yesterday, then the date in the locale (the year only when not this one)', () => {
    const t = translator('en');
    const opts = { locale: 'en-US', timeZone: 'UTC', t };
    assert.equal(dayLabel('2026-11-26', NOW, opts), 'Today');
    assert.equal(dayLabel('2026-11-25', NOW, opts), 'Yesterday');
    assert.equal(dayLabel('2026-11-23', NOW, opts), 'Monday, November 23');
    assert.equal(dayLabel('2025-11-23', NOW, opts), 'Sunday, November 23, 2025');
    const de = { locale: 'de', timeZone: 'UTC', t: translator('de') };
    assert.equal(dayLabel('2026-11-26', NOW, de), 'Heute');
    assert.equal(dayLabel('2026-11-25', NOW, de), 'Gestern');
    assert.equal(dayLabel('2026-11-23', NOW, de), 'Montag, 23. November');
    const es = { locale: 'es', timeZone: 'UTC', t: translator('es') };
    assert.equal(dayLabel('2026-11-25', NOW, es), 'Ayer');
    assert.equal(dayLabel('2026-11-23', NOW, es), 'lunes, 23 de noviembre');
  });

  test('"today" is the time zone’s today', () => {
    const t = translator('en');
    // 02:00 UTC on the 27th is still the 26th in Chicago
    const late = Date.parse('2026-11-27T02:00:00Z');
    assert.equal(dayLabel('2026-11-26', late, { timeZone: 'America/Chicago', t }), 'Today');
    assert.equal(dayLabel('2026-11-26', late, { timeZone: 'UTC', t }), 'Yesterday');
  });
});

describe('item actions', () => {
  const n = (id, extra = {}) => ({ id, type: 'system', title: `n${id}`, read: false, ...extra });

  test('what an item offers in each state', () => {
    assert.deepEqual(actionsFor(n(1)), ['read', 'snooze', 'archive']);
    assert.deepEqual(actionsFor(n(1, { read: true })), ['unread', 'snooze', 'archive']);
    assert.deepEqual(actionsFor(n(1, { read: true }), true), ['read', 'snooze', 'archive']); // a card with unread in it
    assert.deepEqual(actionsFor(n(1, { archived: true })), ['unarchive']);
    assert.deepEqual(actionsFor(n(1, { snoozed_until: '2030-01-01T09:00:00Z' })), ['unsnooze', 'archive']);
  });

  test('a card’s head stands for its group, an earlier item for itself', () => {
    const cards = groupCards([n(5, { group: 'b:1', read: true }), n(4), n(3, { group: 'b:1' })]);
    const head = findCard(cards, 5);
    assert.deepEqual(targets(head.card, head.item), { ids: [5, 3], head: 5, group: 'b:1' });
    const earlier = findCard(cards, 3);
    assert.deepEqual(targets(earlier.card, earlier.item), { ids: [3], head: 3, group: null });
    const alone = findCard(cards, 4);
    assert.deepEqual(targets(alone.card, alone.item), { ids: [4], head: 4, group: null });
    assert.equal(findCard(cards, 99), null);
  });

  test('snooze presets end in the browser’s time zone', () => {
    const thursday = new Date(2026, 10, 26, 15, 30); // local time
    assert.equal(snoozeUntil('hour', thursday).getTime() - thursday.getTime(), 3600 * 1000);
    const tomorrow = snoozeUntil('tomorrow', thursday);
    assert.deepEqual([tomorrow.getDate(), tomorrow.getHours(), tomorrow.getMinutes()], [27, 9, 0]);
    const monday = snoozeUntil('week', thursday);
    assert.deepEqual([monday.getDay(), monday.getDate(), monday.getHours()], [1, 30, 9]);
    const fromMonday = snoozeUntil('week', new Date(2026, 10, 30, 8)); // a Monday: the next one
    assert.equal(fromMonday.getDate(), 7);
    assert.throws(() => snoozeUntil('someday', thursday), TypeError);
  });
});
