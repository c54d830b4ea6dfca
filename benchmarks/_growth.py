"""What a soak measures of the server processes, and how growth is judged.

A :class:`Sampler` reads, every few seconds, the resident set size (``VmRSS`` of
``/proc/<pid>/status``) and the number of open file descriptors (entries of
``/proc/<pid>/fd``) of every server process. A process that is restarted gets a new pid and so a
new series: slopes are per process.

**Growth** is defined precisely as the least-squares slope of a series over the *judged window*,
the second half of the run (``[duration / 2, end]``), in MiB per hour for RSS and descriptors per
hour for fds. The first half is warm-up (allocator arenas, caches, the restart or kill the soak
injects before half-time). A series with fewer than ``min_points`` samples in the window (a
process that died in it) is not judged. A window shorter than ``min_window`` seconds is not
judged at all: a one-minute run sees start-up allocation, not a trend.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

MIB = 1024 * 1024


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, value)`` points, in value units per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 3600.0


@dataclass
class Series:
    """One server process: ``(seconds since the soak began, rss bytes, fds)`` samples."""

    name: str
    pid: int
    samples: list[tuple[float, int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    max_rss_mib_per_hour: float = 16.0
    max_fds_per_hour: float = 60.0
    min_window: float = 600.0
    min_points: int = 10


def judge(series: list[Series], start: float, end: float, limits: Limits) -> dict[str, object]:
    """Slopes per process over ``[start, end]`` (seconds since the soak began) and the verdict.

    Returns ``{"judged": bool, "window_s": …, "processes": [...], "problems": [...]}``.
    """
    window = end - start
    judged = window >= limits.min_window
    rows: list[dict[str, object]] = []
    problems: list[str] = []
    for s in series:
        inside = [p for p in s.samples if start <= p[0] <= end]
        row: dict[str, object] = {
            "name": s.name,
            "pid": s.pid,
            "points": len(inside),
            "rss_mib_first": round(s.samples[0][1] / MIB, 1) if s.samples else None,
            "rss_mib_last": round(s.samples[-1][1] / MIB, 1) if s.samples else None,
            "fds_first": s.samples[0][2] if s.samples else None,
            "fds_last": s.samples[-1][2] if s.samples else None,
            "rss_mib_per_hour": None,
            "fds_per_hour": None,
        }
        if len(inside) >= limits.min_points:
            rss = slope_per_hour([(t, r / MIB) for t, r, _ in inside])
            fds = slope_per_hour([(t, float(f)) for t, _, f in inside])
            row["rss_mib_per_hour"] = round(rss, 2)
            row["fds_per_hour"] = round(fds, 2)
            if judged and rss > limits.max_rss_mib_per_hour:
                problems.append(
                    f"{s.name} (pid {s.pid}): RSS grows {rss:.1f} MiB/h "
                    f"> {limits.max_rss_mib_per_hour} MiB/h"
                )
            if judged and fds > limits.max_fds_per_hour:
                problems.append(
                    f"{s.name} (pid {s.pid}): open fds grow {fds:.1f}/h "
                    f"> {limits.max_fds_per_hour}/h"
                )
        rows.append(row)
    return {"judged": judged, "window_s": round(window, 1), "processes": rows, "problems": problems}


def read_proc(pid: int) -> tuple[int, int] | None:
    """``(rss bytes, open fds)`` of ``pid``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return rss_kb * 1024, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration, ValueError):
        return None


class Sampler:
    """Samples the processes ``targets()`` names (``{name: pid}``) every ``every`` seconds."""

    def __init__(self, began: float) -> None:
        self.began = began
        self.series: dict[tuple[str, int], Series] = {}

    def sample(self, targets: dict[str, int]) -> None:
        now = time.monotonic() - self.began
        for name, pid in targets.items():
            got = read_proc(pid)
            if got is None:
                continue
            s = self.series.setdefault((name, pid), Series(name, pid))
            s.samples.append((now, got[0], got[1]))
