"""The fault matrix: every public operation through the fault proxy under every fault
(throttling, 500s, reset before and after the request was applied, slow past the
deadline, truncated bodies, CRC mismatch), once (the retries recover) and on every
attempt (a typed error). After each case the table is read directly (not through the
proxy) and the operation's invariant is checked: nothing lost, nothing applied twice
unless the operation is at-least-once by nature, and what a caller sees after a lost
answer is what ``docs/guarantees.md`` says. The table of results is printed at the end
of the session (see :mod:`tests.test_faultmatrix_support`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import attrs
import pytest

from dynamorm_async import DynamoClient, errors
from dynamorm_async.batch_keys import key
from dynamorm_async.db import Database
from dynamorm_async.model import entity
from dynamorm_async.tables import create_table
from dynamorm_async.testing.faults import FaultProxy

from .test_faultmatrix_support import (
    APPLIED,
    EXHAUSTED,
    FAULTS,
    POLICY,
    assert_connections_closed,
    fault_matrix,
    modes,
    record,
    run_case,
)

__all__ = ["fault_matrix"]


@entity(table="fm_things", hash_key="pk", range_key="sk", version="version")
@attrs.define(slots=False)
class Thing:
    pk: str
    sk: str
    n: int = 0
    note: str = ""
    version: int = 0


@attrs.define(slots=False)
class Env:
    proxy: FaultProxy
    via: Database  # through the proxy
    direct: Database  # straight to the backend (for checks)

    def repo(self) -> Any:
        return self.via.repository(Thing)

    def check(self) -> Any:
        return self.direct.repository(Thing)


@pytest.fixture
async def env(dynamodb_endpoint: str, table_name: str, fault_matrix: Any) -> AsyncIterator[Env]:
    prefix = table_name + "-"
    async with (
        DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as direct,
        FaultProxy(dynamodb_endpoint, seed=3) as proxy,
    ):
        await create_table(direct, Thing, prefix=prefix)
        async with DynamoClient(
            endpoint_url=proxy.endpoint_url, region="us-east-1", retry=POLICY
        ) as via:
            yield Env(
                proxy, Database(via, table_prefix=prefix), Database(direct, table_prefix=prefix)
            )
        await assert_connections_closed()


def cases() -> list[tuple[str, str]]:
    return [(f, m) for f in FAULTS for m in modes(f)]


async def stored(env: Env, pk: str) -> list[Thing]:
    return [t async for t in env.check().query(Thing.pk == pk, consistent=True)]


# --------------------------------------------------------------------------- single items


async def test_get(env: Env) -> None:
    for fault, mode in cases():
        pk = f"get-{fault}-{mode}"
        await env.check().put(Thing(pk, "a", 7))
        out = await run_case(env.proxy, "get", fault, mode, partial(env.repo().get, pk=pk, sk="a"))
        if out.error is None:
            assert out.value == Thing(pk, "a", 7)
        record("repository.get", fault, 1)


async def test_put(env: Env) -> None:
    for fault, mode in cases():
        pk = f"put-{fault}-{mode}"
        obj = Thing(pk, "a", 1, "x")
        out = await run_case(env.proxy, "put", fault, mode, partial(env.repo().put, obj))
        items = await stored(env, pk)
        if out.error is None or fault in APPLIED:
            assert items == [obj]  # a whole-item put is idempotent: applied once or again
        else:
            assert items == []  # refused before the server: never applied
        record("repository.put", fault, len(items) or 1)


async def test_create(env: Env) -> None:
    """A lost answer of ``create`` comes back as AlreadyExists on the retry; the stored
    item is then the caller's own (compare it): the create was applied exactly once."""
    for fault, mode in cases():
        pk = f"create-{fault}-{mode}"
        obj = Thing(pk, "a", 1, "mine")
        out = await run_case(
            env.proxy,
            "create",
            fault,
            mode,
            partial(env.repo().create, obj),
            after_loss=(errors.AlreadyExists,),
        )
        items = await stored(env, pk)
        note = None
        if out.error is None:
            assert items == [attrs.evolve(obj, version=1)]
        elif isinstance(out.error, errors.AlreadyExists):
            assert fault in APPLIED and mode == "once"
            assert items == [attrs.evolve(obj, version=1)]  # ours, once
            note = "lost answer -> AlreadyExists, stored item is the caller's"
        elif fault in APPLIED:
            assert items == [attrs.evolve(obj, version=1)]
        else:
            assert items == []
        record("repository.create", fault, 1, note)


