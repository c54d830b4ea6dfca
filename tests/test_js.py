"""The JavaScript side under node: the browser client's unit tests (tests/js/*.test.mjs), the
npm package (types checked by tsc, the React and Vue wrappers rendered, the packed file list,
one version with the Python package) and the Node publisher against a live tidings.

The package's dev tools come from package-lock.json (`npm ci`, which `make test` runs when node
is installed). Without node or node_modules a test skips here, and fails under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import (
    IN_CI,
    ServerThread,
    Tenant,
    create_tenant,
    make_settings,
    require_binary,
)

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "tests" / "js"
STATIC = ROOT / "src" / "tidings" / "web" / "static"


def _node_run(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Runs ``node --test`` over ``args``; asserts it passed at least one test and failed none."""
    node = require_binary("node", "nodejs")
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    passed = re.search(r"^\S* ?pass (\d+)$", report, re.M)
    failed = re.search(r"^\S* ?fail (\d+)$", report, re.M)
    assert passed and int(passed.group(1)) > 0, report[-3000:]
    assert failed and int(failed.group(1)) == 0, report[-3000:]
    skipped = re.search(r"^\S* ?skipped (\d+)$", report, re.M)
    assert skipped and int(skipped.group(1)) == 0, report[-3000:]
    return report


def _files(folder: Path) -> list[str]:
    files = sorted(str(p.relative_to(ROOT)) for p in folder.glob("*.test.mjs"))
    assert files, f"no {folder.relative_to(ROOT)}/*.test.mjs found"
    return files


def _node_modules() -> Path:
    """The dev dependencies from package-lock.json; `npm ci` installs them (make test does)."""
    require_binary("node", "nodejs")
    modules = ROOT / "node_modules"
    if not (modules / ".package-lock.json").exists():
        message = "node_modules is missing: run `npm ci` (make test does)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return modules


def test_node_test_runner_passes() -> None:
    _node_run(_files(JS))


def test_react_and_vue_wrappers_render() -> None:
    _node_modules()
    _node_run(_files(JS / "frameworks"))


def _package() -> dict[str, object]:
    data: dict[str, object] = json.loads((ROOT / "package.json").read_text())
    return data


