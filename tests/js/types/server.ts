// A typed consumer of tidings/server (tsc --noEmit in tests/test_js.py).
import type { PoolClient } from 'pg';
import {
  createPublisher,
  insertOutbox,
  OUTBOX_LIMITS,
  outboxRow,
  publish,
  signWebhook,
  TidingsError,
  verifyWebhook,
  WebhookVerificationError,
  type NewNotification,
  type Notification,
  type OutboxRow,
  type WebhookEvent,
} from 'tidings/server';

const tidings = createPublisher({
  url: 'https://tidings.example.com',
  apiKey: 'tk_live_example',
  retries: 3,
  onRetry: ({ attempt, delayMs, status }) => void [attempt, delayMs, status],
});

const booking: NewNotification = {
  type: 'booking_created',
  title: 'New booking: Castle XL',
  data: { booking_id: 42, nested: { ok: true, list: [1, 'two', null] } },
  audience: { roles: ['staff'] },
  link: '/bookings/42',
};
// @ts-expect-error: a notification has a title
const untitled: NewNotification = { type: 'system' };
void untitled;

const stored: Notification = await tidings.publish(booking, { idempotencyKey: 'booking-42-created' });
const id: number = stored.id;
const batch: Notification[] = await tidings.publishBatch([booking, { type: 'reminder', title: 'Tomorrow 9:00' }]);
const { token, expires_at } = await tidings.mintToken({ user: 'u-42', roles: ['staff'], ttl: 900 });
await tidings.mintToken('u-43');
// @ts-expect-error: mintToken needs a user
await tidings.mintToken({ roles: ['staff'] });
await publish(booking);
void [id, batch.length, token, expires_at];

try {
  await tidings.publish(booking);
} catch (err) {
  if (err instanceof TidingsError) {
    const status: number = err.status;
    const code: string = err.code;
    const detail: string | null = err.detail;
    void [status, code, detail, err.retryable, err.retryAfterMs, err.problem?.title];
  }
}

// ---- webhook verification and the outbox -------------------------------------------------------

const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const signature: string = await signWebhook(secret, 'msg_1', 1614265330, '{"type":"x"}');
const body = new TextEncoder().encode('{"type":"x"}');
const fromPlain: WebhookEvent = await verifyWebhook(secret, { 'webhook-id': 'msg_1', 'webhook-signature': [signature] }, body);
const fromFetch = await verifyWebhook([secret, new Uint8Array(32)], new Headers(), body.buffer, { tolerance: 60, now: Date.now() });
const kind: string = fromFetch.type;
const when: number = fromFetch.attemptedAt;
void [fromPlain.id, fromPlain.data, kind, when];
// @ts-expect-error: the body is the raw bytes or text, never a parsed object
await verifyWebhook(secret, {}, { type: 'x' });
// @ts-expect-error: a secret is a string or bytes
await verifyWebhook(42, {}, '');
try {
  await verifyWebhook(secret, {}, '');
} catch (err) {
  if (err instanceof WebhookVerificationError) {
    const reason: 'missing_header' | 'invalid_timestamp' | 'timestamp_too_old' | 'timestamp_too_new' | 'invalid_signature' | 'invalid_payload' = err.reason;
    // @ts-expect-error: reasons are a closed set
    const other: 'nope' = err.reason;
    void [reason, other];
  }
}

const row: OutboxRow = outboxRow('jump-joy', booking, { limits: { titleChars: 500 } });
const [rowTenant, rowPayload]: [string, string] = row.values;
void [row.text, rowTenant, rowPayload, OUTBOX_LIMITS.dataBytes];
// @ts-expect-error: an outbox row is for one tenant's notification
outboxRow('jump-joy', { title: 'no type' });
declare const client: PoolClient;
const rowId: number = await insertOutbox(client, 'jump-joy', { ...booking, actor: { id: 'u-42', name: 'Ann' } });
void rowId;
