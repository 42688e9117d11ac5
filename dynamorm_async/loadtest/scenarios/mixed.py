"""``mixed``: repository get/query reads and put/update writes at a chosen read ratio.

Items live in groups of 50 (``group`` is the hash key, so a query reads one group).
Setup writes the first ``min(keys, 200)`` items so reads and updates have data from
the first step; updates only touch items known to exist, so a failed update is a
real failure, never "item not found".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import attrs

from ...db import Database
from ...model import entity
from ...repository import Repository
from .base import Sample, Scenario, ScenarioSettings, timed

__all__ = ["GROUP_SIZE", "MixedItem", "MixedScenario", "scenario_class"]

#: Items per group (one hash key).
GROUP_SIZE = 50
_PRELOAD = 200
_QUERY_LIMIT = 10
_PAYLOAD = "abcdefghijklmnopqrstuvwxyz0123456789"


@entity(
    table="mixed_items",
    hash_key="group",
    range_key="item_id",
    version="version",
    updated_at="updated_at",
)
@attrs.define(slots=False)  # spelled out so type checkers see the attrs __init__
class MixedItem:
    """The item of the ``mixed`` scenario."""

    group: str
    item_id: str
    amount: int = 0
    note: str = ""
    hits: int = 0
    version: int = 0
    updated_at: dt.datetime | None = None


class MixedScenario(Scenario):
    """Reads (75% get, 25% query of up to 10 items) and writes (50% put, 50% update),
    ``read_ratio`` of the steps being reads. One operation per step."""

    name = "mixed"
    description = "repository get/query/put/update on one table, --read-ratio reads"
    entities = (MixedItem,)

    def __init__(self, settings: ScenarioSettings) -> None:
        super().__init__(settings)
        if not 0.0 <= settings.read_ratio <= 1.0:
            raise ValueError("read_ratio must be between 0 and 1")
        if settings.keys < 1:
            raise ValueError("keys must be >= 1")
        self._repo: Repository[MixedItem] | None = None
        self._known: list[tuple[str, str]] = []
        self._known_set: set[tuple[str, str]] = set()

    @staticmethod
    def key(n: int) -> tuple[str, str]:
        """The (group, item_id) of item number ``n``."""
        return f"g#{n // GROUP_SIZE:05d}", f"i#{n:07d}"

    def _item(self, n: int, rng: random.Random) -> MixedItem:
        group, item_id = self.key(n)
        size = self.settings.item_size
        start = rng.randrange(len(_PAYLOAD))
        note = (_PAYLOAD[start:] + _PAYLOAD * (size // len(_PAYLOAD) + 1))[:size]
        return MixedItem(group, item_id, amount=rng.randrange(1, 100_000), note=note)

    def _remember(self, key: tuple[str, str]) -> None:
        if key not in self._known_set:
            self._known_set.add(key)
            self._known.append(key)

    @property
    def repo(self) -> Repository[MixedItem]:
        """The repository (after :meth:`setup`)."""
        if self._repo is None:
            raise RuntimeError("MixedScenario.setup() has not run")
        return self._repo

    async def setup(self, db: Database) -> None:
        """Write the first items (concurrently, 16 at a time)."""
        self._repo = db.repository(MixedItem)
        rng = random.Random(self.settings.seed)
        todo = list(range(min(self.settings.keys, _PRELOAD)))
        gate = asyncio.Semaphore(16)

        async def put(n: int) -> None:
            async with gate:
                await self.repo.put(self._item(n, rng))
            self._remember(self.key(n))

        await asyncio.gather(*(put(n) for n in todo))

    async def step(self, rng: random.Random) -> list[Sample]:
        """One get, query, put or update."""
        repo = self.repo
        if rng.random() < self.settings.read_ratio:
            n = rng.randrange(self.settings.keys)
            group, item_id = self.key(n)
            if rng.random() < 0.75:
                _, sample = await timed("get", repo.get(group=group, item_id=item_id))
            else:
                query = repo.query(repo.meta.path("group") == group, limit=_QUERY_LIMIT)
                _, sample = await timed("query", query.to_list())
            return [sample]
        if rng.random() < 0.5 or not self._known:
            n = rng.randrange(self.settings.keys)
            _, sample = await timed("put", repo.put(self._item(n, rng)))
            if sample.error is None:
                self._remember(self.key(n))
            return [sample]
        group, item_id = self._known[rng.randrange(len(self._known))]
        hits = repo.meta.path("hits")
        amount = repo.meta.path("amount")
        _, sample = await timed(
            "update",
            repo.update(
                {"group": group, "item_id": item_id},
                hits.increment(1),
                amount.set(rng.randrange(1, 100_000)),
            ),
        )
        return [sample]

    def parameters(self) -> dict[str, Any]:
        """Read ratio, key space and item size."""
        return {
            "read_ratio": self.settings.read_ratio,
            "keys": self.settings.keys,
            "item_size": self.settings.item_size,
        }


def scenario_class() -> type[Scenario]:
    """The class registered as ``mixed``."""
    return MixedScenario
