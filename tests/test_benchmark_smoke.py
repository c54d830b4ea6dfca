"""The load generator (benchmarks/load.py) runs end to end and counts loss honestly.

No speed is asserted here: figures live in docs/performance.md. What is asserted is that 50
streams on a spawned ``tidings serve`` each receive every published notification exactly once,
and that the generator's own bookkeeping would notice if one did not. The anchor benchmark
(benchmarks/anchor.py) runs the same way with tiny numbers against tidings and a real nginx +
Nchan (``libnginx-mod-nchan``, installed by .ci/run; in CI its absence fails the test).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks import _clients as clients

from tests.services import _pg_bin
from tests.support import IN_CI, require_binary

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.long  # minutes together: started first (tests/conftest.py)
NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"


def test_fifty_streams_get_every_notification_once(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    cmd = [
        sys.executable,
        "-m", "benchmarks.load",
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
    done = subprocess.run(cmd, capture_output=True, timeout=90, cwd=ROOT, check=False)
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


def _anchor_dir() -> Path:
    """``shared/anchors/nchan`` above this checkout, as anchor.py finds it."""
    for parent in ROOT.parents:
        found = parent / "shared" / "anchors" / "nchan"
        if (found / "ctl.sh").exists():
            return found
    message = "the Nchan anchor folder (shared/anchors/nchan) is not beside this checkout"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.nginx
@pytest.mark.timeout(90)  # ~10 s on a quiet machine: two servers, two client processes
def test_anchor_benchmark_runs_tidings_beside_nchan(tmp_path: Path) -> None:
    """One small scenario on both targets: every stream of each gets every notification once,
    Nchan's payload is padded to the size of tidings' frames, and the table shows the ratios."""
    require_binary("nginx", "/usr/sbin/nginx")
    require_binary("ngx_nchan_module.so", NCHAN_MODULE)
    anchor = _anchor_dir()
    out = tmp_path / "anchor.json"
    cmd = [
        sys.executable,
        "-m", "benchmarks.anchor",
        "--scenario", "30x20",
        "--count", "10",
        "--drain-timeout", "20",
        "--connect-deadline", "30",
        "--nchan-dir", str(anchor),
        "--json-out", str(out),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, timeout=80, cwd=ROOT, check=False)
    assert out.exists(), done.stderr.decode()[-3000:]
    run = json.loads(out.read_text())
    (scenario,) = run["scenarios"]
    results = scenario["results"]
    assert set(results) == {"tidings", "nchan"}
    for name, result in results.items():
        connect, delivery = result["connect"], result["delivery"]
        assert connect["opened"] == 30 and connect["failed"] == 0, (name, result)
        assert result["publish"]["published"] == 10, (name, result)
        assert delivery["received"] == delivery["expected"] == 30 * 10, (name, result)
        assert delivery["missing"] == delivery["duplicates"] == 0, (name, result)
        assert delivery["streams_complete"] == 30, (name, result)
        assert delivery["latency_ms_max"] >= delivery["latency_ms_p50"] > 0, (name, result)
        assert result["memory"]["pss_before_kib"] > 0, (name, result)
        memory = result["memory"]
        assert 0 < memory["not_file_before_kib"] < memory["pss_before_kib"], (name, result)
    tidings_bytes = results["tidings"]["delivery"]["data_bytes_mean"]
    assert abs(results["nchan"]["delivery"]["data_bytes_mean"] - tidings_bytes) <= 2
    assert "tidings/nchan" in done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def test_anchor_events_are_counted_by_sequence_number() -> None:
    """The Nchan side counts completeness by ``data.i``: a missing and a doubled one show."""
    cfg = clients.ClientConfig(host="127.0.0.1", port=1, tokens=[""], anchor_channel="c")
    proc = clients._Process(cfg)
    stream = proc.streams[0]
    stream.opened = True
    body = (
        b": hi\n\n"
        b'id: 1795702546:0\ndata: {"data":{"t":1.0,"i":0},"pad":"xx"}\n\n'
        b'id: 1795702546:2\ndata: {"data":{"t":1.0,"i":2},"pad":"xx"}\n\n'
        b'id: 1795702546:2\ndata: {"data":{"t":1.0,"i":2},"pad":"xx"}\n\n'
    )
    events = [proc._anchor(stream, block, 2.0) for block in body.split(b"\n\n")[:-1]]
    assert events == [None, "notification", "notification", "notification"]
    assert stream.last_raw_id == b"1795702546:2"  # sent back as Last-Event-ID on a reconnect
    report = proc.delivery_report([0, 1, 2])
    assert report["missing"] == 1 and report["duplicates"] == 1 and report["received"] == 2
    assert report["data_bytes"] == 2 * len(b'{"data":{"t":1.0,"i":0},"pad":"xx"}')


def test_the_fanout_diagnostic_runs_and_every_stream_gets_every_frame() -> None:
    """``benchmarks/fanout_python.py`` (docs/performance.md, session 5) asserts that every
    stream's transport got every frame before it prints a figure."""
    cmd = [sys.executable, "-m", "benchmarks.fanout_python", "--streams", "50", "--rounds", "5"]
    done = subprocess.run(cmd, capture_output=True, timeout=60, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert "µs of Python per stream and notification (50 streams)" in done.stdout.decode()


def test_the_fanout_over_sockets_runs_and_every_byte_arrives() -> None:
    """``benchmarks/fanout_sockets.py`` (docs/performance.md, session 10) checks that its
    reader got every stream's every chunk, byte for byte, before it prints a figure."""
    cmd = [sys.executable, "-m", "benchmarks.fanout_sockets", "--streams", "30", "--rounds", "10"]
    done = subprocess.run(cmd, capture_output=True, timeout=60, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert "µs of CPU per stream and notification (30 streams;" in done.stdout.decode()


def test_the_clock_diagnostic_runs_and_pings_idle_streams() -> None:
    """``benchmarks/clock.py`` (docs/performance.md, session 12): idle streams with a short
    keep-alive are pinged, and the clock looks at them about once per ping."""
    cmd = [sys.executable, "-m", "benchmarks.clock", "--streams", "20", "--seconds", "2"]
    done = subprocess.run(
        [*cmd, "--keepalive", "0.5"], capture_output=True, timeout=60, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    out = done.stdout.decode()
    found = re.search(r"streams looked at (\d+)/s; pings (\d+)/s", out)
    assert found is not None, out
    looked, pings = int(found[1]), int(found[2])
    assert 20 <= pings <= looked <= pings + 20, out  # ~2-4 pings each in 2 s; a look per ping


def test_the_paced_publish_benchmark_runs(tmp_path: Path) -> None:
    """``benchmarks.paced`` (CPU of a lone publish at a pace, and of the idle server) runs end
    to end with tiny numbers and reports figures that add up."""
    cmd = [
        sys.executable, "-m", "benchmarks.paced",
        "--count", "10", "--rate", "50", "--streams", "5", "--settle", "0.2", "--json",
        "--server-env", "TIDINGS_CHANNELS_WORKERS=false",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, timeout=90, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    figures = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert figures["count"] == 10 and figures["streams"] == 5, figures
    assert figures["publish_user_ms"] >= 0 and figures["publish_sys_ms"] >= 0, figures
    assert figures["publish_span_s"] >= 10 / 50, figures
    assert 0 <= figures["idle_share"] < 1, figures


_PUBLISH_LINE = re.compile(
    r"^  (\w+) +(\d+) notifications/s +(\d+) requests/s .* errors 0 .*"
    r"server cpu/notification +(\d+) µs"
)


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_publish_benchmark_runs_its_modes_in_turns(store: str) -> None:
    """``benchmarks.publish`` with ``--rounds``: each mode's rounds add up to one line per
    mode, every answer 2xx, and the two mixed/single ratios; on PostgreSQL also the database
    server's CPU."""
    if store == "postgres":
        _pg_bin("initdb")  # in CI a missing PostgreSQL fails, as every PostgreSQL test does
    cmd = [
        sys.executable, "-m", "benchmarks.publish", "--store", store,
        "--modes", "single,mixed", "--seconds", "1", "--rounds", "2", "--warmup", "0.2",
        "--concurrency", "4",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, timeout=120, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    lines = done.stdout.decode().splitlines()
    rows = {m[1]: m for m in map(_PUBLISH_LINE.match, lines) if m}
    assert sorted(rows) == ["mixed", "single"], lines
    for row in rows.values():
        assert int(row[2]) == int(row[3]) > 0 and int(row[4]) > 0, row[0]
    assert ("database cpu/notification" in rows["single"].string) == (store == "postgres"), lines
    assert any(
        re.match(r"^  mixed / single: [\d.]+x the server CPU .*; single / mixed: [\d.]+x", line)
        for line in lines
    ), lines


def test_the_connect_diagnostic_runs_and_streams_leave_the_collector_nothing() -> None:
    """``benchmarks.connect`` opens and closes its streams twice and reports each pass, with
    what the cyclic GC did meanwhile: nothing freed (a stream leaves no reference cycle)."""
    cmd = [sys.executable, "-m", "benchmarks.connect", "--streams", "30", "--pause", "0.2"]
    done = subprocess.run(cmd, capture_output=True, timeout=90, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    lines = done.stdout.decode().strip().splitlines()
    passes = [line for line in lines if line.startswith(("cold:", "warm:"))]
    assert [p.split(":")[0] for p in passes] == ["cold", "warm"], lines
    for line in passes:
        assert "30 streams open in" in line and " 0 objects freed" in line, line
        per_stream = line.split(" = ")[1]
        total, rest = per_stream.split(" ms per stream (user ")
        user, system = rest.split(")")[0].split(", system ")
        assert abs(float(user) + float(system) - float(total)) <= 0.002, line


def test_the_connect_diagnostic_reopens_after_more_than_the_ring_holds() -> None:
    """``--publish-between``: the second pass reopens every stream after that many
    notifications; past the ring's 256 the users' views are read from the store again (more
    store reads than after 100, whose views roll forward from the ring)."""

    def second_pass(published: int) -> int:
        cmd = [sys.executable, "-m", "benchmarks.connect", "--streams", "30", "--pause", "0.2"]
        cmd += ["--publish-between", str(published)]
        done = subprocess.run(cmd, capture_output=True, timeout=90, cwd=ROOT, check=False)
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        lines = done.stdout.decode().strip().splitlines()
        again = [line for line in lines if line.startswith(f"after {published} published:")]
        assert len(again) == 1 and "30 streams open in" in again[0], lines
        return int(again[0].split("store reads ")[1].split(";")[0])

    assert second_pass(300) > second_pass(100)


def test_the_connect_diagnostic_resumes_after_a_restart() -> None:
    """``--restart-after`` with ``--last-event-id``: the server restarts on its store after
    that many notifications and every client resumes a few behind; the streams open in
    batches (a store read per opener batch, not per stream: Hub.warm)."""
    cmd = [sys.executable, "-m", "benchmarks.connect", "--streams", "30", "--pause", "0.2"]
    cmd += ["--restart-after", "20", "--last-event-id", "17"]
    done = subprocess.run(cmd, capture_output=True, timeout=90, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    lines = done.stdout.decode().strip().splitlines()
    passes = [line for line in lines if line.startswith(("cold:", "warm:"))]
    assert len(passes) == 2, lines
    for line in passes:
        assert "30 streams open in" in line, line
        assert int(line.split("store reads ")[1].split(";")[0]) < 30, line


def test_repeated_anchor_runs_are_summarised_by_the_median_of_their_ratios() -> None:
    """``--repeat``: per measure the ratio of each back-to-back pair, their median and range;
    a measure one side did not register (0 CPU ticks) is left out, not counted as 0."""
    from benchmarks import anchor

    def result(cpu: float, user: float) -> dict[str, dict[str, float]]:
        return {
            "server_cpu": {
                "us_per_delivery": cpu,
                "user_us_per_delivery": user,
                "system_us_per_delivery": cpu - user,
            },
            "memory": {"not_file_per_stream_kib": 2.0},
            "delivery": {"latency_ms_p99": 40.0},
            "connect": {"all_open_s": 0.2, "server_cpu_ms_per_stream": 0.1},
            "reopen": {"all_open_s": 0.2},
        }

    runs = [
        {"tidings": result(9.0, 3.0), "nchan": result(9.0, 3.0)},
        {"tidings": result(12.0, 4.0), "nchan": result(10.0, 0.0)},
        {"tidings": result(8.0, 3.0), "nchan": result(10.0, 2.0)},
    ]
    summary = anchor.ratios(runs)
    cpu = summary["server CPU per delivery"]
    assert cpu["ratios"] == [1.0, 1.2, 0.8]
    assert (cpu["median"], cpu["min"], cpu["max"]) == (1.0, 0.8, 1.2)
    assert summary["of it user space"]["ratios"] == [1.0, 1.5]  # Nchan's 0 left out
    assert summary["of it user space"]["median"] == 1.25
    assert summary["delivery p99"]["median"] == 1.0
    table = anchor.ratio_table(anchor.Scenario(1000, 20.0, 200), summary, 3)
    assert "median 1.00x  range 0.80-1.20x  (1.00 1.20 0.80)" in table
