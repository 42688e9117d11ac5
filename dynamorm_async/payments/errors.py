"""The typed errors of the payment processor.

Every error derives from :class:`PaymentError` (a
:class:`~dynamorm_async.errors.DynamormError`); bad requests are also
:class:`~dynamorm_async.errors.InvalidInput` (so ``ValueError``) and are raised before
anything is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import DynamormError, InvalidInput, ItemNotFound
from ..idempotency import IdempotencyPayloadMismatch

if TYPE_CHECKING:
    from .states import Event, PaymentStatus

__all__ = [
    "CaptureExceedsAuthorized",
    "IdempotencyKeyReused",
    "IllegalTransition",
    "InvalidPaymentRequest",
    "MerchantUnavailable",
    "PaymentBusy",
    "PaymentError",
    "PaymentNotFound",
    "RefundExceedsCaptured",
]


class PaymentError(DynamormError):
    """Base class of the payment processor's errors."""


class InvalidPaymentRequest(PaymentError, InvalidInput):
    """A request is malformed (amount, currency, identifiers), caught before sending."""


class PaymentNotFound(PaymentError, ItemNotFound):
    """No payment has this id (in the current partner scope)."""

    def __init__(self, payment_id: str) -> None:
        self.payment_id = payment_id
        super().__init__(f"no payment {payment_id}")


class IllegalTransition(PaymentError):
    """The payment's status does not allow the event (``authorize`` a captured payment...).

    ``payment_id``, ``current`` (the status found), ``event`` (what was asked) and
    ``allowed`` (the statuses the event starts from) say which.
    """

    def __init__(
        self,
        payment_id: str,
        current: PaymentStatus,
        event: Event,
        allowed: frozenset[PaymentStatus],
    ) -> None:
        self.payment_id = payment_id
        self.current = current
        self.event = event
        self.allowed = allowed
        names = ", ".join(sorted(s.value for s in allowed)) or "no status"
        super().__init__(
            f"payment {payment_id}: cannot {event.value} from {current.value} (only from {names})"
        )

    @property
    def from_status(self) -> PaymentStatus:
        """The status the payment was in (same as ``current``)."""
        return self.current


class RefundExceedsCaptured(PaymentError):
    """A refund would take the refunded total over the captured amount.

    ``requested`` is the refund asked for, ``refundable`` what was left to refund
    when DynamoDB evaluated the condition.
    """

    def __init__(self, payment_id: str, requested: int, refundable: int) -> None:
        self.payment_id = payment_id
        self.requested = requested
        self.refundable = refundable
        super().__init__(
            f"payment {payment_id}: refund of {requested} exceeds the {refundable} still refundable"
        )


class CaptureExceedsAuthorized(PaymentError):
    """A capture asks for more than the authorized amount."""

    def __init__(self, payment_id: str, requested: int, authorized: int) -> None:
        self.payment_id = payment_id
        self.requested = requested
        self.authorized = authorized
        super().__init__(
            f"payment {payment_id}: capture of {requested} exceeds the authorized {authorized}"
        )


class MerchantUnavailable(PaymentError):
    """The merchant does not exist or is not active, so it cannot take payments."""

    def __init__(self, merchant_id: str) -> None:
        self.merchant_id = merchant_id
        super().__init__(f"merchant {merchant_id} does not exist or is not active")


class IdempotencyKeyReused(IdempotencyPayloadMismatch, PaymentError):
    """The idempotency key was used before for a different payment request
    (another amount, currency or customer)."""

    def __init__(self, key: str, payment_id: str) -> None:
        self.payment_id = payment_id
        super().__init__(key)


class PaymentBusy(PaymentError):
    """Other writers kept changing the payment; the transition gave up after its attempts
    (or at the deadline). Retryable."""

    retryable = True

    def __init__(self, payment_id: str, attempts: int, *, what: str | None = None) -> None:
        self.payment_id = payment_id
        self.attempts = attempts
        super().__init__(
            f"{what or 'payment ' + payment_id}: still contended after {attempts} attempts; "
            "retry later"
        )
