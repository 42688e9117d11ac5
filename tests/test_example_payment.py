"""The payments Lambda example (``examples/payment``) invoked as Lambda would: real-shaped
API Gateway REST (v1) and HTTP API (v2) events, one execution environment (the module's
loop and pool), the test backend behind it."""

from __future__ import annotations

import asyncio
import base64
import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from dynamorm_async import DynamoClient
from dynamorm_async.aws_lambda import LocalLambdaContext
from dynamorm_async.binding import Binding
from dynamorm_async.payments import delete_payment_tables
from dynamorm_async.testing.plugin import unique_table_name

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "payment"


@pytest.fixture(scope="module")
def api(dynamodb_endpoint: str) -> Iterator[ModuleType]:
    """The handler module, configured through its environment, as a deployed function."""
    prefix = unique_table_name("payments_api", prefix="ex_") + "-"
    patch = pytest.MonkeyPatch()
    patch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    patch.setenv("TABLE_PREFIX", prefix)
    patch.setenv("PAYMENTS_CREATE_TABLES", "1")
    patch.setenv("CURSOR_SECRET", "test-cursor-secret-0123456789abcdef")
    patch.setenv("AUDIT_SECRET", "test-audit-secret-0123456789abcdef")
    patch.setenv("PAYMENTS_LOCAL_KEY", base64.b64encode(b"k" * 32).decode())
    patch.syspath_prepend(str(EXAMPLE))
    sys.modules.pop("payments_api", None)
    module = importlib.import_module("payments_api")
    try:
        module.handler.initialize()  # Lambda's init phase: creates the tables
        module.handler.runtime.run(module.processor().accounts.add_merchant("m-1", "Shop"))
        yield module
    finally:
        runtime = module.handler.runtime
        runtime.run(module.POOL.aclose())
        runtime.close()

        async def drop() -> None:
            async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as c:
                await delete_payment_tables(Binding(c, prefix))

        asyncio.run(drop())
        sys.modules.pop("payments_api", None)
        patch.undo()


def rest_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    resource: str = "/{proxy+}",
    params: dict[str, str] | None = None,
    **query: Any,
) -> dict[str, Any]:
    """An API Gateway REST API (v1) proxy event, as documented."""
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": "application/json", "Host": "abc.execute-api.amazonaws.com"},
        "multiValueHeaders": {},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": None,
        "pathParameters": params if params is not None else {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8"},
        },
        "body": None if body is None else orjson.dumps(body).decode(),
        "isBase64Encoded": False,
    }


def http_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    route: str = "$default",
    params: dict[str, str] | None = None,
    **query: str,
) -> dict[str, Any]:
    """An HTTP API (v2) event with a base64 body, as documented."""
    raw = None if body is None else base64.b64encode(orjson.dumps(body)).decode()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in query.items()),
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1"},
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": route,
            "stage": "$default",
        },
        "body": raw,
        "isBase64Encoded": raw is not None,
    }
    if query:
        event["queryStringParameters"] = query
    if params is not None:
        event["pathParameters"] = params
    return event


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def call(fn: Handler, event: dict[str, Any]) -> tuple[int, Any]:
    out = fn(event, LocalLambdaContext(timeout=5.0))
    assert out["headers"]["content-type"] == "application/json"
    return out["statusCode"], orjson.loads(out["body"]) if out["body"] else None


def order(key: str, amount: object = 2500, **extra: Any) -> dict[str, Any]:
    body = {"merchant_id": "m-1", "customer_id": "c-1", "amount": amount, "currency": "EUR"}
    return body | {"idempotency_key": key} | extra


def test_lifecycle_through_the_proxy_handler(api: ModuleType) -> None:
    h = api.handler
    status, made = call(h, rest_event("POST", "/payments", order("o-1", description="books")))
    assert status == 201 and not made["duplicate"]
    assert (made["status"], made["authorized_amount"], made["description"]) == (
        "authorized",
        2500,
        "books",
    )
    pid = made["id"]
    status, again = call(h, http_event("POST", "/payments", order("o-1", description="books")))
    assert status == 200 and again["duplicate"] and again["id"] == pid
    status, captured = call(h, http_event("POST", f"/payments/{pid}/capture", {"amount": 2000}))
    assert status == 200 and (captured["status"], captured["captured_amount"]) == ("captured", 2000)
    refund = {"amount": 500, "refund_key": "rma-1"}
    status, partly = call(h, rest_event("POST", f"/payments/{pid}/refund", refund))
    assert status == 200 and partly["status"] == "partially_refunded"
    status, replay = call(h, rest_event("POST", f"/payments/{pid}/refund", refund))
    assert status == 200 and replay["refunded_amount"] == 500  # same refund key: once
    status, over = call(h, http_event("POST", f"/payments/{pid}/refund", {"amount": 1501}))
    assert status == 409 and over["code"] == "RefundExceedsCaptured"
    status, rest = call(h, http_event("POST", f"/payments/{pid}/refund", {"amount": 1500}))
    assert status == 200 and (rest["status"], rest["refunded_amount"]) == ("refunded", 2000)
    status, got = call(h, rest_event("GET", f"/payments/{pid}"))
    assert status == 200 and got == rest
    status, illegal = call(h, rest_event("POST", f"/payments/{pid}/capture"))
    assert status == 409 and illegal["code"] == "IllegalTransition"


