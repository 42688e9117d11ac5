"""The payment state machine.

::

    pending --authorize--> authorized --capture--> captured --refund--> partially_refunded
       |  \\--decline--> failed      |                  \\                  |  (refund)
       |                            void                 \\--refund (all)--> refunded
       \\--void--> voided <----------/

* ``authorize`` (approved) and ``decline`` start from ``pending``;
* ``capture`` from ``authorized`` (any amount up to the authorized one);
* ``refund`` from ``captured`` or ``partially_refunded``; it ends in ``refunded`` when
  nothing is left to refund, else in ``partially_refunded``;
* ``void`` from ``pending`` or ``authorized``;
* ``refunded``, ``voided`` and ``failed`` are final.

:func:`next_status` is the only place that decides a transition; the processor also
puts ``status IN allowed_from(event)`` in the condition of every transition, so the
rule holds on the server even against a stale read.
"""

from __future__ import annotations

import enum

from .errors import IllegalTransition

__all__ = [
    "FINAL_STATUSES",
    "TRANSITIONS",
    "Event",
    "PaymentStatus",
    "allowed_from",
    "next_status",
]


class PaymentStatus(enum.Enum):
    """Where a payment is in its life."""

    PENDING = "pending"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    FAILED = "failed"


class Event(enum.Enum):
    """What can happen to a payment."""

    CREATE = "create"
    AUTHORIZE = "authorize"
    DECLINE = "decline"
    CAPTURE = "capture"
    REFUND = "refund"
    VOID = "void"


_P = PaymentStatus

#: (status, event) -> the next status. A refund's target depends on what is left
#: (see :func:`next_status`); the table names the partial case.
TRANSITIONS: dict[tuple[PaymentStatus, Event], PaymentStatus] = {
    (_P.PENDING, Event.AUTHORIZE): _P.AUTHORIZED,
    (_P.PENDING, Event.DECLINE): _P.FAILED,
    (_P.PENDING, Event.VOID): _P.VOIDED,
    (_P.AUTHORIZED, Event.CAPTURE): _P.CAPTURED,
    (_P.AUTHORIZED, Event.VOID): _P.VOIDED,
    (_P.CAPTURED, Event.REFUND): _P.PARTIALLY_REFUNDED,
    (_P.PARTIALLY_REFUNDED, Event.REFUND): _P.PARTIALLY_REFUNDED,
}

#: Statuses no event leaves.
FINAL_STATUSES = frozenset({_P.REFUNDED, _P.VOIDED, _P.FAILED})

_FROM: dict[Event, frozenset[PaymentStatus]] = {
    event: frozenset(s for (s, e) in TRANSITIONS if e is event) for event in Event
}


def allowed_from(event: Event) -> frozenset[PaymentStatus]:
    """The statuses ``event`` may start from (empty for ``create``)."""
    return _FROM[event]


def next_status(
    payment_id: str,
    current: PaymentStatus,
    event: Event,
    *,
    left_after: int | None = None,
) -> PaymentStatus:
    """The status after ``event`` on a payment in ``current``, or :class:`IllegalTransition`.

    For a refund, ``left_after`` is the amount still refundable after it: ``0`` gives
    ``refunded``.
    """
    target = TRANSITIONS.get((current, event))
    if target is None:
        raise IllegalTransition(payment_id, current, event, allowed_from(event))
    if event is Event.REFUND:
        if left_after is None:
            raise ValueError("a refund transition needs left_after")
        return _P.REFUNDED if left_after == 0 else _P.PARTIALLY_REFUNDED
    return target
