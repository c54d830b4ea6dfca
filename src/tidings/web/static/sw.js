/**
 * tidings service worker: shows Web Push notifications and opens their link on click.
 *
 *   navigator.serviceWorker.register('/static/sw.js')   // see tidings-push.js
 *
 * A push carries one JSON object (decrypted by the browser, RFC 8291):
 *   {"id": 118, "type": "booking_cancelled", "title": "…", "body": "…",
 *    "url": "https://app.example.com/bookings/7", "tag": "tidings:<tenant>:<seq>",
 *    "created_at": "2026-11-25T18:00:00Z"}
 *
 * The tag makes a re-delivered push replace the notification it repeats. Text reaches the OS
 * notification as plain strings; a click opens `url` only when it is http(s), else the scope.
 */

/* eslint-env serviceworker */

const FALLBACK_TITLE = 'New notification';

function parse(data) {
  if (!data) return {};
  try {
    const value = data.json();
    return value && typeof value === 'object' ? value : {};
  } catch {
    return { body: data.text() };
  }
}

function safeUrl(raw) {
  try {
    const url = new URL(String(raw || ''), self.registration.scope);
    if (url.protocol === 'https:' || url.protocol === 'http:') return url.href;
  } catch {
    /* fall through */
  }
  return new URL('/', self.registration.scope).href;
}

function text(value, max) {
  return typeof value === 'string' ? value.slice(0, max) : '';
}

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  const msg = parse(event.data);
  const title = text(msg.title, 200) || FALLBACK_TITLE;
  const options = {
    body: text(msg.body, 1000),
    tag: text(msg.tag, 200) || undefined,
    renotify: false,
    timestamp: Date.parse(msg.created_at) || Date.now(),
    data: { url: safeUrl(msg.url), id: msg.id, type: text(msg.type, 64) },
  };
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = safeUrl(event.notification.data && event.notification.data.url);
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      for (const client of windows) {
        if (client.url === url && 'focus' in client) return client.focus();
      }
      return self.clients.openWindow ? self.clients.openWindow(url) : undefined;
    })(),
  );
});
