"""``process_batch``: many payment requests, bounded concurrency, one result each.

>>> result = await processor.process_batch(requests, concurrency=32, progress=print)
>>> result.counts                      # {"ok": 950, "duplicate": 30, "declined": 20, ...}
>>> print(result.summary())            # counts, then consumed capacity and its cost

Each request is *processed*: created (idempotent by its key), authorized and, when
``request.capture``, captured, continuing from whatever state the payment is in. So a
batch that was killed midway (a deadline, a cancelled task, a crashed process) and is run
again with the same requests takes every payment exactly once and finishes the ones
left half-way. A request's result is

* ``ok``: this run created the payment;
* ``duplicate``: the payment existed already (``resumed`` says whether this run still
  had steps to do on it);
* ``declined``: this run created it and the authorizer declined it;
* ``error``: a toolkit error (bad request, unavailable merchant, deadline...), kept in
  ``error``; other exceptions are bugs and propagate.

The whole batch runs under a :class:`~dynamorm_async.cost.CostMeter` (capacity and cost
per table, operation and partner), returned with the results.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import attrs

from ..cost import CostMeter, partner_label
from ..errors import DynamormError, InvalidInput
from ..partners import PartnerRegistry
from .entities import Payment
from .errors import IllegalTransition
from .requests import PaymentRequest
from .states import PaymentStatus

if TYPE_CHECKING:
    from .processor import PaymentProcessor

__all__ = [
    "BatchProgress",
    "BatchResult",
    "ProgressFn",
    "RequestResult",
    "ResultStatus",
    "process_batch",
    "process_one",
]

_STEPS = 4  # create, authorize, capture, and one re-read if another worker moved it


class ResultStatus(enum.Enum):
    """What became of one request (see the module doc)."""

    OK = "ok"
    DUPLICATE = "duplicate"
    DECLINED = "declined"
    ERROR = "error"


@attrs.frozen
class RequestResult:
    """The result of request number ``index``: its status, the payment as it ended (if
    any), the error (for ``error``), and for duplicates whether steps were resumed."""

    index: int
    request: PaymentRequest
    status: ResultStatus
    payment: Payment | None = None
    error: DynamormError | None = None
    resumed: bool = False

    @property
    def ok(self) -> bool:
        """True unless the status is ``error``."""
        return self.status is not ResultStatus.ERROR


@attrs.frozen
class BatchProgress:
    """Where a batch is: ``done`` of ``total`` requests, counts by status, seconds spent."""

    done: int
    total: int
    counts: dict[str, int]
    elapsed: float


#: ``progress(BatchProgress)`` after each request.
ProgressFn = Callable[[BatchProgress], None]


@attrs.frozen
class BatchResult:
    """The results in request order, the meter that saw every request, and wall time."""

    results: list[RequestResult]
    cost: CostMeter
    elapsed: float

    @property
    def counts(self) -> dict[str, int]:
        """Requests per status (every status listed, zeros included)."""
        seen = Counter(r.status for r in self.results)
        return {s.value: seen.get(s, 0) for s in ResultStatus}

    @property
    def errors(self) -> list[RequestResult]:
        """The results with status ``error``."""
        return [r for r in self.results if r.status is ResultStatus.ERROR]

    def summary(self) -> str:
        """Counts, throughput and the cost table."""
        n = len(self.results)
        rate = n / self.elapsed if self.elapsed > 0 else 0.0
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        total = self.cost.total()
        return (
            f"{n} requests in {self.elapsed:.2f} s ({rate:,.0f}/s): {counts}\n"
            f"{total.requests} DynamoDB requests, {total.read_units:g} RCU, "
            f"{total.write_units:g} WCU, ${self.cost.cost():.6f}\n\n" + self.cost.report()
        )


async def process_one(proc: PaymentProcessor, index: int, request: PaymentRequest) -> RequestResult:
    """Create, authorize and capture ``request``'s payment from wherever it stands."""
    try:
        created = await proc.create(request)
        payment, steps = created.payment, 0
        for _ in range(_STEPS):
            try:
                if payment.status is PaymentStatus.PENDING:
                    payment = await proc.authorize(payment, request_id=request.idempotency_key)
                elif payment.status is PaymentStatus.AUTHORIZED and request.capture:
                    payment = await proc.capture(payment, request_id=request.idempotency_key)
                else:
                    break
                steps += 1
            except IllegalTransition:  # another worker moved it on: continue from there
                payment = await proc.get_or_raise(payment.payment_id)
    except DynamormError as exc:
        return RequestResult(index, request, ResultStatus.ERROR, error=exc)
    if created.duplicate:
        return RequestResult(index, request, ResultStatus.DUPLICATE, payment, resumed=steps > 0)
    status = ResultStatus.DECLINED if payment.status is PaymentStatus.FAILED else ResultStatus.OK
    return RequestResult(index, request, status, payment)


async def process_batch(
    proc: PaymentProcessor,
    requests: Sequence[PaymentRequest],
    *,
    concurrency: int = 16,
    progress: ProgressFn | None = None,
    meter: CostMeter | None = None,
) -> BatchResult:
    """Process ``requests`` with at most ``concurrency`` in flight (see the module doc).

    ``meter`` collects the capacity (a new :class:`CostMeter` by default, labelled by
    partner when the processor's database is bound to a partner registry).
    """
    if concurrency < 1:
        raise InvalidInput("concurrency must be >= 1")
    if meter is None:
        source = proc.db.source
        label = partner_label(source) if isinstance(source, PartnerRegistry) else None
        meter = CostMeter(label_fn=label)
    total = len(requests)
    results: list[RequestResult | None] = [None] * total
    counts: Counter[str] = Counter()
    todo = iter(enumerate(requests))
    start = time.perf_counter()

    async def worker() -> None:
        for index, request in todo:
            result = await process_one(proc, index, request)
            results[index] = result
            counts[result.status.value] += 1
            if progress is not None:
                done = sum(counts.values())
                snapshot = {s.value: counts[s.value] for s in ResultStatus}
                progress(BatchProgress(done, total, snapshot, time.perf_counter() - start))

    with meter:
        async with asyncio.TaskGroup() as tasks:
            for _ in range(min(concurrency, total)):
                tasks.create_task(worker())
    finished = [r for r in results if r is not None]
    return BatchResult(finished, meter, time.perf_counter() - start)
