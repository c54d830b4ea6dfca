// tidings/react rendered by react-dom/server under node (no bundler, no DOM): the markup a
// server sends and the hook's state before the browser connects.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';

import { TidingsBell, useTidings } from 'tidings/react';

const render = (props) => renderToStaticMarkup(createElement(TidingsBell, props));

describe('TidingsBell (React)', () => {
  test('renders the element with its attributes in kebab-case', () => {
    const html = render({
      tokenUrl: '/api/tidings-token',
      streamUrl: 'https://tidings.example.com/v1/stream',
      apiBase: 'https://tidings.example.com',
      viewAllUrl: '/notifications',
      preferencesUrl: '/settings/notifications',
      channel: 'u-42',
      locale: 'de',
      theme: 'dark',
      align: 'left',
      swUrl: '/sw.js',
      className: 'header-bell',
      id: 'bell',
    });
    assert.equal(
      html,
      '<tidings-bell class="header-bell" id="bell" token-url="/api/tidings-token" stream-url="https://tidings.example.com/v1/stream"' +
        ' api-base="https://tidings.example.com" view-all-url="/notifications" preferences-url="/settings/notifications"' +
        ' channel="u-42" align="left" locale="de" theme="dark" sw-url="/sw.js"></tidings-bell>',
    );
  });

  test('boolean attributes count by presence; shared={false} is shared="false"', () => {
    assert.equal(render({ noToasts: true, noPush: true, shared: false }), '<tidings-bell shared="false" no-toasts="" no-push=""></tidings-bell>');
    assert.equal(render({ noToasts: false, noPush: false }), '<tidings-bell></tidings-bell>');
  });

  test('listeners and values are never rendered into the markup', () => {
    const html = render({ tokenUrl: '/t', onNotification: () => {}, onItemClick: () => {}, token: '"><script>' });
    assert.equal(html, '<tidings-bell token="&quot;&gt;&lt;script&gt;" token-url="/t"></tidings-bell>');
  });

  test('useTidings has no client on the server and does not connect', () => {
    let seen;
    function Probe() {
      seen = useTidings({ url: 'https://tidings.example.com/v1/stream' });
      return createElement('span', null, seen.state);
    }
    assert.equal(renderToStaticMarkup(createElement(Probe)), '<span>connecting</span>');
    assert.deepEqual(seen, { client: null, state: 'connecting', view: null, unread: null, lastNotification: null });
  });
});
