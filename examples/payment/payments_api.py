"""A payments API on AWS Lambda behind API Gateway (REST proxy v1 or HTTP API v2 events).

Routes (amounts are integer minor units: cents for EUR):

* ``POST /payments``                      body ``{"merchant_id", "customer_id", "amount",
  "currency", "idempotency_key", "description"?, "capture"?}`` -> 201 (created and
  authorized, or declined: ``status`` says), 200 with ``"duplicate": true`` for a replay
  of the same request, 409 if the key was used for another request
* ``POST /payments/{payment_id}/capture`` body ``{"amount"?}`` -> 200, or 409
* ``POST /payments/{payment_id}/refund``  body ``{"amount", "refund_key"?, "reason"?}`` ->
  200, or 409 (more than what is left to refund, or not captured)
* ``POST /payments/{payment_id}/void``    -> 200, or 409
* ``GET  /payments/{payment_id}``         -> 200, or 404
* ``GET  /merchants/{merchant_id}/payments?status=&limit=&cursor=`` -> a page and its cursor
* ``GET  /customers/{customer_id}/payments?limit=&cursor=``

Deploy it as one function behind a ``/{proxy+}`` route (handler ``payments_api.handler``)
or as one function per route (``payments_api.create``, ``.capture``, ``.refund``,
``.void``, ``.get``, ``.listing``), which read API Gateway's ``pathParameters``.

Environment: ``TABLE_PREFIX``; ``CURSOR_SECRET``; ``AUDIT_SECRET`` (>= 32 bytes: HMAC
audit chains); ``BLIND_INDEX_KEY``; ``PAYMENTS_KMS_KEY_ID`` (field encryption with KMS)
or, for development only, ``PAYMENTS_LOCAL_KEY`` (base64 of 32 bytes; a random key if
unset); ``PAYMENTS_CREATE_TABLES=1`` creates the tables at cold start (development);
locally ``AWS_ENDPOINT_URL_DYNAMODB``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from dynamorm_async import ClientPool, errors
from dynamorm_async.aws_lambda import lambda_handler
from dynamorm_async.crypto import FieldEncryptor, KmsKeyProvider, LocalKeyring
from dynamorm_async.db import Database
from dynamorm_async.payments import (
    CaptureExceedsAuthorized,
    IdempotencyKeyReused,
    IllegalTransition,
    MerchantUnavailable,
    Payment,
    PaymentBusy,
    PaymentProcessor,
    PaymentRequest,
    PaymentStatus,
    RefundExceedsCaptured,
    ResultStatus,
    ensure_payment_tables,
)

MAX_PAGE = 100
Event = dict[str, Any]
Response = dict[str, Any]

# Module level: built once per execution environment, warm for every invocation.
POOL = ClientPool()
_processor: PaymentProcessor | None = None
_tables_ready = False


def _secret(name: str, default: bytes) -> bytes:
    value = os.environ.get(name)
    return value.encode() if value else default


def processor() -> PaymentProcessor:
    """The payment processor (built on first use, from the environment)."""
    global _processor
    if _processor is None:
        kms_key = os.environ.get("PAYMENTS_KMS_KEY_ID")
        local_key = os.environ.get("PAYMENTS_LOCAL_KEY")
        keys = (
            KmsKeyProvider(kms_key)
            if kms_key
            else LocalKeyring({"local-1": base64.b64decode(local_key)}, "local-1")
            if local_key
            else LocalKeyring.generate()
        )
        blind = _secret("BLIND_INDEX_KEY", b"dev-only-blind-index-key-0123456789")
        db = Database(
            POOL.client(),
            table_prefix=os.environ.get("TABLE_PREFIX", ""),
            cursor_secret=_secret("CURSOR_SECRET", b"dev-only-cursor-secret-0123456789"),
            sealer=FieldEncryptor(keys, blind_index_key=blind),
        )
        audit = os.environ.get("AUDIT_SECRET")
        _processor = PaymentProcessor(db, audit_secret=audit.encode() if audit else None)
    return _processor


async def init() -> None:
    """Cold start: optionally create the tables (development), once per environment."""
    global _tables_ready
    proc = processor()
    if os.environ.get("PAYMENTS_CREATE_TABLES") == "1" and not _tables_ready:
        await ensure_payment_tables(proc.db)
        _tables_ready = True


class HttpError(Exception):
    """An error answered to the caller with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def respond(status: int, body: Any = None) -> Response:
    """An API Gateway proxy response with a JSON body."""
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": "" if body is None else orjson.dumps(body).decode(),
        "isBase64Encoded": False,
    }


