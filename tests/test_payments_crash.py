"""Crash safety of ``process_batch``: a batch killed midway (a cancelled task, a deadline,
answers lost on the wire) and run again with the same requests ends with every payment
exactly once, in a consistent state, with its records and a complete audit chain.

moto's TransactWriteItems is not isolated (a cancelled transaction restores copies of
whole tables taken when it began, erasing writes committed meanwhile), so on moto the
batches run one request at a time; DynamoDB Local runs them concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from dynamorm_async import DynamoClient
from dynamorm_async.binding import Binding
from dynamorm_async.crypto import FieldEncryptor, LocalKeyring
from dynamorm_async.db import Database
from dynamorm_async.deadlines import deadline
from dynamorm_async.errors import DeadlineExceeded
from dynamorm_async.payments import (
    BatchProgress,
    LimitAuthorizer,
    PaymentProcessor,
    PaymentRequest,
    PaymentStatus,
    ResultStatus,
    TxnOutcome,
    delete_payment_tables,
    ensure_payment_tables,
)
from dynamorm_async.payments.requests import payment_id_for
from dynamorm_async.testing.faults import Fault, FaultProxy

SECRET = b"payments-cursor-secret-0123456789"
BLOCKED = "c-blocked"


@attrs.define
class Env:
    """What a test needs: a way to make fresh processors (a new process, as it were)."""

    endpoint: str
    backend: str
    binding: Binding
    sealer: FieldEncryptor
    concurrency: int

    def processor(self, binding: Binding | None = None) -> PaymentProcessor:
        db = Database(binding or self.binding, cursor_secret=SECRET, sealer=self.sealer)
        authorizer = LimitAuthorizer(blocked_customers=[BLOCKED])
        return PaymentProcessor(db, authorizer=authorizer)


@pytest.fixture
async def env(dynamodb_endpoint: str, dynamodb_backend: str, table_name: str) -> AsyncIterator[Env]:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as client:
        binding = Binding(client, table_name + "-")
        await ensure_payment_tables(binding)
        e = Env(
            dynamodb_endpoint, dynamodb_backend, binding, FieldEncryptor(LocalKeyring.generate()), 8
        )
        if dynamodb_backend == "moto":
            e.concurrency = 1
        await e.processor().accounts.add_merchant("m-1", "Shop")
        yield e
        await delete_payment_tables(binding)


def requests(n: int, prefix: str = "o") -> list[PaymentRequest]:
    """``n`` requests; every 7th from a blocked customer (declined), every 5th auth-only."""
    return [
        PaymentRequest(
            "m-1",
            BLOCKED if i % 7 == 3 else f"c-{i % 4}",
            100 + i,
            "EUR",
            f"{prefix}-{i:03d}",
            capture=i % 5 != 4,
        )
        for i in range(n)
    ]


async def check_exactly_once(proc: PaymentProcessor, reqs: list[PaymentRequest]) -> None:
    """Every request has exactly one payment, in the state its request leads to, with the
    records and the audit chain of exactly the steps it went through."""
    stored = {p.payment_id: p for p in await proc.payments.scan().to_list()}
    wanted = {payment_id_for(r.merchant_id, r.idempotency_key): r for r in reqs}
    assert set(stored) == set(wanted)
    for payment_id, r in wanted.items():
        p = stored[payment_id]
        assert (p.amount, p.customer_id, p.idempotency_key) == (
            r.amount,
            r.customer_id,
            r.idempotency_key,
        )
        records = {t.txn_id: t for t in await proc.records(payment_id)}
        report = await proc.verify(payment_id)
        assert report.ok, report
        if r.customer_id == BLOCKED:
            assert p.status is PaymentStatus.FAILED
            assert list(records) == ["authorize"]
            assert records["authorize"].outcome is TxnOutcome.DECLINED
            assert report.length == 2
        elif r.capture:
            assert (p.status, p.captured_amount) == (PaymentStatus.CAPTURED, r.amount)
            assert sorted(records) == ["authorize", "capture"]
            assert report.length == 3 == p.version
        else:
            assert (p.status, p.authorized_amount) == (PaymentStatus.AUTHORIZED, r.amount)
            assert list(records) == ["authorize"]
            assert report.length == 2 == p.version


def check_rerun(results: Any, before: set[str], in_flight: int = 0) -> None:
    """A rerun reports the payments that existed as duplicates and the rest as new.

    ``in_flight``: how many creates may have been sent before the kill but applied by the
    server after the ``before`` snapshot was read (a cancelled task cannot recall a
    request already on the wire); those show up as duplicates too.
    """
    late = 0
    for r in results:
        assert r.ok, r.error
        pid = payment_id_for(r.request.merchant_id, r.request.idempotency_key)
        if pid in before:
            assert r.status is ResultStatus.DUPLICATE
        else:
            new = ResultStatus.DECLINED if r.request.customer_id == BLOCKED else ResultStatus.OK
            if r.status is ResultStatus.DUPLICATE:
                late += 1
            else:
                assert r.status is new
    assert late <= in_flight, f"{late} duplicates not explained by {in_flight} in-flight creates"


async def test_cancelled_batch_rerun_takes_every_payment_once(env: Env) -> None:
    reqs = requests(60)
    proc = env.processor()
    halfway = asyncio.Event()

    def progress(p: BatchProgress) -> None:
        if p.done >= 20:
            halfway.set()

    task = asyncio.create_task(
        proc.process_batch(reqs, concurrency=env.concurrency, progress=progress)
    )
    await halfway.wait()
    task.cancel()  # killed with requests in flight, mid-transaction for some
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()
    midway = {p.payment_id: p for p in await proc.payments.scan().to_list()}
    assert 20 <= len(midway) < len(reqs)

    rerun = env.processor()  # a new process: no state carried over
    result = await rerun.process_batch(reqs, concurrency=env.concurrency)
    check_rerun(result.results, set(midway), in_flight=env.concurrency)
    resumed = [r for r in result.results if r.resumed]
    unfinished = [
        p for p in midway.values() if p.status is PaymentStatus.PENDING or p.captured_amount == 0
    ]
    assert len(resumed) <= len(unfinished)
    await check_exactly_once(rerun, reqs)
    assert result.cost.total().requests >= 2 * len(unfinished)
    if env.backend == "ddblocal":  # moto reports no consumed capacity for transactions
        assert result.cost.by("operation")["TransactWriteItems"].write_units > 0


async def test_batch_cut_by_a_deadline_then_rerun(env: Env) -> None:
    proc = env.processor()
    warm = requests(6, "warm")
    start = time.perf_counter()
    await proc.process_batch(warm, concurrency=env.concurrency)
    per_request = (time.perf_counter() - start) / len(warm) / env.concurrency

    reqs = requests(80)
    with deadline(seconds=max(0.05, per_request * len(reqs) / 3)):
        cut = await proc.process_batch(reqs, concurrency=env.concurrency)
    errors = [r for r in cut.results if r.status is ResultStatus.ERROR]
    assert errors and all(isinstance(r.error, DeadlineExceeded) for r in errors)
    before = {p.payment_id for p in await proc.payments.scan().to_list()}

    result = await env.processor().process_batch(reqs, concurrency=env.concurrency)
    check_rerun(
        result.results,
        before - {payment_id_for("m-1", r.idempotency_key) for r in warm},
        in_flight=env.concurrency,  # requests timed out on the client may land afterwards
    )
    await check_exactly_once(proc, warm + reqs)


async def test_lost_answers_and_server_errors_still_take_each_payment_once(env: Env) -> None:
    """Through a proxy that loses answers after applying the request, fails requests
    before applying them, throttles and answers 5xx: the client's retries, the
    transaction tokens and the processor's conditions take every payment once."""
    async with FaultProxy(env.endpoint) as proxy:
        async with DynamoClient(endpoint_url=proxy.endpoint_url, region="us-east-1") as client:
            binding = Binding(client, env.binding.table_prefix)
            faults = [
                Fault.reset_after(),
                Fault.reset_before(),
                Fault.throttle(),
                Fault.server_error(),
            ]
            rule = proxy.chaos(0.15, faults, seed=11, only=["TransactWriteItems", "GetItem"])
            reqs = requests(40)
            first = await env.processor(binding).process_batch(reqs, concurrency=env.concurrency)
            assert sum(rule.applied.values()) > 0
            assert proxy.forwarded["TransactWriteItems"] > 0
            proxy.calm()
            again = await env.processor(binding).process_batch(reqs, concurrency=env.concurrency)
    assert all(r.ok for r in again.results), [r.error for r in again.results if not r.ok]
    failed = [r for r in first.results if not r.ok]
    assert len(failed) < len(reqs)
    await check_exactly_once(env.processor(), reqs)
