// Tests of connect(): reconnect policy, de-duplication, token refresh, tab sharing and the Feed
// API, against fake EventSource / Web Locks / fetch (BroadcastChannel is node's own).
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';

import { connect, markRead, TidingsError } from '../../src/tidings/web/static/tidings.js';

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check, what = 'condition', ms = 1000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await tick(2);
  }
}

class FakeEventSource {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;
  static all = [];

  constructor(url, init) {
    this.url = url;
    this.init = init;
    this.readyState = 0;
    this.listeners = new Map();
    this.buffer = '';
    FakeEventSource.all.push(this);
  }

  get params() {
    return new URL(this.url, 'http://x').searchParams;
  }

  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(fn);
  }

  close() {
    this.readyState = 2;
  }

  /** Delivers one frame as the browser would (the id buffer persists across frames). */
  send(type, data, id) {
    this.readyState = 1;
    if (id !== undefined) this.buffer = String(id);
    const event = { type, data: JSON.stringify(data), lastEventId: this.buffer };
    for (const fn of this.listeners.get(type) ?? []) fn(event);
  }

  error(readyState) {
    this.readyState = readyState;
    for (const fn of this.listeners.get('error') ?? []) fn({ type: 'error' });
  }
}

function fakeLocks() {
  const queues = new Map();
  function grant(name) {
    const entry = queues.get(name)?.[0];
    if (!entry || entry.granted) return;
    entry.granted = true;
    Promise.resolve()
      .then(() => entry.cb({ name }))
      .then(entry.resolve, entry.reject)
      .finally(() => {
        queues.get(name).shift();
        grant(name);
      });
  }
  return {
    request(name, opts, cb) {
      return new Promise((resolve, reject) => {
        if (!queues.has(name)) queues.set(name, []);
        const q = queues.get(name);
        const entry = { cb, resolve, reject, granted: false };
        opts?.signal?.addEventListener('abort', () => {
          const at = q.indexOf(entry);
          if (at >= 0 && !entry.granted) {
            q.splice(at, 1);
            reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
          }
        });
        q.push(entry);
        grant(name);
      });
    },
  };
}

const n = (id, extra = {}) => ({ id, type: 'booking_created', title: `n${id}`, body: '', created_at: new Date().toISOString(), ...extra });
const snapshot = (latestSeq, count = 0, latest = []) => ({ unread: { count, more: false }, latest_seq: latestSeq, latest });

const clients = [];
function make(opts = {}) {
  const client = connect({ EventSource: FakeEventSource, shared: false, random: () => 0, byeDelay: 1, ...opts });
  clients.push(client);
  return client;
}

function record(client, ...types) {
  const seen = [];
  for (const type of types) client.on(type, (data, meta) => seen.push({ type, data, meta }));
  return seen;
}

afterEach(() => {
  while (clients.length) clients.pop().close();
  FakeEventSource.all = [];
});

