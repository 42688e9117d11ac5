"""``repo.batch_writer()`` / ``db.batch_writer()``: buffering, flushing at 25, order per
key, ``dedupe="last"``, failures raised on exit, exceptions and cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dynamorm_async import DynamoClient, errors
from dynamorm_async.batch_keys import key
from dynamorm_async.batch_report import BatchFailed, BatchProgress, FailureReason
from dynamorm_async.db import Database
from dynamorm_async.model import entity
from dynamorm_async.tables import create_table, delete_table
from dynamorm_async.testing.faults import Fault, FaultProxy


@entity(table="rows", hash_key="pk", range_key="sk")
class Row:
    pk: str
    sk: str
    v: int = 0
    blob: str = ""


@entity(table="tags", hash_key="name")
class Tag:
    name: str
    count: int = 0


@pytest.fixture
async def proxy(dynamodb_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(dynamodb_endpoint) as p:
        yield p


@pytest.fixture
async def db(proxy: FaultProxy, table_name: str) -> AsyncIterator[Database]:
    """A database whose requests go through the (quiet) proxy, to count them."""
    prefix = table_name + "-"
    async with DynamoClient(endpoint_url=proxy.endpoint_url, region="us-east-1") as client:
        for cls in (Row, Tag):
            await create_table(client, cls, prefix=prefix)
        yield Database(client, table_prefix=prefix)
        for cls in (Row, Tag):
            await delete_table(client, cls, prefix=prefix)


def row(i: int, **kw: Any) -> Row:
    return Row("r", f"{i:05d}", v=i, **kw)


async def rows(db: Database) -> dict[str, Row]:
    return {r.sk: r async for r in db.repository(Row).scan(consistent=True)}


async def test_flushes_every_25_and_the_rest_on_exit(db: Database, proxy: FaultProxy) -> None:
    ticks: list[BatchProgress] = []
    async with db.repository(Row).batch_writer(concurrency=1, progress=ticks.append) as w:
        for i in range(24):
            await w.put(row(i))
        assert proxy.requests["BatchWriteItem"] == 0  # still buffered
        await w.put(row(24))
        await asyncio.sleep(0.2)
        assert proxy.requests["BatchWriteItem"] == 1  # 25 buffered: sent
        for i in range(25, 60):
            await w.put(row(i))
    assert proxy.requests["BatchWriteItem"] == 3  # 25 + 25 + 10 on exit
    assert w.report.ok and w.report.total == 60 and w.report.requests == 3
    assert [r.index for r in w.report] == list(range(60))
    assert ticks[-1] == BatchProgress(60, 0, 60)
    assert len(await rows(db)) == 60


async def test_writes_to_one_key_keep_their_order(db: Database, proxy: FaultProxy) -> None:
    repo = db.repository(Row)
    async with repo.batch_writer() as w:
        await w.put(row(1, blob="first"))
        await w.put(row(2))
        await w.put(row(1, blob="second"))  # sends the buffer, then buffers this one
        await w.delete(row(2))
        await w.put(row(3))
    stored = await rows(db)
    assert set(stored) == {"00001", "00003"} and stored["00001"].blob == "second"
    assert w.report.ok and w.report.total == 5
    assert proxy.requests["BatchWriteItem"] == 2  # [1, 2] then [1', delete 2, 3]


async def test_dedupe_last_drops_buffered_writes(db: Database, proxy: FaultProxy) -> None:
    async with db.repository(Row).batch_writer(dedupe="last") as w:
        for version in range(3):
            for i in range(10):
                await w.put(row(i, blob=f"v{version}"))
    assert proxy.requests["BatchWriteItem"] == 1
    assert {r.blob for r in (await rows(db)).values()} == {"v2"}
    assert w.report.total == 30 and w.report.ok
    assert sum(r.attempts for r in w.report) == 10


async def test_failures_raise_on_exit_with_the_report(db: Database) -> None:
    with pytest.raises(BatchFailed) as ei:
        async with db.repository(Row).batch_writer() as w:
            await w.put(row(1))
            await w.put(row(2, blob="x" * 410_000))
            await w.put(row(3))
    report = ei.value.report
    assert report is w.report
    assert [r.status for r in report] == ["done", "failed", "done"]
    assert report.results[1].reason is FailureReason.TOO_LARGE
    assert set(await rows(db)) == {"00001", "00003"}


async def test_an_exception_in_the_block_still_flushes(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.repository(Row).batch_writer() as w:
            await w.put(row(1))
            raise RuntimeError("boom")
    assert set(await rows(db)) == {"00001"} and w.report.ok


async def test_cancellation_sends_nothing_more(db: Database, proxy: FaultProxy) -> None:
    proxy.inject(Fault.slow(5.0, only="BatchWriteItem"))
    started = asyncio.Event()

    async def writer() -> None:
        async with db.repository(Row).batch_writer(concurrency=1) as w:
            for i in range(30):
                await w.put(row(i))
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(writer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert proxy.requests["BatchWriteItem"] == 1  # the 5 buffered writes were not sent


async def test_mixed_entities_and_wrong_entity(db: Database) -> None:
    async with db.batch_writer() as w:
        for i in range(30):
            await w.put(row(i))
            await w.put(Tag(f"t{i}", i))
        await w.delete(key(Tag, name="t0"))
    assert w.report.ok and w.report.total == 61
    assert await db.repository(Tag).count(consistent=True) == 29
    with pytest.raises(errors.InvalidInput, match="Row only"):
        async with db.repository(Row).batch_writer() as only_rows:
            await only_rows.put(Tag("x"))
    with pytest.raises(errors.InvalidInput):
        db.batch_writer(dedupe="first")  # type: ignore[arg-type]
