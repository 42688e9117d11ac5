"""Idempotency claim tokens against the real test backend, through the fault proxy.

A lost answer (the server applied the request, the client never heard) must not turn
the client's own retry into "someone else's claim": the claim, the completion and the
release each carry the call's token. And the token is what guards a taken-over claim.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from dynamorm_async import DynamoClient
from dynamorm_async.errors import InvalidInput
from dynamorm_async.idempotency import Idempotency, IdempotencyInProgress, LocalCache, idempotent
from dynamorm_async.idempotency_store import (
    COMPLETED,
    INPROGRESS,
    DynamoDBIdempotencyStore,
    IdempotencyItem,
    IdempotencyRecord,
    ensure_idempotency_table,
    new_claim_token,
)
from dynamorm_async.tables import delete_table
from dynamorm_async.testing.faults import Fault, FaultProxy

from .test_faultmatrix_support import POLICY, assert_connections_closed

#: Faults after which the request WAS applied and only the answer was lost.
LOST_ANSWER = {
    "reset_after": Fault.reset_after,
    "truncate": Fault.truncate,
    "bad_crc": Fault.bad_crc,
}


class Clock:
    """A fixed clock the test moves by hand (epoch seconds, starting at the real time so
    DynamoDB Local's TTL sweeper leaves the records alone)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


class Stores:
    """The same table seen directly and through the fault proxy."""

    def __init__(
        self, direct: DynamoDBIdempotencyStore, via: DynamoDBIdempotencyStore, proxy: FaultProxy
    ) -> None:
        self.direct = direct
        self.via = via
        self.proxy = proxy


@pytest.fixture
async def stores(dynamodb_endpoint: str, table_name: str) -> AsyncIterator[Stores]:
    prefix = table_name + "-"
    async with (
        DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as direct,
        FaultProxy(dynamodb_endpoint) as proxy,
    ):
        assert (await ensure_idempotency_table(direct, prefix=prefix)).created
        async with DynamoClient(
            endpoint_url=proxy.endpoint_url, region="us-east-1", retry=POLICY
        ) as via:
            yield Stores(
                DynamoDBIdempotencyStore(direct, table_prefix=prefix),
                DynamoDBIdempotencyStore(via, table_prefix=prefix),
                proxy,
            )
        await assert_connections_closed()
        await delete_table(direct, IdempotencyItem, prefix=prefix)


async def _only_record(store: DynamoDBIdempotencyStore) -> IdempotencyRecord:
    client, table = store._bound()
    out = await client.call("Scan", {"TableName": table, "ConsistentRead": True})
    [item] = out["Items"]
    rec = await store.get(item["id"]["S"])
    assert rec is not None
    return rec


@pytest.mark.parametrize("fault", sorted(LOST_ANSWER))
async def test_lost_claim_answer_runs_once_without_waiting(
    stores: Stores, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()  # never advanced: no in-progress expiry can help
    runs = 0
    inside, gate = asyncio.Event(), asyncio.Event()

    @idempotent(stores.via, key="order", name="charge", in_progress_timeout=3600, clock=clock)
    async def charge(order: str) -> str:
        nonlocal runs
        runs += 1
        inside.set()
        await gate.wait()
        return f"charged {order}"

    @idempotent(stores.direct, key="order", name="charge", in_progress_timeout=3600, clock=clock)
    async def other_caller(order: str) -> str:
        raise AssertionError("a second caller must not run while the first holds the key")

    stores.proxy.inject(LOST_ANSWER[fault](only="PutItem"))
    with caplog.at_level(logging.WARNING, logger="dynamorm_async.idempotency"):
        first = asyncio.create_task(charge("o-1"))
        entered = asyncio.create_task(inside.wait())
        await asyncio.wait({first, entered}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if first.done():
            entered.cancel()
            first.result()  # raises what the call raised (IdempotencyInProgress before tokens)
        assert entered.done(), "the call neither ran nor failed"
        # the claim was applied twice (the lost attempt and the retry), both ours
        assert stores.proxy.forwarded["PutItem"] == 2
        assert stores.proxy.pending == 0
        held = await _only_record(stores.direct)
        assert held.status == INPROGRESS and held.token is not None
        # a different caller (its own token) still finds the claim in its way
        with pytest.raises(IdempotencyInProgress) as info:
            await other_caller("o-1")
        assert info.value.until == pytest.approx(clock.now + 3600, abs=0.01)
        gate.set()
        assert await first == "charged o-1"
    assert runs == 1
    assert caplog.text == ""
    done = await _only_record(stores.direct)
    assert done.status == COMPLETED and done.token == held.token
    assert await charge("o-1") == "charged o-1" and runs == 1  # replayed


async def test_lost_completion_answer_counts_as_stored(
    stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    """The retry of a completion that was applied finds the record completed under its
    own token: no "another call claimed the key" warning, and the response is cached."""
    cache = LocalCache(4)
    policy = Idempotency(stores.via, clock=Clock(), cache=cache)
    runs = 0

    @idempotent(policy, key="n")
    async def double(n: int) -> int:
        nonlocal runs
        runs += 1
        return 2 * n

    stores.proxy.inject(Fault.reset_after(only="UpdateItem"))
    with caplog.at_level(logging.WARNING, logger="dynamorm_async.idempotency"):
        assert await double(21) == 42
    assert stores.proxy.forwarded["UpdateItem"] == 2 and stores.proxy.pending == 0
    assert caplog.text == ""
    assert len(cache) == 1
    rec = await _only_record(stores.direct)
    assert rec.status == COMPLETED and rec.in_progress_expiration is None
    puts = stores.proxy.requests["PutItem"]
    assert await double(21) == 42 and runs == 1
    assert stores.proxy.requests["PutItem"] == puts  # answered by the cache


async def test_lost_release_answer_frees_the_key(
    stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = 0

    @idempotent(stores.via, key="n", clock=Clock())
    async def flaky(n: int) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("first attempt fails")
        return n

    stores.proxy.inject(Fault.reset_after(only="DeleteItem"))
    with caplog.at_level(logging.WARNING, logger="dynamorm_async.idempotency"):
        with pytest.raises(RuntimeError, match="first attempt"):
            await flaky(7)
    assert stores.proxy.forwarded["DeleteItem"] == 2 and stores.proxy.pending == 0
    assert caplog.text == ""  # not reported as a takeover
    assert await flaky(7) == 7 and attempts == 2


def _claim(key: str, now: float, timeout: float) -> IdempotencyRecord:
    return IdempotencyRecord(
        key=key,
        status=INPROGRESS,
        expiration=int(now + 3600),
        in_progress_expiration=int((now + timeout) * 1000),
        token=new_claim_token(),
    )


async def test_expired_claim_taken_over_old_holder_cannot_complete_or_release(
    stores: Stores,
) -> None:
    store = stores.direct
    now = float(int(time.time()))
    old = _claim("k#1", now, 30)
    assert await store.claim(old, now) is None
    # before the in-progress expiry, another token is refused
    rival = _claim("k#1", now + 1, 30)
    blocking = await store.claim(rival, now + 1)
    assert blocking is not None and blocking.token == old.token
    # after it, the key is taken over
    later = now + 31
    new = _claim("k#1", later, 30)
    assert await store.claim(new, later) is None
    done_by_old = IdempotencyRecord("k#1", COMPLETED, int(later + 3600), None, {"S": "old"})
    assert await store.complete(old, done_by_old) is False
    assert await store.release(old) is False
    held = await store.get("k#1")
    assert held is not None and held.status == INPROGRESS and held.token == new.token
    done = IdempotencyRecord("k#1", COMPLETED, int(later + 3600), None, {"S": "new"})
    assert await store.complete(new, done) is True
    stored = await store.get("k#1")
    assert stored is not None and stored.data == {"S": "new"} and stored.token == new.token


async def test_own_token_does_not_reclaim_a_completed_record(stores: Stores) -> None:
    """A late duplicate of a claim (same token) must not turn the stored response back
    into a claim: the token branch of the condition holds for INPROGRESS only."""
    store = stores.direct
    now = float(int(time.time()))
    claim = _claim("k#2", now, 30)
    assert await store.claim(claim, now) is None
    done = IdempotencyRecord("k#2", COMPLETED, int(now + 3600), None, {"N": "1"})
    assert await store.complete(claim, done) is True
    blocking = await store.claim(claim, now)
    assert blocking is not None and blocking.status == COMPLETED
    assert blocking.data == {"N": "1"}


async def test_claim_needs_a_token(stores: Stores) -> None:
    now = time.time()
    bare = IdempotencyRecord("k#3", INPROGRESS, int(now + 60), int(now * 1000) + 1000)
    with pytest.raises(InvalidInput, match="token"):
        await stores.direct.claim(bare, now)
    assert await stores.direct.get("k#3") is None
