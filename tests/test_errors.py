"""Every DynamoDB error code maps to its typed class, through a real HTTP exchange.

Codes a local server cannot provoke for real (access denied, item-collection limits,
throttling) are answered by the fault proxy with the exact body DynamoDB sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from dynamorm_async import DynamoClient, RetryPolicy, errors
from dynamorm_async.errors import _BY_CODE
from dynamorm_async.testing.faults import Fault, FaultProxy

NO_RETRY = RetryPolicy(max_attempts=1)


@pytest.fixture
async def proxied(dynamodb_endpoint: str) -> AsyncIterator[tuple[FaultProxy, DynamoClient]]:
    async with FaultProxy(dynamodb_endpoint) as proxy:
        async with DynamoClient(
            endpoint_url=proxy.endpoint_url, region="us-east-1", retry=NO_RETRY
        ) as client:
            yield proxy, client


@pytest.mark.parametrize("code", sorted(_BY_CODE))
async def test_each_error_code_maps_to_its_class(
    proxied: tuple[FaultProxy, DynamoClient], code: str
) -> None:
    proxy, client = proxied
    cls = _BY_CODE[code]
    status = 500 if issubclass(cls, errors.InternalServerError) else 400
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": f"msg for {code}"}
    proxy.inject(Fault.answer(status, orjson.dumps(body)))
    with pytest.raises(cls) as ei:
        await client.list_tables()
    err = ei.value
    assert type(err) is cls
    assert err.code == code and err.status == status
    assert f"msg for {code}" in str(err)
    assert err.retryable == (cls.retryable)


async def test_unknown_codes_fall_back_by_status(
    proxied: tuple[FaultProxy, DynamoClient],
) -> None:
    proxy, client = proxied
    proxy.inject(Fault.answer(400, b'{"__type": "x#SomethingNewException", "message": "m"}'))
    with pytest.raises(errors.DynamoDBError) as ei:
        await client.list_tables()
    assert type(ei.value) is errors.DynamoDBError and not ei.value.retryable
    proxy.inject(Fault.answer(503, b'{"__type": "x#SomethingNew", "message": "m"}'))
    with pytest.raises(errors.InternalServerError):
        await client.list_tables()


async def test_non_json_error_body_is_a_transport_error_naming_the_endpoint(
    proxied: tuple[FaultProxy, DynamoClient],
) -> None:
    proxy, client = proxied
    proxy.inject(Fault.answer(502, b"<html>bad gateway</html>"))
    with pytest.raises(errors.TransportError) as ei:
        await client.list_tables()
    assert proxy.endpoint_url in str(ei.value) and "not JSON" in str(ei.value)
