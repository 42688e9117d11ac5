"""Batch plumbing below the executor: duplicate handling, chunking, and resending
unprocessed items with backoff.

* :func:`dedupe` finds items with the same table and key (DynamoDB rejects a batch
  that holds two), raising :class:`~dynamorm_async.errors.DuplicateItem` that names
  them, or keeping the last.
* :class:`ChunkQueue` hands out items one request's worth at a time, within DynamoDB's
  limits (25 writes or 100 keys, 16 MB), encoding puts as they are taken.
* :func:`resend_unprocessed` retries what DynamoDB left unprocessed, with exponential
  backoff and full jitter (tenacity), bounded by attempts and by the current deadline.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Literal

import tenacity

from . import deadlines
from .batch_report import ItemResult
from .errors import DeadlineExceeded, DuplicateItem, InvalidInput, Throttled
from .wire.retry import RetryPolicy

if TYPE_CHECKING:
    from .client import DynamoClient

__all__ = [
    "MAX_GET_KEYS",
    "MAX_REQUEST_BYTES",
    "MAX_WRITE_ITEMS",
    "ChunkQueue",
    "Dedupe",
    "StillUnprocessed",
    "dedupe",
    "resend_unprocessed",
]

#: Most write requests in one BatchWriteItem.
MAX_WRITE_ITEMS = 25
#: Most keys in one BatchGetItem.
MAX_GET_KEYS = 100
#: DynamoDB's 16 MB request limit, less room for the request's own JSON framing.
MAX_REQUEST_BYTES = 16 * 1024 * 1024 - 64 * 1024

Dedupe = Literal["raise", "last"]


class StillUnprocessed(Throttled):
    """DynamoDB kept answering these items as unprocessed until attempts ran out."""


def dedupe(
    items: Sequence[ItemResult], mode: Dedupe
) -> tuple[list[ItemResult], list[tuple[ItemResult, ItemResult]]]:
    """Split the pending ``items`` (failed ones are left out) into those to send and
    ``(superseded, winner)`` pairs.

    With ``mode="raise"`` any duplicate raises :class:`DuplicateItem` naming every
    duplicated key and the positions that hold it. With ``"last"`` the last item of each
    key is sent and the earlier ones are superseded by it.
    """
    if mode not in ("raise", "last"):
        raise InvalidInput(f"dedupe must be 'raise' or 'last', not {mode!r}")
    seen: dict[Hashable, ItemResult] = {}
    dups: dict[Hashable, list[ItemResult]] = {}
    for item in items:
        if item.status != "pending":
            continue
        first = seen.get(item.canon)
        if first is None:
            seen[item.canon] = item
            continue
        dups.setdefault(item.canon, [first]).append(item)
        seen[item.canon] = item
    if not dups:
        return [i for i in items if i.status == "pending"], []
    if mode == "raise":
        lines = [
            f"{group[0].table} {group[0].key}: "
            + ", ".join(f"#{i.index} ({i.kind})" for i in group)
            for group in list(dups.values())[:10]
        ]
        more = f"\n  ... and {len(dups) - 10} more keys" if len(dups) > 10 else ""
        raise DuplicateItem(
            f"{len(dups)} key(s) appear more than once in one batch (DynamoDB rejects that); "
            "pass dedupe='last' to keep the last write of each key:\n  " + "\n  ".join(lines) + more
        )
    superseded = [(i, group[-1]) for group in dups.values() for i in group[:-1]]
    losers = {id(i) for i, _ in superseded}
    return [i for i in items if i.status == "pending" and id(i) not in losers], superseded


class ChunkQueue:
    """Pending items, grouped by client, taken one request's worth at a time.

    ``take()`` returns a chunk of at most ``max_items`` items and ``max_bytes`` (by their
    ``size``) from one client's queue. Puts are encoded (``encode``) as they are taken, so
    the first requests go out while later items are still being encoded; an item that
    fails to encode is returned apart, already failed.
    """

    def __init__(
        self,
        groups: list[tuple[DynamoClient, list[ItemResult]]],
        max_items: int,
        encode: Callable[[ItemResult], Awaitable[None]],
        max_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self._groups = [(client, collections.deque(items)) for client, items in groups]
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._encode = encode

    async def take(self) -> tuple[DynamoClient, list[ItemResult], list[ItemResult]] | None:
        """``(client, chunk, failed)``, or ``None`` when every queue is empty."""
        for client, queue in self._groups:
            if not queue:
                continue
            chunk: list[ItemResult] = []
            failed: list[ItemResult] = []
            size = 0
            while queue and len(chunk) < self.max_items:
                item = queue.popleft()  # taken before any await: no other taker sees it
                if item.payload is None and item.kind == "put":
                    await self._encode(item)
                    if item.status != "pending":
                        failed.append(item)
                        continue
                if chunk and size + item.size > self.max_bytes:
                    queue.appendleft(item)  # starts the next chunk
                    break
                chunk.append(item)
                size += item.size
            return client, chunk, failed
        return None


class _Left(Exception):
    """Internal: some items are still unprocessed (tenacity retries on it)."""


async def resend_unprocessed(
    policy: RetryPolicy,
    left: list[ItemResult],
    send: Callable[[list[ItemResult]], Awaitable[list[ItemResult]]],
) -> list[ItemResult]:
    """Send ``left`` again (with ``send``, which returns what is still unprocessed) until
    nothing is left, ``policy.max_attempts`` sends have carried an item, or the next sleep
    would pass the deadline. Items still left are marked failed (``THROTTLED`` or
    ``DEADLINE``) and returned. Errors raised by ``send`` propagate.

    The sleep before send *n + 1* is uniform in ``[0, min(max_delay, base_delay * 2**(n-1))]``
    (full jitter). The first send, already made by the caller, is attempt 1.
    """
    pending = left
    first = True

    def stop(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= policy.max_attempts:
            return True
        remaining = deadlines.remaining()
        return remaining is not None and remaining <= state.upcoming_sleep

    retrying = tenacity.AsyncRetrying(
        stop=stop,
        wait=tenacity.wait_random_exponential(multiplier=policy.base_delay, max=policy.max_delay),
        retry=tenacity.retry_if_exception_type(_Left),
        reraise=True,
    )
    attempts = 1
    try:
        async for attempt in retrying:
            with attempt:
                if not first:
                    attempts += 1
                    pending = await send(pending)
                first = False
                if pending:
                    raise _Left
    except _Left:
        exc: Exception
        if attempts >= policy.max_attempts:
            exc = StillUnprocessed(
                f"still unprocessed after {attempts} attempt(s)", code="UnprocessedItems"
            )
        else:
            exc = DeadlineExceeded(
                f"deadline reached with {len(pending)} item(s) still unprocessed "
                f"after {attempts} attempt(s)"
            )
        for item in pending:
            item.fail(exc)
        return pending
    return []
