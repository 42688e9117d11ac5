"""How a payment changes: one DynamoDB transaction per transition, retried on contention.

A transition is planned from the payment as last read (:class:`Plan`: the event, the
field changes, the Transaction record, any extra guard) and committed as **one**
TransactWriteItems:

1. an UpdateItem of the payment, conditioned on its version (optimistic locking), on
   ``status IN <the statuses the event starts from>`` and on the plan's guard (for a
   refund: ``refundable_amount >= amount``, decremented in the same update);
2. the creation of the :class:`~.entities.Transaction` record (``attribute_not_exists``:
   a refund key refunds once);
3. the audit entry of the change, appended to the payment's hash chain.

If DynamoDB cancels it, the reasons say why: the payment moved on (its old image comes
back with the failure, so the plan is made again from it without another read), the
event is not allowed any more (the plan raises :class:`IllegalTransition`, or the guard's
typed error), the record already exists (a replayed refund: done already), or another
transaction held an item (read again, retry). Attempts are bounded (``max_attempts``)
from the third one, attempts are spaced by a short full-jitter pause; each one honours
the current deadline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .. import deadlines
from ..audit import AuditTrail
from ..batch_keys import key
from ..db import Database
from ..errors import ConditionalCheckFailed, DeadlineExceeded, TransactionConflict
from ..expr import Condition, UpdateAction
from ..transactions_errors import TxCanceled
from .entities import Payment, Transaction
from .errors import PaymentBusy, PaymentNotFound
from .locks import KeyedLocks
from .states import Event, allowed_from

__all__ = ["Outcome", "Plan", "TransitionEngine"]

_CCF = "ConditionalCheckFailed"
#: How often a condition may fail while the payment it returns allows the transition
#: (never on DynamoDB, whose transactions are serializable; moto's are not isolated).
_UNEXPLAINED_LIMIT = 3
_RETRY_CODES = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)


@attrs.frozen
class Plan:
    """One transition, planned from a read of the payment.

    ``changes`` maps field names to new values (``None`` removes the attribute);
    ``increments`` maps numeric fields to deltas applied on the server; ``guard`` is an
    extra condition; ``record`` the Transaction record to create; ``replay_ok`` says that
    an existing record means "already done" (the refund of a known refund key);
    ``actor`` and ``request_id`` go into the audit entry.
    """

    event: Event
    changes: Mapping[str, Any]
    record: Transaction | None = None
    increments: Mapping[str, int] = attrs.field(factory=dict)
    guard: Condition | None = None
    replay_ok: bool = False
    actor: str = "payment-processor"
    request_id: str | None = None


PlanFn = Callable[[Payment], Plan]


class _Unexplained(Exception):
    """The payment's condition failed, yet the stored payment allows the transition."""


@attrs.frozen
class Outcome:
    """A committed (or replayed) transition: the payment after it and whether it was a
    replay of one already done."""

    payment: Payment
    replayed: bool = False


