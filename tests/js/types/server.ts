// A typed consumer of tidings/server (tsc --noEmit in tests/test_js.py).
import { createPublisher, publish, TidingsError, type NewNotification, type Notification } from 'tidings/server';

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
