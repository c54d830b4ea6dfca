"""The soak (benchmarks/soak.py) runs for half a minute and judges honestly.

The 30-second run is the long soak in small: streams that come and go, tokens that expire
mid-stream and are renewed, reads, a publisher, and a SIGTERM + restart of the server at 20 %.
It must pass with nothing lost or doubled, and the server must have exited 0 on SIGTERM. Growth
is not judged on half a minute (the judged window is too short, and says so); the judge itself is
checked on synthetic series below.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks import _growth as g

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.long  # minutes together: started first (tests/conftest.py)


@pytest.mark.timeout(300)
def test_half_a_minute_of_churn_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    cmd = [
        sys.executable,
        "-m", "benchmarks.soak",
        "--duration", "30",
        "--clients", "12",
        "--users", "4",
        "--rate", "5",
        "--token-ttl", "8",
        "--stay", "6",
        "--away", "1",
        "--window", "5",
        "--sample-every", "1",
        "--drain", "40",
        "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, timeout=240, cwd=ROOT, check=False)
    assert out.exists(), done.stdout.decode()[-3000:] + done.stderr.decode()[-3000:]
    summary = json.loads(out.read_text())
    assert summary["lost"] == 0, summary
    assert summary["duplicated"] == 0 and summary["out_of_order"] == 0, summary
    assert summary["published"] >= 120, summary  # 5/s for 30 s, minus the restart
    assert summary["fault"]["sigterm_exit_status"] == 0, summary
    assert summary["token_expiries"] > 0 and summary["leaves"] > 0, summary  # it churned
    assert summary["reads"] > 0 and summary["resets"] == 0, summary
    assert len(summary["windows"]) >= 5 and summary["deliveries_timed"] > 0, summary
    growth = summary["growth"]
    assert not growth["judged"] and len(growth["processes"]) == 2, growth  # two pids: restart
    assert all(p["rss_mib_last"] > 0 and p["fds_last"] > 0 for p in growth["processes"])
    assert summary["verdict"] == "pass", summary["problems"]
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def test_growth_is_the_regression_slope_over_the_judged_window() -> None:
    mib = 1024 * 1024
    limits = g.Limits(max_rss_mib_per_hour=16, max_fds_per_hour=60, min_window=600)
    # 20 MiB/h of RSS and 10 fds/h, sampled every 5 s for an hour, with noise.
    leaking = g.Series("leaky", 1)
    flat = g.Series("flat", 2)
    for i in range(720):
        t = i * 5.0
        noise = (i % 7 - 3) * 0.2 * mib
        leaking.samples.append((t, int(100 * mib + t / 3600 * 20 * mib + noise), 40 + i // 72))
        flat.samples.append((t, int(100 * mib + noise), 40 + (i % 5)))
    verdict: dict[str, Any] = g.judge([leaking, flat], 1800, 3600, limits)
    assert verdict["judged"]
    by_name = {p["name"]: p for p in verdict["processes"]}
    assert 19 < by_name["leaky"]["rss_mib_per_hour"] < 21
    assert abs(by_name["flat"]["rss_mib_per_hour"]) < 1
    assert verdict["problems"] == ["leaky (pid 1): RSS grows 20.0 MiB/h > 16 MiB/h"]
    # A leak of 1 fd a minute is caught.
    fds = g.Series("fds", 3, [(i * 5.0, 100 * mib, 40 + i // 12) for i in range(720)])
    fds_verdict: dict[str, Any] = g.judge([fds], 1800, 3600, g.Limits(max_fds_per_hour=50))
    (problem,) = fds_verdict["problems"]
    assert problem.startswith("fds (pid 3): open fds grow 59."), problem
    # A window shorter than min_window is reported but not judged.
    short = g.judge([leaking], 0, 60, limits)
    assert not short["judged"] and short["problems"] == []
