"""Payment requests, their validation and identity, and the authorization seam.

A payment's id is derived from its merchant and idempotency key
(:func:`payment_id_for`), so every attempt to create the same payment names the same
item and DynamoDB's "no item with this key" condition lets exactly one of them write it.
:func:`request_hash` fingerprints what defines the payment, so a key reused for a
different payment is told apart from a retry.

Authorization is a seam (:class:`Authorizer`): the card network or PSP call. The
processor records its :class:`Decision` in the same transaction as the status change.
:class:`LimitAuthorizer` is a rule-based authorizer (amount limit, blocked customers)
for development, tests and load tests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Protocol

import attrs

from .entities import Payment
from .errors import InvalidPaymentRequest

__all__ = [
    "MAX_AMOUNT",
    "Authorizer",
    "Decision",
    "LimitAuthorizer",
    "PaymentRequest",
    "check_amount",
    "check_id",
    "payment_id_for",
    "refund_txn_id",
    "request_hash",
]

#: The largest amount accepted, in minor units (10^13: 100 billion in a 2-decimal currency).
MAX_AMOUNT = 10**13
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_ID = re.compile(r"^[A-Za-z0-9_.:@#/+=-]{1,200}$")


def check_id(value: object, what: str) -> str:
    """``value`` if it is a usable identifier (1-200 characters, no spaces or control
    characters), else :class:`InvalidPaymentRequest`."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidPaymentRequest(
            f"{what} must be 1-200 characters from A-Z a-z 0-9 _ . : @ # / + = -, got {value!r}"
        )
    return value


def check_amount(value: object, what: str = "amount") -> int:
    """``value`` if it is a positive ``int`` of minor units up to :data:`MAX_AMOUNT`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPaymentRequest(
            f"{what} must be an int of minor units (cents), got {type(value).__name__}"
        )
    if not 0 < value <= MAX_AMOUNT:
        raise InvalidPaymentRequest(f"{what} must be between 1 and {MAX_AMOUNT}, got {value}")
    return value


@attrs.frozen
class PaymentRequest:
    """A request to take a payment: created, authorized and (if ``capture``) captured by
    :meth:`~dynamorm_async.payments.processor.PaymentProcessor.process`.

    ``amount`` is in minor units of ``currency`` (ISO 4217, e.g. ``"EUR"``);
    ``idempotency_key`` is unique per merchant and payment: sending the same request
    again (after a timeout, a crash, a redelivery) never takes a second payment.
    """

    merchant_id: str
    customer_id: str
    amount: int
    currency: str
    idempotency_key: str
    description: str = ""
    capture: bool = True

    def validate(self) -> PaymentRequest:
        """Return ``self`` if well formed, else raise :class:`InvalidPaymentRequest`."""
        check_id(self.merchant_id, "merchant_id")
        check_id(self.customer_id, "customer_id")
        check_id(self.idempotency_key, "idempotency_key")
        check_amount(self.amount)
        if not isinstance(self.currency, str) or not _CURRENCY.match(self.currency):
            raise InvalidPaymentRequest(
                f"currency must be an ISO 4217 code such as 'EUR', got {self.currency!r}"
            )
        if not isinstance(self.description, str) or len(self.description) > 1000:
            raise InvalidPaymentRequest("description must be a str of at most 1000 characters")
        return self


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode()
        h.update(len(data).to_bytes(4, "big"))
        h.update(data)
    return h.hexdigest()


def payment_id_for(merchant_id: str, idempotency_key: str) -> str:
    """The payment id of the merchant's request with ``idempotency_key`` (deterministic)."""
    return "pay_" + _digest("payment", merchant_id, idempotency_key)[:32]


def request_hash(request: PaymentRequest) -> str:
    """A fingerprint of what defines the payment (not the idempotency key itself)."""
    return _digest(
        request.merchant_id,
        request.customer_id,
        str(request.amount),
        request.currency,
        request.description,
    )[:32]


def refund_txn_id(refund_key: str) -> str:
    """The :class:`~.entities.Transaction` id of the refund with ``refund_key``."""
    return "refund#" + _digest("refund", refund_key)[:32]


@attrs.frozen
class Decision:
    """An authorization answer: ``approved`` with an ``auth_code``, or declined with a
    ``reason``."""

    approved: bool
    auth_code: str | None = None
    reason: str | None = None


class Authorizer(Protocol):
    """Decides whether a pending payment is authorized (the card network / PSP call)."""

    async def authorize(self, payment: Payment) -> Decision:
        """The decision for ``payment``. Must be safe to ask twice for the same payment."""
        ...


class LimitAuthorizer:
    """Approves payments up to ``max_amount`` (minor units) from customers not in
    ``blocked_customers``; the auth code is derived from the payment id, so asking
    twice gives the same answer."""

    def __init__(
        self, *, max_amount: int = 1_000_000, blocked_customers: Iterable[str] = ()
    ) -> None:
        self.max_amount = check_amount(max_amount, "max_amount")
        self.blocked_customers = frozenset(blocked_customers)

    async def authorize(self, payment: Payment) -> Decision:
        """Approve or decline ``payment`` by the rules."""
        if payment.customer_id in self.blocked_customers:
            return Decision(False, reason="customer_blocked")
        if payment.amount > self.max_amount:
            return Decision(False, reason="amount_over_limit")
        return Decision(True, auth_code=_digest("auth", payment.payment_id)[:8].upper())