describe('connect (one tab)', () => {
  test('opens with token, takes the ready id and emits the snapshot', async () => {
    const client = make({ url: 'https://t.example/v1/stream', token: 'tok' });
    const seen = record(client, 'ready', 'state');
    assert.equal(client.state, 'connecting');
    assert.equal(client.apiBase, 'https://t.example');
    await until(() => FakeEventSource.all.length === 1, 'EventSource');
    const es = FakeEventSource.all[0];
    assert.equal(es.params.get('access_token'), 'tok');
    assert.equal(es.params.has('last_event_id'), false);
    es.send('ready', snapshot(10, 2, [n(10), n(9)]), 10);
    assert.equal(client.state, 'open');
    assert.equal(client.lastId, 10);
    assert.deepEqual(seen.map((s) => s.type), ['state', 'ready']);
    assert.deepEqual(seen[1].data.unread, { count: 2, more: false });
    assert.deepEqual(seen[1].data.latest.map((x) => x.id), [10, 9]);
  });

  test('cookie auth: no token in the URL', async () => {
    make();
    await until(() => FakeEventSource.all.length === 1);
    assert.equal(FakeEventSource.all[0].url, '/v1/stream');
  });

  test('drops duplicates and old ids; live means newer than the snapshot', async () => {
    const client = make({ lastEventId: 5 });
    const seen = record(client, 'notification');
    await until(() => FakeEventSource.all.length === 1);
    const es = FakeEventSource.all[0];
    assert.equal(es.params.get('last_event_id'), '5');
    es.send('ready', snapshot(8, 3, [n(8), n(7), n(6)])); // no id: a resume point was sent
    assert.equal(client.lastId, 5);
    for (const id of [4, 5, 6, 7, 7, 8, 6, 9, 9, 10]) es.send('notification', n(id), id);
    assert.deepEqual(seen.map((s) => s.data.id), [6, 7, 8, 9, 10]);
    assert.deepEqual(seen.map((s) => s.meta.live), [false, false, false, true, true]);
    assert.equal(client.lastId, 10);
    assert.deepEqual(client.view.unread, { count: 5, more: false });
  });

  test('reset moves the resume point, even down', async () => {
    const client = make({ lastEventId: 500 });
    const seen = record(client, 'reset', 'notification');
    await until(() => FakeEventSource.all.length === 1);
    const es = FakeEventSource.all[0];
    es.send('reset', snapshot(3, 1, [n(3)]), 3);
    assert.equal(client.lastId, 3);
    assert.equal(client.state, 'open');
    es.send('notification', n(4), 4);
    assert.deepEqual(seen.map((s) => s.type), ['reset', 'notification']);
    assert.equal(seen[0].data.latest_seq, 3);
  });

  test('read and archived keep the view current', async () => {
    const client = make();
    const seen = record(client, 'read', 'archived');
    await until(() => FakeEventSource.all.length === 1);
    const es = FakeEventSource.all[0];
    es.send('ready', snapshot(3, 3, [n(1), n(2), n(3)]), 3);
    es.send('read', { ids: [3], unread: { count: 2, more: false } });
    es.send('archived', { ids: [1], unread: { count: 1, more: false } });
    assert.deepEqual(seen.map((s) => s.type), ['read', 'archived']);
    assert.deepEqual(client.unread, { count: 1, more: false });
    assert.deepEqual(client.view.latest.map((x) => [x.id, x.read]), [[3, true], [2, false]]);
  });

  test('native reconnects are left to the browser while it says CONNECTING', async () => {
    const client = make();
    await until(() => FakeEventSource.all.length === 1);
    const es = FakeEventSource.all[0];
    es.send('ready', snapshot(1), 1);
    es.error(FakeEventSource.CONNECTING);
    assert.equal(client.state, 'reconnecting');
    await tick(10);
    assert.equal(FakeEventSource.all.length, 1);
    es.send('ready', snapshot(1));
    assert.equal(client.state, 'open');
  });

  test('too many failed native retries fall back to our own backoff', async () => {
    const client = make({ maxNativeRetries: 2, lastEventId: 7 });
    await until(() => FakeEventSource.all.length === 1);
    const es = FakeEventSource.all[0];
    for (let i = 0; i < 3; i += 1) es.error(FakeEventSource.CONNECTING);
    assert.equal(es.readyState, FakeEventSource.CLOSED);
    await until(() => FakeEventSource.all.length === 2, 'second EventSource');
    assert.equal(FakeEventSource.all[1].params.get('last_event_id'), '7');
    assert.equal(client.state, 'connecting');
  });

  test('CLOSED before ready: fresh token, new EventSource resuming from the last id', async () => {
    let calls = 0;
    const client = make({ getToken: async () => `t${++calls}` });
    await until(() => FakeEventSource.all.length === 1);
    const first = FakeEventSource.all[0];
    assert.equal(first.params.get('access_token'), 't1');
    first.send('ready', snapshot(4), 4);
    first.send('notification', n(5), 5);
    // the connection drops; the browser's own retry is refused (401): CLOSED before ready
    first.error(FakeEventSource.CONNECTING);
    first.error(FakeEventSource.CLOSED);
    assert.equal(client.state, 'reconnecting');
    await until(() => FakeEventSource.all.length === 2, 'second EventSource');
    const second = FakeEventSource.all[1];
    assert.equal(calls, 2);
    assert.equal(second.params.get('access_token'), 't2');
    assert.equal(second.params.get('last_event_id'), '5');
  });

  test('CLOSED after ready keeps the token', async () => {
    let calls = 0;
    make({ getToken: async () => `t${++calls}` });
    await until(() => FakeEventSource.all.length === 1);
    const first = FakeEventSource.all[0];
    first.send('ready', snapshot(4), 4);
    first.error(FakeEventSource.CLOSED);
    await until(() => FakeEventSource.all.length === 2);
    assert.equal(calls, 1);
    assert.equal(FakeEventSource.all[1].params.get('access_token'), 't1');
  });

  test('expired: fetch a new token and resume', async () => {
    let calls = 0;
    const client = make({ getToken: () => `t${++calls}` });
    const seen = record(client, 'expired');
    await until(() => FakeEventSource.all.length === 1);
    const first = FakeEventSource.all[0];
    first.send('ready', snapshot(9), 9);
    first.send('expired', { reason: 'token_expired' });
    assert.equal(first.readyState, FakeEventSource.CLOSED);
    assert.equal(seen.length, 1);
    await until(() => FakeEventSource.all.length === 2);
    assert.equal(FakeEventSource.all[1].params.get('access_token'), 't2');
    assert.equal(FakeEventSource.all[1].params.get('last_event_id'), '9');
  });

  test('bye: reconnect after the retry hint with the last id', async () => {
    let calls = 0;
    const client = make({ getToken: () => `t${++calls}`, byeDelay: 20 });
    await until(() => FakeEventSource.all.length === 1);
    const first = FakeEventSource.all[0];
    first.send('ready', snapshot(2), 2);
    first.send('notification', n(3), 3);
    first.send('bye', { reason: 'overflow' });
    assert.equal(client.state, 'reconnecting');
    await tick(5);
    assert.equal(FakeEventSource.all.length, 1, 'waits for the hint');
    await until(() => FakeEventSource.all.length === 2);
    assert.equal(FakeEventSource.all[1].params.get('last_event_id'), '3');
    assert.equal(calls, 1);
  });

  test('backoff grows while failing and resets on ready', async () => {
    const ceilings = [];
    const random = () => {
      ceilings.push(true);
      return 0;
    };
    make({ random });
    await until(() => FakeEventSource.all.length === 1);
    for (let i = 1; i <= 3; i += 1) {
      FakeEventSource.all[i - 1].error(FakeEventSource.CLOSED);
      await until(() => FakeEventSource.all.length === i + 1);
    }
    assert.equal(ceilings.length, 3);
  });

  test('a failing getToken is retried with backoff', async () => {
    let calls = 0;
    make({
      getToken: async () => {
        calls += 1;
        if (calls < 3) throw new Error('token endpoint down');
        return 'ok';
      },
    });
    await until(() => FakeEventSource.all.length === 1, 'EventSource', 2000);
    assert.equal(calls, 3);
    assert.equal(FakeEventSource.all[0].params.get('access_token'), 'ok');
  });

  test('close stops everything', async () => {
    const client = make();
    const seen = record(client, 'state');
    await until(() => FakeEventSource.all.length === 1);
    const es = FakeEventSource.all[0];
    client.close();
    assert.equal(client.state, 'closed');
    assert.equal(es.readyState, FakeEventSource.CLOSED);
    assert.deepEqual(seen.map((s) => s.data), ['closed']);
    es.error(FakeEventSource.CLOSED);
    await tick(10);
    assert.equal(FakeEventSource.all.length, 1);
  });

  test('on() returns an unsubscribe function; a throwing listener does not stop others', async () => {
    const client = make();
    const got = [];
    const off = client.on('ready', () => got.push('a'));
    client.on('ready', () => {
      throw new Error('listener bug');
    });
    client.on('ready', () => got.push('c'));
    const errors = [];
    const orig = globalThis.reportError;
    globalThis.reportError = (e) => errors.push(e);
    try {
      await until(() => FakeEventSource.all.length === 1);
      FakeEventSource.all[0].send('ready', snapshot(1), 1);
      off();
      FakeEventSource.all[0].send('ready', snapshot(1), 1);
    } finally {
      globalThis.reportError = orig;
    }
    assert.deepEqual(got, ['a', 'c', 'c']);
    assert.equal(errors.length, 2);
  });
});

