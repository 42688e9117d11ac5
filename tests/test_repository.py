"""Repository CRUD, versioning and timestamps against the real test backend."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import attrs
import pytest

from dynamorm_async import DynamoClient, errors
from dynamorm_async.repository import Repository
from dynamorm_async.tables import create_table, delete_table, ensure_table

from .entities import Payment, Status

SECRET = b"test-cursor-secret-0123456789"


@pytest.fixture
async def repo(dynamodb_endpoint: str, table_name: str) -> AsyncIterator[Repository[Payment]]:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as client:
        prefix = table_name + "-"
        await create_table(client, Payment, prefix=prefix)
        yield Repository(Payment, client, table_prefix=prefix, cursor_secret=SECRET)
        await delete_table(client, Payment, prefix=prefix)


def pay(i: int = 1, customer: str = "c#1", **kw: object) -> Payment:
    return Payment(customer, f"p#{i:04d}", Decimal(i), **kw)  # type: ignore[arg-type]


async def test_create_get_round_trip(repo: Repository[Payment]) -> None:
    p = pay(
        1,
        tags={"a", "b"},
        meta={"ip": "10.0.0.1", "n": Decimal(3)},
        expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    )
    stored = await repo.create(p)
    assert stored.version == 1
    assert stored.created_at is not None and stored.created_at == stored.updated_at
    assert p.version == 0  # the input is not mutated
    got = await repo.get(customer="c#1", payment_id="p#0001", consistent=True)
    assert got == stored
    assert await repo.get(stored) == stored
    assert await repo.get({"customer": "c#1", "payment_id": "p#0001"}) == stored
    assert await repo.get(customer="c#1", payment_id="nope") is None
    with pytest.raises(errors.ItemNotFound):
        await repo.get_or_raise(customer="c#1", payment_id="nope")


async def test_create_twice_raises_already_exists(repo: Repository[Payment]) -> None:
    await repo.create(pay(1))
    with pytest.raises(errors.AlreadyExists):
        await repo.create(pay(1))


async def test_put_condition_and_return_old(repo: Repository[Payment]) -> None:
    first = await repo.put(pay(1))
    old = await repo.put(pay(1, merchant="m-2"), return_old=True)
    assert old is not None and old.merchant == first.merchant
    with pytest.raises(errors.ConditionalCheckFailed):
        await repo.put(pay(1), condition=Payment.merchant == "m-9")
    assert await repo.put(pay(2), return_old=True) is None


async def test_partial_update_actions(repo: Repository[Payment]) -> None:
    created = await repo.create(pay(1, tags={"x"}))
    updated = await repo.update(
        created,
        Payment.status.set(Status.PAID),
        Payment.tags.add({"y"}),
        Payment.meta["ip"].set("1.2.3.4"),
        Payment.amount.increment(Decimal("0.5")),
    )
    assert updated.status is Status.PAID
    assert updated.tags == {"x", "y"}
    assert updated.meta == {"ip": "1.2.3.4"}
    assert updated.amount == Decimal("1.5")
    assert updated.version == 2
    assert updated.updated_at is not None and created.updated_at is not None
    assert updated.updated_at >= created.updated_at
    key = {"customer": "c#1", "payment_id": "p#0001"}
    again = await repo.update(key, Payment.tags.delete({"x"}), Payment.meta["ip"].remove())
    assert again.tags == {"y"} and again.meta == {}
    with pytest.raises(errors.ItemNotFound):
        await repo.update({"customer": "c#1", "payment_id": "zz"}, Payment.status.set(Status.PAID))
    with pytest.raises(errors.ConditionalCheckFailed):
        await repo.update(
            key, Payment.status.set(Status.REFUNDED), condition=Payment.status == Status.PENDING
        )
    with pytest.raises(errors.ExpressionError):
        await repo.update(key, Payment.customer.set("other"))  # key attributes are protected


async def test_versioned_whole_update_and_conflicts(repo: Repository[Payment]) -> None:
    v1 = await repo.create(pay(1))
    v2 = await repo.update(attrs.evolve(v1, amount=Decimal(5)))
    assert v2.version == 2 and v2.amount == 5
    assert v2.created_at == v1.created_at
    with pytest.raises(errors.VersionConflict) as ei:
        await repo.update(attrs.evolve(v1, amount=Decimal(6)))  # stale version 1
    assert ei.value.current == v2
    with pytest.raises(errors.ItemNotFound):
        await repo.update(pay(99))


async def test_concurrent_versioned_updates_exactly_one_wins(repo: Repository[Payment]) -> None:
    base = await repo.create(pay(1))
    results = await asyncio.gather(
        *(repo.update(attrs.evolve(base, amount=Decimal(i))) for i in range(10)),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, Payment)]
    conflicts = [r for r in results if isinstance(r, errors.VersionConflict)]
    assert len(wins) == 1 and len(conflicts) == 9
    final = await repo.get_or_raise(base, consistent=True)
    assert final == wins[0] and final.version == 2


async def test_delete_with_version_check(repo: Repository[Payment]) -> None:
    v1 = await repo.create(pay(1))
    v2 = await repo.update(v1, Payment.status.set(Status.PAID))
    with pytest.raises(errors.VersionConflict) as ei:
        await repo.delete(v1)
    assert ei.value.current == v2
    deleted = await repo.delete(v2)
    assert deleted == v2
    assert await repo.delete(v2, check_version=False) is None
    assert await repo.get(v2) is None


async def test_bad_input_is_rejected_before_sending(repo: Repository[Payment]) -> None:
    with pytest.raises(errors.KeyError_):
        await repo.get(customer="c#1")  # missing key part
    with pytest.raises(errors.KeyError_):
        await repo.get(customer="c#1", payment_id="")  # empty key string
    with pytest.raises(errors.KeyError_):
        await repo.get(customer=1, payment_id="x")  # wrong key type
    with pytest.raises(errors.ItemTooLarge):
        await repo.put(pay(1, meta={"blob": "x" * 500_000}))
    with pytest.raises(errors.EncodeError):
        await repo.put(pay(1, meta={"f": float("nan")}))
    with pytest.raises(errors.EncodeError):
        await repo.put(pay(1, expires_at=dt.datetime(2030, 1, 1)))  # naive datetime
    with pytest.raises(AttributeError):
        _ = Payment.nonexistent  # type: ignore[attr-defined]


async def test_ensure_table_is_idempotent_and_reports_drift(
    dynamodb_endpoint: str, table_name: str
) -> None:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as client:
        prefix = table_name + "-"
        first = await ensure_table(client, Payment, prefix=prefix)
        assert first.created and first.matches
        again = await ensure_table(client, Payment, prefix=prefix)
        assert not again.created and again.matches, again.differences
        await client.update_time_to_live(
            TableName=again.name,
            TimeToLiveSpecification={"Enabled": False, "AttributeName": "expires_at"},
        )
        drift = await ensure_table(client, Payment, prefix=prefix)
        assert any("TTL" in d for d in drift.differences)
        with pytest.raises(errors.SchemaMismatch):
            await ensure_table(client, Payment, prefix=prefix, strict=True)
        await delete_table(client, Payment, prefix=prefix)
        with pytest.raises(errors.InvalidInput):
            await ensure_table(client, Payment, prefix="bad name!")
