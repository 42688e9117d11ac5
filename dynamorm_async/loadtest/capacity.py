"""Consumed capacity of a load test, collected through a :mod:`dynamorm_async.hooks` observer.

:class:`CapacityMeter` asks every metered request for ``ReturnConsumedCapacity=TOTAL``
(unless the request already asks for something) and sums the ``ConsumedCapacity`` of
each answer into read and write request units, per table.

This is the load test's own small meter. The toolkit-wide ``CostMeter``
(``dynamorm_async.cost``) is the seam's other side: :func:`open_meter` is the one place
that picks the meter, and :class:`CapacityReport` is what the rest of the load test
reads, whichever meter produced it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Protocol

import attrs

from ..hooks import observing

__all__ = [
    "PRICE_PER_MILLION_READS",
    "PRICE_PER_MILLION_WRITES",
    "CapacityMeter",
    "CapacityReport",
    "Meter",
    "open_meter",
]

#: On-demand price (USD) per million read request units, us-east-1 (since November 2024).
PRICE_PER_MILLION_READS = 0.125
#: On-demand price (USD) per million write request units, us-east-1 (since November 2024).
PRICE_PER_MILLION_WRITES = 0.625

_READS = frozenset(
    {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "ExecuteStatement"}
)
_WRITES = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "BatchExecuteStatement",
        "ExecuteTransaction",
    }
)


@attrs.frozen
class CapacityReport:
    """Request units consumed in a run and their estimated on-demand cost.

    ``by_table`` maps a table name to ``{"read": units, "write": units}``;
    ``metered_requests`` counts the answers that carried ``ConsumedCapacity`` (a backend
    that never reports it shows 0 here and 0 units); ``source`` names the meter.
    """

    read_units: float
    write_units: float
    by_table: dict[str, dict[str, float]]
    metered_requests: int
    estimated_cost_usd: float
    price_per_million_reads: float
    price_per_million_writes: float
    source: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "read_units": round(self.read_units, 3),
            "write_units": round(self.write_units, 3),
            "by_table": {
                t: {k: round(v, 3) for k, v in units.items()}
                for t, units in sorted(self.by_table.items())
            },
            "metered_requests": self.metered_requests,
            "estimated_cost_usd": self.estimated_cost_usd,
            "pricing": {
                "mode": "on-demand",
                "usd_per_million_reads": self.price_per_million_reads,
                "usd_per_million_writes": self.price_per_million_writes,
            },
            "source": self.source,
        }


class Meter(Protocol):
    """What the runner needs from a meter: a context manager that observes requests made
    in its scope, and a report afterwards."""

    def __enter__(self) -> Any:
        """Start observing (in the current context and the tasks created in it)."""
        ...

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> Any:
        """Stop observing."""
        ...

    def report(self) -> CapacityReport:
        """What was consumed while observing."""
        ...


class CapacityMeter:
    """A :class:`~dynamorm_async.hooks.RequestObserver` summing consumed capacity.

    >>> with CapacityMeter() as meter:
    ...     await repo.get(...)
    >>> meter.report().read_units
    """

    def __init__(
        self,
        *,
        price_per_million_reads: float = PRICE_PER_MILLION_READS,
        price_per_million_writes: float = PRICE_PER_MILLION_WRITES,
    ) -> None:
        self.price_per_million_reads = price_per_million_reads
        self.price_per_million_writes = price_per_million_writes
        self.by_table: dict[str, dict[str, float]] = {}
        self.metered_requests = 0
        self._scope: AbstractContextManager[Any] | None = None

    # ------------------------------------------------------------------ observer

    def before(self, operation: str, request: Mapping[str, Any]) -> Mapping[str, Any]:
        """Ask for the total consumed capacity on operations that can report it."""
        if (operation in _READS or operation in _WRITES) and (
            "ReturnConsumedCapacity" not in request
        ):
            return {**request, "ReturnConsumedCapacity": "TOTAL"}
        return request

    def after(
        self, operation: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        """Add the answer's ``ConsumedCapacity`` (one entry, or one per table)."""
        consumed = response.get("ConsumedCapacity")
        if not consumed:
            return
        entries = consumed if isinstance(consumed, list) else [consumed]
        self.metered_requests += 1
        for entry in entries:
            self._add(operation, entry)

    def _add(self, operation: str, entry: Mapping[str, Any]) -> None:
        table = str(entry.get("TableName", "?"))
        units = self.by_table.setdefault(table, {"read": 0.0, "write": 0.0})
        read = entry.get("ReadCapacityUnits")
        write = entry.get("WriteCapacityUnits")
        if read is not None or write is not None:  # a detailed answer splits them
            units["read"] += float(read or 0.0)
            units["write"] += float(write or 0.0)
            return
        total = float(entry.get("CapacityUnits") or 0.0)
        units["write" if operation in _WRITES else "read"] += total

    # ------------------------------------------------------------------ scope

    def __enter__(self) -> CapacityMeter:
        if self._scope is not None:
            raise RuntimeError("this CapacityMeter is already observing")
        self._scope = observing(self)
        self._scope.__enter__()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        scope, self._scope = self._scope, None
        if scope is not None:
            scope.__exit__(et, e, tb)

    # ------------------------------------------------------------------ report

    def report(self) -> CapacityReport:
        """Totals so far and their estimated on-demand cost."""
        reads = sum(u["read"] for u in self.by_table.values())
        writes = sum(u["write"] for u in self.by_table.values())
        cost = (reads * self.price_per_million_reads + writes * self.price_per_million_writes) / 1e6
        return CapacityReport(
            read_units=reads,
            write_units=writes,
            by_table={t: dict(u) for t, u in self.by_table.items()},
            metered_requests=self.metered_requests,
            estimated_cost_usd=cost,
            price_per_million_reads=self.price_per_million_reads,
            price_per_million_writes=self.price_per_million_writes,
            source="dynamorm_async.loadtest.capacity.CapacityMeter",
        )


def open_meter() -> Meter:
    """The meter a load test uses.

    The load test's own :class:`CapacityMeter` until ``dynamorm_async.cost.CostMeter``
    is wired in here (the only place that needs to change).
    """
    return CapacityMeter()
