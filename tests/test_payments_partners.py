"""One PaymentProcessor serving two partners of a PartnerRegistry (moto's STS issues their
credentials): each partner's payments land in its own prefixed tables, the same
idempotency key is a different payment per partner, and costs are labelled by partner."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from dynamorm_async.db import Database
from dynamorm_async.partners import NoPartnerScope, Partner, PartnerRegistry
from dynamorm_async.payments import (
    PaymentProcessor,
    PaymentRequest,
    PaymentStatus,
    ResultStatus,
    delete_payment_tables,
    ensure_payment_tables,
)
from dynamorm_async.payments.batch import BatchResult
from dynamorm_async.testing import MotoServer
from dynamorm_async.wire.credentials import StaticCredentials

PARTNERS = ("acme", "globex")


@pytest.fixture(scope="module")
def sts_endpoint(dynamodb_backend: str, dynamodb_endpoint: str) -> Iterator[str]:
    """moto's STS: the session server on the moto backend, else one for this module."""
    if dynamodb_backend == "moto":
        yield dynamodb_endpoint
        return
    with MotoServer() as moto:
        yield moto.endpoint_url


async def test_one_processor_serves_each_partner_in_its_own_tables(
    dynamodb_endpoint: str, dynamodb_backend: str, sts_endpoint: str, table_name: str
) -> None:
    registry = PartnerRegistry(
        [
            Partner(
                name,
                f"arn:aws:iam::{100000000001 + i:012d}:role/payments",
                endpoint_url=dynamodb_endpoint,
                region="us-east-1",
                table_prefix=f"{table_name}-{name}-",
            )
            for i, name in enumerate(PARTNERS)
        ],
        base_credentials=StaticCredentials("testing", "testing"),
        sts_endpoint_url=sts_endpoint,
        sts_region="us-east-1",
    )
    concurrency = 1 if dynamodb_backend == "moto" else 4  # moto: transactions not isolated
    requests = [PaymentRequest("m-1", "c-1", 100 + i, "EUR", f"o-{i}") for i in range(8)]
    async with registry:
        proc = PaymentProcessor(Database(registry))
        for name in PARTNERS:
            async with registry.use(name):
                await ensure_payment_tables(proc.db)
                await proc.accounts.add_merchant("m-1", f"{name} shop")
        try:

            async def run(name: str) -> BatchResult:
                async with registry.use(name):
                    return await proc.process_batch(requests, concurrency=concurrency)

            results = dict(zip(PARTNERS, await asyncio.gather(*map(run, PARTNERS)), strict=True))
            for name, result in results.items():
                # the same keys in another partner are other payments, not duplicates
                assert result.counts["ok"] == len(requests), result.errors
                assert set(result.cost.by("partner")) == {name}
                async with registry.use(name):
                    stored = await proc.payments.scan().to_list()
                    assert len(stored) == len(requests)
                    assert all(p.status is PaymentStatus.CAPTURED for p in stored)
                    for p in stored:
                        assert (await proc.verify(p.payment_id)).length == 3
                    assert proc.payments.table_name == f"{table_name}-{name}-pay_payments"
                    again = await proc.process(requests[0])
                    assert again.status is ResultStatus.DUPLICATE
            with pytest.raises(NoPartnerScope):
                await proc.get(results["acme"].results[0].payment.payment_id)  # type: ignore[union-attr]
        finally:
            for name in PARTNERS:
                async with registry.use(name):
                    await delete_payment_tables(proc.db)
