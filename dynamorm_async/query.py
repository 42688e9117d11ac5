"""Query and Scan results: async iterators of entities, pages with signed cursors.

``Query`` (and ``Scan``) objects are built by :class:`~dynamorm_async.repository.Repository`.
Everything that can be wrong with the request, including the cursor, is checked when
the object is built, before any request is sent.

>>> async for p in repo.query(Payment.pk == "c#1"):          # entities
>>> async for page in repo.query(...).pages():                  # Page objects
...     save(page.cursor)                                        # resume later
>>> await repo.query(...).first(); await repo.query(...).count()
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

import attrs
import orjson

from .client import DynamoClient
from .cursor import CursorCodec
from .errors import InvalidCursor, InvalidInput

__all__ = ["Page", "Paged", "ParallelScan", "Query", "Scan"]

R = TypeVar("R")

_NOT_IN_FINGERPRINT = ("ExclusiveStartKey", "Limit", "Select", "ReturnConsumedCapacity")


def fingerprint(request: Mapping[str, Any]) -> str:
    """A digest of what a query asks for (not where it is), binding cursors to it."""
    core = {k: v for k, v in request.items() if k not in _NOT_IN_FINGERPRINT}
    return hashlib.sha256(orjson.dumps(core, option=orjson.OPT_SORT_KEYS)).hexdigest()


@attrs.frozen
class Page(Generic[R]):
    """One page: ``items``, the ``cursor`` to resume after it (``None`` at the end),
    DynamoDB's ``count``/``scanned_count``, ``consumed_capacity`` if asked for, and the
    scan ``segment`` it came from (``None`` for queries and plain scans)."""

    items: list[R]
    cursor: str | None
    count: int
    scanned_count: int
    consumed_capacity: dict[str, Any] | None = None
    segment: int | None = None


class Paged(abc.ABC, Generic[R]):
    """What every read result offers on top of :meth:`pages`: item iteration,
    :meth:`first` and :meth:`to_list`. Early exits close the page stream (and any
    segment tasks) at once."""

    @abc.abstractmethod
    def pages(self) -> AsyncGenerator[Page[R], None]:
        """The pages of the result, in order."""

    async def __aiter__(self) -> AsyncGenerator[R, None]:
        async with contextlib.aclosing(self.pages()) as pages:
            async for page in pages:
                for item in page.items:
                    yield item

    async def first(self) -> R | None:
        """The first item, or ``None``."""
        async with contextlib.aclosing(self.__aiter__()) as items:
            async for item in items:
                return item
        return None

    async def to_list(self) -> list[R]:
        """All items (up to ``limit``) in a list."""
        return [item async for item in self]


class Query(Paged[R]):
    """A Query (or, as :class:`Scan`, a Scan) ready to run.

    ``limit`` caps the number of items yielded in total; ``page_size`` is DynamoDB's
    ``Limit`` per request (items *evaluated*, before the filter).
    """

    operation = "Query"

    def __init__(
        self,
        client: DynamoClient,
        request: dict[str, Any],
        decode: Callable[[dict[str, Any]], R],
        key_of: Callable[[Mapping[str, Any]], dict[str, Any]],
        cursors: CursorCodec,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        count_request: dict[str, Any] | None = None,
        prepare: Callable[[list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]] | None = None,
    ) -> None:
        if limit is not None and limit < 1:
            raise InvalidInput("limit must be >= 1 (or None for no limit)")
        self._client = client
        self._request = request
        self._decode = decode
        self._key_of = key_of
        self._cursors = cursors
        self._limit = limit
        self._count_request = count_request if count_request is not None else request
        self._prepare = prepare
        self._fingerprint = fingerprint(request)
        self._start: dict[str, Any] | None = None
        if cursor is not None:
            self._start = cursors.decode(cursor, self._fingerprint)

    @property
    def request(self) -> dict[str, Any]:
        """The DynamoDB request of the first page (a copy)."""
        req = dict(self._request)
        if self._start is not None:
            req["ExclusiveStartKey"] = self._start
        return req

    async def pages(self) -> AsyncGenerator[Page[R], None]:
        """Pages in order; the last one has ``cursor=None``."""
        left = self._limit
        start = self._start
        while True:
            req = dict(self._request)
            if start is not None:
                req["ExclusiveStartKey"] = start
            out = await self._client.call(self.operation, req)
            raw: list[dict[str, Any]] = out.get("Items", [])
            last = out.get("LastEvaluatedKey")
            if left is not None and len(raw) >= left:
                if len(raw) > left or last is not None:
                    raw = raw[:left]
                    last = self._key_of(raw[-1])
                left = 0
            elif left is not None:
                left -= len(raw)
            ready = raw if self._prepare is None else await self._prepare(raw)
            items = [self._decode(i) for i in ready]
            done = last is None or left == 0
            cursor = None if last is None else self._cursors.encode(last, self._fingerprint)
            yield Page(
                items,
                cursor,
                out.get("Count", len(raw)),
                out.get("ScannedCount", len(raw)),
                out.get("ConsumedCapacity"),
                self._request.get("Segment"),
            )
            if done:
                return
            start = last

    async def count(self) -> int:
        """How many items match (``Select=COUNT``, all pages; ignores ``limit``)."""
        total = 0
        req = dict(self._count_request)  # the same query without a projection
        req["Select"] = "COUNT"
        start = self._start
        while True:
            if start is not None:
                req["ExclusiveStartKey"] = start
            out = await self._client.call(self.operation, req)
            total += int(out.get("Count", 0))
            start = out.get("LastEvaluatedKey")
            if start is None:
                return total


class Scan(Query[R]):
    """A Scan; with ``segments > 1`` the segments run concurrently and merge.

    Pages of a parallel scan carry their ``segment``; resume with
    ``repo.scan(segments=N, cursors={segment: cursor or None})`` where ``None`` marks a
    finished segment and a missing segment starts from the beginning.
    """

    operation = "Scan"


class ParallelScan(Paged[R]):
    """N concurrent :class:`Scan` segments merged into one iterator with bounded buffering."""

    def __init__(
        self, segments: list[Query[R]], *, limit: int | None, buffer_pages: int = 2
    ) -> None:
        self._segments = segments
        self._limit = limit
        self._buffer = max(1, buffer_pages)

    async def pages(self) -> AsyncGenerator[Page[R], None]:
        """Pages from all segments, in arrival order; each carries its ``segment``."""
        queue: asyncio.Queue[Page[R] | Exception | None] = asyncio.Queue(self._buffer)

        async def run(seg: Query[R]) -> None:
            try:
                async for page in seg.pages():
                    await queue.put(page)
            except Exception as exc:  # forwarded to the consumer (cancellation is not)
                await queue.put(exc)
                return
            await queue.put(None)

        tasks = [asyncio.create_task(run(s)) for s in self._segments]
        remaining = len(tasks)
        left = self._limit
        try:
            while remaining:
                got = await queue.get()
                if got is None:
                    remaining -= 1
                    continue
                if isinstance(got, Exception):
                    raise got
                if left is not None:
                    if len(got.items) >= left:
                        yield attrs.evolve(got, items=got.items[:left])
                        return
                    left -= len(got.items)
                yield got
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def count(self) -> int:
        """How many items match, counted by all segments concurrently."""
        counts = await asyncio.gather(*(s.count() for s in self._segments))
        return sum(counts)


def check_cursor_segments(cursors: Mapping[int, str | None], segments: int) -> None:
    """Reject resume cursors for segments outside ``range(segments)``."""
    bad = [s for s in cursors if not 0 <= s < segments]
    if bad:
        raise InvalidCursor(f"cursors for segments {bad} do not exist in a {segments}-segment scan")
