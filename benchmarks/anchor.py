"""tidings beside its anchor, nginx + Nchan: the same load on both, in one run, and the ratios.

    make bench-anchor                    # installs nginx + libnginx-mod-nchan if missing, runs this
    python -m benchmarks.anchor          # 1,000 streams x 20/s and 5,000 streams x 2/s
    python -m benchmarks.anchor --scenario 200x5 --seconds 5 --json-out run.json

For each scenario (``STREAMSxRATE``) each target in turn gets the same load from the same
client code (``_clients.py``, the same number of client processes and connection attempts in
flight): N streams opened at once, then ``rate x seconds`` notifications published at ``rate``
per second by the same publisher (``load.Publisher``, the same number of requests in flight),
every notification to every stream.

- tidings: ``tidings serve`` (SQLite, memory broker; ``_server.py``), one tenant, one user and
  one token per stream, ``GET /v1/stream``, ``POST /v1/notifications``.
- Nchan: the anchor's ``ctl.sh`` and ``nginx.conf.in`` (``../shared/anchors/nchan/``, or
  ``--nchan-dir``) copied into a temp dir (ctl.sh writes its ``run/`` beside itself), one
  worker on a free port; all streams on one channel, ``GET /sub/CHAN`` with ``Accept:
  text/event-stream``, ``POST /pub?id=CHAN``. The body is ``{"data": {"t": ..., "i": SEQ}}``
  padded to the mean size of the ``data:`` line tidings sent in the same scenario (tidings
  runs first), so both put the same payload on the wire; completeness is checked by ``i``.

Measured as in ``../shared/anchors/README.md``, for both targets alike:

- server CPU per delivery = user + system CPU of the server process and its children (nginx
  master and workers) from just before the first publish until every stream has every
  notification (or ``--drain-timeout``), divided by the notification frames delivered; and
  the same split into user space (the server's own code) and kernel (its syscalls, and the
  loopback TCP they drive);
- memory per stream = growth of the summed PSS (``/proc/PID/smaps_rollup``) of those processes
  from before the first connect to 1 s after the last stream opened, divided by N; and the
  same of its anonymous and shared-memory part (``Pss_Anon`` + ``Pss_Shmem``: without the
  pages of mapped files, whose PSS share drops when the client processes start);
- delivery latency = receipt wall clock - publish wall clock carried in the payload;
- connect all = first connection attempt to last stream open, in the slowest client process;
  server CPU per connect = server CPU over that phase (plus the 1 s settle) / N;
- reopen all = after the deliveries, every stream dropped at once (a reconnect storm) until
  all are open again, each resuming with ``Last-Event-ID``; server CPU per reopen = server CPU
  over that phase (plus a 1 s settle) / N;
- loss: notifications missing on a stream, and duplicated ones.

``--repeat N`` runs each scenario N times, the two targets back to back each time, and then
prints per measure the N ratios, their median and range: on a shared machine one pair's
ratio moves by ±10-20 % from minute to minute, and only the pairs, taken together, say where
the code stands.

Prints one side-by-side table per scenario with tidings/Nchan ratios; writes the whole run
(both targets' full summaries, machine, load average) as JSON to ``--json-out`` (default
``benchmarks/results/anchor-<UTC time>.json``). Exit status 1 if anything was lost or doubled,
a stream failed to open or a publish failed, on either side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks._clients import ClientConfig, raise_nofile, run_process
from benchmarks._server import SpawnedServer, create_tenant, free_port, mint_tokens
from benchmarks.load import Publisher, machine, percentile

HERE = Path(__file__).resolve().parent
TARGETS = ("tidings", "nchan")
DEFAULT_PAYLOAD = 300  # bytes of Nchan's data line when tidings did not run first


@dataclass(frozen=True)
class Scenario:
    streams: int
    rate: float
    count: int

    @property
    def label(self) -> str:
        return f"{self.streams:,} streams x {self.rate:g}/s, {self.count} notifications"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="STREAMSxRATE",
        help="repeatable; default: 1000x20 and 5000x2 (the anchors README's rows)",
    )
    p.add_argument("--seconds", type=float, default=20.0, help="publish window per scenario")
    p.add_argument("--count", type=int, default=0, help="notifications (default rate x seconds)")
    p.add_argument("--targets", default="tidings,nchan", help="comma-separated: tidings,nchan")
    p.add_argument(
        "--repeat", type=int, default=1, help="runs of each scenario (both targets each time)"
    )
    p.add_argument("--procs", type=int, default=0, help="client processes (default: 1, 2 at 2k+)")
    p.add_argument("--connect-concurrency", type=int, default=100, help="per client process")
    p.add_argument("--publishers", type=int, default=16, help="publish requests in flight")
    p.add_argument("--drain-timeout", type=float, default=120.0, help="s after the last publish")
    p.add_argument("--connect-deadline", type=float, default=900.0, help="s to open all streams")
    p.add_argument("--payload-bytes", type=int, default=0, help="Nchan data line (default: match)")
    p.add_argument("--nchan-dir", help="the anchor folder (default: shared/anchors/nchan above)")
    p.add_argument("--nchan-workers", type=int, default=1, help="nginx worker processes")
    p.add_argument("--json-out", metavar="FILE", help="the whole run as JSON (default: results/)")
    args = p.parse_args(argv)
    try:
        args.scenarios = [_scenario(s, args) for s in args.scenario or ["1000x20", "5000x2"]]
    except ValueError as error:
        p.error(str(error))
    if args.repeat < 1:
        p.error("--repeat takes a positive number of runs")
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not args.targets or set(args.targets) - set(TARGETS):
        p.error(f"--targets takes a comma-separated subset of {','.join(TARGETS)}")
    args.targets.sort(key=TARGETS.index)  # tidings first: Nchan's payload matches its frames
    if "nchan" in args.targets:
        args.nchan_dir = str(nchan_dir(args.nchan_dir))
    if not args.json_out:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        args.json_out = str(HERE / "results" / f"anchor-{stamp}.json")
    return args


def _scenario(text: str, args: argparse.Namespace) -> Scenario:
    streams, sep, rate = text.lower().partition("x")
    if not sep:
        raise ValueError(f"--scenario {text!r}: expected STREAMSxRATE, e.g. 1000x20")
    scenario = Scenario(int(streams), float(rate), 0)
    count = args.count or max(1, round(scenario.rate * args.seconds))
    if scenario.streams < 1 or scenario.rate <= 0:
        raise ValueError(f"--scenario {text!r}: streams and rate must be positive")
    return Scenario(scenario.streams, scenario.rate, count)


def nchan_dir(given: str | None) -> Path:
    """The anchor folder: ``--nchan-dir``, else ``shared/anchors/nchan`` in the nearest parent
    of this checkout that has one (``../shared`` beside the main checkout)."""
    if given:
        found = Path(given)
    else:
        found = next(
            (
                p / "shared" / "anchors" / "nchan"
                for p in HERE.parents
                if (p / "shared" / "anchors" / "nchan" / "ctl.sh").exists()
            ),
            Path("shared/anchors/nchan (not found)"),
        )
    if not (found / "ctl.sh").exists() or not (found / "nginx.conf.in").exists():
        raise SystemExit(f"the Nchan anchor folder was not found at {found} (use --nchan-dir)")
    return found


def nchan_installed() -> bool:
    done = subprocess.run(
        ["dpkg", "-L", "libnginx-mod-nchan"], capture_output=True, text=True, check=False
    )
    return done.returncode == 0 and "ngx_nchan_module.so" in done.stdout


# -- the two servers -------------------------------------------------------------------------


class NchanServer:
    """The anchor's nginx through its own ``ctl.sh``, run from a writable temp copy."""

    def __init__(self, source: str, workers: int) -> None:
        self.source = Path(source)
        self.workers = workers
        self.port = free_port()
        self.tmp: tempfile.TemporaryDirectory[str] | None = None
        self.pid = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ctl(self, *argv: str) -> str:
        assert self.tmp is not None
        env = {**os.environ, "PORT": str(self.port)}
        done = subprocess.run(
            [str(Path(self.tmp.name) / "ctl.sh"), *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"ctl.sh {' '.join(argv)} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self) -> NchanServer:
        if not nchan_installed():
            raise SystemExit(
                "libnginx-mod-nchan is not installed: `make bench-anchor` installs it, or"
                " `apt-get install -y nginx libnginx-mod-nchan`"
            )
        self.tmp = tempfile.TemporaryDirectory(prefix="tidings-anchor-nchan-")
        for name in ("ctl.sh", "nginx.conf.in"):
            copy = Path(self.tmp.name) / name
            shutil.copyfile(self.source / name, copy)
            copy.chmod(0o755 if name == "ctl.sh" else 0o644)
        self.pid = int(self._ctl("start", str(self.workers)).split()[-1])
        if httpx.get(f"{self.url}/health", timeout=5).status_code != 200:
            self.stop()
            raise SystemExit("the Nchan anchor did not answer /health")
        return self

    def stop(self) -> None:
        if self.tmp is not None:
            self._ctl("stop")
            self.tmp.cleanup()
            self.tmp = None


class NchanPublisher(Publisher):
    """``POST /pub?id=CHANNEL``; the body carries the sequence number and the publish time,
    padded to ``payload_bytes`` (the size of tidings' ``data:`` line in the same scenario)."""

    def __init__(self, url: str, channel: str, concurrency: int, payload_bytes: int) -> None:
        super().__init__(url, "", concurrency)
        self.channel = channel
        self.payload_bytes = payload_bytes

    def body(self, i: int) -> bytes:
        head = json.dumps({"data": {"t": time.time(), "i": i}, "pad": ""}, separators=(",", ":"))
        pad = max(0, self.payload_bytes - len(head))
        return head.replace('"pad":""', f'"pad":"{"x" * pad}"').encode()

    async def send(self, client: httpx.AsyncClient, run_id: str, i: int) -> int | None:
        r = await client.post("/pub", params={"id": self.channel}, content=self.body(i))
        return i if r.status_code in (200, 201, 202) else None


# -- measuring -------------------------------------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def server_cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds so far of ``pid`` and its children (nginx: master +
    workers)."""
    user = system = 0.0
    for proc in _tree(pid):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        user += times.user
        system += times.system
    return user, system


def server_cpu(pid: int) -> float:
    """User + system CPU seconds so far of ``pid`` and its children (nginx: master + workers)."""
    return sum(server_cpu_split(pid))


def server_pss_kib(pid: int, fields: tuple[str, ...] = ("Pss:",)) -> int:
    """Summed ``Pss`` (KiB) of ``pid`` and its children, from ``/proc/PID/smaps_rollup``
    (``fields``: other lines of it summed instead, e.g. :data:`NOT_FILE`)."""
    total = 0
    for proc in _tree(pid):
        try:
            with open(f"/proc/{proc.pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith(fields):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


# The PSS of anonymous and shared-memory pages: what a process allocated (Nchan keeps its
# messages in shared memory), without the pages of files it maps. Those (the interpreter,
# libraries) are shared with every process mapping the same files, so their PSS share shrinks
# when the client processes start during the connect phase: at 1,000 streams that alone is
# larger than the streams' own memory (docs/performance.md, session 8).
NOT_FILE = ("Pss_Anon:", "Pss_Shmem:")


def _recv(conn: Connection, timeout: float, what: str) -> Any:
    if not conn.poll(timeout):
        raise SystemExit(f"a client process did not report {what} within {timeout:.0f}s")
    return conn.recv()


def measure(
    args: argparse.Namespace,
    scenario: Scenario,
    *,
    url: str,
    pid: int,
    configs: dict[str, Any],
    publisher: Publisher,
) -> dict[str, Any]:
    """One target under one scenario's load: open, publish, drain; the figures."""
    host, _, port = url.split("://", 1)[1].rpartition(":")
    procs_n = args.procs or (2 if scenario.streams >= 2000 else 1)
    tokens: list[str] = configs["tokens"]
    time.sleep(0.5)
    pss_before = server_pss_kib(pid)
    own_before = server_pss_kib(pid, NOT_FILE)
    cpu_connect = server_cpu(pid)
    ctx = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    procs: list[Any] = []
    try:
        for k in range(procs_n):
            mine, theirs = ctx.Pipe()
            cfg = ClientConfig(
                host=host,
                port=int(port),
                tokens=tokens[k::procs_n],
                concurrency=args.connect_concurrency,
                connect_deadline=args.connect_deadline,
                anchor_channel=configs.get("channel"),
            )
            proc = ctx.Process(target=run_process, args=(theirs, cfg), daemon=True)
            proc.start()
            procs.append(proc)
            pipes.append(mine)
        connected = [_recv(c, args.connect_deadline + 60, "its streams")[1] for c in pipes]
        connect_s = max(c["seconds"] for c in connected)
        time.sleep(1.0)
        pss_connected = server_pss_kib(pid)
        own_connected = server_pss_kib(pid, NOT_FILE)
        split_before = server_cpu_split(pid)
        cpu_before = sum(split_before)
        asyncio.run(publisher.run(scenario.count, scenario.rate))
        deadline = time.time() + args.drain_timeout
        for c in pipes:
            c.send(("expect", sorted(publisher.ids), deadline))
        done = [_recv(c, args.drain_timeout + 60, "its deliveries")[1] for c in pipes]
        split_after = server_cpu_split(pid)
        cpu_after = sum(split_after)
        # A reconnect storm: every stream dropped at once, reopened with Last-Event-ID.
        for c in pipes:
            c.send(("reopen",))
        reopened = [_recv(c, args.connect_deadline + 60, "its reopened streams")[1] for c in pipes]
        time.sleep(1.0)
        cpu_reopened = server_cpu(pid)
        for proc in procs:
            proc.join(30)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(10)

    opened = sum(c["opened"] for c in connected)
    lat = array("d")
    for d in done:
        lat.extend(d["latencies_ms"])
    ordered = sorted(lat)
    received = sum(d["received"] for d in done)
    last = max((d["last_receipt"] for d in done), default=0.0)
    window = max(1e-9, last - publisher.started) if last else 0.0
    publish_cpu = cpu_after - cpu_before
    publish_user = split_after[0] - split_before[0]
    publish_system = split_after[1] - split_before[1]
    connect_cpu = cpu_before - cpu_connect
    per_conn = sorted(x for c in connected for x in c["connect_s"])
    errors: dict[str, int] = {}
    for d in [*connected, *done]:
        for key, n in d["errors"].items():
            errors[key] = errors.get(key, 0) + n
    return {
        "client_procs": procs_n,
        "connect": {
            "opened": opened,
            "failed": scenario.streams - opened,
            "all_open_s": round(connect_s, 3),
            "each_ms_p50": round(percentile(per_conn, 0.5) * 1000, 1),
            "each_ms_p99": round(percentile(per_conn, 0.99) * 1000, 1),
            "server_cpu_s": round(connect_cpu, 3),  # includes the 1 s settle
            "server_cpu_ms_per_stream": round(connect_cpu / max(1, opened) * 1000, 3),
        },
        "reopen": {
            "reopened": sum(r["reopened"] for r in reopened),
            "all_open_s": round(max(r["seconds"] for r in reopened), 3),
            "server_cpu_s": round(cpu_reopened - cpu_after, 3),  # includes the 1 s settle
            "server_cpu_ms_per_stream": round(
                (cpu_reopened - cpu_after) / max(1, opened) * 1000, 3
            ),
        },
        "memory": {
            "pss_before_kib": pss_before,
            "pss_connected_kib": pss_connected,
            "per_stream_kib": round((pss_connected - pss_before) / max(1, opened), 2),
            "not_file_before_kib": own_before,
            "not_file_connected_kib": own_connected,
            "not_file_per_stream_kib": round((own_connected - own_before) / max(1, opened), 2),
        },
        "publish": {
            "published": len(publisher.ids),
            "failed": publisher.failed,
            "retried": publisher.retried,
            "seconds": round(publisher.finished - publisher.started, 2),
            "http_ms_p50": round(percentile(sorted(publisher.http_ms), 0.5), 1),
            "http_ms_p99": round(percentile(sorted(publisher.http_ms), 0.99), 1),
        },
        "delivery": {
            "expected": len(publisher.ids) * opened,
            "received": received,
            "missing": sum(d["missing"] for d in done),
            "duplicates": sum(d["duplicates"] for d in done),
            "out_of_order": sum(d["out_of_order"] for d in done),
            "unexpected": sum(d["unexpected"] for d in done),
            "streams_complete": sum(d["complete"] for d in done),
            "reconnects": sum(d["reconnects"] for d in done),
            "data_bytes_mean": round(sum(d["data_bytes"] for d in done) / max(1, received), 1),
            "latency_ms_p50": round(percentile(ordered, 0.5), 1),
            "latency_ms_p99": round(percentile(ordered, 0.99), 1),
            "latency_ms_max": round(percentile(ordered, 1.0), 1),
            "window_s": round(window, 2),
        },
        "server_cpu": {
            "publish_s": round(publish_cpu, 3),
            "busy_share": round(publish_cpu / window, 2) if window else 0.0,
            "us_per_delivery": round(publish_cpu / received * 1e6, 2) if received else 0.0,
            # the same split: user space (the server's own code) and the kernel (its syscalls)
            "user_us_per_delivery": round(publish_user / received * 1e6, 2) if received else 0.0,
            "system_us_per_delivery": (
                round(publish_system / received * 1e6, 2) if received else 0.0
            ),
        },
        "client_errors": errors,
    }


def run_tidings(args: argparse.Namespace, scenario: Scenario) -> dict[str, Any]:
    server = SpawnedServer(scenario.streams).start()
    try:
        tenant = f"bench-{uuid.uuid4().hex[:8]}"
        api_key = asyncio.run(create_tenant(server.url, server.operator_key, tenant))
        users = [f"user-{i}" for i in range(scenario.streams)]
        tokens = asyncio.run(mint_tokens(server.url, api_key, users))
        publisher = Publisher(server.url, api_key, args.publishers)
        return measure(
            args,
            scenario,
            url=server.url,
            pid=server.pid,
            configs={"tokens": tokens},
            publisher=publisher,
        )
    finally:
        server.stop()


def run_nchan(args: argparse.Namespace, scenario: Scenario, payload: int) -> dict[str, Any]:
    server = NchanServer(args.nchan_dir, args.nchan_workers).start()
    try:
        channel = f"bench{uuid.uuid4().hex[:8]}"
        publisher = NchanPublisher(server.url, channel, args.publishers, payload)
        result = measure(
            args,
            scenario,
            url=server.url,
            pid=server.pid,
            configs={"tokens": [""] * scenario.streams, "channel": channel},
            publisher=publisher,
        )
        result["payload_bytes"] = payload
        return result
    finally:
        server.stop()


# -- reporting -------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if a and b else "-"


def table(scenario: Scenario, results: dict[str, dict[str, Any]]) -> str:
    """The scenario's figures side by side, with tidings/Nchan where both ran."""
    names = list(results)

    def row(label: str, pick: Any, fmt: str = "{}", ratio: bool = True) -> list[str]:
        values = [pick(results[n]) for n in names]
        cells = [fmt.format(v) for v in values]
        if len(names) == 2:
            cells.append(_ratio(values[0], values[1]) if ratio else "")
        return [label, *cells]

    rows = [
        ["measure", *names, *(["tidings/nchan"] if len(names) == 2 else [])],
        row("server CPU per delivery (µs)", lambda r: r["server_cpu"]["us_per_delivery"]),
        row("  of it user space (µs)", lambda r: r["server_cpu"].get("user_us_per_delivery", 0)),
        row("  of it kernel (µs)", lambda r: r["server_cpu"].get("system_us_per_delivery", 0)),
        row("server busy while publishing", lambda r: r["server_cpu"]["busy_share"], "{:.0%}"),
        row("memory per stream (PSS KiB)", lambda r: r["memory"]["per_stream_kib"]),
        row("  of it not file pages (KiB)", lambda r: r["memory"]["not_file_per_stream_kib"]),
        row("delivery p50 (ms)", lambda r: r["delivery"]["latency_ms_p50"]),
        row("delivery p99 (ms)", lambda r: r["delivery"]["latency_ms_p99"]),
        row("connect all (s)", lambda r: r["connect"]["all_open_s"]),
        row("server CPU per connect (ms)", lambda r: r["connect"]["server_cpu_ms_per_stream"]),
        row("reopen all after a drop (s)", lambda r: r["reopen"]["all_open_s"]),
        row("server CPU per reopen (ms)", lambda r: r["reopen"]["server_cpu_ms_per_stream"]),
        row("opened / failed", lambda r: f"{r['connect']['opened']} / {r['connect']['failed']}",
            ratio=False),
        row("received / expected",
            lambda r: f"{r['delivery']['received']} / {r['delivery']['expected']}", ratio=False),
        row("missing / duplicates",
            lambda r: f"{r['delivery']['missing']} / {r['delivery']['duplicates']}", ratio=False),
        row("payload data line (bytes)", lambda r: r["delivery"]["data_bytes_mean"], ratio=False),
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [scenario.label]
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


# The measures whose tidings/Nchan ratio the repeated runs summarise: (label, JSON path).
RATIOS = (
    ("server CPU per delivery", ("server_cpu", "us_per_delivery")),
    ("  of it user space", ("server_cpu", "user_us_per_delivery")),
    ("  of it kernel", ("server_cpu", "system_us_per_delivery")),
    ("memory per stream, not file pages", ("memory", "not_file_per_stream_kib")),
    ("delivery p99", ("delivery", "latency_ms_p99")),
    ("connect all", ("connect", "all_open_s")),
    ("server CPU per connect", ("connect", "server_cpu_ms_per_stream")),
    ("reopen all after a drop", ("reopen", "all_open_s")),
)


def ratios(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per measure of :data:`RATIOS`: the tidings/Nchan ratio of each run (both targets
    measured back to back), their median, lowest and highest."""
    summary: dict[str, dict[str, Any]] = {}
    for label, (group, key) in RATIOS:
        values = []
        for results in runs:
            ours, theirs = results["tidings"][group][key], results["nchan"][group][key]
            if ours > 0 and theirs > 0:
                values.append(round(ours / theirs, 3))
        if values:
            summary[label.strip()] = {
                "ratios": values,
                "median": round(statistics.median(values), 3),
                "min": min(values),
                "max": max(values),
            }
    return summary


def ratio_table(scenario: Scenario, summary: dict[str, dict[str, Any]], runs: int) -> str:
    lines = [f"{scenario.label}: tidings/nchan over {runs} runs (each pair back to back)"]
    width = max(len(label) for label, _ in RATIOS)
    for label, _ in RATIOS:
        entry = summary.get(label.strip())
        if entry is None:
            continue
        each = " ".join(f"{v:.2f}" for v in entry["ratios"])
        lines.append(
            f"{label.ljust(width)}  median {entry['median']:.2f}x"
            f"  range {entry['min']:.2f}-{entry['max']:.2f}x  ({each})"
        )
    return "\n".join(lines)


def ok(result: dict[str, Any]) -> bool:
    d = result["delivery"]
    return bool(
        result["connect"]["failed"] == 0
        and result["reopen"]["reopened"] == result["connect"]["opened"]
        and result["publish"]["failed"] == 0
        and d["missing"] == 0
        and d["duplicates"] == 0
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile()
    run: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "scenarios": [],
    }
    for scenario in args.scenarios:
        runs: list[dict[str, dict[str, Any]]] = []
        for round_ in range(1, args.repeat + 1):
            results: dict[str, dict[str, Any]] = {}
            for target in args.targets:
                load1 = round(os.getloadavg()[0], 2)
                if target == "tidings":
                    results[target] = run_tidings(args, scenario)
                else:
                    tidings = results.get("tidings")
                    payload = args.payload_bytes or (
                        round(tidings["delivery"]["data_bytes_mean"])
                        if tidings
                        else DEFAULT_PAYLOAD
                    )
                    results[target] = run_nchan(args, scenario, payload)
                results[target]["loadavg_1m_at_start"] = load1
            if args.repeat > 1:
                print(f"run {round_} of {args.repeat}: ", end="")
            print(table(scenario, results), flush=True)
            print(flush=True)
            run["scenarios"].append(
                {"streams": scenario.streams, "rate": scenario.rate, "count": scenario.count}
                | ({"run": round_} if args.repeat > 1 else {})
                | {"results": results}
            )
            runs.append(results)
        if args.repeat > 1 and set(args.targets) == set(TARGETS):
            summary = ratios(runs)
            print(ratio_table(scenario, summary, len(runs)), flush=True)
            print(flush=True)
            run.setdefault("summaries", []).append(
                {"streams": scenario.streams, "rate": scenario.rate, "runs": len(runs)}
                | {"ratios": summary}
            )
    run["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(run, indent=2) + "\n")
    print(f"the whole run as JSON: {out}")
    everything = [r for s in run["scenarios"] for r in s["results"].values()]
    return 0 if all(ok(r) for r in everything) else 1


if __name__ == "__main__":
    sys.exit(main())
