"""``BatchExecutor``: BatchWriteItem and BatchGetItem for any number of items, across
entity types and tables, with a per-item :class:`~dynamorm_async.batch_report.BatchReport`.

>>> batch = db.batch()                                     # or BatchExecutor(db)
>>> report = await batch.write(puts=payments, deletes=[key(Payment, customer=..., ...)])
>>> report.raise_for_failures()
>>> found = await batch.get([key(Payment, customer="c#1", payment_id="p#1"), other])

How a batch runs:

* Entities are encoded by their repository (``encode_item``: stamped, size-checked,
  sealed), so table prefixes and field encryption apply as for single writes. An item
  that cannot be stored (over 400 KB, bad key, bad value) fails *in the report*; the
  others still go. Encoding happens as requests are built, so the first requests are
  in flight while later items are still being encoded.
* Duplicate keys (same table and key) raise :class:`~dynamorm_async.errors.DuplicateItem`
  naming them, before anything is sent; ``dedupe="last"`` keeps the last write (order:
  puts, then deletes).
* Items are split into requests of at most 25 writes / 100 keys and 16 MB, which run
  ``concurrency`` at a time (default: :func:`~dynamorm_async.sizing.default_batch_concurrency`).
* ``UnprocessedItems``/``UnprocessedKeys`` are sent again with exponential backoff and
  full jitter, bounded by ``retry.max_attempts`` and the current deadline.
* A request DynamoDB rejects as invalid is split (by table, then in halves) until the
  bad items are isolated, so one bad item never fails unrelated ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar, overload

import orjson

from .batch_chunks import (
    MAX_GET_KEYS,
    MAX_WRITE_ITEMS,
    ChunkQueue,
    Dedupe,
    resend_unprocessed,
)
from .batch_chunks import (
    dedupe as split_duplicates,
)
from .batch_keys import EntityKey, KeyRef, canonical_key, entity_meta
from .batch_report import (
    BatchGetResult,
    BatchReport,
    ItemResult,
    ProgressCallback,
    ProgressTicker,
)
from .batch_requests import send_get, send_write
from .client import DynamoClient
from .errors import (
    DynamoDBError,
    DynamormError,
    InvalidInput,
    ItemCollectionSizeLimitExceeded,
    ValidationError,
)
from .model import EntityMeta
from .repository import Repository
from .sizing import default_batch_concurrency
from .wire.retry import RetryPolicy

__all__ = ["DEFAULT_BATCH_RETRY", "BatchExecutor", "RepositoryProvider"]

T = TypeVar("T")

#: Backoff for unprocessed items: 10 sends at most, full jitter from 50 ms up to 5 s.
DEFAULT_BATCH_RETRY = RetryPolicy(max_attempts=10, base_delay=0.05, max_delay=5.0)

Send = Callable[[DynamoClient, list[ItemResult], BatchReport], Awaitable[list[ItemResult]]]


class RepositoryProvider(Protocol):
    """Hands out the repository of an entity class (a :class:`~dynamorm_async.db.Database`)."""

    def repository(self, entity: type[T]) -> Repository[T]:
        """The repository of ``entity``."""
        ...


class _Bound:
    """One entity class resolved for one batch call: its repository, meta and table."""

    __slots__ = ("meta", "repo", "stamp", "table")

    def __init__(self, repo: Repository[Any]) -> None:
        self.repo = repo
        self.meta: EntityMeta[Any] = repo.meta
        self.table = repo.table_name
        self.stamp = repo.meta.updated_at is not None or repo.meta.created_at is not None


class BatchExecutor:
    """Runs batch writes and gets for the repositories of ``repositories`` (a Database).

    ``concurrency``: requests in flight at once. ``retry``: backoff for unprocessed
    items (:data:`DEFAULT_BATCH_RETRY`; the client's own policy still retries throttled
    and failed requests). ``dedupe`` and ``progress`` are defaults for each call.
    """

    def __init__(
        self,
        repositories: RepositoryProvider,
        *,
        concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        dedupe: Dedupe = "raise",
        progress: ProgressCallback | None = None,
    ) -> None:
        self.repositories = repositories
        self.concurrency = default_batch_concurrency() if concurrency is None else concurrency
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise InvalidInput(f"concurrency must be an int >= 1, not {concurrency!r}")
        self.retry = retry or DEFAULT_BATCH_RETRY
        self.dedupe: Dedupe = dedupe
        self.progress = progress

    # ------------------------------------------------------------------ public API

    async def write(
        self,
        puts: Iterable[Any] = (),
        deletes: Iterable[KeyRef] = (),
        *,
        dedupe: Dedupe | None = None,
        progress: ProgressCallback | None = None,
    ) -> BatchReport:
        """Put every entity of ``puts`` and delete every key of ``deletes`` (entities or
        :func:`~dynamorm_async.batch_keys.key` references). Returns the per-item report;
        call ``raise_for_failures()`` on it to turn failures into an exception.

        Raises before sending anything for input that is not an entity or a key, and for
        duplicate keys (unless ``dedupe="last"``).
        """
        _check_iterable(puts, "puts")
        _check_iterable(deletes, "deletes")
        start = time.monotonic()
        cache: dict[type[Any], _Bound] = {}
        items: list[ItemResult] = []
        for obj in puts:
            items.append(self.prepare_put(len(items), obj, cache))
        for ref in deletes:
            items.append(self.prepare_delete(len(items), ref, cache))
        report = await self.run(items, "BatchWriteItem", dedupe=dedupe, progress=progress)
        report.elapsed = time.monotonic() - start
        return report

    @overload
    async def get(
        self,
        keys: Iterable[EntityKey[T]],
        *,
        consistent: bool = ...,
        dedupe: Dedupe | None = ...,
        progress: ProgressCallback | None = ...,
    ) -> BatchGetResult[T]: ...

    @overload
    async def get(
        self,
        keys: Iterable[KeyRef],
        *,
        consistent: bool = ...,
        dedupe: Dedupe | None = ...,
        progress: ProgressCallback | None = ...,
    ) -> BatchGetResult[Any]: ...

    async def get(
        self,
        keys: Iterable[KeyRef],
        *,
        consistent: bool = False,
        dedupe: Dedupe | None = None,
        progress: ProgressCallback | None = None,
    ) -> BatchGetResult[Any]:
        """Read the items of ``keys`` (entities or key references, any entity types).

        ``result[i]`` is the entity of key *i*, or ``None`` when there is no such item;
        a key that could not be read is ``None`` too and ``failed`` in ``result.report``.
        """
        _check_iterable(keys, "keys")
        start = time.monotonic()
        cache: dict[type[Any], _Bound] = {}
        items = [self._prepare_key(i, "get", ref, cache) for i, ref in enumerate(keys)]
        extra = {"ConsistentRead": True} if consistent else {}
        report = await self.run(
            items, "BatchGetItem", dedupe=dedupe, progress=progress, get_options=extra
        )
        report.elapsed = time.monotonic() - start
        return BatchGetResult(report)

    # ------------------------------------------------------------------ preparing items

    def bind(self, cls: type[Any], cache: dict[type[Any], _Bound]) -> _Bound:
        """The repository, client and table of entity class ``cls`` (resolved once per call)."""
        bound = cache.get(cls)
        if bound is None:
            entity_meta(cls, "batch")
            bound = cache[cls] = _Bound(self.repositories.repository(cls))
        return bound

    def prepare_put(self, index: int, obj: Any, cache: dict[type[Any], _Bound]) -> ItemResult:
        """The pending put of entity ``obj``: stamped and keyed now, encoded when its
        request is built (a bad key fails it now; an item that cannot be stored, then)."""
        b = self.bind(type(obj), cache)
        try:
            if b.stamp:
                obj = b.repo._stamp(obj, created=False)
            key = b.meta.encode_key(obj)
        except InvalidInput as exc:
            failed = ItemResult(index, "put", b.repo.entity, b.table, _key_or_empty(b.meta, obj))
            failed.value = obj
            failed.fail(exc)
            return failed
        item = ItemResult(index, "put", b.repo.entity, b.table, key, canonical_key(b.table, key))
        item.value = obj
        return item

    async def _encode(self, item: ItemResult) -> None:
        """Encode a pending put (its repository's ``encode_item``: sealed, size-checked)."""
        assert item.entity is not None
        try:
            data = await self.repositories.repository(item.entity).encode_item(
                item.value, item.table
            )
        except InvalidInput as exc:
            item.fail(exc)
            return
        item.payload = {"PutRequest": {"Item": data}}
        item.size = len(orjson.dumps(data))

    def prepare_delete(self, index: int, ref: KeyRef, cache: dict[type[Any], _Bound]) -> ItemResult:
        """The pending delete of ``ref`` (an entity or a key reference)."""
        return self._prepare_key(index, "delete", ref, cache)

    def _prepare_key(
        self, index: int, kind: Any, ref: KeyRef, cache: dict[type[Any], _Bound]
    ) -> ItemResult:
        cls = ref.entity if isinstance(ref, EntityKey) else type(ref)
        try:
            b = self.bind(cls, cache)
        except InvalidInput:
            raise InvalidInput(
                f"{kind} #{index}: expected an entity instance or key(Entity, **key_fields), "
                f"got {type(ref).__name__}"
            ) from None
        try:
            key = ref.wire() if isinstance(ref, EntityKey) else b.meta.encode_key(ref)
        except InvalidInput as exc:
            failed = ItemResult(index, kind, b.repo.entity, b.table, {})
            failed.fail(exc)
            return failed
        payload = {"DeleteRequest": {"Key": key}} if kind == "delete" else None
        size = len(orjson.dumps(key)) if kind == "delete" else 0
        return ItemResult(
            index, kind, b.repo.entity, b.table, key, canonical_key(b.table, key), payload, size
        )

    # ------------------------------------------------------------------ running

    async def run(
        self,
        items: Sequence[ItemResult],
        operation: str,
        *,
        dedupe: Dedupe | None = None,
        progress: ProgressCallback | None = None,
        get_options: dict[str, Any] | None = None,
    ) -> BatchReport:
        """Send prepared ``items`` with ``operation`` (``"BatchWriteItem"`` or
        ``"BatchGetItem"``) and return their report."""
        report = BatchReport(items)
        to_send, superseded = split_duplicates(items, dedupe or self.dedupe)
        send: Send
        if operation == "BatchWriteItem":
            send, limit = send_write, MAX_WRITE_ITEMS
        else:
            opts = get_options or {}

            async def send(
                c: DynamoClient, xs: list[ItemResult], r: BatchReport
            ) -> list[ItemResult]:
                return await send_get(c, xs, r, opts, self._decode)

            limit = MAX_GET_KEYS
        clients: dict[type[Any] | None, DynamoClient] = {}
        by_client: dict[int, tuple[DynamoClient, list[ItemResult]]] = {}
        for item in to_send:
            client = clients.get(item.entity)
            if client is None:
                assert item.entity is not None
                client = clients[item.entity] = self.repositories.repository(item.entity).client
            by_client.setdefault(id(client), (client, []))[1].append(item)
        queue = ChunkQueue(list(by_client.values()), limit, self._encode)
        tick = ProgressTicker(report, progress or self.progress)
        tick.emit()

        async def worker() -> None:
            while (taken := await queue.take()) is not None:
                client, chunk, failed = taken
                if chunk:
                    await self._chunk(client, chunk, report, send)
                tick.settled(chunk + failed)

        n = min(self.concurrency, -(-len(to_send) // limit))
        if n == 1:
            await worker()
        elif n > 1:
            async with asyncio.TaskGroup() as group:
                for _ in range(n):
                    group.create_task(worker())
        for loser, winner in superseded:
            loser.status, loser.reason, loser.error = winner.status, winner.reason, winner.error
            loser.payload = None
            if loser.kind == "get":
                loser.value = winner.value
        return report

    async def _chunk(
        self, client: DynamoClient, chunk: list[ItemResult], report: BatchReport, send: Send
    ) -> None:
        try:
            left = await send(client, chunk, report)
            if left:
                await resend_unprocessed(self.retry, left, lambda xs: send(client, xs, report))
        except DynamormError as exc:
            pending = [i for i in chunk if i.status == "pending"]
            if isinstance(exc, DynamoDBError) and not exc.retryable and len(pending) > 1:
                await self._isolate(client, pending, exc, report, send)
            else:
                for item in pending:
                    item.fail(exc)

    async def _isolate(
        self,
        client: DynamoClient,
        items: list[ItemResult],
        exc: DynamoDBError,
        report: BatchReport,
        send: Send,
    ) -> None:
        """Split a rejected request until the items it was rejected for are alone."""
        by_table: dict[str, list[ItemResult]] = {}
        for item in items:
            by_table.setdefault(item.table, []).append(item)
        if len(by_table) > 1:
            parts = list(by_table.values())
        elif isinstance(exc, ValidationError | ItemCollectionSizeLimitExceeded):
            half = len(items) // 2
            parts = [items[:half], items[half:]]
        else:  # a whole-table error (missing table, access denied): every item has it
            for item in items:
                item.fail(exc)
            return
        for part in parts:
            await self._chunk(client, part, report, send)

    async def _decode(self, cls: type[Any], table: str, raws: list[dict[str, Any]]) -> list[Any]:
        return await self.repositories.repository(cls).decode_items(raws, table)


def _check_iterable(value: Any, name: str) -> None:
    """Refuse a single entity or key where a collection of them is expected."""
    if isinstance(value, EntityKey | str | bytes) or hasattr(type(value), "__attrs_attrs__"):
        raise InvalidInput(f"{name} must be a collection; wrap a single one in a list")


def _key_or_empty(meta: EntityMeta[Any], obj: Any) -> dict[str, Any]:
    try:
        return meta.encode_key(obj)
    except InvalidInput:
        return {}
