"""The scenario interface of the load test.

A scenario declares the entities whose tables it needs (the runner creates the missing
ones and deletes only those afterwards), prepares data in :meth:`Scenario.setup`, and
performs one unit of work per :meth:`Scenario.step`, returning one :class:`Sample` per
timed operation. Workers call ``step`` concurrently, each with its own seeded
``random.Random``.

>>> class Ping(Scenario):
...     name = "ping"
...     async def step(self, rng):
...         _, sample = await timed("get", self.repo.get(pk=str(rng.randrange(10))))
...         return [sample]
"""

from __future__ import annotations

import abc
import random
import time
from collections.abc import Awaitable
from typing import Any, ClassVar, TypeVar

import attrs

from ...db import Database
from ...errors import DynamoDBError, DynamormError

__all__ = [
    "Sample",
    "Scenario",
    "ScenarioSettings",
    "ScenarioUnavailable",
    "error_label",
    "timed",
]

T = TypeVar("T")


class ScenarioUnavailable(DynamormError):
    """The scenario cannot run in this installation (a component it needs is missing)."""


@attrs.frozen
class Sample:
    """One timed operation: its name, latency in seconds, the error class label
    (``None`` when it succeeded) and when it ended (``time.perf_counter()``; ``None``
    means "when the step returned")."""

    operation: str
    latency: float
    error: str | None = None
    ended: float | None = None


@attrs.frozen
class ScenarioSettings:
    """The scenario options of the command line (each scenario reads what it uses).

    ``read_ratio``: share of reads in ``mixed``; ``keys``: size of the key space;
    ``item_size``: payload bytes per item; ``batch_size``: items per batch in ``batch``.
    """

    read_ratio: float = 0.8
    keys: int = 1000
    item_size: int = 200
    batch_size: int = 25
    seed: int = 1


def error_label(exc: BaseException) -> str:
    """The error class name used in reports; a generic DynamoDB error adds its code."""
    name = type(exc).__name__
    if type(exc) is DynamoDBError and exc.code:
        return f"{name}({exc.code})"
    return name


async def timed(operation: str, work: Awaitable[T]) -> tuple[T | None, Sample]:
    """Await ``work`` and time it. A toolkit error (:class:`DynamormError`) becomes the
    sample's error and the result ``None``; any other exception propagates (a bug in
    the scenario stops the run instead of being counted)."""
    start = time.perf_counter()
    try:
        result = await work
    except DynamormError as exc:
        end = time.perf_counter()
        return None, Sample(operation, end - start, error_label(exc), end)
    end = time.perf_counter()
    return result, Sample(operation, end - start, None, end)


class Scenario(abc.ABC):
    """A load-test workload. Subclasses set :attr:`name` and :attr:`description`,
    list the entities whose tables they need in :attr:`entities`, and implement
    :meth:`step`."""

    #: The ``--scenario`` name.
    name: ClassVar[str]
    #: One line for ``--help`` and the report.
    description: ClassVar[str] = ""
    #: Entity classes whose tables the runner ensures before :meth:`setup`.
    entities: ClassVar[tuple[type[Any], ...]] = ()

    def __init__(self, settings: ScenarioSettings) -> None:
        self.settings = settings

    async def setup(self, db: Database) -> None:  # noqa: B027 (optional hook)
        """Prepare data before the timed run (not timed, not metered)."""

    @abc.abstractmethod
    async def step(self, rng: random.Random) -> list[Sample]:
        """Do one unit of work and return a sample per timed operation."""

    async def teardown(self) -> None:  # noqa: B027 (optional hook)
        """Release what :meth:`setup` acquired (tables are the runner's business)."""

    def parameters(self) -> dict[str, Any]:
        """The scenario's parameters, recorded in the JSON result."""
        return {}
