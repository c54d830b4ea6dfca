// Issue 10: the actor's own notifications arrive read, and the inbox state events (unread,
// unarchived, snoozed, unsnoozed) keep a connect() view exact. Pure reducers and connect()
// against a fake EventSource: node --test tests/js/
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';

import {
  applyNotification,
  applyRestored,
  applySnoozed,
  applyUnread,
  isOwn,
  normalizeSnapshot,
} from '../../src/tidings/web/static/tidings-core.js';
import { connect, STREAM_EVENTS } from '../../src/tidings/web/static/tidings.js';

const n = (id, extra = {}) => ({ id, type: 'system', title: `n${id}`, body: '', created_at: '2026-11-26T10:00:00Z', ...extra });
const count = (c) => ({ count: c, more: false });

describe('actor', () => {
  test('ready carries the user; their own notification is read and not counted', () => {
    const view = normalizeSnapshot({ unread: count(1), latest_seq: 1, latest: [n(1)], user: 'ann' });
    assert.equal(view.user, 'ann');
    const own = applyNotification(view, n(2, { actor: { id: 'ann', name: 'Ann' } }));
    assert.equal(own.live, true);
    assert.deepEqual(own.view.unread, count(1));
    assert.equal(own.view.latest[0].read, true);
    const other = applyNotification(own.view, n(3, { actor: { id: 'bob', name: null } }));
    assert.deepEqual(other.view.unread, count(2));
    assert.equal(other.view.latest[0].read, false);
  });

  test('isOwn needs both a user and a matching actor', () => {
    assert.equal(isOwn(n(1, { actor: { id: 'ann' } }), 'ann'), true);
    assert.equal(isOwn(n(1, { actor: null }), 'ann'), false);
    assert.equal(isOwn(n(1, { actor: { id: 'ann' } }), undefined), false);
  });
});

describe('inbox state reducers', () => {
  const base = normalizeSnapshot({
    unread: count(1),
    latest_seq: 3,
    latest: [n(3, { read: false }), n(2, { read: true }), n(1, { read: true })],
  });

  test('unread: items turn unread, the server count wins, else the count rises', () => {
    const served = applyUnread(base, { ids: [2], unread: count(2) });
    assert.deepEqual(served.latest.map((x) => [x.id, x.read]), [[3, false], [2, false], [1, true]]);
    assert.deepEqual(served.unread, count(2));
    const optimistic = applyUnread(base, { ids: [1, 2, 3] });
    assert.deepEqual(optimistic.unread, count(3));
  });

  test('unread with items puts a snoozed item back', () => {
    const gone = applySnoozed(base, { ids: [3], unread: count(0) });
    const back = applyUnread(gone, { ids: [3], items: [n(3, { read: false })], unread: count(1) });
    assert.deepEqual(back.latest.map((x) => [x.id, x.read]), [[3, false], [2, true], [1, true]]);
    assert.deepEqual(back.unread, count(1));
  });

  test('snoozed: items leave the list', () => {
    const next = applySnoozed(base, { ids: [3], until: '2026-11-27T09:00:00Z', unread: count(0) });
    assert.deepEqual(next.latest.map((x) => x.id), [2, 1]);
    assert.deepEqual(next.unread, count(0));
  });

  test('unarchived / unsnoozed: items come back in order; unsnoozed counts each id', () => {
    const gone = applySnoozed(base, { ids: [3, 2], unread: count(0) });
    const back = applyRestored(gone, { ids: [2], items: [n(2, { read: true })], unread: count(0) });
    assert.deepEqual(back.latest.map((x) => x.id), [2, 1]);
    assert.deepEqual(back.unread, count(0));
    const woke = applyRestored(back, { ids: [3], items: [n(3, { read: false })] });
    assert.deepEqual(woke.latest.map((x) => [x.id, x.read]), [[3, false], [2, true], [1, true]]);
    assert.deepEqual(woke.unread, count(1));
  });
});

class FakeEventSource {
  static all = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.listeners = new Map();
    FakeEventSource.all.push(this);
  }

  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(fn);
  }

  close() {
    this.readyState = 2;
  }

  send(type, data, id) {
    this.readyState = 1;
    const event = { type, data: JSON.stringify(data), lastEventId: id === undefined ? '' : String(id) };
    for (const fn of this.listeners.get(type) ?? []) fn(event);
  }
}

const clients = [];
afterEach(() => {
  while (clients.length) clients.pop().close();
  FakeEventSource.all = [];
});

async function opened() {
  const client = connect({ EventSource: FakeEventSource, shared: false, random: () => 0 });
  clients.push(client);
  const end = Date.now() + 1000;
  while (FakeEventSource.all.length === 0) {
    if (Date.now() > end) throw new Error('no EventSource');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return { client, es: FakeEventSource.all[0] };
}

describe('connect()', () => {
  test('listens to every inbox event', () => {
    for (const name of ['unread', 'unarchived', 'snoozed', 'unsnoozed']) assert.ok(STREAM_EVENTS.includes(name), name);
  });

  test("the user's own notification is emitted read and leaves the badge alone", async () => {
    const { client, es } = await opened();
    const seen = [];
    client.on('notification', (data, meta) => seen.push({ data, meta }));
    es.send('ready', { unread: count(0), latest_seq: 1, latest: [], user: 'ann' }, 1);
    es.send('notification', n(2, { actor: { id: 'ann', name: 'Ann' } }), 2);
    es.send('notification', n(3, { actor: { id: 'bob', name: 'Bob' } }), 3);
    assert.deepEqual(seen.map((s) => [s.data.id, s.data.read ?? false]), [[2, true], [3, false]]);
    assert.deepEqual(client.unread, count(1));
  });

  test('unread, snoozed, unsnoozed and unarchived keep the view exact', async () => {
    const { client, es } = await opened();
    es.send('ready', { unread: count(0), latest_seq: 3, latest: [n(3, { read: true }), n(2, { read: true }), n(1, { read: true })] }, 3);
    es.send('unread', { ids: [2], unread: count(1) });
    assert.deepEqual(client.unread, count(1));
    es.send('snoozed', { ids: [2], until: '2026-11-27T09:00:00Z', unread: count(0) });
    assert.deepEqual(client.view.latest.map((x) => x.id), [3, 1]);
    es.send('unsnoozed', { ids: [2], items: [n(2, { read: false })] });
    assert.deepEqual(client.unread, count(1));
    assert.deepEqual(client.view.latest.map((x) => [x.id, x.read]), [[3, true], [2, false], [1, true]]);
    es.send('archived', { ids: [3], unread: count(1) });
    es.send('unarchived', { ids: [3], items: [n(3, { read: true })], unread: count(1) });
    assert.deepEqual(client.view.latest.map((x) => x.id), [3, 2, 1]);
  });
});