async def test_update_versioned(env: Env) -> None:
    """Optimistic locking makes the whole-entity update exactly-once: a retried lost
    answer is refused, as VersionConflict whose ``current`` is the caller's write."""
    for fault, mode in cases():
        pk = f"upd-{fault}-{mode}"
        base = await env.check().create(Thing(pk, "a", 1))
        wanted = attrs.evolve(base, n=2)
        out = await run_case(
            env.proxy,
            "update",
            fault,
            mode,
            partial(env.repo().update, wanted),
            after_loss=(errors.VersionConflict,),
        )
        (item,) = await stored(env, pk)
        note = None
        if out.error is None:
            assert item.n == 2 and item.version == 2
        elif isinstance(out.error, errors.VersionConflict):
            assert fault in APPLIED
            assert out.error.current is not None and out.error.current.version == 2
            assert item.n == 2 and item.version == 2
            note = "lost answer -> VersionConflict, current is the caller's write"
        elif fault in APPLIED:
            assert item.version in (1, 2) and item.n in (1, 2) and (item.version == item.n)
        else:
            assert item.version == 1 and item.n == 1
        record("repository.update(version)", fault, 1, note)


async def test_update_increment_conditioned(env: Env) -> None:
    """An increment guarded by the version it read is applied at most once."""
    for fault, mode in cases():
        pk = f"inc-{fault}-{mode}"
        await env.check().create(Thing(pk, "a", 0))

        async def work(pk: str = pk) -> Any:
            return await env.repo().update(
                {"pk": pk, "sk": "a"}, Thing.n.increment(1), condition=Thing.version == 1
            )

        out = await run_case(
            env.proxy, "increment", fault, mode, work, after_loss=(errors.ConditionalCheckFailed,)
        )
        (item,) = await stored(env, pk)
        assert item.n == item.version - 1 <= 1  # never twice
        if out.error is None:
            assert item.n == 1
        elif isinstance(out.error, errors.ConditionalCheckFailed):
            assert fault in APPLIED and item.n == 1
        elif fault not in APPLIED:
            assert item.n == 0
        note = "lost answer -> ConditionalCheckFailed, n applied once" if fault in APPLIED else None
        record("repository.update(increment, version condition)", fault, 1, note)


async def test_update_increment_unconditioned_is_at_least_once(env: Env) -> None:
    """Without a condition an increment is NOT idempotent: the client's retry of a lost
    answer applies it again. This documents the hazard (docs/guarantees.md)."""
    doubled = 0
    for fault, mode in cases():
        pk = f"inc0-{fault}-{mode}"
        await env.check().create(Thing(pk, "a", 0))

        async def work(pk: str = pk) -> Any:
            return await env.repo().update({"pk": pk, "sk": "a"}, Thing.n.increment(1))

        out = await run_case(env.proxy, "increment0", fault, mode, work)
        (item,) = await stored(env, pk)
        assert item.n == out.forwarded  # exactly once per request that reached the server
        if fault not in APPLIED:
            assert item.n == (1 if out.error is None else 0)
        doubled += item.n > 1
        note = "at-least-once: applied once per forwarded attempt" if fault in APPLIED else None
        record("repository.update(increment, unconditioned)", fault, 1, note)
    assert doubled > 0  # the hazard is real: the guarantees page must keep saying so


async def test_delete(env: Env) -> None:
    for fault, mode in cases():
        pk = f"del-{fault}-{mode}"
        await env.check().put(Thing(pk, "a", 5))
        out = await run_case(
            env.proxy, "delete", fault, mode, partial(env.repo().delete, {"pk": pk, "sk": "a"})
        )
        items = await stored(env, pk)
        note = None
        if out.error is None:
            assert items == []
            if fault in APPLIED:
                assert out.value is None  # the retry found nothing left to return
                note = "lost answer -> returns None (deleted by the first attempt)"
            else:
                assert out.value == Thing(pk, "a", 5)
        elif fault not in APPLIED:
            assert items == [Thing(pk, "a", 5)]
        else:
            assert items == []
        record("repository.delete", fault, 1, note)


# --------------------------------------------------------------------------- pages


