"""Latency samples and their statistics: every sample is kept, so percentiles are exact.

A run of a few minutes at a few thousand operations a second keeps a few million
floats (16 bytes per sample in two ``array('d')``), which is fine for a bounded load
test and spares the approximations of a histogram.

Percentiles interpolate linearly between the closest ranks, the same definition as
``statistics.quantiles(data, n=100, method="inclusive")`` and NumPy's default.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

__all__ = ["LatencyRecorder", "OperationStats", "RunStats", "percentile", "percentiles"]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``ordered`` (sorted ascending), interpolating
    linearly between closest ranks. Raises ``ValueError`` for no data or ``q`` out of range.
    """
    if not ordered:
        raise ValueError("percentile of no data")
    if not 0.0 <= q <= 100.0 or math.isnan(q):
        raise ValueError(f"percentile {q} is not between 0 and 100")
    n = len(ordered)
    if n == 1:
        return float(ordered[0])
    if q == int(q):  # whole percentiles: the integer positions of statistics.quantiles
        lo, delta = divmod(int(q) * (n - 1), 100)
        frac = delta / 100
    else:
        pos = (n - 1) * q / 100.0
        lo = int(pos)
        frac = pos - lo
    if frac == 0:
        return float(ordered[lo])
    a, b = ordered[lo], ordered[lo + 1]
    return min(max(a + (b - a) * frac, a), b)  # never outside its two neighbours


def percentiles(values: Iterable[float], qs: Sequence[float]) -> list[float]:
    """Several percentiles of unsorted ``values`` (sorted once)."""
    ordered = sorted(values)
    return [percentile(ordered, q) for q in qs]


@attrs.frozen
class OperationStats:
    """The summary of one operation: counts and latency percentiles in milliseconds
    (over successful calls; ``errors`` counts the failed ones, by error class)."""

    operation: str
    count: int
    errors: int
    min_ms: float | None
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    errors_by_class: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "count": self.count,
            "errors": self.errors,
            "min_ms": _round(self.min_ms),
            "mean_ms": _round(self.mean_ms),
            "p50_ms": _round(self.p50_ms),
            "p95_ms": _round(self.p95_ms),
            "p99_ms": _round(self.p99_ms),
            "max_ms": _round(self.max_ms),
            "errors_by_class": dict(sorted(self.errors_by_class.items())),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class LatencyRecorder:
    """The samples of one operation: end time (seconds since the run started) and
    latency (seconds) of each successful call, and error counts by class."""

    __slots__ = ("_sorted", "errors", "latencies", "operation", "times")

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.times = array("d")
        self.latencies = array("d")
        self.errors: Counter[str] = Counter()
        self._sorted: list[float] | None = None

    def add(self, at: float, latency: float, error: str | None = None) -> None:
        """Record one call that ended at ``at`` and took ``latency`` seconds."""
        if error is not None:
            self.errors[error] += 1
            return
        self.times.append(at)
        self.latencies.append(latency)
        self._sorted = None

    @property
    def count(self) -> int:
        """Successful calls."""
        return len(self.latencies)

    @property
    def error_count(self) -> int:
        """Failed calls."""
        return sum(self.errors.values())

    def sorted_latencies(self) -> list[float]:
        """The latencies in ascending order (cached until the next sample)."""
        if self._sorted is None:
            self._sorted = sorted(self.latencies)
        return self._sorted

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile latency in seconds, or ``None`` with no samples."""
        ordered = self.sorted_latencies()
        return percentile(ordered, q) if ordered else None

    def stats(self) -> OperationStats:
        """The summary, in milliseconds."""
        ordered = self.sorted_latencies()

        def ms(q: float) -> float | None:
            return percentile(ordered, q) * 1000.0 if ordered else None

        return OperationStats(
            operation=self.operation,
            count=len(ordered),
            errors=self.error_count,
            min_ms=ordered[0] * 1000.0 if ordered else None,
            mean_ms=math.fsum(ordered) / len(ordered) * 1000.0 if ordered else None,
            p50_ms=ms(50),
            p95_ms=ms(95),
            p99_ms=ms(99),
            max_ms=ordered[-1] * 1000.0 if ordered else None,
            errors_by_class=dict(self.errors),
        )

    def buckets(self, width: float, end: float) -> list[tuple[float, float, float]]:
        """Per time bucket of ``width`` seconds up to ``end``: (bucket middle, p50, p99)
        in seconds, for the buckets that hold samples."""
        if width <= 0:
            raise ValueError("bucket width must be > 0")
        n = max(1, math.ceil(end / width))
        groups: list[list[float]] = [[] for _ in range(n)]
        for at, latency in zip(self.times, self.latencies, strict=True):
            groups[min(n - 1, max(0, int(at / width)))].append(latency)
        out = []
        for i, group in enumerate(groups):
            if group:
                group.sort()
                out.append(((i + 0.5) * width, percentile(group, 50), percentile(group, 99)))
        return out


class RunStats:
    """The recorders of every operation of a run, in first-seen order."""

    def __init__(self) -> None:
        self.recorders: dict[str, LatencyRecorder] = {}

    def recorder(self, operation: str) -> LatencyRecorder:
        """The recorder of ``operation`` (created on first use)."""
        rec = self.recorders.get(operation)
        if rec is None:
            rec = self.recorders[operation] = LatencyRecorder(operation)
        return rec

    def add(self, operation: str, at: float, latency: float, error: str | None = None) -> None:
        """Record one call."""
        self.recorder(operation).add(at, latency, error)

    @property
    def operations(self) -> int:
        """Calls recorded, successful or not."""
        return sum(r.count + r.error_count for r in self.recorders.values())

    @property
    def errors(self) -> int:
        """Failed calls."""
        return sum(r.error_count for r in self.recorders.values())

    def errors_by_class(self) -> dict[str, int]:
        """Failed calls by error class, most frequent first."""
        total: Counter[str] = Counter()
        for rec in self.recorders.values():
            total.update(rec.errors)
        return dict(total.most_common())

    def summary(self) -> list[OperationStats]:
        """One summary per operation."""
        return [rec.stats() for rec in self.recorders.values()]
