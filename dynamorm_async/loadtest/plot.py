"""The PNG latency plot of a load test (standard library only, see :mod:`.raster`).

Two panels:

* latency over time: per operation, the p99 (solid) and p50 (dotted) of each time
  bucket, in milliseconds;
* latency percentiles: per operation, bars for p50, p95, p99 and max on a log scale,
  each labelled with its value.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from .raster import Canvas, Color
from .stats import LatencyRecorder, RunStats

__all__ = ["HEIGHT", "WIDTH", "bucket_width", "latency_plot", "nice_ticks", "write_plot"]

#: Size of the plot in pixels.
WIDTH, HEIGHT = 1000, 760

_BG: Color = (255, 255, 255)
_INK: Color = (30, 30, 30)
_GRID: Color = (225, 225, 225)
_MUTED: Color = (110, 110, 110)
_PALETTE: tuple[Color, ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
)
_BARS: tuple[tuple[str, float | None, Color], ...] = (
    ("p50", 50, (158, 202, 225)),
    ("p95", 95, (66, 146, 198)),
    ("p99", 99, (8, 69, 148)),
    ("max", None, (214, 39, 40)),
)
_LEFT, _RIGHT_LEGEND = 80, 190
_TOP1, _BOTTOM1 = 78, 378
_TOP2, _BOTTOM2 = 470, 690
_BUCKETS = (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)


def nice_ticks(high: float, target: int = 5) -> list[float]:
    """Evenly spaced round tick values from 0 to at least ``high`` (steps of 1, 2, 2.5
    or 5 times a power of ten)."""
    if not high > 0 or not math.isfinite(high):
        high = 1.0
    raw = high / target
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * mag >= raw * 0.999)
    n = math.ceil(high / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def bucket_width(elapsed: float, buckets: int = 60) -> float:
    """A round time-bucket width giving at most about ``buckets`` buckets."""
    want = elapsed / buckets
    return next((b for b in _BUCKETS if b >= want), _BUCKETS[-1])


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _color(i: int) -> Color:
    return _PALETTE[i % len(_PALETTE)]


def _runs(
    points: list[tuple[float, float, float]], width: float
) -> list[list[tuple[float, float, float]]]:
    """Split bucket points where buckets are missing, so lines never bridge a gap."""
    runs: list[list[tuple[float, float, float]]] = []
    for point in points:
        if runs and point[0] - runs[-1][-1][0] < width * 1.5:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def _time_panel(c: Canvas, stats: RunStats, elapsed: float) -> None:
    right = c.width - _RIGHT_LEGEND
    c.text(_LEFT, _TOP1 - 22, "Latency over time: p99 (solid) and p50 (dotted) per", _INK)
    width = bucket_width(elapsed)
    c.text(
        _LEFT + c.text_size("Latency over time: p99 (solid) and p50 (dotted) per ")[0],
        _TOP1 - 22,
        f"{width:g} s bucket, ms",
        _INK,
    )
    series = {op: rec.buckets(width, elapsed) for op, rec in stats.recorders.items()}
    high = max((p99 for pts in series.values() for _, _, p99 in pts), default=0.0) * 1000
    yticks = nice_ticks(high)
    xticks = [t for t in nice_ticks(elapsed) if t <= elapsed * 1.0001]
    ymax, xmax = yticks[-1], elapsed

    def px(t: float) -> int:
        return _LEFT + round((right - _LEFT) * t / xmax)

    def py(ms: float) -> int:
        return _BOTTOM1 - round((_BOTTOM1 - _TOP1) * ms / ymax)

    for v in yticks:
        c.line(_LEFT, py(v), right, py(v), _GRID)
        c.text(_LEFT - 6, py(v) - 3, _fmt(v), _MUTED, anchor="right")
    for t in xticks:
        c.line(px(t), _BOTTOM1, px(t), _BOTTOM1 + 4, _INK)
        c.text(px(t), _BOTTOM1 + 8, _fmt(t), _MUTED, anchor="center")
    c.line(_LEFT, _TOP1, _LEFT, _BOTTOM1, _INK)
    c.line(_LEFT, _BOTTOM1, right, _BOTTOM1, _INK)
    c.text((_LEFT + right) // 2, _BOTTOM1 + 22, "elapsed, s", _INK, anchor="center")
    c.text(_LEFT - 50, (_TOP1 + _BOTTOM1) // 2, "latency, ms", _INK, vertical=True)
    if high == 0:
        c.text((_LEFT + right) // 2, (_TOP1 + _BOTTOM1) // 2, "no successful calls", _MUTED)
    for i, pts in enumerate(series.values()):
        color = _color(i)
        for run in _runs(pts, width):
            xy50 = [(px(t), py(p50 * 1000)) for t, p50, _ in run]
            xy99 = [(px(t), py(p99 * 1000)) for t, _, p99 in run]
            for a, b in itertools.pairwise(xy50):
                c.line(*a, *b, color, dot=2)
            for a, b in itertools.pairwise(xy99):
                c.line(*a, *b, color, width=2)
            for x, y in xy99:
                c.rect(x - 2, y - 2, x + 2, y + 2, color)
    _legend(c, stats)


def _legend(c: Canvas, stats: RunStats) -> None:
    x = c.width - _RIGHT_LEGEND + 20
    c.text(x, _TOP1, "operation (calls)", _INK)
    y = _TOP1 + 20
    for i, rec in enumerate(stats.recorders.values()):
        c.rect(x, y, x + 10, y + 7, _color(i))
        c.text(x + 16, y, f"{rec.operation} ({rec.count:,})", _INK)
        if rec.error_count:
            c.text(x + 16, y + 11, f"{rec.error_count:,} errors", _PALETTE[3])
            y += 11
        y += 18


def _bar_panel(c: Canvas, recorders: list[LatencyRecorder]) -> None:
    right = c.width - _RIGHT_LEGEND
    c.text(_LEFT, _TOP2 - 22, "Latency percentiles per operation, ms (log scale)", _INK)
    values = [
        [
            (rec.percentile(q) if q is not None else max(rec.latencies, default=0.0))
            for _, q, _ in _BARS
        ]
        for rec in recorders
    ]
    ms = [[(v or 0.0) * 1000 for v in row] for row in values]
    positive = [v for row in ms for v in row if v > 0]
    lo = 10.0 ** math.floor(math.log10(min(positive))) if positive else 0.1
    hi = 10.0 ** math.ceil(math.log10(max(positive) * 1.0001)) if positive else 10.0
    hi = max(hi, lo * 10)
    decades = round(math.log10(hi / lo))

    def py(v: float) -> int:
        f = (math.log10(v) - math.log10(lo)) / decades if v > 0 else 0.0
        return _BOTTOM2 - round((_BOTTOM2 - _TOP2) * f)

    for d in range(decades + 1):
        v = lo * 10**d
        c.line(_LEFT, py(v), right, py(v), _GRID)
        c.text(_LEFT - 6, py(v) - 3, _fmt(v), _MUTED, anchor="right")
    c.line(_LEFT, _TOP2, _LEFT, _BOTTOM2, _INK)
    c.line(_LEFT, _BOTTOM2, right, _BOTTOM2, _INK)
    c.text(_LEFT - 50, (_TOP2 + _BOTTOM2) // 2, "latency, ms", _INK, vertical=True)
    if not recorders:
        return
    group = (right - _LEFT) / len(recorders)
    bar = max(4, min(36, int(group * 0.8 / len(_BARS))))
    for g, (rec, row) in enumerate(zip(recorders, ms, strict=True)):
        center = _LEFT + int(group * (g + 0.5))
        x = center - bar * len(_BARS) // 2
        for (_, _, color), v in zip(_BARS, row, strict=True):
            if v > 0:
                c.rect(x + 1, py(v), x + bar - 2, _BOTTOM2 - 1, color)
                c.text(x + bar // 2, py(v) - 10, _fmt(v), _INK, anchor="center")
            x += bar
        c.text(center, _BOTTOM2 + 8, rec.operation, _INK, anchor="center")
    x = c.width - _RIGHT_LEGEND + 20
    c.text(x, _TOP2, "percentile", _INK)
    for i, (label, _, color) in enumerate(_BARS):
        y = _TOP2 + 20 + i * 18
        c.rect(x, y, x + 10, y + 7, color)
        c.text(x + 16, y, label, _INK)


def latency_plot(stats: RunStats, elapsed: float, title: str) -> Canvas:
    """Draw the plot of a run that lasted ``elapsed`` seconds."""
    c = Canvas(WIDTH, HEIGHT, _BG)
    c.text(_LEFT, 14, title, _INK, scale=2)
    _time_panel(c, stats, max(elapsed, 1e-3))
    _bar_panel(c, list(stats.recorders.values()))
    c.text(WIDTH - 10, HEIGHT - 16, "dynamorm_async.loadtest", _MUTED, anchor="right")
    return c


def write_plot(path: str | Path, stats: RunStats, elapsed: float, title: str) -> Path:
    """Write the PNG plot to ``path`` and return it."""
    out = Path(path)
    out.write_bytes(latency_plot(stats, elapsed, title).to_png())
    return out
