"""The async load test of dynamorm-async: ``python -m dynamorm_async.loadtest``.

Runs a scenario (``mixed``, ``batch``, ``payments``) with N concurrent workers for a
duration or a number of steps, shows a live progress line, and ends with latency
percentiles per operation, throughput, errors by class and consumed capacity with its
estimated cost, written as JSON and as a PNG latency plot.

Modules: :mod:`.cli` (options), :mod:`.runner` (one whole run), :mod:`.engine`
(workers and bounds), :mod:`.stats` (exact percentiles), :mod:`.capacity` (consumed
capacity), :mod:`.report` (JSON and summary), :mod:`.plot` and :mod:`.raster` (PNG),
:mod:`.progress`, and :mod:`.scenarios` (one module per scenario).
"""

from __future__ import annotations

from .capacity import CapacityMeter, CapacityReport
from .engine import LoadEngine, RunOutcome, Snapshot
from .runner import LoadTestConfig, LoadTestResult, run_load_test
from .scenarios import Sample, Scenario, ScenarioSettings, ScenarioUnavailable, timed
from .stats import LatencyRecorder, OperationStats, RunStats, percentile

__all__ = [
    "CapacityMeter",
    "CapacityReport",
    "LatencyRecorder",
    "LoadEngine",
    "LoadTestConfig",
    "LoadTestResult",
    "OperationStats",
    "RunOutcome",
    "RunStats",
    "Sample",
    "Scenario",
    "ScenarioSettings",
    "ScenarioUnavailable",
    "Snapshot",
    "percentile",
    "run_load_test",
    "timed",
]
