"""Idempotency against the real test backend: races, expiry on a driven clock, mismatch,
release on failure, replay types, the local cache and the request count per call."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
import pytest

from dynamorm_async import DynamoClient, deadline
from dynamorm_async.errors import ItemTooLarge
from dynamorm_async.hooks import observing
from dynamorm_async.idempotency import (
    Idempotency,
    IdempotencyInProgress,
    IdempotencyKeyError,
    IdempotencyPayloadMismatch,
    IdempotencyPersistenceError,
    LocalCache,
    idempotent,
    idempotent_call,
)
from dynamorm_async.idempotency_codec import JsonCodec
from dynamorm_async.idempotency_store import (
    COMPLETED,
    INPROGRESS,
    DynamoDBIdempotencyStore,
    IdempotencyItem,
    ensure_idempotency_table,
)
from dynamorm_async.model import entity, field
from dynamorm_async.tables import delete_table


class Clock:
    """A clock the test moves by hand (epoch seconds).

    It starts at the real time: DynamoDB Local runs a TTL sweeper, which would delete
    records whose expiration (the TTL attribute) is already in the real past.
    """

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """A request observer listing the operations sent in its scope."""

    def __init__(self) -> None:
        self.ops: list[str] = []

    def before(self, operation: str, request: Mapping[str, Any]) -> Mapping[str, Any]:
        self.ops.append(operation)
        return request

    def after(
        self, operation: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        pass


class Kind(enum.Enum):
    CARD = "card"
    BANK = "bank"


@entity(table="receipts", hash_key="receipt_id")
@attrs.define(slots=False)
class Receipt:
    receipt_id: str
    amount: Decimal
    kind: Kind
    at: dt.datetime
    lines: list[str] = attrs.Factory(list)


@attrs.frozen
class Line:
    sku: str
    qty: int


@entity(table="cards", hash_key="card_id")
@attrs.define(slots=False)
class Card:
    card_id: str
    pan: str = field(encrypted=True)


@pytest.fixture
async def store(dynamodb_endpoint: str, table_name: str) -> AsyncIterator[DynamoDBIdempotencyStore]:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as client:
        prefix = table_name + "-"
        report = await ensure_idempotency_table(client, prefix=prefix)
        assert report.created
        yield DynamoDBIdempotencyStore(client, table_prefix=prefix)
        await delete_table(client, IdempotencyItem, prefix=prefix)


AT = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


async def test_100_concurrent_calls_run_once(store: DynamoDBIdempotencyStore) -> None:
    runs = 0

    @idempotent(store, key="order_id")
    async def charge(order_id: str, amount: Decimal) -> Receipt:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.5)
        return Receipt(f"r-{order_id}", amount, Kind.CARD, AT, ["a", "b"])

    outcomes = await asyncio.gather(
        *(charge("o-1", Decimal("9.50")) for _ in range(100)), return_exceptions=True
    )
    assert runs == 1
    expected = Receipt("r-o-1", Decimal("9.50"), Kind.CARD, AT, ["a", "b"])
    done = [o for o in outcomes if isinstance(o, Receipt)]
    busy = [o for o in outcomes if isinstance(o, IdempotencyInProgress)]
    assert len(done) + len(busy) == 100, [o for o in outcomes if not isinstance(o, Receipt)]
    assert done and all(o == expected for o in done)
    assert all(o.retryable and o.until is not None for o in busy)
    # afterwards every caller gets the stored response, decoded to the declared type
    again = await asyncio.gather(*(charge("o-1", Decimal("9.50")) for _ in range(100)))
    assert runs == 1
    assert all(type(r) is Receipt and r == expected for r in again)


async def test_one_put_to_claim_one_update_to_complete_one_put_to_replay(
    store: DynamoDBIdempotencyStore,
) -> None:
    @idempotent(store, key="n")
    async def double(n: int) -> int:
        return n * 2

    rec = Recorder()
    with observing(rec):
        assert await double(21) == 42
    assert rec.ops == ["PutItem", "UpdateItem"]
    rec.ops.clear()
    with observing(rec):
        assert await double(21) == 42
    assert rec.ops == ["PutItem"]  # the stored response came back with the failed claim


async def test_replay_types(store: DynamoDBIdempotencyStore) -> None:
    clock = Clock()

    @idempotent(store, clock=clock)
    async def lines(n: int) -> list[Line]:
        return [Line(f"s{i}", i) for i in range(n)]

    @idempotent(store, clock=clock)
    async def mapping(x: str) -> dict[str, Decimal | None]:
        return {"x": Decimal("1.25"), "y": None}

    @idempotent(store, clock=clock)
    async def nothing(x: str) -> None:
        return None

    @idempotent(store, clock=clock, codec=JsonCodec(json.dumps, json.loads))
    async def raw(x: str) -> Any:
        return {"a": [1, 2.5, "x"]}

    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: lines(3),
        lambda: mapping("a"),
        lambda: nothing("a"),
        lambda: raw("a"),
    ]
    for call in calls:
        first = await call()
        assert await call() == first
    assert await lines(3) == [Line("s0", 0), Line("s1", 1), Line("s2", 2)]
    assert all(type(x) is Line for x in await lines(3))
    assert await mapping("a") == {"x": Decimal("1.25"), "y": None}


async def test_expiry_driven_by_clock(store: DynamoDBIdempotencyStore) -> None:
    clock = Clock()
    runs = 0

    @idempotent(store, expires_after=100, clock=clock)
    async def work(x: int) -> int:
        nonlocal runs
        runs += 1
        return runs

    assert await work(1) == 1
    clock.advance(99)
    assert await work(1) == 1  # still replayed
    clock.advance(2)
    assert await work(1) == 2  # expired: runs again
    assert await work(1) == 2


async def test_in_progress_expiry_driven_by_clock(
    store: DynamoDBIdempotencyStore, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    gate, started = asyncio.Event(), asyncio.Event()
    runs: list[str] = []

    @idempotent(store, key="x", validate=False, in_progress_timeout=30, clock=clock)
    async def slow(x: int, who: str) -> str:
        runs.append(who)
        if who == "first":
            started.set()
            await gate.wait()
        return who

    first = asyncio.create_task(slow(1, "first"))
    await started.wait()
    with pytest.raises(IdempotencyInProgress) as info:
        await slow(1, "second")
    assert info.value.until == pytest.approx(clock.now + 30, abs=0.01)
    clock.advance(31)  # the first caller is presumed dead
    assert await slow(1, "third") == "third"
    gate.set()
    with caplog.at_level(logging.WARNING, logger="dynamorm_async.idempotency"):
        assert await first == "first"  # it ran, but its claim was taken over
    assert "another call claimed the key" in caplog.text
    assert runs == ["first", "third"]
    assert await slow(1, "fourth") == "third"  # the stored response is the third's


async def test_in_progress_expiry_from_deadline(store: DynamoDBIdempotencyStore) -> None:
    clock = Clock()
    seen: list[Any] = []

    @idempotent(store, key="x", clock=clock, in_progress_timeout=900)
    async def work(x: int) -> int:
        [k] = [k for k in await _keys(store)]
        seen.append(await store.get(k))
        return x

    with deadline(seconds=5):
        await work(7)
    (rec,) = seen
    assert rec.status == INPROGRESS
    assert rec.in_progress_expiration == pytest.approx((clock.now + 5) * 1000, abs=200)
    (k,) = await _keys(store)
    done = await store.get(k)
    assert done is not None and done.status == COMPLETED
    assert done.in_progress_expiration is None and done.expiration == int(clock.now + 3600)


async def _keys(store: DynamoDBIdempotencyStore) -> list[str]:
    client, table = store._bound()
    out = await client.call("Scan", {"TableName": table, "ConsistentRead": True})
    return [i["id"]["S"] for i in out["Items"]]


async def test_payload_mismatch(store: DynamoDBIdempotencyStore) -> None:
    gate = asyncio.Event()

    @idempotent(store, key="order_id")
    async def charge(order_id: str, amount: int) -> int:
        if amount == 1:
            await gate.wait()
        return amount

    running = asyncio.create_task(charge("o-1", 1))
    await asyncio.sleep(0.2)
    with pytest.raises(IdempotencyPayloadMismatch):
        await charge("o-1", 2)  # against the INPROGRESS record
    gate.set()
    assert await running == 1
    with pytest.raises(IdempotencyPayloadMismatch) as info:
        await charge("o-1", 2)  # against the COMPLETED record
    assert info.value.key.startswith(charge.__module__)
    assert await charge("o-1", 1) == 1
    assert await charge(order_id="o-1", amount=1) == 1  # same arguments, bound by name


async def test_exception_releases_the_key(store: DynamoDBIdempotencyStore) -> None:
    attempts = 0

    @idempotent(store)
    async def flaky(x: int) -> int:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise RuntimeError(f"attempt {attempts}")
        return x

    for n in (1, 2):
        with pytest.raises(RuntimeError, match=f"attempt {n}"):
            await flaky(5)
    assert await flaky(5) == 5
    assert await flaky(5) == 5
    assert attempts == 3


async def test_cancellation_releases_the_key(store: DynamoDBIdempotencyStore) -> None:
    started = asyncio.Event()
    runs = 0

    @idempotent(store)
    async def long(x: int) -> int:
        nonlocal runs
        runs += 1
        started.set()
        await asyncio.sleep(0 if runs > 1 else 30)
        return x

    task = asyncio.create_task(long(1))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _keys(store) == []
    assert await long(1) == 1 and runs == 2


async def test_local_cache_answers_repeats_without_requests(
    store: DynamoDBIdempotencyStore,
) -> None:
    clock = Clock()

    @idempotent(store, cache_size=2, expires_after=60, clock=clock)
    async def square(x: int) -> int:
        return x * x

    rec = Recorder()
    with observing(rec):
        assert await square(3) == 9
        assert await square(3) == 9
        assert await square(3) == 9
    assert rec.ops == ["PutItem", "UpdateItem"]
    policy: Idempotency = square.idempotency  # type: ignore[attr-defined]
    assert policy.cache is not None and len(policy.cache) == 1
    rec.ops.clear()
    with observing(rec):
        await square(4)
        await square(5)  # evicts 3 (LRU of 2)
        await square(3)  # back from the table (a failed claim), cached again
        clock.advance(61)
        await square(4)  # expired in the cache and in the table: runs again
    assert rec.ops == ["PutItem", "UpdateItem"] * 2 + ["PutItem"] + ["PutItem", "UpdateItem"]


async def test_local_cache_checks_the_payload(store: DynamoDBIdempotencyStore) -> None:
    @idempotent(store, key="k", cache_size=8)
    async def echo(k: str, v: int) -> int:
        return v

    assert await echo("a", 1) == 1
    with pytest.raises(IdempotencyPayloadMismatch):
        await echo("a", 2)


async def test_context_manager_form(store: DynamoDBIdempotencyStore) -> None:
    runs = 0

    async def refund(refund_id: str, body: dict[str, Any]) -> Decimal:
        nonlocal runs
        async with idempotent_call(
            store, "refund", key=refund_id, payload=body, result_type=Decimal
        ) as call:
            if not call.replayed:
                runs += 1
                call.result = Decimal(body["amount"])
        result: Decimal = call.result
        return result

    assert await refund("rf-1", {"amount": "3.10"}) == Decimal("3.10")
    assert await refund("rf-1", {"amount": "3.10"}) == Decimal("3.10")
    assert runs == 1
    with pytest.raises(IdempotencyPayloadMismatch):
        await refund("rf-1", {"amount": "4"})
    # a block that forgets the result releases the key and says so
    with pytest.raises(ValueError, match=r"call\.result"):
        async with idempotent_call(store, "refund", key="rf-2"):
            pass
    async with idempotent_call(store, "refund", key="rf-2") as call:
        assert not call.replayed
        call.result = 1
    async with idempotent_call(store, "refund", key="rf-2") as call:
        assert call.replayed and call.result == 1
        with pytest.raises(ValueError, match="fixed"):
            call.result = 2


async def test_response_that_cannot_be_stored_keeps_the_claim(
    store: DynamoDBIdempotencyStore,
) -> None:
    runs = 0

    @idempotent(store)
    async def huge(x: int) -> str:
        nonlocal runs
        runs += 1
        return "x" * 500_000

    with pytest.raises(IdempotencyPersistenceError) as info:
        await huge(1)
    assert isinstance(info.value.__cause__, ItemTooLarge)
    with pytest.raises(IdempotencyInProgress):
        await huge(1)  # no duplicate run until the in-progress expiry
    assert runs == 1


async def test_policy_shared_by_functions(store: DynamoDBIdempotencyStore) -> None:
    policy = Idempotency(store, expires_after=10, clock=Clock(), cache=LocalCache(4))

    @idempotent(policy, name="shared")
    async def one(x: int) -> int:
        return 1

    @idempotent(policy, name="shared")
    async def two(x: int) -> int:
        return 2

    assert await one(1) == 1
    assert await two(1) == 1  # same name, same payload: the same call


async def test_bad_declarations_and_keys(store: DynamoDBIdempotencyStore) -> None:
    with pytest.raises(TypeError, match="async"):
        idempotent(store)(lambda: 1)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="no parameter"):

        @idempotent(store, key="nope")
        async def f(x: int) -> int:
            return x

    with pytest.raises(TypeError, match="encrypted"):

        @idempotent(store)
        async def g(x: int) -> Card:
            return Card("c", "4111")

    class Opaque:
        pass

    with pytest.raises(TypeError, match="codec"):

        @idempotent(store)
        async def h(x: int) -> Opaque:
            return Opaque()

    @idempotent(store, key="req.order.id")
    async def k(req: dict[str, Any]) -> int:
        return 1

    with pytest.raises(IdempotencyKeyError, match="order"):
        await k({"other": 1})
    with pytest.raises(IdempotencyKeyError, match="None"):
        await k({"order": {"id": None}})
    assert await k({"order": {"id": "x"}}) == 1

    @idempotent(store)
    async def unhashable(x: object) -> int:
        return 1

    with pytest.raises(ValueError, match="cannot be hashed"):
        await unhashable(object())
    assert await _keys(store) != []  # only k's call was stored


async def test_arguments_bound_by_name_whatever_the_call_form(
    store: DynamoDBIdempotencyStore,
) -> None:
    runs = 0

    @idempotent(store)
    async def plain(a: int, b: int = 2, *, c: str = "x") -> int:
        nonlocal runs
        runs += 1
        return a + b

    assert await plain(1) == 3
    assert await plain(1, 2) == 3
    assert await plain(a=1, c="x") == 3
    assert await plain(b=2, a=1) == 3
    assert runs == 1
    assert await plain(1, 3) == 4 and runs == 2
    with pytest.raises(TypeError):
        await plain(1, a=1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        await plain()  # type: ignore[call-arg]

    @idempotent(store)
    async def varargs(*items: int, **opts: str) -> int:
        nonlocal runs
        runs += 1
        return sum(items)

    assert await varargs(1, 2, mode="a") == 3
    assert await varargs(1, 2, mode="a") == 3
    assert runs == 3
    assert await varargs(1, 2, mode="b") == 3 and runs == 4
