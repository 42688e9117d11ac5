"""``PaymentProcessor``: payments from request to refund, built on the toolkit's public API.

>>> db = Database(pool.client(endpoint_url=...), cursor_secret=SECRET, sealer=encryptor)
>>> proc = PaymentProcessor(db)                     # or Database(partner_registry)
>>> created = await proc.create(PaymentRequest("m-1", "c-1", 1999, "EUR", "order-42"))
>>> p = await proc.authorize(created.payment)
>>> p = await proc.capture(p)                       # the authorized amount, or less
>>> p = await proc.refund(p, 500, refund_key="rma-7")
>>> page = await proc.list_by_merchant("m-1", PaymentStatus.PARTIALLY_REFUNDED)

* ``create`` is idempotent by (merchant, idempotency key): the payment id is derived
  from them and written with "no item with this key", so concurrent duplicates yield
  one payment; the others get it back as a duplicate (or
  :class:`IdempotencyKeyReused` if the request differs).
* ``authorize``, ``capture``, ``refund`` and ``void`` are transitions of the state
  machine (:mod:`.states`), each one DynamoDB transaction with its Transaction record
  and audit entry (:mod:`.transitions`). Methods take a payment (as returned by an
  earlier call: no read needed) or a payment id.
* Refunds never exceed the captured amount, whatever the concurrency: the condition
  ``refundable_amount >= amount`` is checked and decremented on the server.
* Everything goes through repositories of ``db``, so the processor works for every
  partner of a partner registry: call it inside ``registry.use(...)``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..audit import AuditEntry, AuditTrail, ChainReport
from ..db import Database
from ..errors import InvalidInput, TransactionConflict
from ..model import meta_of
from ..query import Page
from ..transactions_errors import TxCanceled
from .accounts import Accounts
from .entities import Payment, Settlement, Transaction, merchant_status
from .errors import IdempotencyKeyReused, MerchantUnavailable, PaymentBusy
from .requests import (
    Authorizer,
    LimitAuthorizer,
    PaymentRequest,
    check_amount,
    check_id,
    payment_id_for,
    request_hash,
)
from .states import Event, PaymentStatus, next_status
from .transitions import Plan, TransitionEngine
from .txn_plans import authorize_plan, capture_plan, refund_plan, void_plan

if TYPE_CHECKING:
    from ..cost import CostMeter
    from .batch import BatchResult, ProgressFn, RequestResult

__all__ = ["CreateResult", "PaymentProcessor"]

_CCF = "ConditionalCheckFailed"


@attrs.frozen
class CreateResult:
    """The payment that ``create`` made, or found (``duplicate=True``: the idempotency key
    was seen before, with the same request)."""

    payment: Payment
    duplicate: bool = False


class PaymentProcessor:
    """Takes, moves and lists payments stored through ``db`` (see the module doc).

    ``authorizer`` decides authorizations (default: :class:`LimitAuthorizer`);
    ``actor`` is recorded in audit entries; a new payment left ``pending`` for
    ``pending_ttl`` expires (DynamoDB TTL); merchant lookups are cached for
    ``merchant_cache_ttl`` seconds; a contended transition gives up after
    ``max_attempts`` (:class:`PaymentBusy`); ``audit_secret`` (>= 32 bytes) makes the
    audit chains HMAC chains.
    """

    def __init__(
        self,
        db: Database,
        *,
        authorizer: Authorizer | None = None,
        actor: str = "payment-processor",
        pending_ttl: dt.timedelta = dt.timedelta(hours=24),
        merchant_cache_ttl: float = 5.0,
        max_attempts: int = 25,
        audit_secret: bytes | None = None,
    ) -> None:
        if max_attempts < 1:
            raise InvalidInput("max_attempts must be >= 1")
        self.db = db
        self.clock: Callable[[], dt.datetime] = db.clock
        self.authorizer: Authorizer = authorizer or LimitAuthorizer()
        self.actor = actor
        self.pending_ttl = pending_ttl
        self.max_attempts = max_attempts
        self.accounts = Accounts(db, merchant_cache_ttl=merchant_cache_ttl)
        self.payments = db.repository(Payment)
        self.transactions = db.repository(Transaction)
        self.settlements_repo = db.repository(Settlement)
        self.audit = AuditTrail(db, secret=audit_secret, clock=self.clock)
        self.engine = TransitionEngine(db, self.audit, clock=self.clock, max_attempts=max_attempts)

    # ------------------------------------------------------------------ reads

    async def get(self, payment_id: str, *, consistent: bool = True) -> Payment | None:
        """The payment, or ``None``."""
        return await self.payments.get(payment_id=payment_id, consistent=consistent)

    async def get_or_raise(self, payment_id: str) -> Payment:
        """The payment, or :class:`~.errors.PaymentNotFound`."""
        return await self.engine.load(payment_id)

    async def records(self, payment_id: str) -> list[Transaction]:
        """The Transaction records of the payment (authorize, capture, refunds, void)."""
        query = self.transactions.query(
            meta_of(Transaction).path("payment_id") == payment_id, consistent=True
        )
        return await query.to_list()

    async def history(self, payment_id: str) -> list[AuditEntry]:
        """The audit entries of the payment, oldest first."""
        return await self.audit.history(_aggregate(payment_id)).to_list()

    async def verify(self, payment_id: str) -> ChainReport:
        """Recompute the payment's audit chain (``.ok``, ``.length``, ``.raise_for_error()``)."""
        return await self.audit.verify_chain(_aggregate(payment_id))

    async def list_by_merchant(
        self,
        merchant_id: str,
        status: PaymentStatus,
        *,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Payment]:
        """One page of the merchant's payments in ``status``, oldest first; pass the
        page's ``cursor`` to get the next one."""
        query = self.payments.query(
            self.payments.meta.path("merchant_status") == merchant_status(merchant_id, status),
            index="by_merchant_status",
            limit=limit,
            page_size=limit,
            cursor=cursor,
        )
        return await _first_page(query)

    async def list_by_customer(
        self, customer_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Payment]:
        """One page of the customer's payments, oldest first (``cursor`` as above)."""
        query = self.payments.query(
            self.payments.meta.path("customer_id") == customer_id,
            index="by_customer",
            limit=limit,
            page_size=limit,
            cursor=cursor,
        )
        return await _first_page(query)

    # ------------------------------------------------------------------ create

    async def create(self, request: PaymentRequest) -> CreateResult:
        """Create the payment of ``request`` (``pending``), or return the one created
        before with the same merchant and idempotency key."""
        request.validate()
        payment_id = payment_id_for(request.merchant_id, request.idempotency_key)
        now = self.clock()
        payment = Payment(
            payment_id,
            request.merchant_id,
            request.customer_id,
            request.amount,
            request.currency,
            request.idempotency_key,
            request_hash(request),
            merchant_status=merchant_status(request.merchant_id, PaymentStatus.PENDING),
            description=request.description,
            expires_at=now + self.pending_ttl,
        )
        try:
            await self.accounts.require_merchant(request.merchant_id)
        except MerchantUnavailable:
            existing = await self.get(payment_id)  # a replay still gets its payment back
            if existing is None:
                raise
            return self._duplicate(existing, payment)
        for _ in range(self.max_attempts):
            try:
                async with self.db.transaction(retry_conflicts=True) as tx:
                    action = tx.create(payment)
                    self.audit.record(
                        tx,
                        actor=self.actor,
                        action=Event.CREATE.value,
                        after=action.value,
                        request_id=request.idempotency_key,
                    )
                stored: Payment = action.value
                return CreateResult(stored)
            except TxCanceled as exc:
                mine = exc.reasons[0] if exc.reasons else None
                if mine is not None and mine.code == _CCF and mine.current is not None:
                    return self._duplicate(mine.current, payment)
                if not exc.codes <= {"TransactionConflict", _CCF, "None"}:
                    raise
            except TransactionConflict:
                pass
            existing = await self.get(payment_id)
            if existing is not None:
                return self._duplicate(existing, payment)
        raise PaymentBusy(payment_id, self.max_attempts)

    @staticmethod
    def _duplicate(existing: Payment, wanted: Payment) -> CreateResult:
        if existing.request_hash != wanted.request_hash:
            raise IdempotencyKeyReused(wanted.idempotency_key, existing.payment_id)
        return CreateResult(existing, duplicate=True)

    # ------------------------------------------------------------------ transitions

    async def authorize(self, payment: Payment | str, *, request_id: str | None = None) -> Payment:
        """Ask the authorizer; approved -> ``authorized``, declined -> ``failed``.

        ``request_id`` (here and below) is recorded in the audit entry.
        """
        current = payment if isinstance(payment, Payment) else await self.engine.load(payment)
        next_status(current.payment_id, current.status, Event.AUTHORIZE)  # before asking
        decision = await self.authorizer.authorize(current)
        return await self._run(current, authorize_plan(decision, self.actor, request_id))

    async def capture(
        self, payment: Payment | str, amount: int | None = None, *, request_id: str | None = None
    ) -> Payment:
        """Capture ``amount`` (default: all that was authorized) -> ``captured``."""
        if amount is not None:
            check_amount(amount)
        return await self._run(payment, capture_plan(amount, self.actor, request_id))

    async def refund(
        self,
        payment: Payment | str,
        amount: int,
        *,
        refund_key: str | None = None,
        reason: str | None = None,
        request_id: str | None = None,
    ) -> Payment:
        """Refund ``amount`` -> ``partially_refunded`` or ``refunded``.

        With a ``refund_key``, repeating the refund returns the payment without refunding
        again. More than what is left raises :class:`RefundExceedsCaptured`.
        """
        check_amount(amount)
        if refund_key is not None:
            check_id(refund_key, "refund_key")
        plan = refund_plan(amount, refund_key, reason, self.actor, request_id)
        return await self._run(payment, plan)

    async def void(
        self, payment: Payment | str, *, reason: str | None = None, request_id: str | None = None
    ) -> Payment:
        """Cancel a pending or authorized payment -> ``voided``."""
        return await self._run(payment, void_plan(reason, self.actor, request_id))

    async def _run(self, payment: Payment | str, plan: Callable[[Payment], Plan]) -> Payment:
        return (await self.engine.run(payment, plan)).payment

    async def settle(
        self, merchant_id: str, currency: str, *, limit: int | None = None
    ) -> Settlement | None:
        """Settle the merchant's unsettled captured payments in ``currency`` (up to
        ``limit``, at most 33 per settlement); ``None`` if there are none. See
        :mod:`.settlement`."""
        from .settlement import MAX_PER_SETTLEMENT, settle

        return await settle(self, merchant_id, currency, limit=limit or MAX_PER_SETTLEMENT)

    async def settlements(self, merchant_id: str) -> list[Settlement]:
        """The merchant's settlements, oldest first (their ids begin with the time)."""
        path = meta_of(Settlement).path("merchant_id")
        return await self.settlements_repo.query(path == merchant_id, consistent=True).to_list()

    # ------------------------------------------------------------------ batches

    async def process(self, request: PaymentRequest) -> RequestResult:
        """Create, authorize and (if ``request.capture``) capture one payment, resuming
        where an earlier attempt stopped; the result says ok, duplicate, declined or
        error."""
        from .batch import process_one

        return await process_one(self, 0, request)

    async def process_batch(
        self,
        requests: Sequence[PaymentRequest],
        *,
        concurrency: int = 16,
        progress: ProgressFn | None = None,
        meter: CostMeter | None = None,
    ) -> BatchResult:
        """Process ``requests`` ``concurrency`` at a time, each like :meth:`process`; the
        result has one :class:`~.batch.RequestResult` per request and the
        :class:`~dynamorm_async.cost.CostMeter` of the batch (see :mod:`.batch`)."""
        from .batch import process_batch

        return await process_batch(
            self, requests, concurrency=concurrency, progress=progress, meter=meter
        )


def _aggregate(payment_id: str) -> str:
    return f"Payment#{payment_id}"  # AuditTrail.aggregate_of(payment)


async def _first_page(query: Any) -> Page[Payment]:
    async with contextlib.aclosing(query.pages()) as pages:
        async for page in pages:
            return page  # type: ignore[no-any-return]
    return Page([], None, 0, 0)  # pragma: no cover - a query always yields a page