def test_one_version_for_python_and_npm() -> None:
    """pyproject.toml is the one place the version is set; package.json and its lock agree."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert _package()["version"] == version
    assert lock["version"] == version
    assert lock["packages"][""]["version"] == version


PACKED = {
    "package.json",
    "README.md",
    "docs/embedding.md",
    "docs/node.md",
    "js/react.d.ts",
    "js/react.js",
    "js/server.d.ts",
    "js/server.js",
    "js/webhooks.js",  # re-exported by js/server.js (no types of their own: internal)
    "js/outbox.js",
    "js/vue.d.ts",
    "js/vue.js",
    "src/tidings/web/static/sw.js",
    # The bell's and the client's helper modules (no types of their own: internal).
    *(
        f"src/tidings/web/static/{name}.js"
        for name in (
            "tidings-feed",
            "tidings-source",
            "tidings-tabs",
            "tidings-dom",
            "tidings-groups",
            "tidings-toasts",
            "tidings-bell-styles",
            "tidings-inbox-parts",
            "tidings-actions",
            "tidings-attrs",
            "tidings-days",
            "tidings-panel",
        )
    ),
    *(
        f"src/tidings/web/static/{name}.{ext}"
        for name in (
            "tidings",
            "tidings-core",
            "tidings-bell",
            "tidings-inbox",
            "tidings-push",
            "tidings-i18n",
        )
        for ext in ("js", "d.ts")
    ),
}


def test_npm_pack_file_list() -> None:
    """`npm pack --dry-run` (nothing written, nothing published): exactly the package's files,
    and every target of the `exports` map is among them."""
    npm = require_binary("npm")
    result = subprocess.run(
        [npm, "pack", "--dry-run", "--json", "--ignore-scripts"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [packed] = json.loads(result.stdout)
    files = {entry["path"] for entry in packed["files"]}
    assert files == PACKED
    assert packed["name"] == "tidings"
    assert packed["version"] == _package()["version"]
    exports = _package()["exports"]
    assert isinstance(exports, dict)
    targets = {
        target.removeprefix("./")
        for entry in exports.values()
        for target in (entry.values() if isinstance(entry, dict) else [entry])
    }
    assert targets <= files, targets - files


def test_packed_tarball_installs_and_imports(tmp_path: Path) -> None:
    """What docs/node.md tells a host app to do: `npm pack` here, `npm install` the tarball
    there (offline: the package has no dependencies), then import it by name."""
    npm = require_binary("npm")
    node = require_binary("node", "nodejs")
    quiet = ["--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]

    def run(*args: str, cwd: Path) -> str:
        result = subprocess.run(
            list(args), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        return result.stdout

    run(npm, "pack", "--pack-destination", str(tmp_path), *quiet, cwd=ROOT)
    [tarball] = tmp_path.glob("tidings-*.tgz")
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "host-app", "private": true, "type": "module"}\n')
    run(npm, "install", "--offline", str(tarball), *quiet, cwd=app)
    installed = app / "node_modules" / "tidings"
    assert not installed.is_symlink()
    assert {str(p.relative_to(installed)) for p in installed.rglob("*") if p.is_file()} == PACKED
    script = (
        "const [main, core, server] = await Promise.all("
        "['tidings', 'tidings/core', 'tidings/server'].map((name) => import(name)));"
        "console.log(typeof main.connect, core.badgeText(12), typeof server.createPublisher);"
    )
    out = run(node, "--input-type=module", "-e", script, cwd=app)
    assert out.split() == ["function", "9+", "function"]


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Tenant]:
    """A second tidings whose publish limit is 2 per 2 seconds, to meet a real 429."""
    (tmp_path / "limited").mkdir()
    settings = make_settings(str(tmp_path / "limited"), publish_rate="2/2seconds")
    srv = ServerThread(settings).start()
    try:
        yield create_tenant(srv.url, "limited")
    finally:
        srv.stop()


def test_node_publisher_against_live_server(tenant: Tenant, limited: Tenant) -> None:
    """tidings/server (js/server.js) under node against real servers: tests/js/live/."""
    _node_run(
        _files(JS / "live"),
        env={
            "TIDINGS_URL": tenant.url,
            "TIDINGS_API_KEY": tenant.key,
            "TIDINGS_LIMITED_URL": limited.url,
            "TIDINGS_LIMITED_KEY": limited.key,
        },
    )


def _blocks(
    doc: str, languages: tuple[str, ...], after: str | None = None
) -> list[tuple[str, str]]:
    """The fenced code blocks of ``docs/<doc>`` in ``languages`` (after heading ``after``)."""
    text = (ROOT / "docs" / doc).read_text()
    if after is not None:
        text = text[text.index(after) :]
    found = re.findall(r"^```(\w+)\n(.*?)^```$", text, re.M | re.S)
    return [(lang, code) for lang, code in found if lang in languages]


def _app(tmp_path: Path, *, with_dev_modules: bool) -> Path:
    """A host app that installed the package: node_modules/tidings is this checkout."""
    app = tmp_path / "app"
    modules = app / "node_modules"
    modules.mkdir(parents=True)
    (app / "package.json").write_text('{"name": "host-app", "private": true, "type": "module"}\n')
    (modules / "tidings").symlink_to(ROOT, target_is_directory=True)
    if with_dev_modules:
        for child in _node_modules().iterdir():
            if not child.name.startswith("."):
                (modules / child.name).symlink_to(child, target_is_directory=child.is_dir())
    return app


def test_node_md_examples_run(tenant: Tenant, tmp_path: Path) -> None:
    """Every ```js block of docs/node.md, as a host app's module, against a live tidings."""
    node = require_binary("node", "nodejs")
    app = _app(tmp_path, with_dev_modules=False)
    examples = _blocks("node.md", ("js",))
    assert len(examples) >= 5
    env = {**os.environ, "TIDINGS_URL": tenant.url, "TIDINGS_API_KEY": tenant.key}
    for index, (_, code) in enumerate(examples):
        script = app / f"example{index}.mjs"
        script.write_text(code)
        result = subprocess.run(
            [node, script.name], cwd=app, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"example {index}:\n{code}\n{result.stderr[-3000:]}"
    token = tenant.token("u-docs", roles=["staff"])
    feed = httpx.get(
        f"{tenant.url}/v1/feed?limit=100",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()["items"]
    titles = [item["title"] for item in feed]
    assert titles.count("Booking 7 confirmed") == 1  # the hook ran twice: one notification
    assert "New booking: Castle XL" in titles


@pytest.mark.timeout(240)  # tsc needs ~8 s of CPU; a loaded 2-core machine stretches that
def test_types_check_with_tsc(tmp_path: Path) -> None:
    """The hand-written .d.ts, type-checked with `tsc --strict --noEmit` through the package's
    `exports` by the typed consumers in tests/js/types/ (each `@ts-expect-error` there is a type
    that must stay strict) and by the ts/tsx blocks of docs/embedding.md's npm section,
    docs/node.md, docs/outbox.md and docs/webhooks.md, all as modules of a host app that
    installed the package."""
    node = require_binary("node", "nodejs")
    app = _app(tmp_path, with_dev_modules=True)
    snippets = _blocks("embedding.md", ("ts", "tsx"), after="## The npm package")
    snippets += _blocks("node.md", ("ts",))
    snippets += _blocks("outbox.md", ("ts",))  # with pg and @types/pg (devDependencies)
    snippets += _blocks("webhooks.md", ("ts",), after="## Verifying a delivery")
    assert len(snippets) >= 5
    for index, (lang, code) in enumerate(snippets):
        (app / f"snippet{index}.{lang}").write_text(code)
    consumers = [p for p in (JS / "types").iterdir() if p.suffix in (".ts", ".tsx")]
    assert len(consumers) >= 3
    for consumer in consumers:
        (app / consumer.name).write_text(consumer.read_text())
    options = json.loads((JS / "types" / "tsconfig.json").read_text())["compilerOptions"]
    (app / "tsconfig.json").write_text(
        json.dumps({"compilerOptions": options, "include": ["*.ts", "*.tsx"]})
    )
    result = subprocess.run(
        [node, str(ROOT / "node_modules" / "typescript" / "bin" / "tsc"), "-p", "."],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
