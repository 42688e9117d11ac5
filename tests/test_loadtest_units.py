"""Load-test building blocks without a server: percentiles, the PNG writer and plot,
progress lines, the capacity meter's arithmetic and the engine's bounds."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import random
import statistics
import struct
import time
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamorm_async.loadtest.capacity import CapacityMeter, CostMeterAdapter, open_meter
from dynamorm_async.loadtest.engine import LoadEngine, Snapshot
from dynamorm_async.loadtest.plot import bucket_width, latency_plot, nice_ticks
from dynamorm_async.loadtest.progress import ProgressBar, render
from dynamorm_async.loadtest.raster import FONT_HEIGHT, Canvas, encode_png, glyph_rows
from dynamorm_async.loadtest.scenarios import (
    SCENARIOS,
    Sample,
    Scenario,
    ScenarioSettings,
    make_scenario,
    timed,
)
from dynamorm_async.loadtest.stats import LatencyRecorder, RunStats, percentile, percentiles

# --------------------------------------------------------------------------- PNG decoding


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Check a truecolour PNG chunk by chunk (CRCs, IHDR, zlib stream, filter bytes) and
    return width, height and the unfiltered RGB rows."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "bad signature"
    pos, kinds, idat = 8, [], b""
    width = height = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        kinds.append(kind)
        if kind == b"IHDR":
            width, height, depth, ctype, comp, filt, inter = struct.unpack(">IIBBBBB", body)
            assert (depth, ctype, comp, filt, inter) == (8, 2, 0, 0, 0)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    raw = zlib.decompress(idat)
    stride = width * 3
    assert len(raw) == height * (stride + 1)
    rows = []
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        assert line[0] == 0, "only filter type 0 is written"
        rows.append(line[1:])
    return width, height, rows


# --------------------------------------------------------------------------- percentiles


@pytest.mark.parametrize("n", [2, 3, 10, 101, 1000, 4999])
def test_percentiles_match_statistics_quantiles(n: int) -> None:
    rng = random.Random(n)
    data = [rng.lognormvariate(0, 1) for _ in range(n)]
    expected = statistics.quantiles(data, n=100, method="inclusive")
    ordered = sorted(data)
    for q in range(1, 100):
        assert percentile(ordered, q) == pytest.approx(expected[q - 1], rel=1e-12, abs=0)
    assert percentile(ordered, 0) == ordered[0]
    assert percentile(ordered, 100) == ordered[-1]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1e4, allow_nan=False), min_size=2, max_size=300),
    st.sampled_from([50, 90, 95, 99, 99.9]),
)
def test_percentile_properties(data: list[float], q: float) -> None:
    ordered = sorted(data)
    value = percentile(ordered, q)
    assert ordered[0] <= value <= ordered[-1]
    assert percentile(ordered, q / 2) <= value <= percentile(ordered, (q + 100) / 2)
    if q == int(q):
        expected = statistics.quantiles(data, n=100, method="inclusive")[int(q) - 1]
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_percentile_fractional_and_errors() -> None:
    assert percentile([1.0, 2.0], 99.9) == pytest.approx(1.999)
    assert percentile([5.0], 99) == 5.0
    assert percentiles([3.0, 1.0, 2.0], [0, 50, 100]) == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_recorder_stats_are_exact_and_errors_separate() -> None:
    rec = LatencyRecorder("get")
    rng = random.Random(7)
    values = [rng.uniform(0.001, 0.2) for _ in range(2000)]
    for i, v in enumerate(values):
        rec.add(i / 1000, v)
    rec.add(2.0, 9.0, "ThrottlingException")
    rec.add(2.0, 9.0, "ThrottlingException")
    rec.add(2.0, 9.0, "InternalServerError")
    s = rec.stats()
    q = statistics.quantiles(values, n=100, method="inclusive")
    assert s.count == 2000 and s.errors == 3
    assert s.p50_ms == pytest.approx(q[49] * 1000)
    assert s.p95_ms == pytest.approx(q[94] * 1000)
    assert s.p99_ms == pytest.approx(q[98] * 1000)
    assert s.max_ms == max(values) * 1000  # exact, never bucketed
    assert s.min_ms == min(values) * 1000
    assert s.errors_by_class == {"ThrottlingException": 2, "InternalServerError": 1}
    assert LatencyRecorder("x").stats().p50_ms is None


def test_buckets_cover_samples() -> None:
    rec = LatencyRecorder("put")
    for i in range(100):
        rec.add(i * 0.03, 0.001 * (i % 10 + 1))
    pts = rec.buckets(0.5, 3.0)
    assert [round(t, 2) for t, _, _ in pts] == [0.25, 0.75, 1.25, 1.75, 2.25, 2.75]
    assert all(p50 <= p99 for _, p50, p99 in pts)


def test_run_stats_totals() -> None:
    stats = RunStats()
    stats.add("get", 0.1, 0.01)
    stats.add("get", 0.2, 0.5, "ThrottlingException")
    stats.add("put", 0.3, 0.02, "TransportError")
    stats.add("put", 0.3, 0.02, "ThrottlingException")
    assert stats.operations == 4 and stats.errors == 3
    assert stats.errors_by_class() == {"ThrottlingException": 2, "TransportError": 1}
    assert [s.operation for s in stats.summary()] == ["get", "put"]


# --------------------------------------------------------------------------- raster / plot


def test_png_encoder_round_trip() -> None:
    c = Canvas(7, 3, (10, 20, 30))
    c.set(6, 2, (255, 0, 0))
    width, height, rows = decode_png(c.to_png())
    assert (width, height) == (7, 3)
    assert rows[0][:3] == bytes((10, 20, 30))
    assert rows[2][-3:] == bytes((255, 0, 0))
    with pytest.raises(ValueError):
        encode_png(2, 2, b"\x00" * 11)


def test_font_covers_printable_ascii() -> None:
    for code in range(32, 127):
        rows = glyph_rows(chr(code))
        assert len(rows) == FONT_HEIGHT and all(0 <= r < 32 for r in rows)
        assert any(rows) == (code != 32), chr(code)
    assert glyph_rows("é") == glyph_rows("?")
    assert len({glyph_rows(chr(c)) for c in range(33, 127)}) == 94  # all distinct


def test_text_and_lines_paint_pixels() -> None:
    c = Canvas(60, 20)
    c.text(1, 1, "Hi", (0, 0, 0))
    assert c.pixel(1, 1) == (0, 0, 0)  # H's top-left
    assert c.pixel(3, 1) == (255, 255, 255)
    c.line(0, 19, 59, 19, (0, 0, 255), width=1)
    assert all(c.pixel(x, 19) == (0, 0, 255) for x in range(60))
    c.line(0, 15, 59, 15, (0, 255, 0), dot=2)
    painted = [c.pixel(x, 15) == (0, 255, 0) for x in range(60)]
    assert 25 <= sum(painted) <= 35
    assert Canvas.text_size("abc", 2) == (34, 16)


def test_latency_plot_is_a_readable_png() -> None:
    stats = RunStats()
    rng = random.Random(3)
    for i in range(3000):
        op = ("get", "put", "query")[i % 3]
        stats.add(op, rng.uniform(0, 2.5), rng.uniform(0.001, 0.03))
    stats.add("put", 1.0, 0.5, "ThrottlingException")
    png = latency_plot(stats, 2.5, "mixed: test").to_png()
    width, height, rows = decode_png(png)
    assert (width, height) == (1000, 760)
    colors = {rows[y][x : x + 3] for y in range(0, height, 3) for x in range(0, width * 3, 9)}
    assert bytes((31, 119, 180)) in colors  # first operation's series colour
    assert bytes((214, 39, 40)) in colors  # the max bars
    assert len(colors) >= 8


def test_plot_of_a_run_without_successes() -> None:
    stats = RunStats()
    stats.add("get", 0.5, 0.1, "TransportError")
    width, height, _ = decode_png(latency_plot(stats, 1.0, "all failed").to_png())
    assert (width, height) == (1000, 760)


def test_axis_helpers() -> None:
    assert nice_ticks(38.2) == [0, 10, 20, 30, 40]
    assert nice_ticks(0.0) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(1234)[-1] >= 1234
    assert bucket_width(3.0) == 0.1
    assert bucket_width(30.0) == 0.5
    assert bucket_width(600.0) == 10


# --------------------------------------------------------------------------- progress


def test_progress_lines() -> None:
    snap = Snapshot(1.5, 100, 120, 2, 3.0, None)
    line = render("mixed", snap)
    assert "[##########..........]" in line and "1.5/3.0 s" in line
    assert "120 ops" in line and "80 ops/s" in line and "2 errors" in line
    counted = render("batch", Snapshot(1.0, 25, 50, 0, None, 100))
    assert "25/100 steps" in counted and "25%" in counted

    out = io.StringIO()
    bar = ProgressBar("mixed", out, live=True)
    bar(snap)
    bar(Snapshot(3.0, 200, 240, 2, 3.0, None, final=True))
    text = out.getvalue()
    assert text.startswith("\r") and text.count("\r") == 2 and text.endswith("\n")
    logged = io.StringIO()
    log_bar = ProgressBar("mixed", logged, live=False)
    log_bar(snap)
    log_bar(snap)  # within the second: skipped
    log_bar(Snapshot(3.0, 200, 240, 2, 3.0, None, final=True))
    assert logged.getvalue().count("\n") == 2 and "\r" not in logged.getvalue()


# --------------------------------------------------------------------------- capacity


def test_capacity_meter_sums_units_and_prices() -> None:
    meter = CapacityMeter()
    assert meter.before("GetItem", {"TableName": "t"})["ReturnConsumedCapacity"] == "TOTAL"
    kept = {"TableName": "t", "ReturnConsumedCapacity": "INDEXES"}
    assert meter.before("PutItem", kept) is kept
    assert "ReturnConsumedCapacity" not in meter.before("DescribeTable", {"TableName": "t"})
    meter.after("GetItem", {}, {"ConsumedCapacity": {"TableName": "a", "CapacityUnits": 0.5}})
    meter.after("PutItem", {}, {"ConsumedCapacity": {"TableName": "a", "CapacityUnits": 2.0}})
    meter.after(
        "BatchWriteItem",
        {},
        {"ConsumedCapacity": [{"TableName": "a", "CapacityUnits": 3}, {"TableName": "b"}]},
    )
    meter.after(
        "TransactWriteItems",
        {},
        {"ConsumedCapacity": [{"TableName": "b", "ReadCapacityUnits": 1, "WriteCapacityUnits": 4}]},
    )
    meter.after("GetItem", {}, {})  # a backend that does not report
    meter.after("DescribeTable", {}, {"ConsumedCapacity": {"CapacityUnits": 9}})  # not metered
    report = meter.report()
    assert report.read_units == 1.5 and report.write_units == 9.0
    assert report.by_table == {"a": {"read": 0.5, "write": 5.0}, "b": {"read": 1.0, "write": 4.0}}
    assert report.metered_requests == 5
    assert report.by_operation["GetItem"] == {
        "requests": 2,
        "read": 0.5,
        "write": 0.0,
        "usd": pytest.approx(0.5 * 0.125 / 1e6),
    }
    assert report.by_operation["TransactWriteItems"]["read"] == 1.0
    assert report.estimated_cost_usd == pytest.approx((1.5 * 0.125 + 9.0 * 0.625) / 1e6)
    assert report.to_json()["pricing"]["usd_per_million_writes"] == 0.625


def test_open_meter_prefers_the_toolkit_cost_meter() -> None:
    meter = open_meter()
    if importlib.util.find_spec("dynamorm_async.cost") is None:
        assert isinstance(meter, CapacityMeter)
    else:
        assert isinstance(meter, CostMeterAdapter)
        assert meter.report().source == "dynamorm_async.cost.CostMeter"


# --------------------------------------------------------------------------- engine


class SleepScenario(Scenario):
    """A workload of timed sleeps: it exercises the engine without a server."""

    name = "sleep"

    def __init__(self, pause: float = 0.005, fail_every: int = 0, crash_at: int = 0) -> None:
        super().__init__(ScenarioSettings())
        self.pause = pause
        self.fail_every = fail_every
        self.crash_at = crash_at
        self.calls = 0

    async def step(self, rng: random.Random) -> list[Sample]:
        self.calls += 1
        if self.crash_at and self.calls == self.crash_at:
            raise ZeroDivisionError("scenario bug")
        _, sample = await timed("sleep", asyncio.sleep(self.pause * rng.uniform(0.5, 1.5)))
        if self.fail_every and self.calls % self.fail_every == 0:
            return [sample, Sample("fail", 0.001, "ThrottlingException")]
        return [sample]


async def test_engine_stops_at_count_exactly() -> None:
    scenario = SleepScenario(fail_every=10)
    out = await LoadEngine(scenario, concurrency=8, count=101).run()
    assert out.steps == 101 and scenario.calls == 101
    assert out.stopped_by == "count"
    assert out.stats.recorders["sleep"].count == 101
    assert out.stats.errors_by_class() == {"ThrottlingException": 10}


async def test_engine_stops_at_duration() -> None:
    snaps: list[Snapshot] = []
    start = time.perf_counter()
    out = await LoadEngine(
        SleepScenario(), concurrency=4, duration=0.6, progress=snaps.append, progress_interval=0.1
    ).run()
    took = time.perf_counter() - start
    assert out.stopped_by == "duration"
    assert 0.6 <= out.elapsed < 1.5 and took < 2.0  # loose: the machine may be busy
    assert out.steps > 50
    assert snaps[-1].final and snaps[-1].steps == out.steps and len(snaps) >= 4


async def test_engine_graceful_stop_then_cancel() -> None:
    engine = LoadEngine(SleepScenario(pause=0.05), concurrency=4, duration=60)
    task = asyncio.create_task(engine.run())
    await asyncio.sleep(0.3)
    engine.stop()
    out = await asyncio.wait_for(task, 2)
    assert out.stopped_by == "interrupt" and out.elapsed < 2.0
    assert out.steps == out.stats.recorders["sleep"].count  # in-flight steps finished

    slow = LoadEngine(SleepScenario(pause=30), concurrency=2, duration=60)
    task = asyncio.create_task(slow.run())
    await asyncio.sleep(0.2)
    slow.stop()  # graceful: would wait up to drain_timeout
    await asyncio.sleep(0.1)
    slow.stop()  # second time: cancel in-flight steps now
    out = await asyncio.wait_for(task, 2)
    assert out.stopped_by == "interrupt" and out.steps == 0


async def test_engine_raises_scenario_bugs() -> None:
    with pytest.raises(ZeroDivisionError):
        await LoadEngine(SleepScenario(crash_at=20), concurrency=4, duration=30).run()


def test_engine_needs_a_bound() -> None:
    with pytest.raises(ValueError, match="bounded"):
        LoadEngine(SleepScenario(), concurrency=1)
    with pytest.raises(ValueError):
        LoadEngine(SleepScenario(), concurrency=0, count=1)


def test_scenario_registry() -> None:
    assert set(SCENARIOS) == {"mixed", "batch", "payments"}
    assert make_scenario("mixed", ScenarioSettings()).name == "mixed"
    with pytest.raises(ValueError, match="unknown scenario"):
        make_scenario("nope", ScenarioSettings())
    assert make_scenario("payments", ScenarioSettings()).name == "payments"