def to_json(p: Payment) -> dict[str, Any]:
    """The public JSON shape of a payment."""
    return {
        "id": p.payment_id,
        "merchant_id": p.merchant_id,
        "customer_id": p.customer_id,
        "amount": p.amount,
        "currency": p.currency,
        "status": p.status.value,
        "description": p.description,
        "authorized_amount": p.authorized_amount,
        "captured_amount": p.captured_amount,
        "refunded_amount": p.refunded_amount,
        "auth_code": p.auth_code,
        "decline_reason": p.decline_reason,
        "version": p.version,
        "created_at": p.created_at.isoformat() if p.created_at else None,
        "updated_at": p.updated_at.isoformat() if p.updated_at else None,
    }


def method_and_path(event: Event) -> tuple[str, str]:
    """The HTTP method and path of a v1 (REST) or v2 (HTTP API) proxy event."""
    if event.get("version") == "2.0":
        return event["requestContext"]["http"]["method"].upper(), event.get("rawPath", "/")
    return event["httpMethod"].upper(), event.get("path", "/")


def json_body(event: Event) -> dict[str, Any]:
    """The event's JSON object body (``{}`` when there is none)."""
    body = event.get("body")
    if not body:
        return {}
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise HttpError(400, "the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise HttpError(422, "the body must be a JSON object")
    return parsed


def path_param(event: Event, name: str) -> str:
    """A path parameter of the route (``pathParameters``)."""
    value = (event.get("pathParameters") or {}).get(name)
    if not value:
        raise HttpError(404, f"no {name} in the path")
    return str(value)


def query_params(event: Event) -> dict[str, str]:
    """The query string parameters (``{}`` when there are none)."""
    return dict(event.get("queryStringParameters") or {})


def page_limit(query: dict[str, str]) -> int:
    """The ``limit`` query parameter, 1..MAX_PAGE (default 20)."""
    try:
        limit = int(query.get("limit", 20))
    except ValueError:
        raise HttpError(422, "limit must be an integer") from None
    if not 1 <= limit <= MAX_PAGE:
        raise HttpError(422, f"limit must be between 1 and {MAX_PAGE}")
    return limit


# ---------------------------------------------------------------------- routes


async def create_payment(event: Event) -> Response:
    """``POST /payments``: create and authorize (and capture, with ``"capture": true``)."""
    body = json_body(event)
    known = {"merchant_id", "customer_id", "amount", "currency", "idempotency_key"}
    missing = sorted(known - body.keys())
    if missing:
        raise HttpError(422, f"missing fields: {', '.join(missing)}")
    capture = body.get("capture", False)
    if not isinstance(capture, bool):
        raise HttpError(422, "capture must be true or false")
    request = PaymentRequest(
        body["merchant_id"],
        body["customer_id"],
        body["amount"],
        body["currency"],
        body["idempotency_key"],
        description=body.get("description", ""),
        capture=capture,
    )
    result = await processor().process(request)
    if result.error is not None:
        raise result.error
    assert result.payment is not None
    duplicate = result.status is ResultStatus.DUPLICATE
    return respond(200 if duplicate else 201, to_json(result.payment) | {"duplicate": duplicate})


async def capture_payment(event: Event) -> Response:
    """``POST /payments/{payment_id}/capture``: all that was authorized, or ``amount``."""
    amount = json_body(event).get("amount")
    payment = await processor().capture(path_param(event, "payment_id"), amount)
    return respond(200, to_json(payment))


async def refund_payment(event: Event) -> Response:
    """``POST /payments/{payment_id}/refund``: ``amount``, once per ``refund_key``."""
    body = json_body(event)
    if "amount" not in body:
        raise HttpError(422, "missing fields: amount")
    payment = await processor().refund(
        path_param(event, "payment_id"),
        body["amount"],
        refund_key=body.get("refund_key"),
        reason=body.get("reason"),
    )
    return respond(200, to_json(payment))


async def void_payment(event: Event) -> Response:
    """``POST /payments/{payment_id}/void``: cancel a pending or authorized payment."""
    reason = json_body(event).get("reason")
    return respond(
        200, to_json(await processor().void(path_param(event, "payment_id"), reason=reason))
    )


async def get_payment(event: Event) -> Response:
    """``GET /payments/{payment_id}``."""
    payment = await processor().get_or_raise(path_param(event, "payment_id"))
    return respond(200, to_json(payment))


async def list_payments(event: Event) -> Response:
    """``GET /merchants/{merchant_id}/payments?status=``, ``/customers/{customer_id}/payments``."""
    params = event.get("pathParameters") or {}
    query = query_params(event)
    limit, cursor = page_limit(query), query.get("cursor")
    if "merchant_id" in params:
        try:
            status = PaymentStatus(query.get("status", "captured"))
        except ValueError:
            names = ", ".join(s.value for s in PaymentStatus)
            raise HttpError(422, f"status must be one of {names}") from None
        page = await processor().list_by_merchant(
            params["merchant_id"], status, limit=limit, cursor=cursor
        )
    else:
        page = await processor().list_by_customer(
            path_param(event, "customer_id"), limit=limit, cursor=cursor
        )
    return respond(200, {"items": [to_json(p) for p in page.items], "cursor": page.cursor})


Route = Callable[[Event], Awaitable[Response]]
ROUTES: list[tuple[str, tuple[str, ...], Route]] = [
    ("POST", ("payments",), create_payment),
    ("POST", ("payments", "{payment_id}", "capture"), capture_payment),
    ("POST", ("payments", "{payment_id}", "refund"), refund_payment),
    ("POST", ("payments", "{payment_id}", "void"), void_payment),
    ("GET", ("payments", "{payment_id}"), get_payment),
    ("GET", ("merchants", "{merchant_id}", "payments"), list_payments),
    ("GET", ("customers", "{customer_id}", "payments"), list_payments),
]


def match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The route for ``method`` and ``path`` and its path parameters (404/405 if none)."""
    parts = tuple(p for p in path.split("/") if p)
    allowed = False
    for route_method, pattern, fn in ROUTES:
        if len(pattern) != len(parts):
            continue
        params: dict[str, str] = {}
        for want, got in zip(pattern, parts, strict=True):
            if want.startswith("{"):
                params[want[1:-1]] = got
            elif want != got:
                break
        else:
            if route_method == method:
                return fn, params
            allowed = True
    raise HttpError(405 if allowed else 404, "method not allowed" if allowed else "no such route")


async def answer(route: Route, event: Event) -> Response:
    """Run ``route``, turning typed errors into HTTP statuses."""
    try:
        return await route(event)
    except HttpError as exc:
        return respond(exc.status, {"error": str(exc)})
    except errors.ItemNotFound:  # PaymentNotFound
        return respond(404, {"error": "no such payment"})
    except (IllegalTransition, RefundExceedsCaptured, CaptureExceedsAuthorized) as exc:
        return respond(409, {"error": str(exc), "code": type(exc).__name__})
    except IdempotencyKeyReused as exc:
        return respond(409, {"error": str(exc), "code": "IdempotencyKeyReused"})
    except MerchantUnavailable as exc:
        return respond(422, {"error": str(exc), "code": "MerchantUnavailable"})
    except errors.InvalidInput as exc:  # bad amounts, ids, currencies, cursors
        return respond(422, {"error": str(exc)})
    except (PaymentBusy, errors.DeadlineExceeded):
        return respond(503, {"error": "try again"})


def _entry(route: Route | None) -> Callable[[Event, Any], Awaitable[Response]]:
    async def run(event: Event, context: Any) -> Response:
        if route is not None:  # one function per route: API Gateway filled pathParameters
            return await answer(route, event)
        try:
            fn, params = match(*method_and_path(event))
        except HttpError as exc:
            return respond(exc.status, {"error": str(exc)})
        return await answer(fn, {**event, "pathParameters": params})

    return run


_wrap = lambda_handler(init=init, safety_margin=0.3)
#: One function for every route (``/{proxy+}``).
handler = _wrap(_entry(None))
#: One function per route.
create = _wrap(_entry(create_payment))
capture = _wrap(_entry(capture_payment))
refund = _wrap(_entry(refund_payment))
void = _wrap(_entry(void_payment))
get = _wrap(_entry(get_payment))
listing = _wrap(_entry(list_payments))
