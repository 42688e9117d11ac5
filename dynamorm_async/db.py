"""``Database``: one object that hands out repositories bound to the same target.

>>> db = Database(pool.client(endpoint_url=...), cursor_secret=SECRET)
>>> payments = db.repository(Payment)
>>> partner_db = Database(registry)          # a partner registry: per-scope bindings

Repositories are cached per entity class, so ``db.repository(Payment)`` is cheap to
call in a request handler. Batches and transactions build on the same object.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any, TypeVar, overload

from .batch import BatchExecutor
from .batch_chunks import Dedupe
from .batch_keys import EntityKey, KeyRef
from .batch_report import ProgressCallback
from .batch_writer import BatchWriter, WriterDedupe
from .binding import BindingSource, Target, resolve_binding
from .repository import Repository, _utcnow
from .sealing import ItemSealer
from .transactions import BeforeCommit, Transaction
from .transactions_get import transact_get
from .wire.retry import RetryPolicy

__all__ = ["Database"]

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")


class Database:
    """Repositories (and, through them, batches and transactions) over one target.

    ``target``: a client, a :class:`~dynamorm_async.binding.Binding` or a binding source
    (e.g. the partner registry). ``cursor_secret``, ``clock`` and ``sealer`` are passed to
    every repository.
    """

    def __init__(
        self,
        target: Target,
        *,
        table_prefix: str = "",
        cursor_secret: bytes | str | None = None,
        clock: Callable[[], _dt.datetime] = _utcnow,
        sealer: ItemSealer | None = None,
    ) -> None:
        self.source: BindingSource = resolve_binding(target, table_prefix)
        self.cursor_secret = cursor_secret
        self.clock = clock
        self.sealer = sealer
        self._repos: dict[type[Any], Repository[Any]] = {}
        #: ``async hook(tx)`` callbacks run before every transaction of this database is
        #: sent (after the transaction's own hooks); they may add actions to it.
        self.before_commit: list[BeforeCommit] = []

    def repository(self, entity: type[T]) -> Repository[T]:
        """The repository of ``entity`` (created once per class)."""
        repo = self._repos.get(entity)
        if repo is None:
            repo = Repository(
                entity,
                self.source,
                cursor_secret=self.cursor_secret,
                clock=self.clock,
                sealer=self.sealer,
            )
            self._repos[entity] = repo
        return repo

    def batch(
        self,
        *,
        concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        dedupe: Dedupe = "raise",
        progress: ProgressCallback | None = None,
    ) -> BatchExecutor:
        """A :class:`~dynamorm_async.batch.BatchExecutor` over this database's repositories:
        ``await db.batch().write(puts=[...], deletes=[...])``, ``await db.batch().get(keys)``."""
        return BatchExecutor(
            self, concurrency=concurrency, retry=retry, dedupe=dedupe, progress=progress
        )

    def batch_writer(
        self,
        *,
        concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        dedupe: WriterDedupe = "ordered",
        progress: ProgressCallback | None = None,
    ) -> BatchWriter[Any]:
        """Buffered batch writes of any entity types: ``async with db.batch_writer() as w``
        (see :class:`~dynamorm_async.batch_writer.BatchWriter`)."""
        return BatchWriter(
            self, concurrency=concurrency, retry=retry, dedupe=dedupe, progress=progress
        )

    # ------------------------------------------------------------------ transactions

    def transaction(
        self,
        *,
        token: str | None = None,
        retry_conflicts: bool = False,
        retry: RetryPolicy | None = None,
    ) -> Transaction:
        """A write transaction: ``async with db.transaction() as tx: tx.put(...)`` sends it
        when the block ends (see :mod:`dynamorm_async.transactions`). ``token`` is the
        ClientRequestToken (generated if not given); ``retry_conflicts`` sends it again,
        with backoff, when it is cancelled by a TransactionConflict."""
        return Transaction(
            self,
            token=token,
            retry_conflicts=retry_conflicts,
            retry=retry,
            hooks=self.before_commit,
        )

    @overload
    async def transact_get(self, a: EntityKey[A], /) -> tuple[A | None]: ...

    @overload
    async def transact_get(
        self, a: EntityKey[A], b: EntityKey[B], /
    ) -> tuple[A | None, B | None]: ...

    @overload
    async def transact_get(
        self, a: EntityKey[A], b: EntityKey[B], c: EntityKey[C], /
    ) -> tuple[A | None, B | None, C | None]: ...

    @overload
    async def transact_get(
        self, a: EntityKey[A], b: EntityKey[B], c: EntityKey[C], d: EntityKey[D], /
    ) -> tuple[A | None, B | None, C | None, D | None]: ...

    @overload
    async def transact_get(self, *refs: KeyRef) -> tuple[Any, ...]: ...

    async def transact_get(self, *refs: KeyRef) -> tuple[Any, ...]:
        """Read the items of ``refs`` (``key(Entity, ...)`` references or entities) as one
        atomic snapshot; each result is the entity or ``None``, typed per key."""
        return await transact_get(self, refs)
