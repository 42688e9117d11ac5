"""The plans of the transitions: what each event changes, records and guards.

Each ``*_plan(...)`` returns a function of the payment as last read; it raises the typed
error when the event cannot apply (:class:`~.errors.IllegalTransition`,
:class:`~.errors.CaptureExceedsAuthorized`, :class:`~.errors.RefundExceedsCaptured`)
and otherwise returns the :class:`~.transitions.Plan`. The transition engine calls it
again with the newer payment when the first attempt met another writer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from ..model import meta_of
from .entities import Payment, Transaction, TxnKind, TxnOutcome, merchant_status
from .errors import CaptureExceedsAuthorized, RefundExceedsCaptured
from .requests import Decision, refund_txn_id
from .states import Event, PaymentStatus, allowed_from, next_status
from .transitions import Plan

__all__ = ["authorize_plan", "capture_plan", "refund_plan", "void_plan"]

PlanFn = Callable[[Payment], Plan]
_PAYMENT = meta_of(Payment)


def _status_changes(p: Payment, status: PaymentStatus) -> dict[str, object]:
    return {"status": status, "merchant_status": merchant_status(p.merchant_id, status)}


def _record(
    p: Payment,
    txn_id: str,
    kind: TxnKind,
    outcome: TxnOutcome,
    amount: int,
    *,
    reference: str | None = None,
    reason: str | None = None,
) -> Transaction:
    return Transaction(
        p.payment_id,
        txn_id,
        kind,
        outcome,
        amount,
        p.currency,
        p.merchant_id,
        reference=reference,
        reason=reason,
    )


def authorize_plan(decision: Decision, actor: str, request_id: str | None) -> PlanFn:
    """``pending`` -> ``authorized`` (approved) or ``failed`` (declined)."""

    def plan(p: Payment) -> Plan:
        if decision.approved:
            status = next_status(p.payment_id, p.status, Event.AUTHORIZE)
            changes = _status_changes(p, status)
            changes.update(authorized_amount=p.amount, auth_code=decision.auth_code)
            outcome, event = TxnOutcome.APPROVED, Event.AUTHORIZE
        else:
            status = next_status(p.payment_id, p.status, Event.DECLINE)
            changes = _status_changes(p, status)
            changes.update(decline_reason=decision.reason or "declined")
            outcome, event = TxnOutcome.DECLINED, Event.DECLINE
        changes["expires_at"] = None  # decided: no longer an abandoned pending payment
        record = _record(
            p,
            "authorize",
            TxnKind.AUTHORIZE,
            outcome,
            p.amount,
            reference=decision.auth_code,
            reason=decision.reason,
        )
        return Plan(event, changes, record, actor=actor, request_id=request_id)

    return plan


def capture_plan(amount: int | None, actor: str, request_id: str | None) -> PlanFn:
    """``authorized`` -> ``captured``, for ``amount`` or the whole authorized amount."""

    def plan(p: Payment) -> Plan:
        status = next_status(p.payment_id, p.status, Event.CAPTURE)
        take = p.authorized_amount if amount is None else amount
        if take > p.authorized_amount:
            raise CaptureExceedsAuthorized(p.payment_id, take, p.authorized_amount)
        changes = _status_changes(p, status)
        changes.update(captured_amount=take, refundable_amount=take)
        record = _record(p, "capture", TxnKind.CAPTURE, TxnOutcome.SUCCEEDED, take)
        guard = _PAYMENT.path("authorized_amount") >= take
        return Plan(Event.CAPTURE, changes, record, guard=guard, actor=actor, request_id=request_id)

    return plan


def refund_plan(
    amount: int, refund_key: str | None, reason: str | None, actor: str, request_id: str | None
) -> PlanFn:
    """``captured``/``partially_refunded`` -> ``partially_refunded`` or ``refunded``.

    The guard ``refundable_amount >= amount`` (with the decrement in the same update) is
    what makes over-refunding impossible: it holds on the server whatever was read.
    """
    key = refund_key or uuid.uuid4().hex

    def plan(p: Payment) -> Plan:
        if p.status not in allowed_from(Event.REFUND):
            next_status(p.payment_id, p.status, Event.REFUND, left_after=0)  # raises
        left = p.refundable_amount - amount
        if left < 0:
            raise RefundExceedsCaptured(p.payment_id, amount, p.refundable_amount)
        status = next_status(p.payment_id, p.status, Event.REFUND, left_after=left)
        record = _record(
            p,
            refund_txn_id(key),
            TxnKind.REFUND,
            TxnOutcome.SUCCEEDED,
            amount,
            reference=key,
            reason=reason,
        )
        return Plan(
            Event.REFUND,
            _status_changes(p, status),
            record,
            increments={"refunded_amount": amount, "refundable_amount": -amount},
            guard=_PAYMENT.path("refundable_amount") >= amount,
            replay_ok=True,
            actor=actor,
            request_id=request_id or key,
        )

    return plan


def void_plan(reason: str | None, actor: str, request_id: str | None) -> PlanFn:
    """``pending``/``authorized`` -> ``voided``."""

    def plan(p: Payment) -> Plan:
        status = next_status(p.payment_id, p.status, Event.VOID)
        changes = _status_changes(p, status)
        changes["expires_at"] = None
        amount = p.authorized_amount or p.amount
        record = _record(p, "void", TxnKind.VOID, TxnOutcome.SUCCEEDED, amount, reason=reason)
        return Plan(Event.VOID, changes, record, actor=actor, request_id=request_id)

    return plan
