// connect() owns the view: `view` events after every change (before the event that caused it),
// optimistic markRead, refresh() from the Feed API. The reducers themselves: core.test.mjs.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';

import { connect } from '../../src/tidings/web/static/tidings.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

class FakeEventSource {
  static CLOSED = 2;
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

const n = (id, extra = {}) => ({ id, type: 'booking_created', title: `n${id}`, body: '', created_at: '2026-11-26T10:00:00Z', ...extra });
const clients = [];

async function open(opts = {}) {
  const client = connect({ EventSource: FakeEventSource, shared: false, token: 't', ...opts });
  clients.push(client);
  const seen = [];
  for (const type of ['view', 'ready', 'notification', 'read', 'archived', 'reset']) {
    client.on(type, (data, meta) => seen.push({ type, data, meta }));
  }
  while (FakeEventSource.all.length === 0) await tick();
  return { client, es: FakeEventSource.all[0], seen };
}

/** A fetch that answers each path with the JSON given (and records the calls). */
function fakeFetch(answers, calls = []) {
  return async (url, init) => {
    const path = new URL(url, 'http://x').pathname;
    calls.push({ path, method: init.method, body: init.body && JSON.parse(init.body) });
    const body = answers[path];
    if (body === undefined) return new Response('{"code":"nope"}', { status: 500 });
    return new Response(JSON.stringify(body), { status: 200 });
  };
}

afterEach(() => {
  while (clients.length) clients.pop().close();
  FakeEventSource.all = [];
});

test('every change to client.view is a view event, emitted before its cause', async () => {
  const { client, es, seen } = await open();
  es.send('ready', { unread: { count: 1, more: false }, latest_seq: 2, latest: [n(2), n(1, { read: true })] }, 2);
  es.send('notification', n(3), 3);
  es.send('read', { ids: [2] });
  es.send('archived', { ids: [1] });
  es.send('reset', { unread: { count: 0, more: false }, latest_seq: 9, latest: [] }, 9);
  assert.deepEqual(
    seen.map((s) => (s.type === 'view' ? `view:${s.meta.cause}` : s.type)),
    ['view:ready', 'ready', 'view:notification', 'notification', 'view:read', 'read', 'view:archived', 'archived', 'view:reset', 'reset'],
  );
  const views = seen.filter((s) => s.type === 'view').map((s) => s.data);
  assert.deepEqual(views.map((v) => v.unread.count), [1, 2, 1, 1, 0]);
  assert.equal(views.at(-1), client.view); // the event carries the client's own view
  es.send('notification', n(9), 9); // a duplicate changes nothing
  assert.equal(seen.at(-1).type, 'reset');
});

test('markRead updates the view at once; mark all takes the answer count', async () => {
  const calls = [];
  const fetch = fakeFetch({ '/v1/feed/read': { unread: { count: 0, more: true } } }, calls);
  const { client, es, seen } = await open({ fetch });
  es.send('ready', { unread: { count: 2, more: false }, latest_seq: 2, latest: [n(2), n(1)] }, 2);
  const pending = client.markRead([2]);
  assert.deepEqual(client.view.latest.map((x) => x.read), [true, false]); // before the answer
  assert.equal(client.unread.count, 1);
  await pending;
  await client.markRead('all');
  assert.deepEqual(calls.map((c) => c.body), [{ ids: [2] }, { all: true, up_to: 2 }]);
  assert.deepEqual(client.unread, { count: 0, more: true }); // the server's word
  assert.deepEqual(
    seen.filter((s) => s.type === 'view').map((s) => s.meta.cause),
    ['ready', 'markRead', 'markRead', 'markRead'],
  );
});

test('markRead({groups}) reads the view\'s items of those groups at once; the answer brings the count', async () => {
  const calls = [];
  const fetch = fakeFetch({ '/v1/feed/read': { unread: { count: 1, more: false } } }, calls);
  const { client, es } = await open({ fetch });
  const latest = [n(4, { group: 'booking:1' }), n(3), n(2, { group: 'booking:1' }), n(1, { group: 'booking:2' })];
  es.send('ready', { unread: { count: 5, more: false }, latest_seq: 4, latest }, 4);
  const pending = client.markRead({ groups: ['booking:1'] });
  assert.deepEqual(client.view.latest.map((x) => x.read), [true, false, true, false]); // before the answer
  await pending;
  assert.deepEqual(calls.map((c) => c.body), [{ groups: ['booking:1'] }]);
  assert.deepEqual(client.unread, { count: 1, more: false }); // the server's word (items older than the view)
});

test('refresh() reads the latest page (and the count when asked) into the view', async () => {
  const fetch = fakeFetch({
    '/v1/feed': { items: [n(5, { read: false }), n(4, { read: true })], next_cursor: null },
    '/v1/feed/unread-count': { count: 7, more: false },
  });
  const { client, es } = await open({ fetch });
  es.send('reset', { unread: { count: 3, more: false }, latest_seq: 5, latest: [] }, 5);
  await client.refresh();
  assert.deepEqual(client.view.latest.map((x) => x.id), [5, 4]);
  assert.equal(client.unread.count, 3);
  await client.refresh({ unread: true });
  assert.equal(client.unread.count, 7);
  const failing = connect({ EventSource: FakeEventSource, shared: false, fetch: fakeFetch({}) });
  clients.push(failing);
  await assert.rejects(failing.refresh(), { name: 'TidingsError', status: 500 });
});
