"""The load engine: ``concurrency`` workers calling a scenario's ``step`` until a bound.

A run stops by itself when ``duration`` seconds have passed or ``count`` steps have been
started (whichever comes first), or when :meth:`LoadEngine.stop` is called (Ctrl-C).
Stopping is graceful: workers start no new step and in-flight steps get
``drain_timeout`` seconds to finish (their requests run under a deadline that ends
then); a second :meth:`~LoadEngine.stop` cancels them at once. A scenario bug (an
exception other than a toolkit error) stops every worker and is raised from
:meth:`~LoadEngine.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Literal

import attrs

from ..deadlines import deadline
from .scenarios.base import Scenario
from .stats import RunStats

__all__ = ["LoadEngine", "RunOutcome", "Snapshot", "StopReason"]

#: Why a run ended.
StopReason = Literal["duration", "count", "interrupt", "error"]


@attrs.frozen
class Snapshot:
    """Progress of a run: seconds elapsed, steps finished, operations and errors so far,
    and the bounds (``duration`` seconds, ``count`` steps; ``None`` when unbounded)."""

    elapsed: float
    steps: int
    operations: int
    errors: int
    duration: float | None
    count: int | None
    final: bool = False

    @property
    def throughput(self) -> float:
        """Operations per second so far."""
        return self.operations / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def fraction(self) -> float:
        """How far the run is towards its nearest bound, 0..1."""
        parts = []
        if self.duration:
            parts.append(self.elapsed / self.duration)
        if self.count:
            parts.append(self.steps / self.count)
        return 1.0 if self.final else min(1.0, max(parts, default=0.0))


@attrs.frozen
class RunOutcome:
    """What the engine measured: samples, steps finished, elapsed seconds and why it stopped."""

    stats: RunStats
    steps: int
    elapsed: float
    stopped_by: StopReason


class LoadEngine:
    """Runs ``scenario`` with ``concurrency`` workers, each with ``random.Random`` seeded
    from ``seed`` and its index. ``progress`` is called every ``progress_interval``
    seconds (and once at the end) with a :class:`Snapshot`."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        concurrency: int,
        duration: float | None = None,
        count: int | None = None,
        seed: int = 1,
        drain_timeout: float = 10.0,
        progress: Callable[[Snapshot], None] | None = None,
        progress_interval: float = 0.25,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if duration is None and count is None:
            raise ValueError("a run needs a duration or a count (it must be bounded)")
        if duration is not None and not duration > 0:
            raise ValueError("duration must be > 0 seconds")
        if count is not None and count < 1:
            raise ValueError("count must be >= 1")
        if drain_timeout < 0:
            raise ValueError("drain_timeout must be >= 0")
        self.scenario = scenario
        self.concurrency = concurrency
        self.duration = duration
        self.count = count
        self.seed = seed
        self.drain_timeout = drain_timeout
        self.progress = progress
        self.progress_interval = progress_interval
        self.stats = RunStats()
        self._started = 0  # steps handed out
        self._steps = 0  # steps finished
        self._operations = 0
        self._errors = 0
        self._t0 = 0.0
        self._halt = False
        self._stop_reason: StopReason | None = None
        self._stop_event: asyncio.Event | None = None
        self._workers: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ control

    def stop(self, reason: StopReason = "interrupt") -> None:
        """Stop gracefully; a call while already stopping cancels in-flight steps at once."""
        if self._halt:
            for task in self._workers:
                task.cancel()
            return
        self._begin_stop(reason)

    def _begin_stop(self, reason: StopReason) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
        self._halt = True
        if self._stop_event is not None:
            self._stop_event.set()

    def snapshot(self, final: bool = False) -> Snapshot:
        """Progress so far."""
        elapsed = time.perf_counter() - self._t0 if self._t0 else 0.0
        return Snapshot(
            elapsed,
            self._steps,
            self._operations,
            self._errors,
            self.duration,
            self.count,
            final,
        )

    # ------------------------------------------------------------------ run

    async def run(self) -> RunOutcome:
        """Run until a bound or :meth:`stop`; return what was measured."""
        self._stop_event = asyncio.Event()
        if self._stop_reason is not None:  # stopped before it started
            self._stop_event.set()
        self._t0 = time.perf_counter()
        end = None if self.duration is None else self._t0 + self.duration
        scope = (
            deadline(seconds=self.duration + self.drain_timeout)
            if self.duration is not None
            else contextlib.nullcontext()
        )
        with scope:  # worker tasks inherit the deadline of their requests
            self._workers = [
                asyncio.create_task(self._worker(i), name=f"loadtest-worker-{i}")
                for i in range(self.concurrency)
            ]
        ticker = asyncio.create_task(self._tick()) if self.progress is not None else None
        stopper = asyncio.create_task(self._stop_event.wait())
        try:
            reason = await self._wait_for_bound(end, stopper)
            self._begin_stop(reason)
            await self._drain()
        finally:
            for task in (*self._workers, stopper, *([ticker] if ticker else [])):
                task.cancel()
            await asyncio.gather(*self._workers, stopper, return_exceptions=True)
            if ticker is not None:
                await asyncio.gather(ticker, return_exceptions=True)
        elapsed = time.perf_counter() - self._t0
        if self.progress is not None:
            self.progress(self.snapshot(final=True))
        for task in self._workers:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise failure
        assert self._stop_reason is not None
        return RunOutcome(self.stats, self._steps, elapsed, self._stop_reason)

    async def _wait_for_bound(self, end: float | None, stopper: asyncio.Task[bool]) -> StopReason:
        live: set[asyncio.Task[None]] = set(self._workers)
        while True:
            timeout = None if end is None else max(0.0, end - time.perf_counter())
            done, _ = await asyncio.wait(
                {*live, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if stopper in done:
                return self._stop_reason or "interrupt"
            for task in done:
                live.discard(task)
                if not task.cancelled() and task.exception() is not None:
                    return "error"
            if not live:
                return "count" if self.count is not None else "duration"
            if end is not None and time.perf_counter() >= end:
                return "duration"

    async def _drain(self) -> None:
        pending = [t for t in self._workers if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.drain_timeout + 1.0)
            for task in late:
                task.cancel()

    async def _worker(self, index: int) -> None:
        rng = random.Random(self.seed * 1_000_003 + index)
        step = self.scenario.step
        stats = self.stats
        t0 = self._t0
        end = None if self.duration is None else t0 + self.duration
        while not self._halt:
            if self.count is not None:
                if self._started >= self.count:
                    return
            if end is not None and time.perf_counter() >= end:
                return
            self._started += 1
            samples = await step(rng)
            now = time.perf_counter()
            for s in samples:
                at = (s.ended if s.ended is not None else now) - t0
                stats.add(s.operation, at, s.latency, s.error)
                if s.error is not None:
                    self._errors += 1
            self._operations += len(samples)
            self._steps += 1

    async def _tick(self) -> None:
        assert self.progress is not None
        while True:
            await asyncio.sleep(self.progress_interval)
            self.progress(self.snapshot())
