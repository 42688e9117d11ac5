"""``ClientPool.discard`` and the partner registry's use of it, against the real backend.

A fault proxy in front of the backend (forwarding everything) is a second endpoint URL
whose open connections the test can count: the proxy's per-connection server tasks.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator

import pytest

from dynamorm_async import ClientPool, DynamoClient
from dynamorm_async.partners import Partner, PartnerRegistry
from dynamorm_async.testing.faults import FaultProxy
from dynamorm_async.testing.recorder import RecordingProxy
from dynamorm_async.wire.credentials import StaticCredentials

from .test_faultmatrix_support import assert_connections_closed, is_proxy_conn
from .test_partners import BASE, ddb, role, sts, sts_endpoint

__all__ = ["ddb", "sts", "sts_endpoint"]  # fixtures shared with test_partners

ONE = StaticCredentials("AKIAONE", "secret-one")
TWO = StaticCredentials("AKIATWO", "secret-two")


@pytest.fixture
async def proxy(dynamodb_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(dynamodb_endpoint) as p:
        yield p


def open_connections() -> int:
    """Client connections currently open to any fault proxy of this loop."""
    return sum(1 for t in asyncio.all_tasks() if is_proxy_conn(t) and not t.done())


async def test_discard_keeps_the_shared_connector(proxy: FaultProxy) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        async with ClientPool() as pool:
            a = pool.client(proxy.endpoint_url, "us-east-1", ONE)
            b = pool.client(proxy.endpoint_url, "us-east-1", TWO)
            await asyncio.gather(a.list_tables(), b.list_tables())
            transport = pool.transport(proxy.endpoint_url)
            connections = open_connections()
            assert connections >= 1

            assert pool.discard(a) is True
            assert pool.client_count == 1
            assert pool.discard(a) is False  # already gone: nothing happens
            # b still goes through the same transport, on the kept-alive connections
            assert pool.transport(proxy.endpoint_url) is transport
            sent = proxy.requests["ListTables"]
            assert "TableNames" in await b.list_tables()
            assert proxy.requests["ListTables"] == sent + 1
            assert open_connections() == connections

            # the same key now gives a fresh client, on the same connector
            fresh = pool.client(proxy.endpoint_url, "us-east-1", ONE)
            assert fresh is not a and pool.client_count == 2
            assert pool.client(proxy.endpoint_url, "us-east-1", ONE) is fresh
            assert "TableNames" in await fresh.list_tables()
            assert pool.transport(proxy.endpoint_url) is transport
        await assert_connections_closed()
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_discarding_the_last_client_of_an_endpoint_closes_its_session(
    dynamodb_endpoint: str, proxy: FaultProxy
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        async with ClientPool() as pool:
            other = pool.client(dynamodb_endpoint, "us-east-1", ONE)
            lone = pool.client(proxy.endpoint_url, "us-east-1", ONE)
            await asyncio.gather(*(lone.list_tables() for _ in range(4)), other.list_tables())
            other_transport = pool.transport(dynamodb_endpoint)
            assert open_connections() >= 1

            assert pool.discard(lone) is True
            await assert_connections_closed()  # the proxy endpoint's connections are gone
            assert pool.transport(dynamodb_endpoint) is other_transport
            assert "TableNames" in await other.list_tables()

            again = pool.client(proxy.endpoint_url, "us-east-1", ONE)
            assert again is not lone
            assert "TableNames" in await again.list_tables()  # on a new session
            assert open_connections() == 1
        await assert_connections_closed()
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_discard_after_the_loop_closed(dynamodb_endpoint: str) -> None:
    """A client discarded after ``asyncio.run`` returned: its session's loop is dead, so
    the sockets are closed directly; nothing is left for the garbage collector."""
    pool = ClientPool()
    client = pool.client(dynamodb_endpoint, "us-east-1", ONE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an "Unclosed ..." ResourceWarning fails here
        asyncio.run(client.list_tables())
        assert pool.discard(client) is True and pool.client_count == 0
        gc.collect()


async def test_discard_ignores_a_client_the_pool_does_not_hold(dynamodb_endpoint: str) -> None:
    async with ClientPool() as pool:
        pooled = pool.client(dynamodb_endpoint, "us-east-1", ONE)
        async with DynamoClient(dynamodb_endpoint, "us-east-1", ONE) as stranger:
            assert pool.discard(stranger) is False  # same key, not the pool's client
        assert pool.client_count == 1
        assert pool.client(dynamodb_endpoint, "us-east-1", ONE) is pooled


async def test_partner_removal_discards_its_client(
    sts: RecordingProxy, ddb: RecordingProxy
) -> None:
    def make(name: str, i: int) -> Partner:
        return Partner(name, role(i), endpoint_url=ddb.endpoint_url, region="us-east-1")

    async def list_as(registry: PartnerRegistry, name: str) -> DynamoClient:
        async with registry.use(name):
            client = registry.binding().client
            assert "TableNames" in await client.list_tables()
            return client

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        async with ClientPool() as pool:
            registry = PartnerRegistry(
                [make("a", 1), make("b", 2)],
                pool=pool,
                sts_endpoint_url=sts.endpoint_url,
                base_credentials=BASE,
            )
            async with registry:
                client_a = await list_as(registry, "a")
                client_b = await list_as(registry, "b")
                transport = pool.transport(ddb.endpoint_url)
                assert pool.client_count == 2

                registry.remove("a")
                assert pool.client_count == 1
                assert pool.discard(client_a) is False  # the registry already did
                assert await list_as(registry, "b") is client_b
                assert pool.transport(ddb.endpoint_url) is transport

                registry.register(make("a", 1))
                assert await list_as(registry, "a") is not client_a
                assert pool.client_count == 2
                # replacing with a changed config swaps the client, not adds one
                registry.register(make("b", 3), replace=True)
                assert await list_as(registry, "b") is not client_b
                assert pool.client_count == 2
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
