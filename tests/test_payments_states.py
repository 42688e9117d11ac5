"""The payment state machine and request validation (no server needed)."""

from __future__ import annotations

import itertools

import pytest

from dynamorm_async.errors import InvalidInput
from dynamorm_async.payments.errors import IllegalTransition, InvalidPaymentRequest
from dynamorm_async.payments.requests import (
    MAX_AMOUNT,
    PaymentRequest,
    payment_id_for,
    refund_txn_id,
    request_hash,
)
from dynamorm_async.payments.states import (
    FINAL_STATUSES,
    TRANSITIONS,
    Event,
    PaymentStatus,
    allowed_from,
    next_status,
)

S = PaymentStatus

LEGAL = {
    (S.PENDING, Event.AUTHORIZE): S.AUTHORIZED,
    (S.PENDING, Event.DECLINE): S.FAILED,
    (S.PENDING, Event.VOID): S.VOIDED,
    (S.AUTHORIZED, Event.CAPTURE): S.CAPTURED,
    (S.AUTHORIZED, Event.VOID): S.VOIDED,
    (S.CAPTURED, Event.REFUND): S.PARTIALLY_REFUNDED,
    (S.PARTIALLY_REFUNDED, Event.REFUND): S.PARTIALLY_REFUNDED,
}


def test_transition_table_is_the_documented_one() -> None:
    assert dict(TRANSITIONS) == LEGAL
    assert all(s not in {f for f, _ in TRANSITIONS} for s in FINAL_STATUSES)


@pytest.mark.parametrize(
    ("status", "event"), list(itertools.product(PaymentStatus, [e for e in Event]))
)
def test_every_status_and_event(status: PaymentStatus, event: Event) -> None:
    if (status, event) in LEGAL:
        left = 5 if event is Event.REFUND else None
        assert next_status("p", status, event, left_after=left) is LEGAL[status, event]
        assert status in allowed_from(event)
        return
    with pytest.raises(IllegalTransition) as info:
        next_status("pay_1", status, event, left_after=0)
    err = info.value
    assert err.current is status and err.from_status is status and err.event is event
    assert err.allowed == allowed_from(event)
    assert status not in err.allowed
    assert "pay_1" in str(err) and status.value in str(err)


def test_refund_of_everything_left_ends_refunded() -> None:
    assert next_status("p", S.CAPTURED, Event.REFUND, left_after=0) is S.REFUNDED
    assert next_status("p", S.PARTIALLY_REFUNDED, Event.REFUND, left_after=0) is S.REFUNDED
    with pytest.raises(ValueError):
        next_status("p", S.CAPTURED, Event.REFUND)


def test_create_starts_from_nothing() -> None:
    assert allowed_from(Event.CREATE) == frozenset()


def req(**kw: object) -> PaymentRequest:
    base: dict[str, object] = {
        "merchant_id": "m-1",
        "customer_id": "c-1",
        "amount": 1999,
        "currency": "EUR",
        "idempotency_key": "order-1",
    }
    base.update(kw)
    return PaymentRequest(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        {"amount": 0},
        {"amount": -5},
        {"amount": 19.99},
        {"amount": True},
        {"amount": MAX_AMOUNT + 1},
        {"currency": "eur"},
        {"currency": "EURO"},
        {"merchant_id": ""},
        {"customer_id": "has space"},
        {"idempotency_key": "x" * 201},
        {"description": "d" * 1001},
    ],
)
def test_bad_requests_are_refused_before_sending(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidPaymentRequest) as info:
        req(**bad).validate()
    assert isinstance(info.value, InvalidInput)


def test_identity_is_deterministic_and_scoped_by_merchant() -> None:
    a = req()
    assert a.validate() is a
    assert payment_id_for("m-1", "order-1") == payment_id_for("m-1", "order-1")
    assert payment_id_for("m-1", "order-1") != payment_id_for("m-2", "order-1")
    assert payment_id_for("m-1", "order-1") != payment_id_for("m-1", "order-2")
    # length-prefixed parts: no ambiguity from concatenation
    assert payment_id_for("m-1", "#x") != payment_id_for("m-1#", "x")
    assert request_hash(a) == request_hash(req(capture=False))
    assert request_hash(a) != request_hash(req(amount=2000))
    assert request_hash(a) != request_hash(req(currency="USD"))
    assert refund_txn_id("r1") != refund_txn_id("r2")
    assert refund_txn_id("r1").startswith("refund#")
