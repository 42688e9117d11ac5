"""A payments service on FastAPI, built on the toolkit's ``PaymentProcessor``.

Run it: ``uvicorn app:app`` in this directory (``pip install 'dynamorm-async[examples]'``),
with ``AWS_ENDPOINT_URL_DYNAMODB`` pointing at DynamoDB Local and
``PAYMENTS_CREATE_TABLES=1``; the OpenAPI UI is at ``/docs``.

* The lifespan opens one :class:`~dynamorm_async.ClientPool` (closed at shutdown) and
  builds the :class:`~dynamorm_async.db.Database` and the processor once; endpoints get
  them through dependencies (:func:`get_processor`), so tests and other apps can
  override them.
* Typed errors become HTTP statuses in one place (:func:`install_error_handlers`):
  unknown payment 404; illegal transition, over-refund, over-capture, reused idempotency
  key, existing merchant 409; bad input 422 (FastAPI's own validation and the
  processor's); contention or deadline 503.
* ``POST /payments`` is idempotent by (merchant, ``idempotency_key``): the same request
  again answers 200 with the first payment and ``duplicate: true``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import attrs
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt

from dynamorm_async import ClientPool, errors
from dynamorm_async.crypto import FieldEncryptor, LocalKeyring
from dynamorm_async.db import Database
from dynamorm_async.payments import (
    CaptureExceedsAuthorized,
    IdempotencyKeyReused,
    IllegalTransition,
    MerchantUnavailable,
    Payment,
    PaymentBusy,
    PaymentError,
    PaymentProcessor,
    PaymentRequest,
    PaymentStatus,
    RefundExceedsCaptured,
    ensure_payment_tables,
)
from dynamorm_async.query import Page
from dynamorm_async.sealing import ItemSealer

_ID = r"^[A-Za-z0-9_.:@#/+=-]{1,200}$"
Amount = Annotated[StrictInt, Field(gt=0, le=10**13, description="Minor units (cents)")]


class MerchantIn(BaseModel):
    """A merchant to register."""

    merchant_id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=200)


class MerchantOut(BaseModel):
    """A registered merchant."""

    merchant_id: str
    name: str


class PaymentIn(BaseModel):
    """A payment to create; ``idempotency_key`` is unique per merchant and payment."""

    merchant_id: str = Field(pattern=_ID)
    customer_id: str = Field(pattern=_ID)
    amount: Amount
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. EUR")
    idempotency_key: str = Field(pattern=_ID)
    description: str = Field(default="", max_length=1000)


class CaptureIn(BaseModel):
    """A capture: all that was authorized unless ``amount`` says less."""

    amount: Amount | None = None


class RefundIn(BaseModel):
    """A refund of ``amount``; with ``refund_key``, sending it again refunds once."""

    amount: Amount
    refund_key: str | None = Field(default=None, pattern=_ID)
    reason: str | None = Field(default=None, max_length=500)


class VoidIn(BaseModel):
    """Why the payment is cancelled."""

    reason: str | None = Field(default=None, max_length=500)


class PaymentOut(BaseModel):
    """A payment as the API shows it."""

    id: str
    merchant_id: str
    customer_id: str
    amount: int
    currency: str
    status: PaymentStatus
    description: str
    authorized_amount: int
    captured_amount: int
    refunded_amount: int
    refundable_amount: int
    auth_code: str | None
    decline_reason: str | None
    version: int
    created_at: str | None
    updated_at: str | None
    duplicate: bool = False

    @classmethod
    def of(cls, p: Payment, *, duplicate: bool = False) -> PaymentOut:
        """The API shape of ``p``."""
        return cls(
            id=p.payment_id,
            merchant_id=p.merchant_id,
            customer_id=p.customer_id,
            amount=p.amount,
            currency=p.currency,
            status=p.status,
            description=p.description,
            authorized_amount=p.authorized_amount,
            captured_amount=p.captured_amount,
            refunded_amount=p.refunded_amount,
            refundable_amount=p.refundable_amount,
            auth_code=p.auth_code,
            decline_reason=p.decline_reason,
            version=p.version,
            created_at=p.created_at.isoformat() if p.created_at else None,
            updated_at=p.updated_at.isoformat() if p.updated_at else None,
            duplicate=duplicate,
        )


class PageOut(BaseModel):
    """One page of payments; pass ``cursor`` back for the next (``null``: no more)."""

    items: list[PaymentOut]
    cursor: str | None

    @classmethod
    def of(cls, page: Page[Payment]) -> PageOut:
        """The API shape of ``page``."""
        return cls(items=[PaymentOut.of(p) for p in page.items], cursor=page.cursor)


_CONFLICTS = (
    IllegalTransition,
    RefundExceedsCaptured,
    CaptureExceedsAuthorized,
    IdempotencyKeyReused,
    errors.AlreadyExists,
)


def error_status(exc: Exception) -> int:
    """The HTTP status of a toolkit error."""
    if isinstance(exc, errors.ItemNotFound):
        return 404
    if isinstance(exc, _CONFLICTS):
        return 409
    if isinstance(exc, (errors.InvalidInput, MerchantUnavailable)):
        return 422
    if isinstance(exc, (PaymentBusy, errors.DeadlineExceeded)) or getattr(exc, "retryable", False):
        return 503
    return 500


_DEV_CURSOR_SECRET = b"dev-only-cursor-secret-0123456789"
_DEV_BLIND_INDEX_KEY = b"dev-only-blind-index-key-0123456789"


@attrs.frozen
class Settings:
    """Where and how the service stores payments (:meth:`from_env` reads the environment)."""

    endpoint_url: str | None = None
    region: str | None = None
    table_prefix: str = ""
    cursor_secret: bytes = _DEV_CURSOR_SECRET
    audit_secret: bytes | None = None
    blind_index_key: bytes = _DEV_BLIND_INDEX_KEY
    create_tables: bool = False
    sealer: ItemSealer | None = None  # default: a FieldEncryptor with a random local key

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from ``AWS_ENDPOINT_URL_DYNAMODB``, ``TABLE_PREFIX``, ``CURSOR_SECRET``,
        ``AUDIT_SECRET``, ``BLIND_INDEX_KEY`` and ``PAYMENTS_CREATE_TABLES=1``."""
        env = os.environ

        def secret(name: str) -> bytes | None:
            return env[name].encode() if env.get(name) else None

        return cls(
            endpoint_url=env.get("AWS_ENDPOINT_URL_DYNAMODB"),
            table_prefix=env.get("TABLE_PREFIX", ""),
            cursor_secret=secret("CURSOR_SECRET") or _DEV_CURSOR_SECRET,
            audit_secret=secret("AUDIT_SECRET"),
            blind_index_key=secret("BLIND_INDEX_KEY") or _DEV_BLIND_INDEX_KEY,
            create_tables=env.get("PAYMENTS_CREATE_TABLES") == "1",
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service, storing through ``settings`` (default: from the environment)."""
    config = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with ClientPool() as pool:
            client = pool.client(endpoint_url=config.endpoint_url, region=config.region)
            sealer = config.sealer or FieldEncryptor(
                LocalKeyring.generate(), blind_index_key=config.blind_index_key
            )
            db = Database(
                client,
                table_prefix=config.table_prefix,
                cursor_secret=config.cursor_secret,
                sealer=sealer,
            )
            if config.create_tables:
                await ensure_payment_tables(db)
            app.state.processor = PaymentProcessor(db, audit_secret=config.audit_secret)
            yield

    app = FastAPI(
        title="Payments",
        version="1.0",
        summary="Payments on DynamoDB with dynamorm-async",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(router_for())
    return app


def get_processor(request: Request) -> PaymentProcessor:
    """Dependency: the processor the lifespan built."""
    proc: PaymentProcessor = request.app.state.processor
    return proc


Processor = Annotated[PaymentProcessor, Depends(get_processor)]


def install_error_handlers(app: FastAPI) -> None:
    """Answer the toolkit's typed errors with HTTP statuses (see the module doc)."""

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        status = error_status(exc)
        headers = {"retry-after": "1"} if status == 503 else None
        body = {"detail": str(exc), "code": type(exc).__name__}
        return JSONResponse(body, status_code=status, headers=headers)

    for kind in (PaymentError, errors.DynamormError):
        app.add_exception_handler(kind, on_error)


def router_for() -> APIRouter:
    """The API routes."""
    api = APIRouter()
    Responses = dict[int | str, dict[str, Any]]
    missing: Responses = {404: {"description": "No such payment"}}
    conflict: Responses = {409: {"description": "Conflict (state, amount or idempotency key)"}}
    replay: Responses = {200: {"description": "Replay of an earlier request", "model": PaymentOut}}
    moves = missing | conflict

    @api.post("/merchants", status_code=201, response_model=MerchantOut, responses=conflict)
    async def add_merchant(body: MerchantIn, proc: Processor) -> MerchantOut:
        """Register a merchant (409 if the id is taken)."""
        merchant = await proc.accounts.add_merchant(body.merchant_id, body.name)
        return MerchantOut(merchant_id=merchant.merchant_id, name=merchant.name)

    @api.post(
        "/payments",
        status_code=201,
        response_model=PaymentOut,
        responses=replay | conflict,
    )
    async def create_payment(body: PaymentIn, proc: Processor, response: Response) -> PaymentOut:
        """Create a pending payment; the same request again answers the first (200)."""
        request = PaymentRequest(
            body.merchant_id,
            body.customer_id,
            body.amount,
            body.currency,
            body.idempotency_key,
            description=body.description,
        )
        created = await proc.create(request)
        if created.duplicate:
            response.status_code = 200
        return PaymentOut.of(created.payment, duplicate=created.duplicate)

    @api.get("/payments/{payment_id}", response_model=PaymentOut, responses=missing)
    async def get_payment(payment_id: str, proc: Processor) -> PaymentOut:
        """One payment."""
        return PaymentOut.of(await proc.get_or_raise(payment_id))

    @api.post("/payments/{payment_id}/authorize", response_model=PaymentOut, responses=moves)
    async def authorize(payment_id: str, proc: Processor) -> PaymentOut:
        """Authorize a pending payment (``failed`` if declined)."""
        return PaymentOut.of(await proc.authorize(payment_id))

    @api.post("/payments/{payment_id}/capture", response_model=PaymentOut, responses=moves)
    async def capture(
        payment_id: str, proc: Processor, body: CaptureIn | None = None
    ) -> PaymentOut:
        """Capture the authorized amount, or ``amount`` of it."""
        amount = body.amount if body is not None else None
        return PaymentOut.of(await proc.capture(payment_id, amount))

    @api.post("/payments/{payment_id}/refund", response_model=PaymentOut, responses=moves)
    async def refund(payment_id: str, body: RefundIn, proc: Processor) -> PaymentOut:
        """Refund ``amount`` (once per ``refund_key``); never more than was captured."""
        payment = await proc.refund(
            payment_id, body.amount, refund_key=body.refund_key, reason=body.reason
        )
        return PaymentOut.of(payment)

    @api.post("/payments/{payment_id}/void", response_model=PaymentOut, responses=moves)
    async def void(payment_id: str, proc: Processor, body: VoidIn | None = None) -> PaymentOut:
        """Cancel a pending or authorized payment."""
        reason = body.reason if body is not None else None
        return PaymentOut.of(await proc.void(payment_id, reason=reason))

    @api.get("/merchants/{merchant_id}/payments", response_model=PageOut)
    async def merchant_payments(
        merchant_id: str,
        proc: Processor,
        status: PaymentStatus = PaymentStatus.CAPTURED,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: str | None = None,
    ) -> PageOut:
        """One page of the merchant's payments in ``status``, oldest first."""
        page = await proc.list_by_merchant(merchant_id, status, limit=limit, cursor=cursor)
        return PageOut.of(page)

    @api.get("/customers/{customer_id}/payments", response_model=PageOut)
    async def customer_payments(
        customer_id: str,
        proc: Processor,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: str | None = None,
    ) -> PageOut:
        """One page of the customer's payments, oldest first."""
        page = await proc.list_by_customer(customer_id, limit=limit, cursor=cursor)
        return PageOut.of(page)

    return api


#: The ASGI app of ``uvicorn app:app``.
app = create_app()
