"""docs/sdk.md runs: every ``python`` block, in order, as a script in a fresh interpreter against
a live server, with only what the page says to set (``TIDINGS_URL``, ``TIDINGS_OPERATOR_KEY``,
and the ``TIDINGS_API_KEY`` that its first example prints). The outbox example, which needs the
host's own PostgreSQL (``HOST_DATABASE_URL``) instead, runs in tests/sdk/test_outbox_docs.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support import OPERATOR, ServerThread

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks() -> list[str]:
    return [b for b in BLOCK.findall(DOC.read_text()) if "HOST_DATABASE_URL" not in b]


# Runs each example (JSON list on stdin) as ``__main__`` in a fresh namespace, in order, and
# prints a marker after each: one interpreter for all, so the test takes seconds.
RUNNER = """
import json, sys
for number, code in enumerate(json.load(sys.stdin)):
    print(f"--- example {number}", flush=True)
    exec(compile(code, f"<docs/sdk.md example {number}>", "exec"), {"__name__": "__main__"})
print("--- done", flush=True)
"""


def run(code: str, env: dict[str, str], cwd: Path, *, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"this example failed:\n{code}\n{done.stderr}"
    return done.stdout


def test_the_page_has_sync_and_async_examples() -> None:
    found = blocks()
    assert len(found) >= 7
    assert any("AsyncClient" in b and "asyncio.run" in b for b in found)
    assert any("with Client(" in b and ".subscribe(" in b for b in found)
    assert any("async with tidings.subscribe(" in b for b in found)


def test_every_example_runs_against_a_live_server(live: ServerThread, tmp_path: Path) -> None:
    found = blocks()
    env = {"TIDINGS_URL": live.url, "TIDINGS_OPERATOR_KEY": OPERATOR}
    setup = run(found[0], env, tmp_path)
    exported = re.search(r"^export TIDINGS_API_KEY=(tdg_\S+)$", setup, re.M)
    assert exported, setup
    env["TIDINGS_API_KEY"] = exported.group(1)
    assert run(found[0], env, tmp_path), "it runs again (the tenant exists: 409 is handled)"
    out = run(RUNNER, env, tmp_path, stdin=json.dumps(found[1:]))
    parts = out.split("--- example ")[1:]
    assert len(parts) == len(found) - 1 and out.endswith("--- done\n"), out
    assert all(part.split("\n", 1)[1].strip() for part in parts), "every example prints"
