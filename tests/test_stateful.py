"""A stateful test of the repository against a Python model of the table: hypothesis
drives random put / create / update (actions, conditions, versions) / delete sequences on
the real backend; every answer and the final table must match the model."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from dynamorm_async import DynamoClient, errors
from dynamorm_async.db import Database
from dynamorm_async.model import entity
from dynamorm_async.tables import create_table, delete_table


@entity(table="sm_rows", hash_key="pk", version="version")
@attrs.define(slots=False)
class Row:
    pk: str
    n: int = 0
    s: str = ""
    version: int = 0


KEYS = st.sampled_from(["a", "b", "c", "d"])
NUMS = st.integers(min_value=-5, max_value=5)
TEXT = st.sampled_from(["", "x", "y", "zz"])

Model = dict[str, Row]


class RepositoryMachine(RuleBasedStateMachine):
    """Configured by :func:`test_repository_matches_a_model` (endpoint, prefix, loop)."""

    endpoint = ""
    prefix = ""
    loop: asyncio.AbstractEventLoop

    def __init__(self) -> None:
        super().__init__()
        self.model: Model = {}
        self.client = DynamoClient(endpoint_url=self.endpoint, region="us-east-1")
        self.repo = Database(self.client, table_prefix=self.prefix).repository(Row)
        self.run(self._clear())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _clear(self) -> None:
        async for r in self.repo.scan(consistent=True):
            await self.repo.delete({"pk": r.pk})

    def teardown(self) -> None:
        stored = self.run(self.repo.scan(consistent=True).to_list())
        assert {r.pk: r for r in stored} == self.model
        self.run(self.client.aclose())

    # ------------------------------------------------------------------ rules

    @rule(k=KEYS, n=NUMS, s=TEXT)
    def put(self, k: str, n: int, s: str) -> None:
        old = self.model.get(k)
        obj = Row(k, n, s, old.version if old else 0)  # put keeps the given version
        assert self.run(self.repo.put(obj)) == obj
        self.model[k] = obj

    @rule(k=KEYS, n=NUMS)
    def create(self, k: str, n: int) -> None:
        if k in self.model:
            with pytest.raises(errors.AlreadyExists):
                self.run(self.repo.create(Row(k, n)))
        else:
            assert self.run(self.repo.create(Row(k, n))) == Row(k, n, "", 1)
            self.model[k] = Row(k, n, "", 1)

    @rule(k=KEYS, d=NUMS)
    def increment(self, k: str, d: int) -> None:
        work = self.repo.update({"pk": k}, Row.n.increment(d))
        if k not in self.model:
            with pytest.raises(errors.ItemNotFound):
                self.run(work)
            return
        old = self.model[k]
        self.model[k] = new = attrs.evolve(old, n=old.n + d, version=old.version + 1)
        assert self.run(work) == new

    @rule(k=KEYS, threshold=NUMS, s=TEXT)
    def conditional_set(self, k: str, threshold: int, s: str) -> None:
        work = self.repo.update({"pk": k}, Row.s.set(s), condition=Row.n > threshold)
        old = self.model.get(k)
        if old is None:
            with pytest.raises(errors.ItemNotFound):
                self.run(work)
        elif old.n > threshold:
            self.model[k] = new = attrs.evolve(old, s=s, version=old.version + 1)
            assert self.run(work) == new
        else:
            with pytest.raises(errors.ConditionalCheckFailed) as ei:
                self.run(work)
            assert ei.value.item is not None  # the old item comes back with the failure

    @rule(k=KEYS, n=NUMS, stale=st.booleans())
    def versioned_update(self, k: str, n: int, stale: bool) -> None:
        old = self.model.get(k)
        version = (old.version if old else 0) + (3 if stale else 0)
        work = self.repo.update(Row(k, n, "v", version))
        if old is None:
            with pytest.raises(errors.ItemNotFound):
                self.run(work)
        elif stale:
            with pytest.raises(errors.VersionConflict) as ei:
                self.run(work)
            assert ei.value.current == old
        else:
            self.model[k] = new = Row(k, n, "v", old.version + 1)
            assert self.run(work) == new

    @rule(k=KEYS, guard=st.none() | NUMS)
    def delete(self, k: str, guard: int | None) -> None:
        cond = None if guard is None else Row.n >= guard
        work = self.repo.delete({"pk": k}, condition=cond)
        old = self.model.get(k)
        if cond is not None and (old is None or old.n < guard):  # type: ignore[operator]
            with pytest.raises(errors.ConditionalCheckFailed):
                self.run(work)
            return
        assert self.run(work) == old
        self.model.pop(k, None)

    @rule(k=KEYS)
    def get(self, k: str) -> None:
        assert self.run(self.repo.get(pk=k, consistent=True)) == self.model.get(k)

    @invariant()
    def count_matches(self) -> None:
        pass  # the full comparison runs in teardown (one scan per example keeps it fast)


def test_repository_matches_a_model(dynamodb_endpoint: str, table_name: str) -> None:
    loop = asyncio.new_event_loop()
    prefix = table_name + "-"

    async def setup() -> DynamoClient:
        client = DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1")
        await create_table(client, Row, prefix=prefix)
        return client

    client = loop.run_until_complete(setup())
    machine = type(
        "Machine",
        (RepositoryMachine,),
        {"endpoint": dynamodb_endpoint, "prefix": prefix, "loop": loop},
    )
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=20,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    finally:
        loop.run_until_complete(delete_table(client, Row, prefix=prefix))
        loop.run_until_complete(client.aclose())
        loop.close()
