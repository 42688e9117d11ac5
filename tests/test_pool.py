"""ClientPool lifecycle: sharing, closing cleanly, and surviving a new event loop."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest

from dynamorm_async import ClientPool
from dynamorm_async.wire.credentials import StaticCredentials


def test_pool_survives_a_new_event_loop_per_call(dynamodb_endpoint: str) -> None:
    """``asyncio.run`` per invocation (as naive Lambda handlers do) must keep working."""
    pool = ClientPool()
    client = pool.client(dynamodb_endpoint)

    async def call() -> list[str]:
        out = await client.list_tables()
        return list(out["TableNames"])

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an "Unclosed ..." ResourceWarning would fail here
        for _ in range(3):
            assert isinstance(asyncio.run(call()), list)
        asyncio.run(pool.aclose())
        gc.collect()


async def test_aclose_leaves_nothing_open(dynamodb_endpoint: str) -> None:
    pool = ClientPool(connection_limit=4)
    client = pool.client(dynamodb_endpoint)
    await asyncio.gather(*(client.list_tables() for _ in range(8)))
    before = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await pool.aclose()
        gc.collect()
    after = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    assert after <= before
    # The pool is reusable after aclose: a new session is made on demand.
    assert "TableNames" in await client.list_tables()
    await pool.aclose()


async def test_clients_are_keyed_by_endpoint_region_and_identity(dynamodb_endpoint: str) -> None:
    async with ClientPool() as pool:
        a = pool.client(dynamodb_endpoint, "us-east-1", StaticCredentials("AKIA1", "s1"))
        b = pool.client(dynamodb_endpoint, "us-east-1", StaticCredentials("AKIA1", "s1"))
        c = pool.client(dynamodb_endpoint, "us-east-1", StaticCredentials("AKIA2", "s2"))
        d = pool.client(dynamodb_endpoint, "eu-west-1", StaticCredentials("AKIA1", "s1"))
        assert a is b
        assert len({id(a), id(c), id(d)}) == 3
        assert pool.client_count == 3
        # All clients of one endpoint share one transport (one connector).
        await a.list_tables()
        assert pool.transport(a.endpoint.url) is pool.transport(c.endpoint.url)


def test_connection_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ClientPool(connection_limit=0)
