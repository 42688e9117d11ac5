"""The entities of the payment processor.

* :class:`Merchant`: who takes payments; only an ``active`` merchant can.
* :class:`Customer`: who pays; the card number (PAN) or network token and the email are
  encrypted fields, ``last4`` stays clear for receipts, and ``email_index`` is a blind
  index (keyed HMAC) for equality lookups by email through the ``by_email`` GSI.
* :class:`Payment`: amount in integer minor units plus an ISO 4217 currency, status,
  merchant, customer, idempotency key, version and timestamps. GSIs list payments by
  merchant and status (``merchant_status`` is ``"<merchant>#<status>"``) and by
  customer, newest last. A pending payment carries a TTL (``expires_at``): abandoned
  ones disappear; authorizing, voiding or declining clears it.
* :class:`Transaction`: one record per authorize, capture, refund and void (also a
  declined authorization), keyed by payment; its id makes each record unique, which is
  what makes retries exactly-once (see :mod:`.processor`).
* :class:`Settlement`: a merchant's payout of captured payments, net of refunds.

Amounts are ``int`` minor units everywhere (cents for EUR, yen for JPY): no float or
rounding question ever arises.
"""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from ..model import GSI, entity, field
from .states import PaymentStatus

__all__ = [
    "Customer",
    "Merchant",
    "Payment",
    "Settlement",
    "Transaction",
    "TxnKind",
    "TxnOutcome",
    "merchant_status",
]


def merchant_status(merchant_id: str, status: PaymentStatus) -> str:
    """The ``by_merchant_status`` GSI hash key of a payment."""
    return f"{merchant_id}#{status.value}"


@entity(
    table="pay_merchants",
    hash_key="merchant_id",
    version="version",
    created_at="created_at",
    updated_at="updated_at",
)
@attrs.define(slots=False)  # spelled out so type checkers see the attrs __init__
class Merchant:
    """A merchant account. ``active=False`` stops new payments (checked in the create
    transaction, so a merchant disabled a millisecond earlier is already refused)."""

    merchant_id: str
    name: str
    active: bool = True
    version: int = 0
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@entity(
    table="pay_customers",
    hash_key="customer_id",
    indexes=[GSI("by_email", hash_key="email_index", projection="KEYS_ONLY")],
    version="version",
    created_at="created_at",
    updated_at="updated_at",
)
@attrs.define(slots=False)  # spelled out so type checkers see the attrs __init__
class Customer:
    """A paying customer. ``card`` (PAN or token) and ``email`` are encrypted at rest;
    ``email_index`` is the blind index of ``email``, filled by the sealer on write."""

    customer_id: str
    name: str
    card: str = field(encrypted=True)
    last4: str = ""
    email: str = field(encrypted=True, blind_index="email_index", default="")
    email_index: str | None = None
    version: int = 0
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@entity(
    table="pay_payments",
    hash_key="payment_id",
    indexes=[
        GSI("by_merchant_status", hash_key="merchant_status", range_key="created_at"),
        GSI("by_customer", hash_key="customer_id", range_key="created_at"),
    ],
    ttl="expires_at",
    version="version",
    created_at="created_at",
    updated_at="updated_at",
)
@attrs.define(slots=False)  # spelled out so type checkers see the attrs __init__
class Payment:
    """A payment and its running totals.

    ``refundable_amount`` is always ``captured_amount - refunded_amount``; refunds are
    conditioned on it (``refundable_amount >= amount``) and decrement it in the same
    update, so the refunded total can never pass the captured one.
    """

    payment_id: str
    merchant_id: str
    customer_id: str
    amount: int
    currency: str
    idempotency_key: str
    #: Hash of the request fields that define the payment (idempotent replays compare it).
    request_hash: str
    status: PaymentStatus = PaymentStatus.PENDING
    merchant_status: str = ""
    description: str = ""
    authorized_amount: int = 0
    captured_amount: int = 0
    refunded_amount: int = 0
    refundable_amount: int = 0
    auth_code: str | None = None
    decline_reason: str | None = None
    settlement_id: str | None = None
    expires_at: dt.datetime | None = None
    version: int = 0
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


class TxnKind(enum.Enum):
    """What a :class:`Transaction` record records."""

    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    REFUND = "refund"
    VOID = "void"


class TxnOutcome(enum.Enum):
    """How the recorded operation ended."""

    APPROVED = "approved"
    DECLINED = "declined"
    SUCCEEDED = "succeeded"


@entity(
    table="pay_transactions",
    hash_key="payment_id",
    range_key="txn_id",
    created_at="created_at",
)
@attrs.define(slots=False)  # spelled out so type checkers see the attrs __init__
class Transaction:
    """A money movement (or attempt) on a payment. ``txn_id`` is ``authorize``,
    ``capture``, ``void`` or ``refund#<hash of the refund key>``, so one refund key
    refunds once."""

    payment_id: str
    txn_id: str
    kind: TxnKind
    outcome: TxnOutcome
    amount: int
    currency: str
    merchant_id: str
    reference: str | None = None
    reason: str | None = None
    created_at: dt.datetime | None = None


@entity(
    table="pay_settlements",
    hash_key="merchant_id",
    range_key="settlement_id",
    created_at="created_at",
)
@attrs.define(slots=False)  # spelled out so type checkers see the attrs __init__
class Settlement:
    """A payout to a merchant: the captured payments it covers, gross and net of the
    refunds made before it."""

    merchant_id: str
    settlement_id: str
    currency: str
    payment_ids: list[str]
    payment_count: int
    gross_amount: int
    refunded_amount: int
    net_amount: int
    created_at: dt.datetime | None = None
