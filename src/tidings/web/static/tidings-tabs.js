/**
 * tidings-tabs.js — one leader per stream among a browser's tabs (Web Locks), and the
 * BroadcastChannel they talk on. `connect()` (tidings.js) decides what the messages mean.
 *
 * Invariants:
 * - at most one tab per `key` holds the lock (and so the EventSource); it holds it until
 *   `close()` or until the tab goes, then the next tab in the lock's queue leads;
 * - when the Locks API fails, this tab leads anyway: one stream per tab is better than none;
 * - after `close()` nothing calls `onLead` or `onMessage` any more.
 */

/** `onLead()` when this tab becomes the leader, `onMessage(data)` for each peer message. */
export function joinTabs({ BC, locks, key }, { onLead, onMessage, report }) {
  let closed = false;
  let releaseLock = null;
  const lockAbort = typeof AbortController === 'function' ? new AbortController() : null;
  const bc = new BC(`tidings:${key}`);
  bc.onmessage = (event) => {
    if (!closed) onMessage(event.data);
  };
  const lockOpts = lockAbort ? { signal: lockAbort.signal } : {};
  Promise.resolve()
    .then(() =>
      locks.request(`tidings-leader:${key}`, lockOpts, () => {
        if (closed) return undefined;
        onLead();
        return new Promise((resolve) => {
          releaseLock = resolve;
        });
      }),
    )
    .catch((err) => {
      if (closed || err?.name === 'AbortError') return;
      report(err);
      onLead(); // locks failed: better one stream per tab than none
    });
  return {
    post(message) {
      bc.postMessage(message);
    },
    close() {
      closed = true;
      releaseLock?.();
      lockAbort?.abort();
      bc.close();
    },
  };
}
