"""Running TypeScript from the docs under node: the repository's devDependencies (`npm ci`),
TypeScript's own transpiler (types are checked by tests/test_js.py's tsc run, not here), and a
host app directory whose node_modules holds this checkout as `tidings` and the dev modules."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import IN_CI, require_binary

ROOT = Path(__file__).resolve().parents[2]

_TRANSPILE = """
import ts from 'typescript';
let source = '';
for await (const chunk of process.stdin) source += chunk;
const options = { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 };
process.stdout.write(ts.transpileModule(source, { compilerOptions: options }).outputText);
"""


def node_modules() -> Path:
    """node_modules of this checkout; skips (fails under CI=true) when `npm ci` has not run."""
    require_binary("node", "nodejs")
    modules = ROOT / "node_modules"
    if not (modules / ".package-lock.json").exists():
        message = "node_modules is missing: run `npm ci` (make test does)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return modules


def transpile(source: str) -> str:
    """``source`` (TypeScript) as a JavaScript ES module."""
    node_modules()
    done = subprocess.run(
        [require_binary("node", "nodejs"), "--input-type=module", "-e", _TRANSPILE],
        input=source,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def host_app(tmp_path: Path) -> Path:
    """An ES-module app that installed `tidings` (this checkout) and the dev modules (`pg`)."""
    app = tmp_path / "app"
    modules = app / "node_modules"
    modules.mkdir(parents=True)
    (app / "package.json").write_text('{"name": "host-app", "private": true, "type": "module"}\n')
    (modules / "tidings").symlink_to(ROOT, target_is_directory=True)
    for child in node_modules().iterdir():
        if not child.name.startswith("."):
            (modules / child.name).symlink_to(child, target_is_directory=child.is_dir())
    return app
