"""What a batch did, item by item: :class:`BatchReport`, :class:`ItemResult`, :class:`BatchFailed`.

Nothing is silently dropped: every put, delete or get given to a batch has exactly one
:class:`ItemResult`, ``done`` or ``failed`` with a :class:`FailureReason` and the error.

A ``failed`` write is *not confirmed*: for reasons ``THROTTLED``, ``TRANSPORT`` and
``DEADLINE`` the request may still have been applied (its answer was lost or never
came). Puts and deletes are idempotent, so sending them again is safe.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, Generic, Literal, TypeVar

import attrs

from .attrvalue import Item
from .errors import (
    DeadlineExceeded,
    DecodeError,
    DynamormError,
    InvalidInput,
    ItemTooLarge,
    Throttled,
    TransportError,
    ValidationError,
)

__all__ = [
    "BatchFailed",
    "BatchGetResult",
    "BatchProgress",
    "BatchReport",
    "FailureReason",
    "ItemResult",
    "ProgressCallback",
    "ProgressTicker",
    "reason_for",
]

T = TypeVar("T")
Kind = Literal["put", "delete", "get"]


class FailureReason(enum.Enum):
    """Why one item of a batch failed."""

    #: Rejected before sending: it cannot be encoded or its key is bad.
    INVALID = "invalid"
    #: Over DynamoDB's 400 KB item limit (detected before sending).
    TOO_LARGE = "too_large"
    #: DynamoDB rejected it (``ValidationException``), isolated from the rest of its chunk.
    VALIDATION = "validation"
    #: Still throttled or unprocessed after every allowed attempt.
    THROTTLED = "throttled"
    #: The current deadline ran out before it was confirmed.
    DEADLINE = "deadline"
    #: The endpoint could not be reached, or answered garbage, after the client's retries.
    TRANSPORT = "transport"
    #: Any other DynamoDB error (missing table, access denied, ...).
    SERVICE = "service"
    #: A stored item read by a batch get does not decode into its entity.
    DECODE = "decode"


def reason_for(exc: BaseException) -> FailureReason:
    """The :class:`FailureReason` of an error (by class, never by message)."""
    if isinstance(exc, ItemTooLarge):
        return FailureReason.TOO_LARGE
    if isinstance(exc, InvalidInput):
        return FailureReason.INVALID
    if isinstance(exc, DecodeError):
        return FailureReason.DECODE
    if isinstance(exc, DeadlineExceeded):
        return FailureReason.DEADLINE
    if isinstance(exc, ValidationError):
        return FailureReason.VALIDATION
    if isinstance(exc, Throttled):
        return FailureReason.THROTTLED
    if isinstance(exc, TransportError):
        return FailureReason.TRANSPORT
    return FailureReason.SERVICE


class ItemResult:
    """The outcome of one item of a batch.

    ``index`` is its position in the request (puts first, then deletes; or the key's
    position for gets), ``kind`` is ``"put"``, ``"delete"`` or ``"get"``, ``entity`` its
    entity class, ``table`` and ``key`` (wire format) say where it went. ``status`` is
    ``"done"`` or ``"failed"``; a failed item has a ``reason`` and the ``error``.
    ``attempts`` counts how many requests carried it (retries of unprocessed items
    included). For gets, ``value`` is the entity found (``None`` if there is none).
    """

    __slots__ = (
        "attempts",
        "canon",
        "entity",
        "error",
        "index",
        "key",
        "kind",
        "payload",
        "reason",
        "size",
        "status",
        "table",
        "value",
    )

    def __init__(
        self,
        index: int,
        kind: Kind,
        entity: type[Any] | None,
        table: str,
        key: Item,
        canon: tuple[Hashable, ...] = (),
        payload: dict[str, Any] | None = None,
        size: int = 0,
    ) -> None:
        self.index = index
        self.kind: Kind = kind
        self.entity = entity
        self.table = table
        self.key = key
        self.status: Literal["pending", "done", "failed"] = "pending"
        self.reason: FailureReason | None = None
        self.error: BaseException | None = None
        self.attempts = 0
        self.value: Any = None
        #: Internal: identity for duplicate detection, the request entry, its JSON size.
        self.canon = canon
        self.payload = payload
        self.size = size

    @property
    def ok(self) -> bool:
        """True when the item is done."""
        return self.status == "done"

    def fail(self, exc: BaseException, reason: FailureReason | None = None) -> None:
        """Mark the item failed with ``exc`` (the reason is derived from it if not given)."""
        self.status = "failed"
        self.error = exc
        self.reason = reason or reason_for(exc)
        self.payload = None

    def done(self) -> None:
        """Mark the item done."""
        self.status = "done"
        self.payload = None

    def describe(self) -> str:
        """One line for messages: ``put Payment {...} in table: reason (error)``."""
        what = self.entity.__name__ if self.entity is not None else "item"
        line = f"#{self.index} {self.kind} {what} {self.key} in {self.table}"
        if self.status == "failed":
            line += f": {self.reason.value if self.reason else '?'} ({self.error})"
        return line

    def __repr__(self) -> str:
        return f"ItemResult({self.describe()}, status={self.status}, attempts={self.attempts})"


@attrs.frozen
class BatchProgress:
    """A progress tick: how many items are ``done`` and ``failed`` out of ``total``."""

    done: int
    failed: int
    total: int


#: Called (synchronously, from the event loop) after each chunk settles.
ProgressCallback = Callable[[BatchProgress], None]


class ProgressTicker:
    """Counts the items of a report as chunks settle and calls the progress callback."""

    def __init__(self, report: BatchReport, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.total = report.total
        self.failed = sum(1 for r in report.results if r.status == "failed")
        self.done = 0

    def settled(self, chunk: list[ItemResult]) -> None:
        """Count a settled chunk and report progress."""
        ok = sum(1 for i in chunk if i.status == "done")
        self.done += ok
        self.failed += len(chunk) - ok
        self.emit()

    def emit(self) -> None:
        """Call the callback with the current counts."""
        if self.callback is not None:
            self.callback(BatchProgress(self.done, self.failed, self.total))


class BatchReport:
    """Per-item outcome of a batch (``results`` in request order) plus counters.

    ``requests`` counts the batch requests this batch made (client-level retries of a
    request count once); ``unprocessed`` counts item deliveries DynamoDB answered as
    unprocessed (each was sent again, with backoff, while attempts and deadline allowed).
    """

    def __init__(self, results: Sequence[ItemResult] = ()) -> None:
        self.results: list[ItemResult] = list(results)
        self.requests = 0
        self.unprocessed = 0
        self.elapsed = 0.0

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[ItemResult]:
        return iter(self.results)

    @property
    def total(self) -> int:
        """How many items the batch held."""
        return len(self.results)

    @property
    def done(self) -> list[ItemResult]:
        """The items that are done."""
        return [r for r in self.results if r.status == "done"]

    @property
    def failed(self) -> list[ItemResult]:
        """The items that failed (never silently dropped)."""
        return [r for r in self.results if r.status != "done"]

    @property
    def ok(self) -> bool:
        """True when every item is done."""
        return all(r.status == "done" for r in self.results)

    def by_reason(self) -> collections.Counter[FailureReason]:
        """How many items failed for each reason."""
        return collections.Counter(r.reason for r in self.results if r.reason is not None)

    def raise_for_failures(self) -> None:
        """Raise :class:`BatchFailed` (carrying this report) if any item failed."""
        if not self.ok:
            raise BatchFailed(self)

    def extend(self, other: BatchReport) -> None:
        """Append ``other``'s results and add its counters (used by the batch writer)."""
        self.results.extend(other.results)
        self.requests += other.requests
        self.unprocessed += other.unprocessed
        self.elapsed += other.elapsed

    def summary(self) -> str:
        """``"1000 items: 998 done, 2 failed (too_large: 2); 41 requests"``."""
        failed = self.failed
        text = f"{self.total} items: {self.total - len(failed)} done, {len(failed)} failed"
        if failed:
            counts = ", ".join(f"{k.value}: {n}" for k, n in self.by_reason().items())
            text += f" ({counts})"
        return f"{text}; {self.requests} requests, {self.unprocessed} unprocessed"

    def __repr__(self) -> str:
        return f"BatchReport({self.summary()})"