def test_one_function_per_route_reads_path_parameters(api: ModuleType) -> None:
    resource = "/payments/{payment_id}"
    status, made = call(
        api.create,
        rest_event("POST", "/payments", order("o-2", capture=True), resource="/payments"),
    )
    assert status == 201 and made["status"] == "captured"
    pid = made["id"]
    params = {"payment_id": pid}
    event = rest_event("GET", f"/payments/{pid}", resource=resource, params=params)
    made.pop("duplicate")
    assert call(api.get, event) == (200, made)
    route = "POST /payments/{payment_id}/refund"
    event = http_event(
        "POST", f"/payments/{pid}/refund", {"amount": 100}, route=route, params=params
    )
    status, refunded = call(api.refund, event)
    assert status == 200 and refunded["refunded_amount"] == 100
    status, pending = call(api.create, rest_event("POST", "/payments", order("o-3")))
    void_params = {"payment_id": pending["id"]}
    event = rest_event("POST", f"/payments/{pending['id']}/void", params=void_params)
    assert call(api.void, event)[1]["status"] == "voided"
    event = rest_event("POST", f"/payments/{pending['id']}/capture", params=void_params)
    assert call(api.capture, event)[0] == 409
    missing = {"payment_id": "pay_nope"}
    assert call(api.get, rest_event("GET", "/payments/pay_nope", params=missing))[0] == 404


def test_listings_page_with_cursors(api: ModuleType) -> None:
    made = {
        call(api.handler, http_event("POST", "/payments", order(f"l-{i}", customer_id="c-9")))[1][
            "id"
        ]
        for i in range(5)
    }
    for path, query in (
        ("/customers/c-9/payments", {}),
        ("/merchants/m-1/payments", {"status": "authorized"}),
    ):
        seen: list[str] = []
        cursor: str | None = None
        while True:
            args: dict[str, Any] = query | {"limit": "2"} | ({"cursor": cursor} if cursor else {})
            status, page = call(api.handler, rest_event("GET", path, **args))
            assert status == 200 and len(page["items"]) <= 2
            seen += [p["id"] for p in page["items"]]
            cursor = page["cursor"]
            if cursor is None:
                break
        assert made <= set(seen) and len(seen) == len(set(seen))
        if path.startswith("/customers"):
            assert set(seen) == made
    event = rest_event("GET", "/customers/c-9/payments", cursor="forged")
    assert call(api.handler, event)[0] == 422


def test_bad_requests(api: ModuleType) -> None:
    h = api.handler
    bad_json = rest_event("POST", "/payments")
    bad_json["body"] = "{not json"
    assert call(h, bad_json)[0] == 400
    assert call(h, rest_event("POST", "/payments", {"amount": 5}))[0] == 422
    assert call(h, rest_event("POST", "/payments", order("b-1", amount="12.50")))[0] == 422
    assert call(h, rest_event("POST", "/payments", order("b-2", amount=0)))[0] == 422
    assert call(h, rest_event("POST", "/payments", order("b-3", currency="euro")))[0] == 422
    assert call(h, rest_event("POST", "/payments", [1, 2]))[0] == 422
    status, err = call(h, rest_event("POST", "/payments", order("b-4", merchant_id="m-none")))
    assert status == 422 and err["code"] == "MerchantUnavailable"
    status, err = call(h, rest_event("POST", "/payments", order("o-1", amount=9)))
    assert status == 409 and err["code"] == "IdempotencyKeyReused"
    assert call(h, rest_event("GET", "/merchants/m-1/payments", status="lost"))[0] == 422
    assert call(h, rest_event("GET", "/merchants/m-1/payments", limit="many"))[0] == 422
    assert call(h, rest_event("GET", "/nope"))[0] == 404
    assert call(h, rest_event("DELETE", "/payments/x"))[0] == 405


def test_one_environment_serves_every_invocation(api: ModuleType) -> None:
    before = api.POOL.client_count
    for i in range(5):
        assert call(api.handler, rest_event("POST", "/payments", order(f"w-{i}")))[0] == 201
    assert api.POOL.client_count == before == 1
    assert api.handler.runtime is api.create.runtime  # every function shares the loop
