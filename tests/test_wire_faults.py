"""Retries, checksums and deadlines through the fault-injecting proxy (a real local server)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from dynamorm_async import DynamoClient, RetryPolicy, errors
from dynamorm_async.attrvalue import to_item
from dynamorm_async.deadlines import deadline
from dynamorm_async.testing.faults import Fault, FaultProxy

FAST = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01)


@pytest.fixture
async def proxy(dynamodb_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(dynamodb_endpoint) as p:
        yield p


@pytest.fixture
async def client(proxy: FaultProxy) -> AsyncIterator[DynamoClient]:
    async with DynamoClient(endpoint_url=proxy.endpoint_url, region="us-east-1", retry=FAST) as c:
        yield c


async def _table(client: DynamoClient, name: str) -> None:
    await client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    await client.wait_for_table_active(name)


@pytest.mark.parametrize(
    "fault",
    [
        Fault.throttle(),
        Fault.server_error(),
        Fault.server_error(503),
        Fault.reset_before(),
        Fault.bad_crc(),
        Fault.truncate(),
        Fault.answer(502, b"<html>bad gateway</html>"),
    ],
    ids=["throttle", "500", "503", "reset", "crc", "truncate", "html502"],
)
async def test_retryable_faults_are_retried(
    client: DynamoClient, proxy: FaultProxy, table_name: str, fault: Fault
) -> None:
    await _table(client, table_name)
    await client.put_item(TableName=table_name, Item=to_item({"pk": "a", "v": 1}))
    proxy.inject(fault, fault)
    got = await client.get_item(TableName=table_name, Key=to_item({"pk": "a"}))
    assert got["Item"]["v"] == {"N": "1"}
    assert proxy.requests["GetItem"] == 3
    assert proxy.pending == 0


async def test_exhausted_retries_raise_the_typed_error(
    client: DynamoClient, proxy: FaultProxy
) -> None:
    proxy.inject(*[Fault.throttle()] * 4)
    with pytest.raises(errors.Throttled):
        await client.list_tables()
    assert proxy.requests["ListTables"] == 4
    proxy.inject(*[Fault.bad_crc()] * 4)
    with pytest.raises(errors.ChecksumMismatch):
        await client.list_tables()


async def test_non_retryable_errors_are_not_retried(
    client: DynamoClient, proxy: FaultProxy, table_name: str
) -> None:
    with pytest.raises(errors.ResourceNotFound):
        await client.get_item(TableName=table_name, Key=to_item({"pk": "a"}))
    assert proxy.requests["GetItem"] == 1


async def test_reset_after_apply_is_visible_to_the_caller(
    client: DynamoClient, proxy: FaultProxy, table_name: str
) -> None:
    """A lost answer is retried; a conditional write then reports the first application."""
    await _table(client, table_name)
    proxy.inject(Fault.reset_after(only="PutItem"))
    with pytest.raises(errors.ConditionalCheckFailed):
        await client.put_item(
            TableName=table_name,
            Item=to_item({"pk": "once"}),
            ConditionExpression="attribute_not_exists(pk)",
        )
    assert proxy.forwarded["PutItem"] == 2  # applied once, the retry was refused


async def test_retry_sleep_never_passes_the_deadline(proxy: FaultProxy) -> None:
    slow_policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=1.0)
    async with DynamoClient(
        endpoint_url=proxy.endpoint_url, region="us-east-1", retry=slow_policy
    ) as client:
        proxy.inject(*[Fault.throttle()] * 10)
        start = time.monotonic()
        with deadline(seconds=0.3), pytest.raises(errors.DeadlineExceeded) as ei:
            for _ in range(20):  # a sleep may draw below 0.3 s; the deadline still wins
                await client.list_tables()
        assert time.monotonic() - start < 0.35
        assert isinstance(ei.value.__cause__, errors.Throttled)


async def test_slow_answer_past_deadline(client: DynamoClient, proxy: FaultProxy) -> None:
    proxy.inject(Fault.slow(1.0))
    start = time.monotonic()
    with deadline(seconds=0.2), pytest.raises(errors.DeadlineExceeded):
        await client.list_tables()
    assert time.monotonic() - start < 0.5
