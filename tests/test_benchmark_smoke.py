"""The load generator (benchmarks/load.py) runs end to end and counts loss honestly.

No speed is asserted here: figures live in docs/performance.md. What is asserted is that 50
streams on a spawned ``tidings serve`` each receive every published notification exactly once,
and that the generator's own bookkeeping would notice if one did not.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _clients() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_bench_clients", BENCH / "_clients.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_fifty_streams_get_every_notification_once(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    cmd = [
        sys.executable,
        str(BENCH / "load.py"),
        "--spawn",
        "--streams", "50",
        "--rate", "40",
        "--count", "20",
        "--procs", "1",
        "--drain-timeout", "20",
        "--connect-deadline", "30",
        "--json-out", str(out),
        "--quiet",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, timeout=90, cwd=tmp_path, check=False)
    assert out.exists(), done.stderr.decode()[-3000:]
    summary = json.loads(out.read_text())
    connect, delivery = summary["connect"], summary["delivery"]
    assert connect["opened"] == 50 and connect["failed"] == 0, summary
    assert summary["publish"]["published"] == 20 and summary["publish"]["failed"] == 0, summary
    assert delivery["missing"] == 0, summary
    assert delivery["duplicates"] == 0, summary
    assert delivery["out_of_order"] == 0, summary
    assert delivery["unexpected"] == 0, summary
    assert delivery["received"] == delivery["expected"] == 50 * 20, summary
    assert delivery["streams_complete"] == 50, summary
    assert summary["memory"]["measured"] and summary["memory"]["rss_connected_mib"] > 0
    assert delivery["latency_ms_max"] >= delivery["latency_ms_p50"] > 0
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def test_loss_and_duplicates_are_counted() -> None:
    """The counters the smoke test relies on see a missing and a doubled id."""
    clients = _clients()
    proc = clients._Process(clients.ClientConfig(host="127.0.0.1", port=1, tokens=["t"]))
    stream = proc.streams[0]
    stream.opened = True
    body = (
        b"retry: 500\n\nid: 4\nevent: ready\ndata: {}\n\n"
        b'id: 5\nevent: notification\ndata: {"data": {"t": 1.0}}\n\n'
        b": ping\n\n"
        b'id: 7\nevent: notification\ndata: {"data": {"t": 1.0}}\n\n'
        b'id: 7\nevent: notification\ndata: {"data": {"t": 1.0}}\n\n'
    )
    # Chunked as uvicorn sends it, cut at awkward places.
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:]))
    chunked += b"0\r\n\r\n"
    dechunk = clients._Dechunker()
    plain = b"".join(dechunk.feed(chunked[i : i + 5]) for i in range(0, len(chunked), 5))
    assert plain == body and dechunk.finished
    events = [proc._event(stream, block, 2.0) for block in plain.split(b"\n\n")[:-1]]
    assert events == [None, "ready", "notification", None, "notification", "notification"]
    report = proc.delivery_report([5, 6, 7])
    assert report["missing"] == 1  # id 6 never came
    assert report["duplicates"] == 1  # id 7 came twice
    assert report["received"] == 2
    assert list(report["latencies_ms"]) == [1000.0, 1000.0]
