"""The payment processor: entities, state machine, ``PaymentProcessor`` and batches.

>>> db = Database(client, cursor_secret=SECRET, sealer=FieldEncryptor(keyring, ...))
>>> await ensure_payment_tables(db)
>>> proc = PaymentProcessor(db)
>>> result = await proc.process(PaymentRequest("m-1", "c-1", 1999, "EUR", "order-42"))
>>> p = await proc.refund(result.payment, 500, refund_key="rma-7")

Built only from the toolkit's public layers: repositories and :class:`Database`,
transactions, the audit trail, field encryption, the cost meter; partner-aware through
the database's target. See :mod:`.processor`, :mod:`.transitions`, :mod:`.states`,
:mod:`.batch`.
"""

from __future__ import annotations

from .batch import BatchProgress, BatchResult, ProgressFn, RequestResult, ResultStatus
from .entities import (
    Customer,
    Merchant,
    Payment,
    Settlement,
    Transaction,
    TxnKind,
    TxnOutcome,
    merchant_status,
)
from .errors import (
    CaptureExceedsAuthorized,
    IdempotencyKeyReused,
    IllegalTransition,
    InvalidPaymentRequest,
    MerchantUnavailable,
    PaymentBusy,
    PaymentError,
    PaymentNotFound,
    RefundExceedsCaptured,
)
from .processor import CreateResult, PaymentProcessor
from .requests import Authorizer, Decision, LimitAuthorizer, PaymentRequest
from .states import Event, PaymentStatus, allowed_from, next_status
from .tables import PAYMENT_ENTITIES, delete_payment_tables, ensure_payment_tables

__all__ = [
    "PAYMENT_ENTITIES",
    "Authorizer",
    "BatchProgress",
    "BatchResult",
    "CaptureExceedsAuthorized",
    "CreateResult",
    "Customer",
    "Decision",
    "Event",
    "IdempotencyKeyReused",
    "IllegalTransition",
    "InvalidPaymentRequest",
    "LimitAuthorizer",
    "Merchant",
    "MerchantUnavailable",
    "Payment",
    "PaymentBusy",
    "PaymentError",
    "PaymentNotFound",
    "PaymentProcessor",
    "PaymentRequest",
    "PaymentStatus",
    "ProgressFn",
    "RefundExceedsCaptured",
    "RequestResult",
    "ResultStatus",
    "Settlement",
    "Transaction",
    "TxnKind",
    "TxnOutcome",
    "allowed_from",
    "delete_payment_tables",
    "ensure_payment_tables",
    "merchant_status",
    "next_status",
]