describe('connect (shared by tabs)', () => {
  function tab(locks, opts = {}) {
    return make({ shared: true, locks, channel: `test-${locks.id}`, ...opts });
  }
  let seq = 0;
  const newLocks = () => Object.assign(fakeLocks(), { id: ++seq });

  test('one leader holds the only EventSource; followers get every event', async () => {
    const locks = newLocks();
    const a = tab(locks);
    await until(() => FakeEventSource.all.length === 1);
    const b = tab(locks);
    const seen = record(b, 'ready', 'notification', 'read', 'state');
    await tick(20);
    assert.equal(a.isLeader, true);
    assert.equal(b.isLeader, false);
    assert.equal(FakeEventSource.all.length, 1);
    const es = FakeEventSource.all[0];
    es.send('ready', snapshot(10, 1, [n(10)]), 10);
    es.send('notification', n(11), 11);
    es.send('read', { ids: [11], unread: { count: 1, more: false } });
    await until(() => seen.length >= 4, 'relayed events');
    assert.deepEqual(seen.map((s) => s.type), ['state', 'ready', 'notification', 'read']);
    assert.equal(b.state, 'open');
    assert.equal(b.lastId, 11);
    assert.equal(seen[2].meta.live, true);
    assert.deepEqual(b.unread, { count: 1, more: false });
  });

  test('a late follower asks for the snapshot', async () => {
    const locks = newLocks();
    const a = tab(locks);
    await until(() => FakeEventSource.all.length === 1);
    const es = FakeEventSource.all[0];
    es.send('ready', snapshot(20, 4, [n(20), n(19)]), 20);
    es.send('notification', n(21), 21);
    const late = tab(locks);
    const seen = record(late, 'ready', 'state');
    await until(() => seen.some((s) => s.type === 'ready'), 'snapshot reply');
    const ready = seen.find((s) => s.type === 'ready');
    assert.deepEqual(ready.data.unread, { count: 5, more: false });
    assert.deepEqual(ready.data.latest.map((x) => x.id), [21, 20, 19]);
    assert.equal(late.lastId, 21);
    assert.equal(late.state, 'open');
    assert.equal(a.isLeader, true);
  });

  test('when the leader goes, a follower takes over from the last id it saw', async () => {
    const locks = newLocks();
    const a = tab(locks, { token: 'ta' });
    await until(() => FakeEventSource.all.length === 1);
    const b = tab(locks, { getToken: async () => 'tb' });
    await tick(10);
    const first = FakeEventSource.all[0];
    first.send('ready', snapshot(30), 30);
    first.send('notification', n(31), 31);
    await until(() => b.lastId === 31, 'follower lastId');
    a.close();
    await until(() => FakeEventSource.all.length === 2, 'takeover EventSource');
    assert.equal(b.isLeader, true);
    const second = FakeEventSource.all[1];
    assert.equal(second.params.get('last_event_id'), '31');
    // the follower adopted the leader's token (one token fetch per browser, not per tab)
    assert.equal(second.params.get('access_token'), 'ta');
    assert.equal(b.state, 'reconnecting');
    second.send('ready', snapshot(31));
    assert.equal(b.state, 'open');
  });

  test('a tab keeps its own static token when it takes over', async () => {
    const locks = newLocks();
    const a = tab(locks, { token: 'ta' });
    await until(() => FakeEventSource.all.length === 1);
    const b = tab(locks, { token: 'tb' });
    await tick(10);
    FakeEventSource.all[0].send('ready', snapshot(1), 1);
    await until(() => b.lastId === 1);
    a.close();
    await until(() => FakeEventSource.all.length === 2, 'takeover EventSource');
    assert.equal(FakeEventSource.all[1].params.get('access_token'), 'tb');
  });

  test('a token refreshed by the leader reaches the followers', async () => {
    const locks = newLocks();
    let calls = 0;
    const a = tab(locks, { getToken: async () => `fresh${++calls}` });
    await until(() => FakeEventSource.all.length === 1);
    const b = tab(locks);
    await tick(10);
    FakeEventSource.all[0].send('ready', snapshot(1), 1);
    FakeEventSource.all[0].send('expired', { reason: 'token_expired' });
    await until(() => FakeEventSource.all.length === 2);
    await tick(10);
    assert.equal(await b.token(), 'fresh2');
    assert.equal(a.isLeader, true);
  });

  test('no sharing APIs: one EventSource per tab', async () => {
    make({ shared: true, locks: undefined, BroadcastChannel: undefined });
    make({ shared: true, locks: undefined, BroadcastChannel: undefined });
    await until(() => FakeEventSource.all.length === 2);
  });
});

