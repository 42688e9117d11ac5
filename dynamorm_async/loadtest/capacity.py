"""Consumed capacity of a load test and its estimated cost.

:func:`open_meter` is the one place that picks the meter: the toolkit's
:class:`~dynamorm_async.cost.CostMeter` (per table, index, operation; price tables),
wrapped by :class:`CostMeterAdapter`; or, in an installation without
``dynamorm_async.cost``, this module's small :class:`CapacityMeter`. Both are
:mod:`dynamorm_async.hooks` observers and both give a :class:`CapacityReport`, which is
all the rest of the load test reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ..hooks import observing

if TYPE_CHECKING:
    from ..cost import CostMeter

__all__ = [
    "PRICE_PER_MILLION_READS",
    "PRICE_PER_MILLION_WRITES",
    "CapacityMeter",
    "CapacityReport",
    "CostMeterAdapter",
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

    ``by_table`` maps a table name to ``{"read": units, "write": units}`` (its indexes
    included); ``by_operation`` maps a DynamoDB operation to ``{"requests", "read",
    "write", "usd"}``; ``metered_requests`` counts the requests of operations that can
    report capacity; ``source`` names the meter and ``pricing`` the price table.
    """

    read_units: float
    write_units: float
    by_table: dict[str, dict[str, float]]
    by_operation: dict[str, dict[str, float]]
    metered_requests: int
    estimated_cost_usd: float
    price_per_million_reads: float
    price_per_million_writes: float
    pricing: str
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
            "by_operation": {
                op: {
                    k: (v if k == "requests" else round(v, 9 if k == "usd" else 3))
                    for k, v in u.items()
                }
                for op, u in sorted(self.by_operation.items())
            },
            "metered_requests": self.metered_requests,
            "estimated_cost_usd": self.estimated_cost_usd,
            "pricing": {
                "table": self.pricing,
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
        self.by_operation: dict[str, dict[str, float]] = {}
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
        if operation not in _READS and operation not in _WRITES:
            return
        self.metered_requests += 1
        per_op = self.by_operation.setdefault(operation, {"requests": 0, "read": 0.0, "write": 0.0})
        per_op["requests"] += 1
        consumed = response.get("ConsumedCapacity")
        if not consumed:
            return
        for entry in consumed if isinstance(consumed, list) else [consumed]:
            read, write = self._units(operation, entry)
            units = self.by_table.setdefault(
                str(entry.get("TableName", "?")), {"read": 0.0, "write": 0.0}
            )
            units["read"] += read
            units["write"] += write
            per_op["read"] += read
            per_op["write"] += write

    @staticmethod
    def _units(operation: str, entry: Mapping[str, Any]) -> tuple[float, float]:
        read = entry.get("ReadCapacityUnits")
        write = entry.get("WriteCapacityUnits")
        if read is not None or write is not None:  # a detailed answer splits them
            return float(read or 0.0), float(write or 0.0)
        total = float(entry.get("CapacityUnits") or 0.0)
        return (0.0, total) if operation in _WRITES else (total, 0.0)

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

    def _usd(self, read: float, write: float) -> float:
        return (read * self.price_per_million_reads + write * self.price_per_million_writes) / 1e6

    def report(self) -> CapacityReport:
        """Totals so far and their estimated on-demand cost."""
        reads = sum(u["read"] for u in self.by_table.values())
        writes = sum(u["write"] for u in self.by_table.values())
        return CapacityReport(
            read_units=reads,
            write_units=writes,
            by_table={t: dict(u) for t, u in self.by_table.items()},
            by_operation={
                op: {**u, "usd": self._usd(u["read"], u["write"])}
                for op, u in self.by_operation.items()
            },
            metered_requests=self.metered_requests,
            estimated_cost_usd=self._usd(reads, writes),
            price_per_million_reads=self.price_per_million_reads,
            price_per_million_writes=self.price_per_million_writes,
            pricing="us-east-1 on-demand, Standard, as of 2024-11-01",
            source="dynamorm_async.loadtest.capacity.CapacityMeter",
        )


class CostMeterAdapter:
    """A :class:`~dynamorm_async.cost.CostMeter` seen as a load-test :class:`Meter`."""

    def __init__(self, meter: CostMeter) -> None:
        self.meter = meter

    def __enter__(self) -> CostMeterAdapter:
        self.meter.__enter__()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.meter.__exit__(et, e, tb)

    def report(self) -> CapacityReport:
        """The meter's totals, per table and per operation, and their cost."""
        meter = self.meter
        prices = meter.prices
        total = meter.total()
        return CapacityReport(
            read_units=total.read_units,
            write_units=total.write_units,
            by_table={
                str(t): {"read": u.read_units, "write": u.write_units}
                for t, u in meter.by("table").items()
            },
            by_operation={
                str(op): {
                    "requests": u.requests,
                    "read": u.read_units,
                    "write": u.write_units,
                    "usd": u.cost(prices),
                }
                for op, u in meter.by("operation").items()
            },
            metered_requests=total.requests,
            estimated_cost_usd=meter.cost(),
            price_per_million_reads=prices.read_unit_price() * 1e6,
            price_per_million_writes=prices.write_unit_price() * 1e6,
            pricing=str(getattr(prices, "label", type(prices).__name__)),
            source="dynamorm_async.cost.CostMeter",
        )


def open_meter() -> Meter:
    """The meter of a load test: the toolkit's ``CostMeter`` (on-demand us-east-1 prices),
    or :class:`CapacityMeter` where ``dynamorm_async.cost`` is not installed."""
    try:
        from ..cost import CostMeter
    except ModuleNotFoundError as exc:
        if exc.name != "dynamorm_async.cost":
            raise
        return CapacityMeter()
    return CostMeterAdapter(CostMeter())
