"""``BatchWriter``: buffered puts and deletes, boto3 ``batch_writer`` style, but async,
concurrent and with backoff.

>>> async with repo.batch_writer() as w:        # or db.batch_writer() for mixed entities
...     for p in payments:
...         await w.put(p)
...     await w.delete(old)
>>> w.report                                    # every item's outcome

Every 25 buffered writes are sent as one BatchWriteItem in the background (up to
``concurrency`` requests in flight; ``put`` waits when all are busy). Leaving the block
sends what remains and waits for everything, then raises
:class:`~dynamorm_async.batch_report.BatchFailed` with the report if any item failed.
Like boto3, the buffer is also flushed when the block exits with an exception (that
exception then propagates, and ``w.report`` still tells what was written); a cancelled
block cancels the requests in flight instead.

Writes of one key keep their order: writing a key that is buffered or in flight first
sends or waits for the earlier write. With ``dedupe="last"`` a buffered earlier write of
the same key is dropped instead (boto3's ``overwrite_by_pkeys``); it then reports the
outcome of the write that replaced it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from .batch import BatchExecutor, RepositoryProvider, _Bound
from .batch_chunks import MAX_WRITE_ITEMS
from .batch_keys import KeyRef
from .batch_report import BatchProgress, BatchReport, ItemResult, ProgressCallback
from .errors import InvalidInput
from .repository import Repository
from .wire.retry import RetryPolicy

__all__ = ["BatchWriter", "SingleRepository", "WriterDedupe"]

T = TypeVar("T")
E = TypeVar("E")

#: ``"ordered"``: every write is sent, in order per key; ``"last"``: a buffered earlier
#: write of the same key is replaced by the later one.
WriterDedupe = Literal["ordered", "last"]


class SingleRepository:
    """A repository provider that knows one repository (the writer of ``repo.batch_writer``)."""

    def __init__(self, repo: Repository[Any]) -> None:
        self.repo = repo

    def repository(self, entity: type[E]) -> Repository[E]:
        """``repo`` if ``entity`` is its entity, else a clear error."""
        if entity is not self.repo.entity:
            raise InvalidInput(
                f"this batch writer writes {self.repo.entity.__name__} only, not "
                f"{entity.__name__}; use db.batch_writer() to mix entity types"
            )
        repo: Repository[E] = self.repo
        return repo


class BatchWriter(Generic[T]):
    """Buffers writes and sends them 25 at a time, concurrently (see the module doc)."""

    def __init__(
        self,
        repositories: RepositoryProvider,
        *,
        concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        dedupe: WriterDedupe = "ordered",
        progress: ProgressCallback | None = None,
    ) -> None:
        if dedupe not in ("ordered", "last"):
            raise InvalidInput(f"dedupe must be 'ordered' or 'last', not {dedupe!r}")
        self._executor = BatchExecutor(repositories, concurrency=concurrency, retry=retry)
        self._dedupe = dedupe
        self._progress = progress
        self._slots = asyncio.Semaphore(self._executor.concurrency)
        self._cache: dict[type[Any], _Bound] = {}
        self._buffer: dict[Hashable, ItemResult] = {}
        self._inflight: dict[Hashable, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._superseded: list[tuple[ItemResult, ItemResult]] = []
        self._errors: list[BaseException] = []
        self._done = self._failed = 0
        #: Every write given to this writer, in call order, with its outcome.
        self.report = BatchReport()

    # ------------------------------------------------------------------ writes

    async def put(self, obj: T) -> None:
        """Buffer a put of entity ``obj`` (sends 25 buffered writes at once)."""
        item = self._executor.prepare_put(len(self.report.results), obj, self._cache)
        await self._add(item)

    async def delete(self, target: KeyRef) -> None:
        """Buffer a delete of ``target`` (an entity or a ``key(Entity, ...)`` reference)."""
        item = self._executor.prepare_delete(len(self.report.results), target, self._cache)
        await self._add(item)

    async def flush(self) -> None:
        """Send what is buffered and wait for every write in flight."""
        if self._buffer:
            await self._launch()
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for loser, winner in reversed(self._superseded):  # a winner may be superseded too
            loser.status, loser.reason, loser.error = winner.status, winner.reason, winner.error
        if self._superseded:
            self._tick([loser for loser, _ in self._superseded])
            self._superseded.clear()
        if self._errors:
            raise self._errors[0]

    # ------------------------------------------------------------------ context

    async def __aenter__(self) -> BatchWriter[T]:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if et is not None and not issubclass(et, Exception):  # cancelled: stop, send nothing
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            return
        await self.flush()
        if et is None:
            self.report.raise_for_failures()

    # ------------------------------------------------------------------ internals

    async def _add(self, item: ItemResult) -> None:
        self.report.results.append(item)
        if item.status != "pending":  # failed before sending (too large, bad key...)
            self._tick([item])
            return
        earlier = self._buffer.get(item.canon)
        if earlier is not None:
            if self._dedupe == "last":
                del self._buffer[item.canon]
                self._superseded.append((earlier, item))
            else:
                await self._launch()
        running = self._inflight.get(item.canon)
        if running is not None:  # keep the order of writes to one key
            await asyncio.wait([running])
        self._buffer[item.canon] = item
        if len(self._buffer) >= MAX_WRITE_ITEMS:
            await self._launch()

    async def _launch(self) -> None:
        chunk = list(self._buffer.values())
        self._buffer = {}
        await self._slots.acquire()
        task = asyncio.create_task(self._send(chunk))
        self._tasks.add(task)
        for item in chunk:
            self._inflight[item.canon] = task
        task.add_done_callback(lambda t: self._finished(t, chunk))

    async def _send(self, chunk: list[ItemResult]) -> None:
        sent = await self._executor.run(chunk, "BatchWriteItem")
        self.report.requests += sent.requests
        self.report.unprocessed += sent.unprocessed

    def _finished(self, task: asyncio.Task[None], chunk: list[ItemResult]) -> None:
        self._slots.release()
        self._tasks.discard(task)
        for item in chunk:
            if self._inflight.get(item.canon) is task:
                del self._inflight[item.canon]
        if not task.cancelled() and task.exception() is not None:
            self._errors.append(task.exception())  # type: ignore[arg-type]
        self._tick(chunk)

    def _tick(self, settled: list[ItemResult]) -> None:
        ok = sum(1 for i in settled if i.status == "done")
        self._done += ok
        self._failed += len(settled) - ok
        if self._progress is not None:
            self._progress(BatchProgress(self._done, self._failed, len(self.report.results)))
