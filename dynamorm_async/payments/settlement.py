"""Settlements: paying a merchant out for its captured payments, net of refunds.

>>> s = await proc.settle("m-1", "EUR")          # None when there is nothing to settle
>>> s.payment_count, s.gross_amount, s.refunded_amount, s.net_amount

One settlement is **one** transaction: the :class:`~.entities.Settlement` record, and for
each payment it covers a versioned write setting ``settlement_id`` (conditioned on the
payment still being at the version read and unsettled) with its audit entry. So a
payment is settled at most once, and a payment refunded while the settlement was being
assembled makes the transaction fail and the settlement start over from fresh reads.

Candidates are found through the ``by_merchant_status`` index (captured, partially and
fully refunded payments of the merchant without a ``settlement_id``). A settlement
covers at most :data:`MAX_PER_SETTLEMENT` payments (DynamoDB's 100 actions per
transaction, three per payment with the audit chain); call it again for the rest.
The refunds counted are those made before the settlement; a refund made after it is not
netted by a later settlement (it stays on the payment and its records).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING

import attrs

from ..errors import TransactionConflict
from ..model import meta_of
from ..transactions_errors import TxCanceled
from .entities import Payment, Settlement, merchant_status
from .errors import PaymentBusy
from .requests import check_id
from .states import PaymentStatus

if TYPE_CHECKING:
    from .processor import PaymentProcessor

__all__ = ["MAX_PER_SETTLEMENT", "SETTLEABLE", "settle"]

#: Payments per settlement: 1 + 3 x 33 = 100 actions in its transaction.
MAX_PER_SETTLEMENT = 33
#: The statuses of payments that have captured money.
SETTLEABLE = (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)
_ATTEMPTS = 5


async def _candidates(
    proc: PaymentProcessor, merchant_id: str, currency: str, limit: int
) -> list[Payment]:
    meta = meta_of(Payment)
    unsettled = meta.path("settlement_id").not_exists() & (meta.path("currency") == currency)
    found: list[Payment] = []
    for status in SETTLEABLE:
        query = proc.payments.query(
            meta.path("merchant_status") == merchant_status(merchant_id, status),
            index="by_merchant_status",
            filter=unsettled,
        )
        async with contextlib.aclosing(query.__aiter__()) as items:
            async for p in items:
                found.append(p)
                if len(found) == limit:
                    return found
    return found


async def settle(
    proc: PaymentProcessor, merchant_id: str, currency: str, *, limit: int = MAX_PER_SETTLEMENT
) -> Settlement | None:
    """Settle up to ``limit`` unsettled captured payments of ``merchant_id`` in
    ``currency`` (see the module doc); ``None`` if there are none."""
    check_id(merchant_id, "merchant_id")
    if not 1 <= limit <= MAX_PER_SETTLEMENT:
        raise ValueError(f"limit must be between 1 and {MAX_PER_SETTLEMENT}")
    meta = meta_of(Payment)
    for _ in range(_ATTEMPTS):
        seen = await _candidates(proc, merchant_id, currency, limit)
        # the index is eventually consistent: settle what the table says now
        current = [await proc.get_or_raise(p.payment_id) for p in seen]
        payments = [p for p in current if p.status in SETTLEABLE and p.settlement_id is None]
        if not payments:
            return None
        settlement_id = f"stl_{proc.clock():%Y%m%dT%H%M%S%f}_{uuid.uuid4().hex[:8]}"
        gross = sum(p.captured_amount for p in payments)
        refunded = sum(p.refunded_amount for p in payments)
        record = Settlement(
            merchant_id,
            settlement_id,
            currency,
            [p.payment_id for p in payments],
            len(payments),
            gross,
            refunded,
            gross - refunded,
        )
        try:
            async with proc.db.transaction(retry_conflicts=True) as tx:
                created = tx.create(record)
                for p in payments:
                    after = tx.update(
                        attrs.evolve(p, settlement_id=settlement_id),
                        condition=meta.path("settlement_id").not_exists(),
                    ).value
                    proc.audit.record(
                        tx,
                        actor=proc.actor,
                        action="settle",
                        before=p,
                        after=after,
                        request_id=settlement_id,
                    )
            stored: Settlement = created.value
            return stored
        except (TxCanceled, TransactionConflict):
            continue  # a payment moved (refunded, settled elsewhere): read again
    raise PaymentBusy("", _ATTEMPTS, what=f"settlement of merchant {merchant_id}")
