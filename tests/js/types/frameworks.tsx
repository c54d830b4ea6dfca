// Typed consumers of tidings/react and tidings/vue (tsc --noEmit in tests/test_js.py).
import { useRef } from 'react';
import { h } from 'vue';
import { TidingsBell, useTidings, type TidingsBellElement } from 'tidings/react';
import { TidingsBell as VueBell, useTidings as useVueTidings } from 'tidings/vue';

export function Header({ user }: { user: string }) {
  const bell = useRef<TidingsBellElement>(null);
  const live = useTidings({ url: 'https://tidings.example.com/v1/stream', getToken: () => 'token', channel: user });
  return (
    <header>
      <span>{live.unread?.count ?? 0}</span>
      <TidingsBell
        ref={bell}
        tokenUrl="/api/tidings-token"
        streamUrl="https://tidings.example.com/v1/stream"
        apiBase="https://tidings.example.com"
        noToasts
        onNotification={(detail) => console.log(detail.notification.title, detail.live)}
        onItemClick={(detail, event) => {
          if (detail.notification.type === 'payment_failed') event.preventDefault();
        }}
      />
      {/* @ts-expect-error: theme is dark or light */}
      <TidingsBell theme="blue" />
    </header>
  );
}

export function vueHeader() {
  const live = useVueTidings({ url: '/v1/stream' });
  const count: number | undefined = live.unread.value?.count;
  void count;
  // @ts-expect-error: tokenUrl is a string
  void h(VueBell, { tokenUrl: 42 });
  return h(VueBell, {
    tokenUrl: '/api/tidings-token',
    noToasts: true,
    onNotification: (detail: { notification: { title: string } }) => console.log(detail.notification.title),
    onItemClick: (_detail: unknown, event: CustomEvent) => event.preventDefault(),
  });
}
