"""The npm package's React and Vue wrappers in Chromium, as a bundled app uses them.

The page, the package's files and the frameworks from node_modules are served on the tidings
server's origin under ``/app/`` (Playwright answers those requests from the checkout): the
modules are imported from a path that is not ``/static/``, exactly as a bundle would import
them, so the bell needs ``stream-url`` and ``api-base`` as docs/embedding.md says. Vue is its ESM
browser build through an import map; React ships CommonJS only, so its four production files
are wrapped in a small ``require`` registry (the job a bundler does) and re-exported as ESM.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Route

from tests.support import IN_CI, Tenant

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "node_modules"
REACT_CJS = {
    "react": "react/cjs/react.production.js",
    "scheduler": "scheduler/cjs/scheduler.production.js",
    "react-dom": "react-dom/cjs/react-dom.production.js",
    "react-dom/client": "react-dom/cjs/react-dom-client.production.js",
}
REACT_EXPORTS = {
    "react": "createElement forwardRef useEffect useImperativeHandle useRef useState",
    "react-dom/client": "createRoot",
}


def _require_modules() -> None:
    if not (MODULES / ".package-lock.json").exists():
        message = "node_modules is missing: run `npm ci` (make test does)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _cjs_registry() -> str:
    """React's CommonJS files as one classic script defining ``window.__require``."""
    parts = [
        "(() => { const defs = {}, cache = {}, process = { env: { NODE_ENV: 'production' } };",
        "const require = (name) => { if (!(name in cache)) { const module = { exports: {} };",
        "cache[name] = module.exports; defs[name](module, module.exports, require, process);",
        "cache[name] = module.exports; } return cache[name]; };",
    ]
    for name, path in REACT_CJS.items():
        source = (MODULES / path).read_text()
        parts.append(
            f"defs[{json.dumps(name)}] = function (module, exports, require, process) {{\n"
            f"{source}\n}};"
        )
    parts.append("window.__require = require; })();")
    return "\n".join(parts)


def _esm_shim(name: str) -> str:
    names = REACT_EXPORTS[name].split()
    return (
        f"const m = window.__require({json.dumps(name)});\nexport default m;\n"
        f"export const {{ {', '.join(names)} }} = m;\n"
    )


PAGES = {
    "vue": """
<script type="importmap">
  {"imports": {"vue": "/app/node_modules/vue/dist/vue.esm-browser.prod.js"}}
</script>
<div id="root"></div>
<script type="module">
  import { createApp, h } from 'vue';
  import { TidingsBell, useTidings } from '/app/js/vue.js';
  const config = window.__config;
  window.__got = []; window.__clicked = [];
  createApp({
    setup() {
      const live = useTidings({ url: config.streamUrl, token: config.token, shared: false });
      return () => h('div', [
        h('output', { id: 'unread' }, String(live.unread.value?.count ?? '')),
        h(TidingsBell, { token: config.token, streamUrl: config.streamUrl, apiBase: config.apiBase,
          shared: false, noToasts: true,
          onNotification: (detail) => window.__got.push(detail.notification.title),
          onItemClick: (detail, event) => {
            event.preventDefault(); window.__clicked.push(detail.notification.title); } }),
      ]);
    },
  }).mount('#root');
</script>
""",
    "react": """
<script src="/app/react-cjs.js"></script>
<script type="importmap">{"imports": {"react": "/app/esm/react.js",
  "react-dom/client": "/app/esm/react-dom/client.js"}}</script>
<div id="root"></div>
<script type="module">
  import { createElement as h } from 'react';
  import { createRoot } from 'react-dom/client';
  import { TidingsBell, useTidings } from '/app/js/react.js';
  const config = window.__config;
  window.__got = []; window.__clicked = [];
  function App() {
    const live = useTidings({ url: config.streamUrl, token: config.token, shared: false });
    return h('div', null,
      h('output', { id: 'unread' }, String(live.unread?.count ?? '')),
      h(TidingsBell, { token: config.token, streamUrl: config.streamUrl, apiBase: config.apiBase,
        shared: false, noToasts: true,
        onNotification: (detail) => window.__got.push(detail.notification.title),
        onItemClick: (detail, event) => {
          event.preventDefault(); window.__clicked.push(detail.notification.title); } }));
  }
  createRoot(document.getElementById('root')).render(h(App));
</script>
""",
}


def _serve(route: Route, framework: str) -> None:
    path = route.request.url.split("/app/", 1)[1].split("?", 1)[0]
    if path == "index.html":
        route.fulfill(
            body=f"<!doctype html><meta charset=utf-8>{PAGES[framework]}", content_type="text/html"
        )
    elif path == "react-cjs.js":
        route.fulfill(body=_cjs_registry(), content_type="text/javascript")
    elif path.startswith("esm/"):
        route.fulfill(
            body=_esm_shim(path.removeprefix("esm/").removesuffix(".js")),
            content_type="text/javascript",
        )
    else:
        file = (ROOT / path).resolve()
        allowed = (ROOT / "js", ROOT / "src" / "tidings" / "web" / "static", MODULES / "vue")
        if not any(file.is_relative_to(top) for top in allowed) or not file.is_file():
            route.fulfill(status=404, body="not found")
            return
        route.fulfill(path=str(file), content_type="text/javascript")


@pytest.mark.parametrize("framework", ["react", "vue"])
def test_wrapper_renders_the_live_bell_and_forwards_its_events(
    framework: str, tenant: Tenant, contexts: Callable[[], BrowserContext]
) -> None:
    _require_modules()
    context = contexts()
    context.route(f"{tenant.url}/app/**", lambda route: _serve(route, framework))
    page: Page = context.new_page()
    config = {
        "token": tenant.token("u-npm", roles=["staff"]),
        "streamUrl": f"{tenant.url}/v1/stream",
        "apiBase": tenant.url,
    }
    page.add_init_script(f"window.__config = {json.dumps(config)};")
    page.goto(f"{tenant.url}/app/index.html")
    # The wrapper imported the element's module: the tag is upgraded and live.
    page.wait_for_function("document.querySelector('tidings-bell')?.state === 'open'")
    page.wait_for_function("document.getElementById('unread').textContent === '0'")
    for title in ("First booking", "Second booking"):
        r = httpx.post(
            f"{tenant.url}/v1/notifications",
            json={"type": "booking_created", "title": title},
            headers=tenant.auth,
            timeout=10,
        )
        assert r.status_code == 201, r.text
    page.wait_for_function("window.__got.length === 2")
    assert page.evaluate("window.__got") == ["First booking", "Second booking"]
    page.wait_for_function("document.getElementById('unread').textContent === '2'")
    assert page.evaluate("document.querySelector('tidings-bell').unread") == 2
    # An item click reaches the framework's handler, whose preventDefault keeps the page; the
    # bell marks the item read and the server's `read` event lowers the hook's count too.
    page.locator("tidings-bell [part=button]").click()
    page.locator("tidings-bell [part=item]").first.click()
    page.wait_for_function("window.__clicked.length === 1")
    assert page.evaluate("window.__clicked") == ["Second booking"]
    page.wait_for_function("document.getElementById('unread').textContent === '1'")
    assert page.url == f"{tenant.url}/app/index.html"
