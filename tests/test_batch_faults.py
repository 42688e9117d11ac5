"""Batches (and parallel scan) through the fault proxy: unprocessed items retried with
backoff, attempts and deadlines, throttling and transport failures, and the 5,000-write
chaos test that must end with every item stored exactly once and a report that matches."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dynamorm_async import DynamoClient, RetryPolicy, errors
from dynamorm_async.batch_chunks import StillUnprocessed
from dynamorm_async.batch_keys import key
from dynamorm_async.batch_report import BatchReport, FailureReason
from dynamorm_async.db import Database
from dynamorm_async.deadlines import deadline
from dynamorm_async.model import entity
from dynamorm_async.tables import create_table, delete_table
from dynamorm_async.testing.faults import Fault, FaultProxy, all_faults

FAST = RetryPolicy(max_attempts=10, base_delay=0.001, max_delay=0.02)


@entity(table="items", hash_key="pk", range_key="sk")
class Thing:
    pk: str
    sk: str
    n: int = 0


@entity(table="notes", hash_key="id")
class Note:
    id: str
    text: str = ""


@pytest.fixture
async def direct(dynamodb_endpoint: str) -> AsyncIterator[DynamoClient]:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as c:
        yield c


@pytest.fixture
async def proxy(dynamodb_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(dynamodb_endpoint, seed=5) as p:
        yield p


@pytest.fixture
async def prefix(direct: DynamoClient, table_name: str) -> AsyncIterator[str]:
    prefix = table_name + "-"
    for cls in (Thing, Note):
        await create_table(direct, cls, prefix=prefix)
    yield prefix
    for cls in (Thing, Note):
        await delete_table(direct, cls, prefix=prefix)


@pytest.fixture
async def via(proxy: FaultProxy) -> AsyncIterator[DynamoClient]:
    async with DynamoClient(endpoint_url=proxy.endpoint_url, region="us-east-1", retry=FAST) as c:
        yield c


def thing(i: int) -> Thing:
    return Thing(f"t#{i % 13}", f"{i:06d}", i)


async def stored(direct: DynamoClient, prefix: str) -> list[Thing]:
    db = Database(direct, table_prefix=prefix)
    return [t async for t in db.repository(Thing).scan(consistent=True)]


def check_counts(report: BatchReport, proxy: FaultProxy, operation: str) -> None:
    """Every delivery the proxy held back came back to the executor as unprocessed, and
    was sent again unless its attempts ran out."""
    assert report.unprocessed == proxy.held_back[operation]
    exhausted = sum(isinstance(r.error, StillUnprocessed) for r in report)
    assert sum(r.attempts for r in report) == report.total + report.unprocessed - exhausted
    assert proxy.requests[operation] >= report.requests


async def test_unprocessed_items_are_sent_again(
    proxy: FaultProxy, via: DynamoClient, direct: DynamoClient, prefix: str
) -> None:
    proxy.inject(*[Fault.unprocessed(0.5)] * 6)
    db = Database(via, table_prefix=prefix)
    report = await db.batch(retry=FAST).write(puts=[thing(i) for i in range(100)])
    assert report.ok and report.unprocessed > 0
    check_counts(report, proxy, "BatchWriteItem")
    assert max(r.attempts for r in report) >= 2
    assert sorted(t.n for t in await stored(direct, prefix)) == list(range(100))


async def test_items_still_unprocessed_fail_and_were_never_written(
    proxy: FaultProxy, via: DynamoClient, direct: DynamoClient, prefix: str
) -> None:
    proxy.chaos(1.0, [Fault.unprocessed(0.5)], seed=2)
    db = Database(via, table_prefix=prefix)
    retry = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01)
    report = await db.batch(retry=retry).write(puts=[thing(i) for i in range(50)])
    failed = report.failed
    assert failed and len(report.done) + len(failed) == 50
    assert all(r.reason is FailureReason.THROTTLED for r in failed)
    assert all(isinstance(r.error, StillUnprocessed) and r.attempts == 3 for r in failed)
    check_counts(report, proxy, "BatchWriteItem")
    written = {t.n for t in await stored(direct, prefix)}
    assert written == {r.index for r in report.done}  # the report matches the table


async def test_deadline_bounds_the_backoff(
    proxy: FaultProxy, via: DynamoClient, direct: DynamoClient, prefix: str
) -> None:
    proxy.chaos(1.0, [Fault.unprocessed(1.0)], seed=2)
    db = Database(via, table_prefix=prefix)
    slow = RetryPolicy(max_attempts=50, base_delay=0.2, max_delay=2.0)
    start = time.monotonic()
    with deadline(seconds=0.5):
        report = await db.batch(retry=slow).write(puts=[thing(i) for i in range(30)])
    assert time.monotonic() - start < 0.6
    assert report.by_reason() == {FailureReason.DEADLINE: 30}
    assert all(isinstance(r.error, errors.DeadlineExceeded) for r in report)
    assert not await stored(direct, prefix)


async def test_unprocessed_keys_are_read_again(
    proxy: FaultProxy, via: DynamoClient, direct: DynamoClient, prefix: str
) -> None:
    await Database(direct, table_prefix=prefix).batch().write(puts=[thing(i) for i in range(250)])
    proxy.chaos(0.5, [Fault.unprocessed(0.3)], seed=4, only=["BatchGetItem"])
    db = Database(via, table_prefix=prefix)
    keys = [key(Thing, pk=thing(i).pk, sk=thing(i).sk) for i in range(260)]
    got = await db.batch(retry=FAST).get(keys, consistent=True)
    assert got.report.ok and got.report.unprocessed > 0
    check_counts(got.report, proxy, "BatchGetItem")
    assert [t.n if t else None for t in got.items] == [*range(250), *[None] * 10]


@pytest.mark.parametrize(
    ("fault", "reason", "error"),
    [
        (Fault.throttle(), FailureReason.THROTTLED, errors.Throttled),
        (Fault.server_error(), FailureReason.SERVICE, errors.InternalServerError),
        (Fault.reset_before(), FailureReason.TRANSPORT, errors.TransportError),
    ],
    ids=["throttled", "5xx", "reset"],
)
async def test_requests_failing_past_client_retries(
    proxy: FaultProxy, direct: DynamoClient, prefix: str, fault: Fault, reason: Any, error: Any
) -> None:
    proxy.chaos(1.0, [fault], seed=1, only=["BatchWriteItem"])
    retry = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001)
    async with DynamoClient(proxy.endpoint_url, "us-east-1", retry=retry) as client:
        db = Database(client, table_prefix=prefix)
        report = await db.batch().write(puts=[thing(i) for i in range(60)])
    assert report.by_reason() == {reason: 60}
    assert all(isinstance(r.error, error) for r in report)
    assert report.requests == 3  # retryable errors are not split: nothing to isolate
    assert proxy.requests["BatchWriteItem"] == 6


async def test_chaos_five_thousand_writes_exactly_once(
    proxy: FaultProxy, via: DynamoClient, direct: DynamoClient, prefix: str
) -> None:
    """5,000 writes (4,000 puts, 1,000 deletes) under 30% injected faults of every kind."""
    plain = Database(direct, table_prefix=prefix)
    doomed = [Note(f"n#{i}", "old") for i in range(1000)]
    assert (await plain.batch().write(puts=doomed)).ok
    rule = proxy.chaos(0.3, all_faults(slow_delay=0.005), seed=1234)
    db = Database(via, table_prefix=prefix)
    puts = [thing(i) for i in range(4000)]
    deletes = [key(Note, id=n.id) for n in doomed]
    report = await db.batch(retry=FAST, concurrency=8).write(puts=puts, deletes=deletes)

    assert report.ok, report.summary()
    assert report.total == 5000 and len(report.done) == 5000
    assert [r.kind for r in report] == ["put"] * 4000 + ["delete"] * 1000
    check_counts(report, proxy, "BatchWriteItem")
    assert report.unprocessed > 0
    assert set(rule.applied) == {f.kind for f in all_faults()}  # every fault kind happened
    items = await stored(direct, prefix)
    assert len(items) == 4000  # a scan lists each stored item once: no extra, none missing
    assert {(t.pk, t.sk, t.n) for t in items} == {(t.pk, t.sk, t.n) for t in puts}
    assert await plain.repository(Note).count(consistent=True) == 0


async def test_batch_writer_through_faults(
    proxy: FaultProxy, via: DynamoClient, direct: DynamoClient, prefix: str
) -> None:
    proxy.chaos(0.3, all_faults(slow_delay=0.002), seed=99)
    repo = Database(via, table_prefix=prefix).repository(Thing)
    async with repo.batch_writer(retry=FAST, concurrency=4) as w:
        for i in range(500):
            await w.put(thing(i))
    assert w.report.ok and w.report.total == 500
    assert w.report.unprocessed == proxy.held_back["BatchWriteItem"]
    assert sorted(t.n for t in await stored(direct, prefix)) == list(range(500))


async def test_parallel_scan_through_faults(
    proxy: FaultProxy, via: DynamoClient, direct: DynamoClient, prefix: str
) -> None:
    await Database(direct, table_prefix=prefix).batch().write(puts=[thing(i) for i in range(400)])
    faults = [f for f in all_faults(slow_delay=0.002) if f.kind != "unprocessed"]
    rule = proxy.chaos(0.3, faults, seed=8)
    repo = Database(via, table_prefix=prefix).repository(Thing)
    seen = [t.n async for t in repo.scan(segments=4, page_size=25)]
    assert sorted(seen) == list(range(400))  # each item once, across retried pages
    assert sum(rule.applied.values()) > 0 and proxy.requests["Scan"] > 16
