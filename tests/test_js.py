"""The browser client's unit tests (tests/js/*.test.mjs) under node's own test runner."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support import require_binary

ROOT = Path(__file__).resolve().parents[1]


def test_node_test_runner_passes() -> None:
    node = require_binary("node", "nodejs")
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "js").glob("*.test.mjs"))
    assert files, "no tests/js/*.test.mjs found"
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    passed = re.search(r"^\S* ?pass (\d+)$", report, re.M)
    failed = re.search(r"^\S* ?fail (\d+)$", report, re.M)
    assert passed and int(passed.group(1)) > 0, report[-3000:]
    assert failed and int(failed.group(1)) == 0, report[-3000:]
