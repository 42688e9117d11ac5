"""``batch``: BatchWriteItem and BatchGetItem through :class:`~dynamorm_async.batch.BatchExecutor`.

Each step is one executor call on ``batch_size`` distinct random keys: a ``batch_get``
(``read_ratio`` of the steps) or a ``batch_write`` of as many puts. An executor call
may send several requests (25 writes or 100 keys each) and resend unprocessed items;
its latency is the whole call. A call whose report has failed items counts as one
error, labelled with the error class of its first failed item.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from ...batch import BatchExecutor
from ...batch_keys import key
from ...batch_report import BatchReport
from ...db import Database
from ...model import entity
from .base import Sample, Scenario, ScenarioSettings, error_label, timed

__all__ = ["BatchItem", "BatchScenario", "scenario_class"]

_PRELOAD = 500
_PAYLOAD = "0123456789abcdefghijklmnopqrstuvwxyz"


@entity(table="batch_items", hash_key="item_id")
@attrs.define(slots=False)  # spelled out so type checkers see the attrs __init__
class BatchItem:
    """The item of the ``batch`` scenario."""

    item_id: str
    amount: int = 0
    payload: str = ""


class BatchScenario(Scenario):
    """Batch gets and batch writes of ``batch_size`` distinct keys from ``keys``."""

    name = "batch"
    description = "BatchExecutor writes and gets of --batch-size items, --read-ratio gets"
    entities = (BatchItem,)

    def __init__(self, settings: ScenarioSettings) -> None:
        super().__init__(settings)
        if not 0.0 <= settings.read_ratio <= 1.0:
            raise ValueError("read_ratio must be between 0 and 1")
        if settings.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if settings.keys < settings.batch_size:
            raise ValueError("keys must be >= batch_size (keys in one batch are distinct)")
        self._executor: BatchExecutor | None = None

    @property
    def executor(self) -> BatchExecutor:
        """The batch executor (after :meth:`setup`)."""
        if self._executor is None:
            raise RuntimeError("BatchScenario.setup() has not run")
        return self._executor

    @staticmethod
    def item_id(n: int) -> str:
        """The key of item number ``n``."""
        return f"b#{n:08d}"

    def _item(self, n: int, rng: random.Random) -> BatchItem:
        size = self.settings.item_size
        start = rng.randrange(len(_PAYLOAD))
        payload = (_PAYLOAD[start:] + _PAYLOAD * (size // len(_PAYLOAD) + 1))[:size]
        return BatchItem(self.item_id(n), rng.randrange(1, 100_000), payload)

    async def setup(self, db: Database) -> None:
        """Write the first items in one executor call, so gets find data."""
        self._executor = BatchExecutor(db)
        rng = random.Random(self.settings.seed)
        first = [self._item(n, rng) for n in range(min(self.settings.keys, _PRELOAD))]
        (await self.executor.write(puts=first)).raise_for_failures()

    async def step(self, rng: random.Random) -> list[Sample]:
        """One batch get or one batch write."""
        numbers = rng.sample(range(self.settings.keys), self.settings.batch_size)
        if rng.random() < self.settings.read_ratio:
            keys = [key(BatchItem, item_id=self.item_id(n)) for n in numbers]
            result, sample = await timed("batch_get", self.executor.get(keys))
            report = None if result is None else result.report
        else:
            puts = [self._item(n, rng) for n in numbers]
            report, sample = await timed("batch_write", self.executor.write(puts=puts))
        return [_with_failures(sample, report)]

    def parameters(self) -> dict[str, Any]:
        """Read ratio, key space, batch size and item size."""
        return {
            "read_ratio": self.settings.read_ratio,
            "keys": self.settings.keys,
            "batch_size": self.settings.batch_size,
            "item_size": self.settings.item_size,
        }


def _with_failures(sample: Sample, report: BatchReport | None) -> Sample:
    """The sample, marked failed when the call's report has failed items."""
    if report is None or report.ok:
        return sample
    failed = report.failed[0]
    label = error_label(failed.error) if failed.error is not None else "BatchItemFailed"
    return attrs.evolve(sample, error=label)


def scenario_class() -> type[Scenario]:
    """The class registered as ``batch``."""
    return BatchScenario
