"""A small sampling profiler from the standard library, for the server under load.

``python benchmarks/_sampler.py OUT -- tidings serve ...`` (what ``load.py --profile-server
OUT`` runs) starts ``tidings`` with a daemon thread that, every millisecond, reads the main
thread's Python stack (``sys._current_frames``) and counts it, and a ``gc.callbacks`` hook that
times every cyclic-GC pass per generation.

- SIGUSR1 (sent by load.py just before it publishes) writes what was sampled so far to
  ``OUT.setup`` (start-up, tokens, connects) and starts over; with ``PYTHONTRACEMALLOC=1`` it
  also writes ``OUT.memory``, the live heap by allocating line while the streams are open.
- SIGUSR2 (after the last delivery) or exit writes ``OUT``: top functions by own and by
  inclusive samples, the GC times, and ``OUT.folded`` (``a;b;c count`` per distinct stack, the
  input of flame-graph tools).

Unlike cProfile it adds no cost per call, so it does not inflate the deep await chains of an
ASGI app (cProfile counts every resumed coroutine frame as a call). Its blind spot: a sample
whose innermost frame is the event loop's ``run`` is time in C below it (waiting in epoll,
uvloop's own work, waiting for the GIL); those are counted apart and left out of the shares.
Use ``load.py --perf`` (``perf record``) to see that C and kernel time.
"""

from __future__ import annotations

import atexit
import collections
import gc
import re
import signal
import sys
import threading
import time
import tracemalloc
from types import FrameType

IDLE_LEAF = "asyncio/runners.py:run"
_STDLIB = re.compile(r"^.*/lib/python3\.\d+/")


def _label(frame: FrameType) -> str:
    code = frame.f_code
    path = code.co_filename
    for marker in ("site-packages/", "/src/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = _STDLIB.sub("", path)
    return f"{path}:{code.co_name}"


class Sampler:
    def __init__(self, out: str, interval: float = 0.001) -> None:
        self.out = out
        self.interval = interval
        self.target = threading.main_thread().ident
        self.stacks: collections.Counter[tuple[str, ...]] = collections.Counter()
        self.samples = 0
        self.running = True
        self.gc_count = [0, 0, 0]
        self.gc_seconds = [0.0, 0.0, 0.0]
        self._gc_started = 0.0
        self.started = time.perf_counter()

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        gen = info["generation"]
        self.gc_count[gen] += 1
        self.gc_seconds[gen] += time.perf_counter() - self._gc_started

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        threading.Thread(target=self._run, name="sampler", daemon=True).start()
        atexit.register(self.dump)
        signal.signal(signal.SIGUSR1, lambda *_: self.reset())
        signal.signal(signal.SIGUSR2, lambda *_: self.dump())

    def reset(self) -> None:
        """SIGUSR1, sent by the load generator just before it publishes: write what was
        sampled so far (start-up, tokens, connects) to ``OUT.setup`` and start over, so that
        ``OUT`` covers the fan-out only."""
        self._write(self.out + ".setup")
        self.stacks = collections.Counter()
        self.samples = 0
        self.gc_count = [0, 0, 0]
        self.gc_seconds = [0.0, 0.0, 0.0]
        self.started = time.perf_counter()
        if tracemalloc.is_tracing():  # PYTHONTRACEMALLOC=1: where the open streams' memory is
            self._write_memory()

    def _write_memory(self) -> None:
        snapshot = tracemalloc.take_snapshot()
        stats = snapshot.statistics("lineno")
        total = sum(stat.size for stat in stats)
        lines = [f"{total / 2**20:.1f} MiB traced by tracemalloc, by allocating line:"]
        lines += [
            f"{stat.size / 2**10:10.0f} KiB {stat.count:9d} blocks  {stat.traceback[0]}"
            for stat in stats[:40]
        ]
        with open(self.out + ".memory", "w") as f:
            f.write("\n".join(lines) + "\n")

    def dump(self) -> None:
        """SIGUSR2 or exit: write the report once and stop sampling."""
        if self.running:
            self.running = False
            self._write(self.out)

    def _run(self) -> None:
        while self.running:
            time.sleep(self.interval)
            frame = sys._current_frames().get(self.target or 0)
            stack: list[str] = []
            while frame is not None:
                stack.append(_label(frame))
                frame = frame.f_back
            if stack:
                self.stacks[tuple(reversed(stack))] += 1
                self.samples += 1

    def _write(self, out: str) -> None:
        own: collections.Counter[str] = collections.Counter()
        inclusive: collections.Counter[str] = collections.Counter()
        idle = 0
        stacks = self.stacks.copy()  # the sampling thread may still be adding one
        for stack, n in stacks.items():
            if stack[-1].endswith(IDLE_LEAF):
                idle += n  # in the event loop's C code: waiting in epoll, or uvloop's own work
                continue
            own[stack[-1]] += n
            for name in set(stack):
                inclusive[name] += n
        samples = sum(stacks.values())
        total = max(1, samples - idle)
        lines = [
            f"{samples} samples every {self.interval * 1000:.1f} ms; {idle} in the event"
            " loop's C code (idle in epoll or uvloop internals), left out below; shares are of"
            f" the {total} samples in Python code",
            f"{time.perf_counter() - self.started:.1f} s wall; cyclic GC per generation:"
            + "".join(f" gen{g} {self.gc_count[g]}x {self.gc_seconds[g]:.2f} s;" for g in range(3)),
            "",
            "own:",
        ]
        lines += [f"{n / total:7.1%}  {name}" for name, n in own.most_common(40)]
        lines += ["", "inclusive:"]
        lines += [f"{n / total:7.1%}  {name}" for name, n in inclusive.most_common(60)]
        with open(out, "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(out + ".folded", "w") as f:
            for stack, n in stacks.most_common():
                f.write(";".join(stack) + f" {n}\n")


def main() -> None:
    out, sep, *command = sys.argv[1:]
    if sep != "--" or not command:
        raise SystemExit("usage: _sampler.py OUT -- tidings serve ...")
    Sampler(out).start()
    sys.argv = command
    from tidings.cli import main as tidings_main

    tidings_main()


if __name__ == "__main__":
    main()
