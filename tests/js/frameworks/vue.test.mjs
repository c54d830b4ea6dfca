// tidings/vue rendered by Vue's server renderer under node (no bundler, no DOM): the markup a
// server sends and the composable's state before the browser connects.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createSSRApp, h } from 'vue';
import { renderToString } from 'vue/server-renderer';

import { TidingsBell, useTidings } from 'tidings/vue';

const render = (props) => renderToString(createSSRApp({ render: () => h(TidingsBell, props) }));

describe('TidingsBell (Vue)', () => {
  test('renders the element with its attributes in kebab-case', async () => {
    const html = await render({
      tokenUrl: '/api/tidings-token',
      streamUrl: 'https://tidings.example.com/v1/stream',
      apiBase: 'https://tidings.example.com',
      viewAllUrl: '/notifications',
      channel: 'u-42',
      theme: 'dark',
      class: 'header-bell',
    });
    assert.equal(
      html,
      '<tidings-bell token-url="/api/tidings-token" stream-url="https://tidings.example.com/v1/stream"' +
        ' api-base="https://tidings.example.com" view-all-url="/notifications" channel="u-42" theme="dark"' +
        ' class="header-bell"></tidings-bell>',
    );
  });

  test('boolean attributes count by presence; shared false is shared="false"', async () => {
    assert.equal(await render({ noToasts: true, noPush: true, shared: false }), '<tidings-bell shared="false" no-toasts no-push></tidings-bell>');
    assert.equal(await render({}), '<tidings-bell></tidings-bell>');
  });

  test('listeners are not rendered; values are escaped', async () => {
    const html = await render({ tokenUrl: '/t', onNotification: () => {}, token: '"><script>' });
    assert.equal(html, '<tidings-bell token="&quot;&gt;&lt;script&gt;" token-url="/t"></tidings-bell>');
  });

  test('useTidings has no client on the server and does not connect', async () => {
    let seen;
    const app = createSSRApp({
      setup() {
        seen = useTidings({ url: 'https://tidings.example.com/v1/stream' });
        return () => h('span', null, seen.state.value);
      },
    });
    assert.equal(await renderToString(app), '<span>connecting</span>');
    assert.equal(seen.client.value, null);
    assert.equal(seen.view.value, null);
  });
});