class BatchFailed(DynamormError):
    """Some items of a batch failed. ``report`` has every item's outcome."""

    def __init__(self, report: BatchReport, limit: int = 5) -> None:
        self.report = report
        failed = report.failed
        lines = [r.describe() for r in failed[:limit]]
        if len(failed) > limit:
            lines.append(f"... and {len(failed) - limit} more")
        super().__init__(f"batch failed: {report.summary()}\n  " + "\n  ".join(lines))

    @property
    def failed(self) -> list[ItemResult]:
        """The failed items."""
        return self.report.failed


class BatchGetResult(Generic[T]):
    """What ``BatchExecutor.get`` found: ``items[i]`` is the entity for key *i* or ``None``.

    ``report`` holds each key's outcome (a key that failed, e.g. throttled past its
    retries, is ``None`` in ``items`` AND ``failed`` in the report, so "absent" and
    "unknown" are never confused).
    """

    def __init__(self, report: BatchReport) -> None:
        self.report = report

    @property
    def items(self) -> list[T | None]:
        """The entity found for each key, in key order (``None``: absent or failed)."""
        return [r.value for r in self.report.results]

    @property
    def found(self) -> list[T]:
        """The entities found, in key order."""
        return [r.value for r in self.report.results if r.value is not None]

    def __getitem__(self, index: int) -> T | None:
        value: T | None = self.report.results[index].value
        return value

    def __len__(self) -> int:
        return len(self.report.results)

    def raise_for_failures(self) -> None:
        """Raise :class:`BatchFailed` if any key could not be read."""
        self.report.raise_for_failures()
