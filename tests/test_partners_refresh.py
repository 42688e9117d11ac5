"""Partner credentials over time: single-flight, refresh ahead of expiry (controllable
clock, no sleeps), failures served or typed, LRU eviction, rotating base credentials and
event loops. STS is a real moto server; proxies show what went over the wire."""

from __future__ import annotations

import asyncio

import pytest

from dynamorm_async.partners import PartnerCredentialsError, PartnerRegistry, StsAssumeRole
from dynamorm_async.repository import Repository
from dynamorm_async.testing.faults import Fault, FaultProxy
from dynamorm_async.testing.recorder import RecordingProxy
from dynamorm_async.wire.credentials import BotocoreChainCredentials

from .test_partners import (
    BASE,
    STS_DENIED,
    Clock,
    Note,
    ddb,
    issued_keys,
    partner,
    role,
    sts,
    sts_endpoint,
)

__all__ = ["ddb", "sts", "sts_endpoint"]  # fixtures shared with test_partners


async def test_single_flight_cold_and_expiring(sts: RecordingProxy) -> None:
    """100 concurrent first uses -> 1 STS call; 100 concurrent uses at expiry -> 1 call."""
    clock = Clock()
    reg = PartnerRegistry(
        [partner("acme", 1, "http://127.0.0.1:1", duration=900)],
        sts_endpoint_url=sts.endpoint_url,
        base_credentials=BASE,
        refresh_margin=300,
        refresh_jitter=0,
        clock=clock,
    )
    creds = reg.credentials("acme")
    first = await asyncio.gather(*(creds.get() for _ in range(100)))
    assert len(sts.by_operation("AssumeRole")) == 1
    assert {c.access_key_id for c in first} == set(issued_keys(sts))
    clock.offset = 895  # 5 s left: inside the 10 s expiry margin, everyone must wait
    second = await asyncio.gather(*(creds.get() for _ in range(100)))
    assert len(sts.by_operation("AssumeRole")) == 2
    assert {c.access_key_id for c in second} == {issued_keys(sts)[1]}
    stats = reg.stats("acme")
    assert (stats.sts_calls, stats.refreshes, stats.refresh_failures) == (2, 1, 0)
    await reg.aclose()


async def test_refresh_ahead_of_expiry(sts: RecordingProxy, ddb: RecordingProxy) -> None:
    """Inside the refresh margin one caller refreshes, the others keep being served; the
    pooled client stays the same and its requests switch to the new key."""
    clock = Clock()
    reg = PartnerRegistry(
        [partner("acme", 1, ddb.endpoint_url, duration=900)],
        sts_endpoint_url=sts.endpoint_url,
        base_credentials=BASE,
        refresh_margin=300,
        refresh_jitter=0,
        clock=clock,
    )
    async with reg.use("acme"):
        client = reg.binding().client
        clients = reg.pool.client_count
        await client.list_tables()
        clock.offset = 550  # 350 s left: outside the margin, no refresh
        await client.list_tables()
        assert len(sts.by_operation("AssumeRole")) == 1
        clock.offset = 650  # 250 s left: refresh
        await asyncio.gather(*(client.list_tables() for _ in range(50)))
        assert len(sts.by_operation("AssumeRole")) == 2
        await client.list_tables()
        assert reg.binding().client is client and reg.pool.client_count == clients
    old, new = issued_keys(sts)
    keys = [ex.access_key for ex in ddb.exchanges]
    assert keys[:2] == [old, old] and keys[-1] == new
    assert set(keys[2:-1]) <= {old, new} and new in keys[2:-1]
    stats = reg.stats("acme")
    assert (stats.sts_calls, stats.refreshes) == (2, 1)
    assert stats.cache_hits >= 50
    await reg.aclose()


async def test_refresh_failure_served_then_typed_error(
    sts_endpoint: str, ddb: RecordingProxy
) -> None:
    """A failed refresh while the credentials are valid serves them (and retries later);
    once they have expired the caller gets PartnerCredentialsError naming partner and code."""
    clock = Clock()
    async with FaultProxy(sts_endpoint) as proxy:
        reg = PartnerRegistry(
            [partner("acme", 1, ddb.endpoint_url, duration=900)],
            sts_endpoint_url=proxy.endpoint_url,
            base_credentials=BASE,
            refresh_margin=300,
            refresh_jitter=0,
            retry_interval=30,
            clock=clock,
        )
        creds = reg.credentials("acme")
        first = await creds.get()
        clock.offset = 650
        proxy.inject(Fault.answer(403, STS_DENIED))
        assert await creds.get() is first  # the refresh failed: still served
        assert await creds.get() is first  # no new attempt within retry_interval
        assert proxy.requests[""] == 2 and proxy.pending == 0
        assert reg.stats("acme").refresh_failures == 1
        clock.offset = 690  # retry_interval later: retried, and this time it works
        second = await creds.get()
        assert second.access_key_id != first.access_key_id and proxy.requests[""] == 3
        clock.offset = 900 + 60  # both sets have expired by now
        proxy.inject(Fault.answer(403, STS_DENIED))
        repo = Repository(Note, reg)
        async with reg.use("acme"):
            with pytest.raises(PartnerCredentialsError) as caught:
                await repo.get(owner="acme", note_id="n1")
        assert caught.value.partner == "acme" and caught.value.sts_code == "AccessDenied"
        assert "acme" in str(caught.value) and "AccessDenied" in str(caught.value)
        assert ddb.exchanges == []  # nothing was sent unsigned or with expired keys
        stats = reg.stats("acme")
        assert (stats.sts_calls, stats.refreshes, stats.refresh_failures) == (4, 1, 2)
        await reg.aclose()