class TransitionEngine:
    """Commits transitions of payments of ``db`` (see the module doc)."""

    def __init__(
        self,
        db: Database,
        audit: AuditTrail,
        *,
        clock: Callable[[], dt.datetime],
        max_attempts: int = 25,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.max_attempts = max_attempts
        self.payments = db.repository(Payment)
        self.locks = KeyedLocks()

    async def load(self, payment_id: str) -> Payment:
        """The payment, read consistently, or :class:`PaymentNotFound`."""
        found = await self.payments.get(payment_id=payment_id, consistent=True)
        if found is None:
            raise PaymentNotFound(payment_id)
        return found

    async def run(self, target: Payment | str, plan_fn: PlanFn) -> Outcome:
        """Plan and commit one transition of ``target`` (a payment as read, or its id)."""
        payment_id = target.payment_id if isinstance(target, Payment) else target
        async with self.locks.hold(payment_id):
            current = target if isinstance(target, Payment) else await self.load(payment_id)
            unexplained = 0
            for attempt in range(self.max_attempts):
                if attempt > 1:
                    await _backoff(attempt)
                plan = plan_fn(current)
                after = self._after(current, plan)
                try:
                    await self._commit(current, after, plan)
                    return Outcome(after)
                except TxCanceled as exc:
                    try:
                        retry = await self._cancelled(exc, current, plan, plan_fn)
                    except _Unexplained:
                        unexplained += 1
                        if unexplained >= _UNEXPLAINED_LIMIT:
                            raise ConditionalCheckFailed(
                                f"payment {payment_id}: its condition keeps failing although "
                                "the stored payment allows this transition",
                                code=exc.code,
                                response=exc.response,
                            ) from exc
                        retry = None
                except TransactionConflict:
                    retry = None
                if isinstance(retry, Outcome):
                    return retry
                current = retry if retry is not None else await self.load(payment_id)
            raise PaymentBusy(payment_id, self.max_attempts)

    def _after(self, current: Payment, plan: Plan) -> Payment:
        changes: dict[str, Any] = dict(plan.changes)
        for name, delta in plan.increments.items():
            changes[name] = getattr(current, name) + delta
        changes["version"] = current.version + 1
        changes["updated_at"] = self.clock()
        return attrs.evolve(current, **changes)

    def _actions(self, current: Payment, after: Payment, plan: Plan) -> list[UpdateAction]:
        meta = self.payments.meta
        acts: list[UpdateAction] = []
        for name in (*plan.changes, "version", "updated_at"):
            value = getattr(after, name)
            path = meta.path(name)
            acts.append(path.remove() if value is None else path.set(value))
        for name, delta in plan.increments.items():
            acts.append(meta.path(name).increment(delta))
        return acts

    async def _commit(self, current: Payment, after: Payment, plan: Plan) -> None:
        meta = self.payments.meta
        allowed = sorted(allowed_from(plan.event), key=lambda s: s.value)
        cond = (meta.path("version") == current.version) & meta.path("status").is_in(allowed)
        if plan.guard is not None:
            cond = cond & plan.guard
        async with self.db.transaction(retry_conflicts=True) as tx:
            tx.update(
                key(Payment, payment_id=current.payment_id),
                *self._actions(current, after, plan),
                condition=cond,
            )
            if plan.record is not None:
                tx.create(plan.record)
            self.audit.record(
                tx,
                actor=plan.actor,
                action=plan.event.value,
                before=current,
                after=after,
                request_id=plan.request_id,
            )

    async def _cancelled(
        self, exc: TxCanceled, current: Payment, plan: Plan, plan_fn: PlanFn
    ) -> Payment | Outcome | None:
        """What a cancellation means: a newer payment to plan from, a replay, ``None``
        (read again), or an exception."""
        reasons = exc.reasons
        if plan.record is not None and plan.replay_ok and len(reasons) > 1:
            if reasons[1].code == _CCF:
                return Outcome(await self.load(current.payment_id), replayed=True)
        mine = reasons[0] if reasons else None
        if mine is not None and mine.code == _CCF:
            latest: Payment | None = mine.current
            if latest is None:  # no old image came back: read it (PaymentNotFound if gone)
                latest = await self.load(current.payment_id)
            if latest.version == current.version:
                plan_fn(latest)  # raises the typed error of the failed guard or status
                raise _Unexplained  # a store without serializable transactions: try again
            return latest  # it moved on: plan again from what came back
        if exc.codes <= (_RETRY_CODES | {_CCF, "None"}):
            return None  # another transaction held an item, or the audit chain moved
        raise exc


async def _backoff(attempt: int) -> None:
    """Full-jitter pause before attempt ``attempt`` (from the third on), at most 200 ms,
    never past the deadline (:class:`~dynamorm_async.errors.DeadlineExceeded` then)."""
    pause = random.uniform(0.0, min(0.2, 0.004 * 2**attempt))
    left = deadlines.remaining()
    if left is not None and left <= pause:
        raise DeadlineExceeded("deadline exceeded while retrying a contended payment")
    await asyncio.sleep(pause)
