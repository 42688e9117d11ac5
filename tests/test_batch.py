"""BatchExecutor against the real backend: sizes, mixed tables, duplicates, oversized and
invalid items, isolation of items DynamoDB rejects, gets, progress, deadlines, sealing."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import pytest

from dynamorm_async import DynamoClient, errors
from dynamorm_async.attrvalue import Item
from dynamorm_async.batch import BatchExecutor
from dynamorm_async.batch_keys import canonical_key, key
from dynamorm_async.batch_report import BatchFailed, BatchProgress, FailureReason
from dynamorm_async.db import Database
from dynamorm_async.deadlines import deadline
from dynamorm_async.model import EntityMeta, entity, field
from dynamorm_async.tables import create_table, delete_table

FIXED = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


@entity(
    table="orders",
    hash_key="pk",
    range_key="sk",
    version="version",
    created_at="created_at",
    updated_at="updated_at",
)
class Order:
    pk: str
    sk: str
    n: int = 0
    blob: str = ""
    version: int = 0
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@entity(table="ledger", hash_key="id")
class Ledger:
    id: str
    amount: Decimal = Decimal(0)


@entity(table="orders", hash_key="pk", range_key="sk")
class NumberKeyed:
    """Maps the ``orders`` table with a numeric hash key: DynamoDB rejects its items."""

    pk: int
    sk: str


@entity(table="no-such-table", hash_key="id")
class Nowhere:
    id: str


@entity(table="secrets", hash_key="id")
class Secret:
    id: str
    code: str = field(default="", encrypted=True)


class ReversingSealer:
    """A reversible ItemSealer (base64 of the reversed text), to prove batches seal."""

    async def seal(self, meta: EntityMeta[Any], table: str, item: Item) -> Item:
        out = dict(item)
        for f in meta.fields.values():
            if f.encrypted and f.stored_name in out:
                raw = out[f.stored_name]["S"][::-1].encode()
                out[f.stored_name] = {"B": base64.b64encode(raw).decode()}
        return out

    async def unseal(self, meta: EntityMeta[Any], table: str, items: Sequence[Item]) -> list[Item]:
        result = []
        for item in items:
            out = dict(item)
            for f in meta.fields.values():
                if f.encrypted and f.stored_name in out:
                    text = base64.b64decode(out[f.stored_name]["B"]).decode()[::-1]
                    out[f.stored_name] = {"S": text}
            result.append(out)
        return result


@pytest.fixture
async def client(dynamodb_endpoint: str) -> AsyncIterator[DynamoClient]:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as c:
        yield c


@pytest.fixture
async def db(client: DynamoClient, table_name: str) -> AsyncIterator[Database]:
    prefix = table_name + "-"
    for cls in (Order, Ledger):
        await create_table(client, cls, prefix=prefix)
    yield Database(client, table_prefix=prefix, clock=lambda: FIXED)
    for cls in (Order, Ledger):
        await delete_table(client, cls, prefix=prefix)


def order(i: int, **kw: Any) -> Order:
    return Order(f"o#{i % 7}", f"{i:06d}", n=i, **kw)


async def stored_orders(db: Database) -> dict[tuple[str, str], Order]:
    return {(o.pk, o.sk): o async for o in db.repository(Order).scan(consistent=True)}


@pytest.mark.parametrize("count", [0, 1, 25, 26, 1000])
async def test_write_then_get_any_size(db: Database, count: int) -> None:
    orders = [order(i) for i in range(count)]
    report = await db.batch().write(puts=orders)
    assert report.ok and report.total == count
    assert report.requests == -(-count // 25)
    assert [r.index for r in report] == list(range(count))
    assert all(r.attempts == 1 and r.kind == "put" and r.entity is Order for r in report)
    stored = await stored_orders(db)
    assert len(stored) == count
    for o in orders:
        got = stored[(o.pk, o.sk)]
        assert got.n == o.n and got.updated_at == FIXED and got.created_at == FIXED
    keys = [key(Order, pk=o.pk, sk=o.sk) for o in orders] + [key(Order, pk="none", sk="x")]
    found = await db.batch().get(keys, consistent=True)
    assert found.report.ok and found.report.requests == -(-(count + 1) // 100)
    assert [o.n if o else None for o in found.items] == [*range(count), None]
    deleted = await db.batch().write(deletes=orders)
    assert deleted.ok and not await stored_orders(db)


async def test_ten_thousand_items(db: Database) -> None:
    orders = [order(i) for i in range(10_000)]
    start = time.monotonic()
    report = await db.batch(concurrency=16).write(puts=orders)
    took = time.monotonic() - start
    assert report.ok, report.summary()
    assert report.requests == 400
    assert await db.repository(Order).count() == 10_000
    print(f"10,000 items written in {took:.1f} s")


async def test_mixed_entities_and_tables_with_deletes(db: Database) -> None:
    await db.batch().write(puts=[order(i) for i in range(10)])
    puts: list[Any] = [Ledger(f"l#{i}", Decimal(i) / 4) for i in range(30)]
    puts += [order(i, blob="new") for i in range(10, 20)]
    deletes = [key(Order, pk=order(i).pk, sk=order(i).sk) for i in range(5)]
    report = await db.batch().write(puts=puts, deletes=deletes)
    assert report.ok and report.total == 45
    tables = {db.repository(Order).table_name, db.repository(Ledger).table_name}
    assert {r.table for r in report} == tables
    assert [r.kind for r in report][-5:] == ["delete"] * 5
    assert len(await stored_orders(db)) == 15
    ledger = await db.batch().get([key(Ledger, id=f"l#{i}") for i in range(30)])
    assert [x.amount if x else None for x in ledger.items] == [Decimal(i) / 4 for i in range(30)]
    mixed = await db.batch().get([key(Ledger, id="l#3"), key(Order, pk="o#3", sk="000010")])
    assert isinstance(mixed[0], Ledger) and isinstance(mixed[1], Order) and mixed[1].n == 10


async def test_duplicates_are_named_or_deduped(db: Database) -> None:
    puts = [order(1), order(2), order(1, blob="later")]
    with pytest.raises(errors.DuplicateItem) as ei:
        await db.batch().write(puts=puts, deletes=[order(2)])
    text = str(ei.value)
    assert "#0 (put), #2 (put)" in text and "#1 (put), #3 (delete)" in text
    assert "'000001'" in text and "dedupe='last'" in text
    assert not await stored_orders(db)  # nothing was sent

    report = await db.batch().write(puts=puts, deletes=[order(2)], dedupe="last")
    assert report.ok and report.total == 4 and report.requests == 1
    assert [r.attempts for r in report] == [0, 0, 1, 1]  # superseded writes are not sent
    stored = await stored_orders(db)
    assert list(stored) == [("o#1", "000001")] and stored["o#1", "000001"].blob == "later"
    with pytest.raises(errors.DuplicateItem):
        await db.batch().get([key(Order, pk="o#1", sk="000001")] * 2)
    got = await db.batch().get([key(Order, pk="o#1", sk="000001")] * 2, dedupe="last")
    assert [o.blob if o else None for o in got.items] == ["later", "later"]


async def test_numbers_that_spell_one_key_differently_are_duplicates(db: Database) -> None:
    with pytest.raises(errors.DuplicateItem):
        await db.batch().write(puts=[Ledger("a", Decimal(1))], deletes=[key(Ledger, id="a")])
    # Ledger keys are strings; a numeric key in two spellings is one item:
    assert canonical_key("t", {"k": {"N": "1.50"}}) == canonical_key("t", {"k": {"N": "1.5"}})


async def test_oversized_and_invalid_items_fail_alone(db: Database) -> None:
    big = order(3, blob="x" * (401 * 1024))
    empty_key = Order("", "000099")
    puts = [order(1), big, order(2), empty_key, order(4)]
    report = await db.batch().write(puts=puts)
    assert not report.ok
    assert [r.status for r in report] == ["done", "failed", "done", "failed", "done"]
    assert report.results[1].reason is FailureReason.TOO_LARGE
    assert isinstance(report.results[1].error, errors.ItemTooLarge)
    assert report.results[3].reason is FailureReason.INVALID
    assert isinstance(report.results[3].error, errors.KeyError_)
    assert report.results[1].attempts == 0 and report.requests == 1
    assert set(await stored_orders(db)) == {("o#1", "000001"), ("o#2", "000002"), ("o#4", "000004")}
    with pytest.raises(BatchFailed) as ei:
        report.raise_for_failures()
    assert ei.value.report is report and len(ei.value.failed) == 2
    assert "too_large" in str(ei.value) and "#1 put Order" in str(ei.value)
    assert report.by_reason() == {FailureReason.TOO_LARGE: 1, FailureReason.INVALID: 1}
    assert report.results[0].value.updated_at == FIXED  # the entity as stored

    nan = await db.batch().write(puts=[Ledger("ok"), Ledger("nan", Decimal("NaN"))])
    assert [r.reason for r in nan] == [None, FailureReason.INVALID]
    assert isinstance(nan.results[1].error, errors.EncodeError)


async def test_items_dynamodb_rejects_are_isolated(db: Database) -> None:
    """A numeric key in a string-keyed table fails only its own items (bisection)."""
    puts: list[Any] = [order(i) for i in range(20)]
    puts[4:4] = [NumberKeyed(7, "a")]
    puts[17:17] = [NumberKeyed(8, "b")]
    report = await db.batch().write(puts=puts)
    bad = [r.index for r in report if not r.ok]
    assert bad == [4, 17]
    assert all(r.reason is FailureReason.VALIDATION for r in report.failed)
    assert all(isinstance(r.error, errors.ValidationError) for r in report.failed)
    assert len(await stored_orders(db)) == 20
    assert report.requests > 1  # the first request was rejected whole, then split


async def test_missing_table_fails_its_items_only(db: Database) -> None:
    puts: list[Any] = [order(1), Nowhere("a"), Nowhere("b"), Ledger("l")]
    report = await db.batch().write(puts=puts)
    assert [r.ok for r in report] == [True, False, False, True]
    assert all(isinstance(r.error, errors.ResourceNotFound) for r in report.failed)
    assert {r.reason for r in report.failed} == {FailureReason.SERVICE}


async def test_not_an_entity_raises_before_sending(db: Database) -> None:
    with pytest.raises(errors.InvalidInput):
        await db.batch().write(puts=[order(1), {"pk": "x"}])
    with pytest.raises(errors.InvalidInput):
        await db.batch().write(deletes=["o#1"])
    with pytest.raises(errors.InvalidInput):
        key(dict, a=1)
    with pytest.raises(errors.InvalidInput):
        await db.batch().write(puts=[order(1)], dedupe="first")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidInput):
        BatchExecutor(db, concurrency=0)
    assert not await stored_orders(db)


async def test_progress_and_concurrency(db: Database) -> None:
    ticks: list[BatchProgress] = []
    report = await db.batch(concurrency=3, progress=ticks.append).write(
        puts=[order(i) for i in range(260)] + [order(999, blob="x" * 500_000)]
    )
    assert report.total == 261 and len(report.failed) == 1
    assert ticks[0] == BatchProgress(0, 0, 261) and ticks[-1] == BatchProgress(260, 1, 261)
    assert len(ticks) == 1 + 11  # one at the start, one per request (the last: 10 + 1 failed)
    dones = [t.done for t in ticks]
    assert dones == sorted(dones)


async def test_deadline_already_passed_fails_everything_unsent(db: Database) -> None:
    with deadline(seconds=0.0):
        report = await db.batch().write(puts=[order(i) for i in range(30)])
    assert len(report.failed) == 30
    assert report.by_reason() == {FailureReason.DEADLINE: 30}
    assert not await stored_orders(db)


async def test_batches_seal_and_unseal(client: DynamoClient, table_name: str) -> None:
    prefix = table_name + "-"
    await create_table(client, Secret, prefix=prefix)
    try:
        db = Database(client, table_prefix=prefix, sealer=ReversingSealer())
        report = await db.batch().write(puts=[Secret(f"s{i}", f"code-{i}") for i in range(30)])
        assert report.ok
        raw = await client.get_item(TableName=prefix + "secrets", Key={"id": {"S": "s3"}})
        assert raw["Item"]["code"] == {"B": base64.b64encode(b"3-edoc").decode()}
        got = await db.batch().get([key(Secret, id=f"s{i}") for i in range(30)])
        assert [s.code if s else None for s in got.items] == [f"code-{i}" for i in range(30)]
    finally:
        await delete_table(client, Secret, prefix=prefix)


async def test_get_reports_undecodable_items(db: Database, client: DynamoClient) -> None:
    await db.batch().write(puts=[order(1), order(2)])
    table = db.repository(Order).table_name
    await client.put_item(
        TableName=table, Item={"pk": {"S": "o#3"}, "sk": {"S": "000003"}, "n": {"S": "nan?"}}
    )
    got = await db.batch().get([key(Order, pk=o.pk, sk=o.sk) for o in map(order, (1, 3, 2))])
    assert got[0] is not None and got[2] is not None and got[1] is None
    assert [r.status for r in got.report] == ["done", "failed", "done"]
    assert got.report.results[1].reason is FailureReason.DECODE
    with pytest.raises(BatchFailed):
        got.raise_for_failures()
