"""The fault proxy's chaos rules and synthetic unprocessed batches, against the real backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dynamorm_async import DynamoClient, RetryPolicy, errors
from dynamorm_async.attrvalue import to_item
from dynamorm_async.testing.faults import ChaosRule, Fault, FaultProxy, all_faults

NO_RETRY = RetryPolicy(max_attempts=1)


@pytest.fixture
async def proxy(dynamodb_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(dynamodb_endpoint, seed=7) as p:
        yield p


@pytest.fixture
async def direct(dynamodb_endpoint: str) -> AsyncIterator[DynamoClient]:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as c:
        yield c


@pytest.fixture
async def via(proxy: FaultProxy) -> AsyncIterator[DynamoClient]:
    async with DynamoClient(
        endpoint_url=proxy.endpoint_url, region="us-east-1", retry=NO_RETRY
    ) as c:
        yield c


@pytest.fixture
async def table(direct: DynamoClient, table_name: str) -> AsyncIterator[str]:
    await direct.create_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    await direct.wait_for_table_active(table_name)
    yield table_name
    await direct.delete_table(TableName=table_name)


async def stored(direct: DynamoClient, table: str) -> set[str]:
    out = await direct.scan(TableName=table, ConsistentRead=True)
    return {i["pk"]["S"] for i in out["Items"]}


def puts(table: str, n: int) -> dict[str, list[dict[str, object]]]:
    return {table: [{"PutRequest": {"Item": to_item({"pk": f"k{i}", "v": i})}} for i in range(n)]}


async def test_unprocessed_items_are_never_applied(
    proxy: FaultProxy, via: DynamoClient, direct: DynamoClient, table: str
) -> None:
    proxy.inject(Fault.unprocessed(0.4))
    out = await via.batch_write_item(RequestItems=puts(table, 10))
    held = out["UnprocessedItems"][table]
    assert len(held) == 4 and proxy.held_back["BatchWriteItem"] == 4
    held_keys = {e["PutRequest"]["Item"]["pk"]["S"] for e in held}
    assert await stored(direct, table) == {f"k{i}" for i in range(10)} - held_keys
    assert proxy.forwarded["BatchWriteItem"] == 1

    proxy.inject(Fault.unprocessed(1.0))  # everything held back: nothing is forwarded
    out = await via.batch_write_item(RequestItems={table: held})
    assert len(out["UnprocessedItems"][table]) == 4 and proxy.forwarded["BatchWriteItem"] == 1
    assert not await stored(direct, table) & held_keys


async def test_unprocessed_keys_keep_the_table_options(
    proxy: FaultProxy, via: DynamoClient, direct: DynamoClient, table: str
) -> None:
    await direct.batch_write_item(RequestItems=puts(table, 6))
    keys = [{"pk": {"S": f"k{i}"}} for i in range(6)]
    spec = {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "pk"}
    proxy.inject(Fault.unprocessed(0.5))
    out = await via.batch_get_item(RequestItems={table: spec})
    unprocessed = out["UnprocessedKeys"][table]
    assert unprocessed["ConsistentRead"] is True and unprocessed["ProjectionExpression"] == "pk"
    got = {i["pk"]["S"] for i in out["Responses"][table]}
    left = {k["pk"]["S"] for k in unprocessed["Keys"]}
    assert len(left) == 3 and got | left == {f"k{i}" for i in range(6)} and not got & left
    assert all(set(i) == {"pk"} for i in out["Responses"][table])  # projection forwarded


async def test_unprocessed_fault_waits_for_a_batch(
    proxy: FaultProxy, via: DynamoClient, table: str
) -> None:
    proxy.inject(Fault.unprocessed())
    await via.put_item(TableName=table, Item=to_item({"pk": "single"}))
    assert proxy.pending == 1  # not used by PutItem
    out = await via.batch_write_item(RequestItems=puts(table, 2))
    assert len(out["UnprocessedItems"][table]) == 1 and proxy.pending == 0


async def test_unprocessed_passes_errors_through(
    proxy: FaultProxy, via: DynamoClient, table_name: str
) -> None:
    proxy.inject(Fault.unprocessed(0.5))
    with pytest.raises(errors.ResourceNotFound):
        await via.batch_write_item(RequestItems=puts(table_name, 4))  # no such table
    assert proxy.held_back["BatchWriteItem"] == 0


def test_fault_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        Fault.unprocessed(0)
    with pytest.raises(ValueError):
        ChaosRule(1.5, [Fault.throttle()])
    with pytest.raises(ValueError):
        ChaosRule(0.5, [])


def test_chaos_is_reproducible_with_a_seed() -> None:
    def draws(seed: int) -> list[str | None]:
        rule = ChaosRule(0.3, all_faults(), seed=seed)
        return [getattr(rule.pick("PutItem"), "kind", None) for _ in range(500)]

    first, again, other = draws(1), draws(1), draws(2)
    assert first == again and first != other
    hits = sum(k is not None for k in first)
    assert 110 < hits < 190  # 30% of 500, loosely
    assert "unprocessed" not in first  # only batches can get it
    rule = ChaosRule(1.0, [Fault.unprocessed()], seed=1, only=["BatchWriteItem"])
    assert rule.pick("GetItem") is None and rule.seen == 0
    picked = rule.pick("BatchWriteItem")
    assert picked is not None and picked.kind == "unprocessed" and rule.applied["unprocessed"] == 1


async def test_chaos_rules_apply_to_live_traffic(
    proxy: FaultProxy, via: DynamoClient, direct: DynamoClient, table: str
) -> None:
    rule = proxy.chaos(1.0, [Fault.throttle()], seed=3, only=["PutItem"])
    with pytest.raises(errors.Throttled):
        await via.put_item(TableName=table, Item=to_item({"pk": "a"}))
    await via.get_item(TableName=table, Key=to_item({"pk": "a"}))  # not a PutItem
    assert rule.applied == {"answer": 1} and proxy.forwarded["PutItem"] == 0
    proxy.inject(Fault.server_error(only="PutItem"))  # queued faults come first
    with pytest.raises(errors.InternalServerError):
        await via.put_item(TableName=table, Item=to_item({"pk": "a"}))
    assert rule.seen == 1
    proxy.calm()
    await via.put_item(TableName=table, Item=to_item({"pk": "a"}))
    assert await stored(direct, table) == {"a"}


async def test_chaos_with_client_retries_loses_nothing(
    proxy: FaultProxy, direct: DynamoClient, table: str
) -> None:
    faults = [f for f in all_faults() if f.kind != "unprocessed"]
    rule = proxy.chaos(0.3, faults, seed=11)
    retry = RetryPolicy(max_attempts=12, base_delay=0.001, max_delay=0.01)
    async with DynamoClient(proxy.endpoint_url, "us-east-1", retry=retry) as client:
        for i in range(60):
            await client.put_item(TableName=table, Item=to_item({"pk": f"p{i}"}))
    assert await stored(direct, table) == {f"p{i}" for i in range(60)}
    assert sum(rule.applied.values()) >= 10
    retried = sum(n for kind, n in rule.applied.items() if kind != "slow")  # slow succeeds
    assert proxy.requests["PutItem"] == 60 + retried
