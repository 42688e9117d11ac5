"""Invocation deadlines under a retry storm: raise ``DeadlineExceeded`` before Lambda would.

Each test emulates one invocation with a :class:`LocalLambdaContext` (a real countdown)
of ``TIMEOUT`` seconds and a safety margin of ``MARGIN``: the handler must give up at
``TIMEOUT - MARGIN`` and, whatever the scheduling delays of a busy machine, well before
``TIMEOUT``, the moment a real Lambda would kill the process. Without a deadline the
storm would last minutes and the held answer 30 s.

The storm comes from a :class:`FaultProxy`, a real proxy that answers
``ThrottlingException`` (or holds the answer back) instead of forwarding. It runs on the
environment's own loop, so it serves only while the handler runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from dynamorm_async import ClientPool, RetryPolicy, errors
from dynamorm_async.aws_lambda import LambdaRuntime, LocalLambdaContext, lambda_handler
from dynamorm_async.batch import BatchExecutor
from dynamorm_async.batch_report import FailureReason
from dynamorm_async.db import Database
from dynamorm_async.model import entity
from dynamorm_async.repository import Repository
from dynamorm_async.tables import create_table, delete_table
from dynamorm_async.testing.faults import Fault, FaultProxy

REGION = "us-east-1"
TIMEOUT = 2.0
MARGIN = 0.5
#: A storm that would go on for minutes without a deadline.
STORM = RetryPolicy(max_attempts=100_000, base_delay=0.01, max_delay=0.2)


@entity(table="orders", hash_key="oid")
class Order:
    oid: str
    qty: int = 1


class Env:
    """One emulated execution environment: runtime, module-level pool, proxy, tables."""

    def __init__(self, runtime: LambdaRuntime, endpoint: str, prefix: str) -> None:
        self.runtime = runtime
        self.endpoint = endpoint
        self.prefix = prefix
        self.proxy = FaultProxy(endpoint)
        runtime.run(self.proxy.start())
        self.pool = ClientPool(retry=STORM)
        self.db = Database(self.pool.client(self.proxy.endpoint_url, REGION), table_prefix=prefix)

    async def direct(self) -> Repository[Order]:
        """A repository that bypasses the proxy (for setup and checking)."""
        return Repository(Order, self.pool.client(self.endpoint, REGION), table_prefix=self.prefix)

    def stored_ids(self) -> set[str]:
        async def scan() -> set[str]:
            return {o.oid async for o in (await self.direct()).scan(consistent=True)}

        return self.runtime.run(scan())

    def close(self) -> None:
        self.runtime.run(self.proxy.stop())
        self.runtime.run(self.pool.aclose())


@pytest.fixture
def env(dynamodb_endpoint: str, table_name: str) -> Iterator[Env]:
    with LambdaRuntime() as runtime:
        e = Env(runtime, dynamodb_endpoint, table_name + "-")

        async def setup(create: bool) -> None:
            client = e.pool.client(dynamodb_endpoint, REGION)
            if create:
                await create_table(client, Order, prefix=e.prefix)
            else:
                await delete_table(client, Order, prefix=e.prefix)

        runtime.run(setup(True))
        try:
            yield e
        finally:
            runtime.run(setup(False))
            e.close()


def invoke_timed(handler: Any, event: Any) -> tuple[BaseException | Any, float]:
    """Invoke with a fresh context of ``TIMEOUT`` s; return (result or error, seconds)."""
    ctx = LocalLambdaContext(timeout=TIMEOUT)
    start = time.monotonic()
    try:
        out = handler(event, ctx)
    except errors.DynamormError as exc:
        out = exc
    return out, time.monotonic() - start


def test_throttle_storm_ends_with_deadline_exceeded_in_time(env: Env) -> None:
    env.proxy.inject(*[Fault.throttle(only="PutItem")] * 5000)
    repo = env.db.repository(Order)

    @lambda_handler(runtime=env.runtime, safety_margin=MARGIN)
    async def handler(event: dict[str, Any], context: Any) -> Order:
        return await repo.put(Order(event["oid"]))

    out, took = invoke_timed(handler, {"oid": "o-1"})
    assert isinstance(out, errors.DeadlineExceeded), out
    assert isinstance(out.__cause__, errors.Throttled)  # the storm, not something else
    assert TIMEOUT - MARGIN - STORM.max_delay - 0.1 < took < TIMEOUT - 0.1
    assert env.proxy.requests["PutItem"] >= 5  # it kept retrying until the deadline
    assert env.proxy.forwarded["PutItem"] == 0
    assert env.stored_ids() == set()

    @lambda_handler(runtime=env.runtime, safety_margin=MARGIN)
    async def reader(event: dict[str, Any], context: Any) -> Order | None:
        return await repo.get(oid=event["oid"])

    # The environment is healthy after the deadline: the next invocation just works.
    assert reader({"oid": "o-1"}, LocalLambdaContext(timeout=TIMEOUT)) is None


def test_an_answer_that_never_comes_is_cut_at_the_deadline(env: Env) -> None:
    env.proxy.inject(Fault.slow(30.0, only="GetItem"))
    repo = env.db.repository(Order)

    @lambda_handler(runtime=env.runtime, safety_margin=MARGIN)
    async def handler(event: dict[str, Any], context: Any) -> Order | None:
        return await repo.get(oid=event["oid"])

    out, took = invoke_timed(handler, {"oid": "o-1"})
    assert isinstance(out, errors.DeadlineExceeded), out
    assert TIMEOUT - MARGIN - 0.1 < took < TIMEOUT - 0.1


def test_batch_under_a_storm_reports_exactly_what_it_wrote(env: Env) -> None:
    """Two chunks get through, then every request is throttled until the deadline.

    The batch returns by the deadline; each item is ``done`` or failed with reason
    ``DEADLINE``, and the table holds exactly the ``done`` ones: no item is lost or
    half-reported.
    """
    env.proxy.inject(
        *[Fault.slow(0.0, only="BatchWriteItem")] * 2,
        *[Fault.throttle(only="BatchWriteItem")] * 5000,
    )
    batch = BatchExecutor(env.db, concurrency=2)
    orders = [Order(f"o-{i:03d}", i) for i in range(100)]

    @lambda_handler(runtime=env.runtime, safety_margin=MARGIN)
    async def handler(event: None, context: Any) -> Any:
        return await batch.write(puts=orders)

    report, took = invoke_timed(handler, None)
    assert not isinstance(report, BaseException), report
    assert took < TIMEOUT - 0.1
    done = {r.key["oid"]["S"] for r in report.done}
    assert len(done) == 50  # the two forwarded chunks of 25
    assert {r.reason for r in report.failed} == {FailureReason.DEADLINE}
    assert len(report.failed) == 50
    assert env.stored_ids() == done


def test_no_deadline_outside_an_invocation_context(env: Env) -> None:
    """``context=None`` (a local script): no deadline, so attempts alone bound the storm."""
    env.proxy.inject(*[Fault.throttle(only="GetItem")] * 3)
    repo = env.db.repository(Order)

    @lambda_handler(runtime=env.runtime)
    async def handler(event: None, context: Any) -> Order | None:
        return await repo.get(oid="nope")

    assert handler(None, None) is None
    assert env.proxy.requests["GetItem"] == 4
