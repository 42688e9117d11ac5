"""One whole load test: tables, scenario setup, the timed run under a capacity meter,
teardown. :func:`run_load_test` is what the command line calls; tests call it too.

>>> result = await run_load_test(LoadTestConfig(endpoint=url, scenario="mixed", duration=3))
>>> result.outcome.stats.summary()

Tables: the runner ensures the scenario's tables under ``table_prefix`` and, unless
``keep_tables``, deletes afterwards exactly the ones it created (never a table that was
there before).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import resource
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from ..binding import Binding
from ..db import Database
from ..pool import ClientPool
from ..tables import delete_table, ensure_table
from ..wire.retry import RetryPolicy
from .capacity import CapacityReport, open_meter
from .engine import LoadEngine, RunOutcome, Snapshot
from .scenarios import make_scenario
from .scenarios.base import ScenarioSettings

__all__ = ["LoadTestConfig", "LoadTestResult", "run_load_test"]


@attrs.frozen
class LoadTestConfig:
    """The parameters of a run (the command-line options).

    ``duration`` (seconds) and/or ``count`` (steps) bound the run; with neither it lasts
    30 s. ``max_attempts`` overrides the client's retry attempts (1: no retries, so every
    throttle or 5xx shows as an error). ``drain_timeout``: seconds in-flight steps get
    after the bound.
    """

    endpoint: str
    scenario: str = "mixed"
    region: str = "us-east-1"
    concurrency: int = 16
    duration: float | None = None
    count: int | None = None
    seed: int = 1
    table_prefix: str = "loadtest-"
    keep_tables: bool = False
    max_attempts: int | None = None
    drain_timeout: float = 10.0
    settings: ScenarioSettings = attrs.field(factory=ScenarioSettings)

    @property
    def bounded_duration(self) -> float | None:
        """The duration bound in effect (30 s when neither bound is given)."""
        if self.duration is None and self.count is None:
            return 30.0
        return self.duration

    def parameters(self) -> dict[str, Any]:
        """The run parameters, for the JSON result."""
        return {
            "scenario": self.scenario,
            "endpoint": self.endpoint,
            "region": self.region,
            "concurrency": self.concurrency,
            "duration_s": self.bounded_duration,
            "count": self.count,
            "seed": self.seed,
            "table_prefix": self.table_prefix,
            "keep_tables": self.keep_tables,
            "max_attempts": self.max_attempts,
            "drain_timeout_s": self.drain_timeout,
        }


@attrs.frozen
class LoadTestResult:
    """Everything a run produced (see :mod:`.report` for the JSON and the summary)."""

    config: LoadTestConfig
    scenario_parameters: dict[str, Any]
    started_at: dt.datetime
    setup_seconds: float
    outcome: RunOutcome
    capacity: CapacityReport
    tables_created: tuple[str, ...]
    tables_deleted: tuple[str, ...]
    client_cpu_seconds: float = 0.0


def _cpu_seconds() -> float:
    """CPU time of this process (user + system); servers run in other processes."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def _stop_on_signals(engine: LoadEngine) -> Iterator[None]:
    """SIGINT/SIGTERM stop the engine gracefully (a second one cancels in-flight steps)."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, engine.stop)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            continue
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def run_load_test(
    config: LoadTestConfig,
    *,
    progress: Callable[[Snapshot], None] | None = None,
    progress_interval: float = 0.25,
    handle_signals: bool = False,
    on_engine: Callable[[LoadEngine], None] | None = None,
) -> LoadTestResult:
    """Run one load test against ``config.endpoint``.

    ``progress`` receives a :class:`~.engine.Snapshot` every ``progress_interval``
    seconds. ``handle_signals`` makes Ctrl-C (SIGINT) and SIGTERM stop the run cleanly
    (the command line sets it). ``on_engine`` sees the engine before it starts (to stop
    it from outside). Raises :class:`~.scenarios.base.ScenarioUnavailable` before
    connecting if the scenario cannot run here.
    """
    scenario = make_scenario(config.scenario, attrs.evolve(config.settings, seed=config.seed))
    retry = None if config.max_attempts is None else RetryPolicy(max_attempts=config.max_attempts)
    started_at = dt.datetime.now(dt.UTC)
    created: list[tuple[type[Any], str]] = []
    deleted: list[str] = []
    async with ClientPool(connection_limit=max(64, config.concurrency), retry=retry) as pool:
        client = pool.client(config.endpoint, config.region)
        binding = Binding(client, config.table_prefix)
        try:
            setup_start = time.perf_counter()
            for entity_cls in scenario.entities:
                report = await ensure_table(binding, entity_cls, strict=True)
                if report.created:
                    created.append((entity_cls, report.name))
            await scenario.setup(Database(binding))
            setup_seconds = time.perf_counter() - setup_start
            engine = LoadEngine(
                scenario,
                concurrency=config.concurrency,
                duration=config.bounded_duration,
                count=config.count,
                seed=config.seed,
                drain_timeout=config.drain_timeout,
                progress=progress,
                progress_interval=progress_interval,
            )
            if on_engine is not None:
                on_engine(engine)
            signals = _stop_on_signals(engine) if handle_signals else contextlib.nullcontext()
            with signals, open_meter() as meter:
                cpu_start = _cpu_seconds()
                outcome = await engine.run()
                cpu = _cpu_seconds() - cpu_start
            capacity = meter.report()
        finally:
            await scenario.teardown()
            if not config.keep_tables:
                for entity_cls, name in created:
                    await delete_table(binding, entity_cls)
                    deleted.append(name)
    return LoadTestResult(
        config=config,
        scenario_parameters=scenario.parameters(),
        started_at=started_at,
        setup_seconds=setup_seconds,
        outcome=outcome,
        capacity=capacity,
        tables_created=tuple(name for _, name in created),
        tables_deleted=tuple(deleted),
        client_cpu_seconds=cpu,
    )