@pytest.mark.parametrize("kind", ["query", "scan"])
async def test_pages_resume_from_the_last_cursor(env: Env, kind: str) -> None:
    """A failed page raises a typed error; resuming from the last good cursor yields
    every item exactly once."""
    pk = f"pages-{kind}"
    want = [Thing(pk, f"{i:02d}", i) for i in range(9)]
    for t in want:
        await env.check().put(t)
    operation = "Query" if kind == "query" else "Scan"

    def read(cursor: str | None) -> Any:
        if kind == "query":
            return env.repo().query(Thing.pk == pk, page_size=3, cursor=cursor, consistent=True)
        return env.repo().scan(filter=Thing.pk == pk, page_size=4, cursor=cursor, consistent=True)

    for fault, mode in cases():
        got: list[Thing] = []
        cursor: str | None = None
        # the first page is clean, the second is faulted
        async with contextlib.aclosing(read(None).pages()) as pages:
            first = await anext(pages)
        got += first.items
        cursor = first.cursor

        async def rest(start: str | None, got: list[Thing] = got) -> str | None:
            async with contextlib.aclosing(read(start).pages()) as pages:
                async for page in pages:
                    got.extend(page.items)
                    return page.cursor
            return None

        out = await run_case(env.proxy, kind, fault, mode, partial(rest, cursor), only=operation)
        if out.error is None:
            cursor = out.value
        while cursor is not None:  # the caller resumes from the last cursor it holds
            cursor = await rest(cursor)
        assert sorted(got, key=lambda t: t.sk) == want, (fault, mode)
        assert len(got) == len(want)
        record(f"{kind} pages", fault, len(want))


# --------------------------------------------------------------------------- batches


async def test_batch_write(env: Env) -> None:
    """Every item is stored or reported failed with a typed error; none vanishes."""
    for fault, mode in cases():
        pk = f"bw-{fault}-{mode}"
        objs = [Thing(pk, f"{i:03d}", i) for i in range(30)]
        out = await run_case(
            env.proxy,
            "batch_write",
            fault,
            mode,
            partial(env.via.batch(concurrency=2, retry=POLICY).write, puts=objs),
            only="BatchWriteItem",
            expect_typed=False,
            exhaust=400,
        )
        items = {t.sk: t for t in await stored(env, pk)}
        if out.error is None:
            report = out.value
            for r in report:
                if r.ok:
                    assert items[r.value.sk] == r.value
                else:
                    assert isinstance(r.error, EXHAUSTED[fault])
                    assert mode == "exhausted" or fault == "slow_past_deadline"
            if mode == "once" and fault != "slow_past_deadline":
                assert report.ok and len(items) == 30
        else:
            raise AssertionError(f"a batch reports failures per item, it raised {out.error!r}")
        for sk, t in items.items():
            assert t == objs[int(sk)]
        record("batch write", fault, 30)


async def test_batch_get(env: Env) -> None:
    pk = "bg"
    objs = [Thing(pk, f"{i:03d}", i) for i in range(30)]
    await env.direct.batch().write(puts=objs)
    keys = [key(Thing, pk=pk, sk=t.sk) for t in objs]
    for fault, mode in cases():
        out = await run_case(
            env.proxy,
            "batch_get",
            fault,
            mode,
            lambda: env.via.batch(concurrency=2, retry=POLICY).get(keys),
            only="BatchGetItem",
            expect_typed=False,
            exhaust=400,
        )
        if out.error is None:
            result = out.value
            for i, r in enumerate(result.report):
                if r.ok:
                    assert result[i] == objs[i]  # never a silent None for a stored item
                else:
                    assert isinstance(r.error, EXHAUSTED[fault])
                    assert mode == "exhausted" or fault == "slow_past_deadline"
            if mode == "once" and fault != "slow_past_deadline":
                assert result.found == objs
        else:
            raise AssertionError(f"a batch reports failures per item, it raised {out.error!r}")
        record("batch get", fault, 30)


# --------------------------------------------------------------------------- transactions


@pytest.mark.xfail_moto(reason="moto replays a transaction with the same ClientRequestToken")
async def test_transaction_with_token(env: Env) -> None:
    """The ClientRequestToken makes the client's retry of a lost answer a no-op: the
    increment and the create inside are applied exactly once."""
    for fault, mode in cases():
        pk = f"tx-{fault}-{mode}"
        await env.check().create(Thing(pk, "counter", 0))

        async def work(pk: str = pk) -> Any:
            async with env.via.transaction() as tx:
                tx.update(key(Thing, pk=pk, sk="counter"), Thing.n.increment(5))
                tx.create(Thing(pk, "record", 5))
            return tx.token

        out = await run_case(env.proxy, "transaction", fault, mode, work)
        items = {t.sk: t for t in await stored(env, pk)}
        if out.error is None:
            assert items["counter"].n == 5 and "record" in items
        elif fault in APPLIED:
            assert items["counter"].n == 5 and "record" in items  # applied once
        else:
            assert items["counter"].n == 0 and "record" not in items
        assert items["counter"].n in (0, 5)
        note = "token dedupes the retried lost answer" if fault in APPLIED else None
        record("transaction (token)", fault, len(items), note)
