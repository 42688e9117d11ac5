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
from typing import Any, TypeVar

from .binding import BindingSource, Target, resolve_binding
from .repository import Repository, _utcnow
from .sealing import ItemSealer

__all__ = ["Database"]

T = TypeVar("T")


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
