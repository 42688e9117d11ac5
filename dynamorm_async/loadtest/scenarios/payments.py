"""``payments``: the payment processor (:mod:`dynamorm_async.payments`) under load.

Each step is one payment's life: ``create`` (idempotent by a fresh key), ``authorize``,
``capture`` and a partial ``refund``, each timed as its own operation. Every one of them
is a DynamoDB transaction with its Transaction record and audit entry, so a step makes
4 TransactWriteItems plus the audit head reads. About one payment in ten is over the
authorizer's limit and is declined (``authorize`` then ends the step: a decline is a
result, not an error).

``--keys`` is the number of customers (payments are spread over them and over
``MERCHANTS`` merchants, created in setup).
"""

from __future__ import annotations

import itertools
import random
import secrets
from typing import Any

from ...db import Database
from ...errors import AlreadyExists
from ...payments import (
    PAYMENT_ENTITIES,
    LimitAuthorizer,
    Payment,
    PaymentProcessor,
    PaymentRequest,
    PaymentStatus,
)
from .base import Sample, Scenario, ScenarioSettings, timed

__all__ = ["DECLINE_ABOVE", "MERCHANTS", "PaymentsScenario", "scenario_class"]

#: Merchants payments are spread over.
MERCHANTS = 5
#: The authorizer declines amounts above this (minor units): about 10% of the payments.
DECLINE_ABOVE = 45_000
_MAX_AMOUNT = 50_000


class PaymentsScenario(Scenario):
    """create -> authorize -> capture -> partial refund, one payment per step."""

    name = "payments"
    description = "payment processor: create, authorize, capture, partial refund per step"
    entities = PAYMENT_ENTITIES

    def __init__(self, settings: ScenarioSettings) -> None:
        super().__init__(settings)
        if settings.keys < 1:
            raise ValueError("keys (customers) must be >= 1")
        self._proc: PaymentProcessor | None = None
        self._run = secrets.token_hex(4)  # keys never collide with an earlier run's
        self._counter = itertools.count()

    @property
    def processor(self) -> PaymentProcessor:
        """The processor (after :meth:`setup`)."""
        if self._proc is None:
            raise RuntimeError("PaymentsScenario.setup() has not run")
        return self._proc

    async def setup(self, db: Database) -> None:
        """Make the processor and the merchants."""
        authorizer = LimitAuthorizer(max_amount=DECLINE_ABOVE)
        self._proc = PaymentProcessor(db, authorizer=authorizer, actor="loadtest")
        for m in range(MERCHANTS):
            try:
                await self._proc.accounts.add_merchant(f"lt-m-{m}", f"Load test merchant {m}")
            except AlreadyExists:
                pass

    def _request(self, rng: random.Random) -> PaymentRequest:
        n = next(self._counter)
        return PaymentRequest(
            merchant_id=f"lt-m-{rng.randrange(MERCHANTS)}",
            customer_id=f"lt-c-{rng.randrange(self.settings.keys):06d}",
            amount=rng.randrange(100, _MAX_AMOUNT),
            currency="EUR",
            idempotency_key=f"lt-{self._run}-{n:09d}",
        )

    async def step(self, rng: random.Random) -> list[Sample]:
        """One payment from request to partial refund; stops at the first error."""
        proc = self.processor
        created, sample = await timed("create", proc.create(self._request(rng)))
        samples = [sample]
        if created is None:
            return samples
        payment: Payment | None = created.payment
        for operation in ("authorize", "capture", "refund"):
            assert payment is not None
            if payment.status is PaymentStatus.FAILED:
                break  # declined
            if operation == "authorize":
                work = proc.authorize(payment)
            elif operation == "capture":
                work = proc.capture(payment)
            else:
                work = proc.refund(payment, max(1, payment.captured_amount // rng.randrange(2, 6)))
            payment, sample = await timed(operation, work)
            samples.append(sample)
            if payment is None:
                break
        return samples

    def parameters(self) -> dict[str, Any]:
        """Customers, merchants and the decline threshold."""
        return {
            "customers": self.settings.keys,
            "merchants": MERCHANTS,
            "decline_above": DECLINE_ABOVE,
            "amounts": [100, _MAX_AMOUNT],
        }


def scenario_class() -> type[Scenario]:
    """The class registered as ``payments``."""
    return PaymentsScenario