async def test_no_base_credentials_is_a_partner_error(sts: RecordingProxy) -> None:
    """Without base credentials, the error still names the partner (no STS code)."""
    reg = PartnerRegistry(
        [partner("acme", 1, "http://127.0.0.1:1")],
        sts_endpoint_url=sts.endpoint_url,
        base_credentials=BotocoreChainCredentials(profile="dynamorm-no-such-profile"),
    )
    with pytest.raises(PartnerCredentialsError) as caught:
        await reg.credentials("acme").get()
    assert caught.value.partner == "acme" and caught.value.sts_code is None
    assert sts.exchanges == []
    await reg.aclose()


async def test_lru_eviction(sts: RecordingProxy) -> None:
    """At most max_cached partners hold credentials; the least recently used is dropped
    and assumes its role again on its next use."""
    reg = PartnerRegistry(
        [partner(n, i, "http://127.0.0.1:1") for i, n in enumerate("abc")],
        sts_endpoint_url=sts.endpoint_url,
        base_credentials=BASE,
        max_cached=2,
    )
    get = {n: reg.credentials(n).get for n in "abc"}
    await get["a"]()
    await get["b"]()
    await get["a"]()  # a becomes the most recently used
    assert reg.cached_partners == ["b", "a"]
    await get["c"]()  # evicts b
    assert reg.cached_partners == ["a", "c"]
    assert reg.credentials("b").current is None and reg.credentials("a").current is not None
    assert reg.stats("b").evictions == 1 and reg.stats("a").evictions == 0
    await get["b"]()  # assumes the role again; evicts a
    assert reg.cached_partners == ["c", "b"]
    assert [reg.stats(n).sts_calls for n in "abc"] == [1, 2, 1]
    assert len(sts.by_operation("AssumeRole")) == 4
    reg.remove("c")
    assert reg.cached_partners == ["b"]
    await reg.aclose()


async def test_rotating_base_credentials_reopen_the_sts_client(sts: RecordingProxy) -> None:
    """Base credentials that are themselves assumed-role credentials (role chaining, as
    with a task role): when they rotate, STS calls are signed with the new ones."""
    clock = Clock()
    hub = PartnerRegistry(
        [partner("hub", 99, "http://127.0.0.1:1", duration=900)],
        sts_endpoint_url=sts.endpoint_url,
        base_credentials=BASE,
        refresh_margin=300,
        refresh_jitter=0,
        clock=clock,
    )
    assume = StsAssumeRole(hub.credentials("hub"), endpoint_url=sts.endpoint_url)
    reg = PartnerRegistry(
        [partner(n, i, "http://127.0.0.1:1") for i, n in enumerate("ab")], assume_role=assume
    )
    await reg.credentials("a").get()
    clock.offset = 650  # the hub's credentials enter their refresh window
    await reg.credentials("b").get()
    calls = sts.by_operation("AssumeRole")
    issued = zip(calls, issued_keys(sts), strict=True)
    hub_keys = [k for ex, k in issued if ex.form["RoleArn"] == role(99)]
    signers = [ex.access_key for ex in calls if ex.form["RoleArn"] != role(99)]
    assert len(hub_keys) == 2 and signers == hub_keys
    assert assume.clients_opened == 2
    await assume.aclose()
    await reg.aclose()
    await hub.aclose()


def test_registry_survives_a_new_event_loop(sts_endpoint: str, dynamodb_endpoint: str) -> None:
    """One registry used from two successive loops (asyncio.run each time, as in tests or
    Lambda): the STS client is rebuilt for the new loop, credentials stay cached."""
    reg = PartnerRegistry(
        [partner("acme", 1, dynamodb_endpoint)],
        sts_endpoint_url=sts_endpoint,
        base_credentials=BASE,
    )

    async def once() -> str:
        async with reg.use("acme"):
            await reg.binding().client.list_tables()
        creds = reg.credentials("acme").current
        assert creds is not None
        return creds.access_key_id

    first = asyncio.run(once())
    reg.remove("acme")  # force a new AssumeRole on the second loop
    reg.register(partner("acme", 1, dynamodb_endpoint))
    second = asyncio.run(once())
    assert first != second
    asyncio.run(reg.aclose())