describe('Feed API', () => {
  function fakeFetch(responses) {
    const calls = [];
    const fetch = async (url, init) => {
      calls.push({ url, init, body: init.body ? JSON.parse(init.body) : undefined });
      const [status, body] = responses.shift() ?? [200, {}];
      return new Response(body === null ? '' : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
    };
    return { fetch, calls };
  }

  test('markRead sends ids with the bearer token', async () => {
    const { fetch, calls } = fakeFetch([[200, { unread: { count: 1, more: false } }]]);
    const answer = await markRead([3, '4'], { apiBase: 'https://t.example', token: 'tok', fetch });
    assert.deepEqual(answer, { unread: { count: 1, more: false } });
    assert.equal(calls[0].url, 'https://t.example/v1/feed/read');
    assert.equal(calls[0].init.method, 'POST');
    assert.equal(calls[0].init.headers.Authorization, 'Bearer tok');
    assert.deepEqual(calls[0].body, { ids: [3, 4] });
  });

  test('client methods: feed query, mark all up to the last id, archive, unread count', async () => {
    const { fetch, calls } = fakeFetch([
      [200, { items: [], next_cursor: null }],
      [200, { unread: { count: 0, more: false } }],
      [200, { unread: { count: 0, more: false } }],
      [200, { count: 2, more: false }],
    ]);
    const client = make({ token: 'tok', fetch });
    await until(() => FakeEventSource.all.length === 1);
    FakeEventSource.all[0].send('ready', snapshot(12), 12);
    await client.feed({ limit: 5, status: 'unread' });
    await client.markRead('all');
    await client.archive([7]);
    assert.deepEqual(await client.unreadCount(), { count: 2, more: false });
    assert.equal(calls[0].url, '/v1/feed?status=unread&limit=5');
    assert.deepEqual(calls[1].body, { all: true, up_to: 12 });
    assert.deepEqual(calls[2].body, { ids: [7] });
    assert.equal(calls[3].url, '/v1/feed/unread-count');
    assert.ok(calls.every((c) => c.init.headers.Authorization === 'Bearer tok'));
  });

  test('cookie auth sends no Authorization header', async () => {
    const { fetch, calls } = fakeFetch([[200, { count: 0, more: false }]]);
    const client = make({ fetch });
    await client.unreadCount();
    assert.equal(calls[0].init.headers.Authorization, undefined);
    assert.equal(calls[0].init.credentials, 'same-origin');
  });

  test('a 401 refreshes the token once and retries', async () => {
    const { fetch, calls } = fakeFetch([
      [401, { code: 'token_expired', title: 'Token expired', status: 401 }],
      [200, { count: 0, more: false }],
    ]);
    let calls2 = 0;
    const client = make({ getToken: async () => `t${++calls2}`, fetch });
    await client.unreadCount();
    assert.deepEqual(calls.map((c) => c.init.headers.Authorization), ['Bearer t1', 'Bearer t2']);
  });

  test('problem+json errors become TidingsError', async () => {
    const { fetch } = fakeFetch([[422, { code: 'validation_error', title: 'Invalid', detail: 'ids must be integers', status: 422 }]]);
    await assert.rejects(markRead([1], { fetch }), (err) => {
      assert.ok(err instanceof TidingsError);
      assert.equal(err.status, 422);
      assert.equal(err.code, 'validation_error');
      assert.equal(err.message, 'ids must be integers');
      return true;
    });
  });

  test('markRead needs ids', () => {
    assert.throws(() => markRead([]), TypeError);
    assert.throws(() => markRead(['x']), TypeError);
  });
});
