"""Shared pieces of the benchmark suite: timing, percentiles, query counts, memory, and
the rows of the results table.

Every measurement returns a plain dict (JSON-ready) with its figures, the reference
measured in the same run, SQL queries per operation, the process's peak memory and a
list of *checks*: one row of the table per target, met or missed.  Nothing here is
tuned for a particular database; the measurements decide what they can run where.
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

#: How a check compares its figure with its reference (the "ratio" column):
#: ``of``: figure ÷ reference, a share of the ceiling (higher is better);
#: ``times``: figure ÷ reference, a time that should stay close to the reference's;
#: ``faster``: reference ÷ figure, the speed-up over the reference (higher is better).
RATIO_KINDS = ("of", "times", "faster")


@dataclass
class Check:
    """One row of the results table: a figure, its reference and the target it must meet."""

    id: str
    measurement: str
    figure: float | None
    unit: str
    target: str
    met: bool | None
    reference: str = ""
    reference_figure: float | None = None
    ratio: float | None = None
    ratio_kind: str = ""
    reference_unit: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ratio_of(figure: float | None, reference: float | None, kind: str) -> float | None:
    """The ratio column for ``kind`` (see :data:`RATIO_KINDS`), None when undefined."""
    if figure is None or reference is None:
        return None
    if kind == "faster":
        return None if figure <= 0 else reference / figure
    return None if reference <= 0 else figure / reference


def check(
    id: str,
    measurement: str,
    figure: float | None,
    unit: str,
    *,
    target: str,
    met: bool | None,
    reference: str = "",
    reference_figure: float | None = None,
    ratio_kind: str = "",
    reference_unit: str | None = None,
    note: str = "",
) -> dict[str, Any]:
    """A :class:`Check` as a dict, its ratio computed from the figure and the reference."""
    ratio = ratio_of(figure, reference_figure, ratio_kind) if ratio_kind else None
    return Check(
        id=id,
        measurement=measurement,
        figure=_round(figure),
        unit=unit,
        target=target,
        met=met,
        reference=reference,
        reference_figure=_round(reference_figure),
        ratio=_round(ratio),
        ratio_kind=ratio_kind,
        reference_unit=unit if reference_unit is None else reference_unit,
        note=note,
    ).as_dict()


def _round(value: float | None) -> float | None:
    if value is None or isinstance(value, bool):
        return value
    if value == 0 or not math.isfinite(value):
        return value
    digits = max(0, 3 - math.floor(math.log10(abs(value))))
    return round(value, digits)


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------
def median_pick(items: list[dict], seconds: Callable[[dict], float]) -> dict:
    """The item of median ``seconds(item)`` among ``items`` (of an even number, the slower
    of the middle two): the one run kept whole where a figure is the median of repeated
    runs (measurements 5 and 6)."""
    return sorted(items, key=seconds)[len(items) // 2]


def round_complete(result: dict) -> bool:
    """A reminder round (measurement 6) reached every expected student and delivered
    every reminder it wrote."""
    return result["notifications"] == result["expected_students"] == result["delivered"]


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0–100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def timings(fn: Callable[[], Any], *, repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def summary(seconds: list[float]) -> dict[str, float]:
    """Milliseconds: median, p95, min, max and the number of runs."""
    ms = [s * 1000 for s in seconds]
    return {
        "runs": len(ms),
        "median_ms": _round(statistics.median(ms)),
        "p95_ms": _round(percentile(ms, 95)),
        "min_ms": _round(min(ms)),
        "max_ms": _round(max(ms)),
    }


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    seconds: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._started


# ---------------------------------------------------------------------------
# Queries and memory
# ---------------------------------------------------------------------------
def count_queries(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``fn`` once under Django's ``CaptureQueriesContext``; return its result and
    the number of SQL statements it sent (COPY is not counted: it bypasses the cursor
    wrapper)."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        result = fn()
    return result, len(captured.captured_queries)


@dataclass
class QueryCounter:
    """Counts statements through ``connection.execute_wrapper`` without keeping their
    text: for operations whose statements are huge (bulk inserts of 2,000 rows), where
    ``CaptureQueriesContext`` would itself cost memory."""

    count: int = 0
    _ctx: Any = field(default=None, repr=False)

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)

    def __enter__(self) -> QueryCounter:
        from django.db import connection

        self._ctx = connection.execute_wrapper(self)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._ctx.__exit__(*exc)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def process_peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of another process, in MiB; None if unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc), e.g. gunicorn's or Celery's workers."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def cpu_times() -> list[int] | None:
    """The machine's CPU time so far, in clock ticks, as ``/proc/stat``'s first line
    counts it (user, nice, system, idle, iowait, irq, softirq, steal); None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    return [int(x) for x in fields[1:9]]


def cpu_shares(before: list[int] | None, after: list[int] | None) -> dict | None:
    """How the machine's CPU time between two :func:`cpu_times` readings was spent, as
    shares of all cores' time: ``busy`` (user, nice, system, irq, softirq), ``iowait``,
    and ``steal`` (time the hypervisor gave to other guests: a step measured while it
    is high ran on less machine than its neighbours)."""
    if before is None or after is None:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (b - a for a, b in zip(before, after, strict=True))
    total = user + nice + system + idle + iowait + irq + softirq + steal
    if total <= 0:
        return None
    return {
        "busy": round((user + nice + system + irq + softirq) / total, 3),
        "iowait": round(iowait / total, 3),
        "steal": round(steal / total, 3),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
