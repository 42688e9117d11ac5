"""Capacity metering and cost estimates: :class:`CostMeter`.

>>> with CostMeter(label_fn=partner_label(registry)) as meter:
...     await payments.put(p)                      # ReturnConsumedCapacity=INDEXES added
...     async with registry.use("acme"):
...         await payments.get(key)
>>> meter.total()                                  # Usage(requests, read_units, write_units)
>>> meter.by("table"), meter.by("operation"), meter.by("partner")
>>> meter.cost(), meter.cost_per_request("PutItem"), meter.projected_monthly(50.0)
>>> print(meter.report())

While a meter is active (a contextvar scope, inherited by tasks created inside), every
data-plane request asks for ``ReturnConsumedCapacity=INDEXES`` and the capacity each
answer reports is added up per (table, index, operation, partner). An enclosing
observer (say an outer meter) still sees every request.

Prices: :data:`US_EAST_1_ON_DEMAND` and :data:`US_EAST_1_PROVISIONED` hold the public
us-east-1 prices of the DynamoDB Standard table class as of 2024-11-01 (the on-demand
price cut): on-demand $0.125 per million read request units and $0.625 per million
write request units; provisioned $0.00013 per RCU-hour and $0.00065 per WCU-hour.
Check https://aws.amazon.com/dynamodb/pricing/ and pass your own tables for other
regions, table classes or later prices. Storage, backups, streams and data transfer
are not estimated.

Requests that fail (a false condition, a cancelled transaction) are not metered:
DynamoDB reports no consumed capacity with errors, although it charges for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

import attrs

from .errors import InvalidInput
from .hooks import RequestObserver, current_observer, observing

__all__ = [
    "HOURS_PER_MONTH",
    "US_EAST_1_ON_DEMAND",
    "US_EAST_1_PROVISIONED",
    "CostMeter",
    "OnDemandPrices",
    "PriceTable",
    "ProvisionedPrices",
    "Usage",
    "UsageKey",
    "partner_label",
]

#: Hours in a billing month, as AWS's pricing examples count them.
HOURS_PER_MONTH = 730.0

#: Operations that accept ``ReturnConsumedCapacity`` and how they consume capacity.
_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
_PARTIQL = frozenset({"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"})
_METERED = _READS | _WRITES | _PARTIQL
_PARTIQL_WRITES = ("INSERT", "UPDATE", "DELETE")

Dimension = Literal["table", "index", "operation", "partner"]


class PriceTable(Protocol):
    """Turns capacity units into US dollars."""

    def read_unit_price(self) -> float:
        """USD per read unit (RCU or RRU) consumed."""
        ...

    def write_unit_price(self) -> float:
        """USD per write unit (WCU or WRU) consumed."""
        ...


@attrs.frozen
class OnDemandPrices:
    """On-demand prices: USD per read and write request unit."""

    read_request_unit: float = 0.125 / 1e6
    write_request_unit: float = 0.625 / 1e6
    label: str = "us-east-1 on-demand, Standard, as of 2024-11-01"

    def read_unit_price(self) -> float:
        """USD per read request unit."""
        return self.read_request_unit

    def write_unit_price(self) -> float:
        """USD per write request unit."""
        return self.write_request_unit


@attrs.frozen
class ProvisionedPrices:
    """Provisioned prices: USD per RCU-hour and WCU-hour, and the utilisation at which
    capacity is run (auto scaling typically targets 0.7).

    A unit consumed in one second takes one unit-second of capacity, so its price is
    ``hourly price / 3600 / utilization``.
    """

    rcu_hour: float = 0.00013
    wcu_hour: float = 0.00065
    utilization: float = attrs.field(default=1.0)
    label: str = "us-east-1 provisioned, Standard, as of 2024-11-01"

    @utilization.validator
    def _check(self, _: Any, value: float) -> None:
        if not 0 < value <= 1:
            raise InvalidInput("utilization must be in (0, 1]")

    def read_unit_price(self) -> float:
        """USD per RCU-second, at the utilisation."""
        return self.rcu_hour / 3600 / self.utilization

    def write_unit_price(self) -> float:
        """USD per WCU-second, at the utilisation."""
        return self.wcu_hour / 3600 / self.utilization


#: us-east-1 on-demand prices (Standard table class, 2024-11-01).
US_EAST_1_ON_DEMAND = OnDemandPrices()
#: us-east-1 provisioned prices (Standard table class, 2024-11-01), fully utilised.
US_EAST_1_PROVISIONED = ProvisionedPrices()


@attrs.frozen
class UsageKey:
    """Where capacity went: table, index (``None``: the table itself), operation, partner."""

    table: str
    index: str | None
    operation: str
    partner: str | None


@attrs.frozen
class Usage:
    """Capacity consumed: requests (counted once per call), read and write units."""

    requests: int = 0
    read_units: float = 0.0
    write_units: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.requests + other.requests,
            self.read_units + other.read_units,
            self.write_units + other.write_units,
        )

    def cost(self, prices: PriceTable = US_EAST_1_ON_DEMAND) -> float:
        """USD for this capacity."""
        return (
            self.read_units * prices.read_unit_price()
            + self.write_units * prices.write_unit_price()
        )


def partner_label(registry: Any) -> Callable[[], str | None]:
    """A ``label_fn`` naming the current partner of a
    :class:`~dynamorm_async.partners.PartnerRegistry` (``None`` outside any scope)."""

    def label() -> str | None:
        partner = registry.current()
        return None if partner is None else str(partner.name)

    return label


def _units(d: Mapping[str, Any], kind: str) -> tuple[float, float]:
    """(read, write) units of one capacity breakdown; ``kind`` classifies plain units."""
    read, write = d.get("ReadCapacityUnits"), d.get("WriteCapacityUnits")
    if read is not None or write is not None:
        return float(read or 0.0), float(write or 0.0)
    total = float(d.get("CapacityUnits") or 0.0)
    return (total, 0.0) if kind == "read" else (0.0, total)


class CostMeter:
    """Meters the capacity of every request made in its scope (see the module doc).

    ``prices`` is the default price table of the cost methods. ``label_fn`` names the
    partner of a request (called when its answer arrives); see :func:`partner_label`.
    Use it as ``with CostMeter() as meter:``; it can be entered again later to add to
    the same totals.
    """

    def __init__(
        self,
        *,
        prices: PriceTable = US_EAST_1_ON_DEMAND,
        label_fn: Callable[[], str | None] | None = None,
    ) -> None:
        self.prices = prices
        self.label_fn = label_fn
        self._units: dict[UsageKey, list[float]] = {}
        self._requests: dict[tuple[str, str | None], int] = {}
        self._scopes: list[AbstractContextManager[RequestObserver]] = []

    # ------------------------------------------------------------------ scope

    def __enter__(self) -> CostMeter:
        outer = current_observer()
        scope = observing(self if outer is None else _Chain(outer, self))
        scope.__enter__()
        self._scopes.append(scope)
        return self

    def __exit__(self, *exc: object) -> None:
        self._scopes.pop().__exit__(None, None, None)

    # ------------------------------------------------------------------ observer

    def before(self, operation: str, request: Mapping[str, Any]) -> Mapping[str, Any]:
        """Ask for per-index consumed capacity on metered operations."""
        if operation in _METERED and request.get("ReturnConsumedCapacity") != "INDEXES":
            return {**request, "ReturnConsumedCapacity": "INDEXES"}
        return request

    def after(
        self, operation: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        """Add the capacity the answer reports."""
        if operation not in _METERED:
            return
        partner = self.label_fn() if self.label_fn is not None else None
        rkey = (operation, partner)
        self._requests[rkey] = self._requests.get(rkey, 0) + 1
        consumed = response.get("ConsumedCapacity")
        if not consumed:
            return
        kind = _kind(operation, request)
        for entry in [consumed] if isinstance(consumed, Mapping) else consumed:
            self._add_entry(entry, operation, partner, kind)

    def _add_entry(
        self, entry: Mapping[str, Any], operation: str, partner: str | None, kind: str
    ) -> None:
        table = str(entry.get("TableName", "?"))
        indexes: list[tuple[str, Mapping[str, Any]]] = [
            (name, d)
            for group in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes")
            for name, d in (entry.get(group) or {}).items()
        ]
        base = entry.get("Table")
        if base is not None:
            parts: list[tuple[str | None, tuple[float, float]]] = [(None, _units(base, kind))]
        else:  # no breakdown: the table gets what the indexes did not
            tr, tw = _units(entry, kind)
            for _, d in indexes:
                ir, iw = _units(d, kind)
                tr, tw = tr - ir, tw - iw
            parts = [(None, (max(tr, 0.0), max(tw, 0.0)))]
        parts += [(name, _units(d, kind)) for name, d in indexes]
        for index, (r, w) in parts:
            slot = self._units.setdefault(UsageKey(table, index, operation, partner), [0.0, 0.0])
            slot[0] += r
            slot[1] += w

    # ------------------------------------------------------------------ results

    def rows(self) -> dict[UsageKey, Usage]:
        """Units per (table, index, operation, partner). Requests are counted in
        :meth:`total` and :meth:`by` (one request may touch several tables)."""
        return {k: Usage(0, r, w) for k, (r, w) in self._units.items()}

    def by(self, dimension: Dimension) -> dict[str | None, Usage]:
        """Usage grouped by ``"table"``, ``"index"``, ``"operation"`` or ``"partner"``.

        Requests are counted for ``operation`` and ``partner`` only (a request belongs
        to one of each, but may touch several tables and indexes).
        """
        if dimension not in ("table", "index", "operation", "partner"):
            raise InvalidInput(f"unknown dimension {dimension!r}")
        out: dict[str | None, Usage] = {}
        for k, (r, w) in self._units.items():
            g = getattr(k, dimension)
            out[g] = out.get(g, Usage()) + Usage(0, r, w)
        if dimension in ("operation", "partner"):
            for (op, partner), n in self._requests.items():
                g = op if dimension == "operation" else partner
                out[g] = out.get(g, Usage()) + Usage(n, 0.0, 0.0)
        return out

    def total(self) -> Usage:
        """All requests and units."""
        units = _sum(Usage(0, r, w) for r, w in self._units.values())
        return units + Usage(sum(self._requests.values()))

    def cost(self, prices: PriceTable | None = None, *, operation: str | None = None) -> float:
        """USD for everything metered (or one ``operation``)."""
        usage = self.total() if operation is None else self.by("operation").get(operation)
        return 0.0 if usage is None else usage.cost(prices or self.prices)

    def cost_per_request(
        self, operation: str | None = None, prices: PriceTable | None = None
    ) -> float:
        """Mean USD per request (of ``operation``, or of the whole mix)."""
        usage = self.total() if operation is None else self.by("operation").get(operation)
        if usage is None or usage.requests == 0:
            return 0.0
        return usage.cost(prices or self.prices) / usage.requests

    def projected_monthly(
        self,
        requests_per_second: float,
        prices: PriceTable | None = None,
        *,
        operation: str | None = None,
    ) -> float:
        """USD per month (730 h) at ``requests_per_second`` of the metered mix (or of one
        ``operation``)."""
        if requests_per_second < 0:
            raise InvalidInput("requests_per_second must be >= 0")
        per = self.cost_per_request(operation, prices)
        return per * requests_per_second * HOURS_PER_MONTH * 3600

    def reset(self) -> None:
        """Forget everything metered so far."""
        self._units.clear()
        self._requests.clear()

    def report(self, prices: PriceTable | None = None) -> str:
        """A markdown table of units and cost per (table, index, operation, partner)."""
        p = prices or self.prices
        lines = [
            "| table | index | operation | partner | RCU | WCU | USD |",
            "|---|---|---|---|---:|---:|---:|",
        ]
        for k, u in sorted(self.rows().items(), key=lambda kv: _sort_key(kv[0])):
            lines.append(
                f"| {k.table} | {k.index or '-'} | {k.operation} | {k.partner or '-'} "
                f"| {u.read_units:g} | {u.write_units:g} | {u.cost(p):.9f} |"
            )
        t = self.total()
        lines.append(
            f"| **total** ({t.requests} requests) | | | | {t.read_units:g} | "
            f"{t.write_units:g} | {t.cost(p):.9f} |"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        t = self.total()
        return f"CostMeter(requests={t.requests}, rcu={t.read_units:g}, wcu={t.write_units:g})"


def _sort_key(k: UsageKey) -> tuple[str, str, str, str]:
    return (k.table, k.index or "", k.operation, k.partner or "")


def _sum(usages: Iterable[Usage]) -> Usage:
    out = Usage()
    for u in usages:
        out = out + u
    return out


def _kind(operation: str, request: Mapping[str, Any]) -> str:
    if operation in _READS:
        return "read"
    if operation in _WRITES:
        return "write"
    statements = [request] if operation == "ExecuteStatement" else []
    statements += list(request.get("Statements") or request.get("TransactStatements") or [])
    writes = any(
        str(s.get("Statement", "")).lstrip().upper().startswith(_PARTIQL_WRITES) for s in statements
    )
    return "write" if writes else "read"


class _Chain:
    """Both an enclosing observer and a meter see each request (outer first)."""

    __slots__ = ("inner", "outer")

    def __init__(self, outer: RequestObserver, inner: RequestObserver) -> None:
        self.outer = outer
        self.inner = inner

    def before(self, operation: str, request: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.inner.before(operation, self.outer.before(operation, request))

    def after(
        self, operation: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        self.outer.after(operation, request, response)
        self.inner.after(operation, request, response)
