// A typed consumer of the browser modules, through the package's own name and `exports`
// (tsc --noEmit in tests/test_js.py). Every `@ts-expect-error` is a type that must stay strict.
import { connect, feed, markRead, markUnread, snooze, unarchive, TidingsError, type ConnectionState, type FeedItem, type View } from 'tidings';
import 'tidings/bell';
import { TidingsBell, type TidingsBellAttributes } from 'tidings/bell';
import { badgeText, isSafeLink, LATEST_LIMIT } from 'tidings/core';
import { enablePush, PushError } from 'tidings/push';
import { resolveLocale, translator, type SupportedLocale } from 'tidings/i18n';

const client = connect({
  url: 'https://tidings.example.com/v1/stream',
  getToken: async () => (await (await fetch('/api/tidings-token')).json()) as { token: string },
  channel: 'u-42',
});
const off = client.on('notification', (n, meta) => {
  const title: string = n.title;
  const id: number = meta.id;
  const live: boolean = meta.live;
  void [title, id, live, n.data['booking_id'], n.link?.length];
});
client.on('ready', (view: View) => void view.unread.count);
client.on('state', (now: ConnectionState, before: ConnectionState) => void [now, before]);
client.on('read', (event) => void event.ids?.length);
client.on('unread', (event) => void [event.ids.length, event.items?.[0]?.snoozed_until]);
client.on('unarchived', (event) => void event.unread?.count);
client.on('snoozed', (event) => void event.until.length);
client.on('unsnoozed', (event) => void event.items.map((n) => n.actor?.name));
client.on('view', (view) => void view.user?.length);
void [markUnread([1, 2]), unarchive(3), snooze([4], new Date()), client.snooze(5, '2030-01-01T09:00:00Z')];
// @ts-expect-error: snooze needs the time it ends
void client.snooze([1]);
// @ts-expect-error: not an event of the client
client.on('message', () => {});
// @ts-expect-error: a notification listener gets a Notification, not a string
client.on('notification', (n: string) => n);
off();

async function page(): Promise<FeedItem[]> {
  const first = await client.feed({ status: 'unread', limit: 20 });
  const unread = await client.markRead('all');
  const count: number = unread.unread.count;
  // @ts-expect-error: status is one of unread | read | archived | all
  await client.feed({ status: 'new' });
  const other = await feed({ apiBase: 'https://tidings.example.com', token: 't', cursor: first.next_cursor });
  await markRead([1, 2, 3], { apiBase: '' });
  // Collapse keys (issue 10): a group's items are read together.
  const grouped: string | null | undefined = first.items[0]?.group;
  await client.markRead({ groups: grouped ? [grouped] : ['booking:42'] });
  // @ts-expect-error: groups are strings
  await markRead({ groups: [42] });
  void count;
  return [...first.items, ...other.items].filter((item) => !item.read);
}

try {
  await page();
} catch (err) {
  if (err instanceof TidingsError) void [err.status, err.code, err.problem?.detail];
}

const bell: TidingsBell | null = document.querySelector('tidings-bell');
if (bell) {
  bell.addEventListener('tidings-notification', (event) => {
    const title: string = event.detail.notification.title;
    const live: boolean = event.detail.live;
    void [title, live];
  });
  bell.addEventListener('tidings-click', (event) => {
    if (!isSafeLink(event.detail.notification.link)) event.preventDefault();
  });
  bell.addEventListener('tidings-state', (event) => void (event.detail.state satisfies ConnectionState));
  // @ts-expect-error: the detail of tidings-state has no notification
  bell.addEventListener('tidings-state', (event) => void event.detail.notification);
  const unread: number = bell.unread;
  const more: boolean = bell.unreadMore;
  const state: ConnectionState = bell.state;
  void [unread, more, state, bell.view.latest.length <= LATEST_LIMIT, bell.client?.lastId, badgeText(unread, more)];
  bell.show();
  bell.hide();
  // @ts-expect-error: read-only
  bell.unread = 3;
  bell.setMessages({ markAll: 'Alles gelesen', 'type.invoice_due': 'Rechnung fällig' });
  bell.messages = { ...bell.messages, viewAll: 'Alle' };
  // @ts-expect-error: overrides are strings
  bell.setMessages({ markAll: 3 });
}
const t = translator('de-AT', { 'state.open': 'Verbunden' });
const sentence: string = t('unreadLabel', { count: 3 });
const lang: SupportedLocale = t.locale;
void [sentence, lang, t.type('booking_created'), resolveLocale(null, navigator.languages)];
const made = document.createElement('tidings-bell');
made satisfies TidingsBell;
const attributes: TidingsBellAttributes = { 'token-url': '/api/tidings-token', 'no-toasts': '', shared: 'false' };
// @ts-expect-error: shared is "true" or "false"
const wrong: TidingsBellAttributes = { shared: 'maybe' };
void [attributes, wrong];

try {
  await enablePush({ apiBase: 'https://tidings.example.com', token: 't' });
} catch (err) {
  if (err instanceof PushError) void (err.stage satisfies 'support' | 'permission' | 'register' | 'key' | 'subscribe' | 'save');
}

// <tidings-inbox>: the "view all" element, and the one icon map it shares with the bell.
import 'tidings/inbox';
import { setTypeIcons, TidingsInbox, type InboxStatus, type TidingsInboxAttributes } from 'tidings/inbox';
import { setTypeIcons as setBellIcons } from 'tidings/bell';

const inboxEl: TidingsInbox | null = document.querySelector('tidings-inbox');
const wanted: InboxStatus = 'archived';
void inboxEl?.filter({ status: wanted, type: 'payment_failed' }).then(() => inboxEl.loadMore());
inboxEl?.addEventListener('tidings-inbox-load', (e) => void [e.detail.count, e.detail.status]);
inboxEl?.addEventListener('tidings-click', (e) => void e.detail.notification.read);
const inboxAttrs: TidingsInboxAttributes = { 'time-zone': 'America/Chicago', 'details-url': '/n/{id}', 'page-size': '50' };
void [inboxAttrs, inboxEl?.items.map((n) => n.snoozed_until), inboxEl?.loading];
setTypeIcons({ 'invoice.overdue': 'credit-card', custom: () => document.createElement('img'), system: null });
setBellIcons({ reminder: 'clock' });
// @ts-expect-error: not a filter
void inboxEl?.filter({ status: 'read' });
// @ts-expect-error: not an icon name
setTypeIcons({ x: 'rocket' });
