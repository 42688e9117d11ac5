"""The FastAPI example (``examples/fastapi_app``) end to end: ``httpx.AsyncClient`` over
ASGI, the app's own lifespan (pool, tables, processor), the test backend behind it."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from dynamorm_async import DynamoClient
from dynamorm_async.binding import Binding
from dynamorm_async.payments import delete_payment_tables

APP = Path(__file__).resolve().parent.parent / "examples" / "fastapi_app" / "app.py"


def load_example() -> ModuleType:
    """Import ``examples/fastapi_app/app.py`` by path (under a name of its own)."""
    name = "fastapi_payments_example"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, APP)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # pydantic resolves the models' annotations through it
        spec.loader.exec_module(module)
    return module


@pytest.fixture
async def api(dynamodb_endpoint: str, table_name: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app, inside the app's lifespan, with merchant ``m-1`` registered."""
    example = load_example()
    prefix = table_name + "-"
    settings = example.Settings(
        endpoint_url=dynamodb_endpoint,
        region="us-east-1",
        table_prefix=prefix,
        audit_secret=b"a" * 32,
        create_tables=True,
    )
    app = example.create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                made = await client.post("/merchants", json={"merchant_id": "m-1", "name": "Shop"})
                assert made.status_code == 201, made.text
                yield client
    finally:
        async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as c:
            await delete_payment_tables(Binding(c, prefix))


def order(key: str, amount: Any = 2500, **extra: Any) -> dict[str, Any]:
    body = {"merchant_id": "m-1", "customer_id": "c-1", "amount": amount, "currency": "EUR"}
    return body | {"idempotency_key": key} | extra


async def test_payment_lifecycle_and_errors(api: httpx.AsyncClient) -> None:
    made = await api.post("/payments", json=order("o-1", description="two books"))
    assert made.status_code == 201, made.text
    p = made.json()
    assert (p["status"], p["amount"], p["duplicate"], p["version"]) == ("pending", 2500, False, 1)
    pid = p["id"]

    again = await api.post("/payments", json=order("o-1", description="two books"))
    assert again.status_code == 200 and again.json()["duplicate"] and again.json()["id"] == pid
    reused = await api.post("/payments", json=order("o-1", amount=9999))
    assert reused.status_code == 409 and reused.json()["code"] == "IdempotencyKeyReused"

    early = await api.post(f"/payments/{pid}/capture")
    assert early.status_code == 409 and early.json()["code"] == "IllegalTransition"
    authorized = (await api.post(f"/payments/{pid}/authorize")).json()
    assert authorized["status"] == "authorized" and authorized["auth_code"]
    over = await api.post(f"/payments/{pid}/capture", json={"amount": 2501})
    assert over.status_code == 409 and over.json()["code"] == "CaptureExceedsAuthorized"
    captured = await api.post(f"/payments/{pid}/capture", json={"amount": 2000})
    assert captured.status_code == 200 and captured.json()["captured_amount"] == 2000

    refund = {"amount": 500, "refund_key": "rma-1", "reason": "damaged"}
    partly = (await api.post(f"/payments/{pid}/refund", json=refund)).json()
    assert (partly["status"], partly["refundable_amount"]) == ("partially_refunded", 1500)
    replay = (await api.post(f"/payments/{pid}/refund", json=refund)).json()
    assert replay["refunded_amount"] == 500  # one refund per refund key
    over_refund = await api.post(f"/payments/{pid}/refund", json={"amount": 1501})
    assert over_refund.status_code == 409 and over_refund.json()["code"] == "RefundExceedsCaptured"
    rest = await api.post(f"/payments/{pid}/refund", json={"amount": 1500})
    assert rest.status_code == 200 and rest.json()["status"] == "refunded"

    got = await api.get(f"/payments/{pid}")
    assert got.status_code == 200 and got.json() == rest.json()
    assert (await api.get("/payments/pay_unknown")).status_code == 404
    assert (await api.post("/payments/pay_unknown/authorize")).status_code == 404

    voided = (await api.post("/payments", json=order("o-2"))).json()
    done = await api.post(f"/payments/{voided['id']}/void", json={"reason": "cancelled"})
    assert done.status_code == 200 and done.json()["status"] == "voided"
    assert (await api.post(f"/payments/{voided['id']}/authorize")).status_code == 409

    dup = await api.post("/merchants", json={"merchant_id": "m-1", "name": "Again"})
    assert dup.status_code == 409


async def test_bad_input_is_422(api: httpx.AsyncClient) -> None:
    for body in (
        order("b-1", amount="12.50"),
        order("b-2", amount=12.5),
        order("b-3", amount=0),
        order("b-4", currency="euro"),
        order("b-5", merchant_id="has space"),
        {"amount": 5},
    ):
        answer = await api.post("/payments", json=body)
        assert answer.status_code == 422, body
    bad_json = await api.post(
        "/payments", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 422
    unknown = await api.post("/payments", json=order("b-6", merchant_id="m-none"))
    assert unknown.status_code == 422 and unknown.json()["code"] == "MerchantUnavailable"
    assert (await api.post("/payments/x/refund", json={"amount": -1})).status_code == 422
    listing = await api.get("/merchants/m-1/payments", params={"status": "lost"})
    assert listing.status_code == 422
    assert (await api.get("/customers/c-1/payments", params={"limit": 0})).status_code == 422
    forged = await api.get("/customers/c-1/payments", params={"cursor": "forged"})
    assert forged.status_code == 422 and forged.json()["code"] == "InvalidCursor"


async def test_listings_page_with_cursors(api: httpx.AsyncClient) -> None:
    async def create(i: int) -> str:
        answer = await api.post("/payments", json=order(f"l-{i}", customer_id="c-9"))
        assert answer.status_code == 201
        pid: str = answer.json()["id"]
        assert (await api.post(f"/payments/{pid}/authorize")).status_code == 200
        return pid

    made = set(await asyncio.gather(*(create(i) for i in range(5))))
    for path, params in (
        ("/customers/c-9/payments", {}),
        ("/merchants/m-1/payments", {"status": "authorized"}),
    ):
        seen: list[str] = []
        cursor: str | None = None
        while True:
            query = params | {"limit": 2} | ({"cursor": cursor} if cursor else {})
            answer = await api.get(path, params=query)
            assert answer.status_code == 200
            page = answer.json()
            assert len(page["items"]) <= 2
            seen += [p["id"] for p in page["items"]]
            cursor = page["cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(made)


async def test_openapi_schema_has_the_paths(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    paths = schema["paths"]
    for path in (
        "/merchants",
        "/payments",
        "/payments/{payment_id}",
        "/payments/{payment_id}/authorize",
        "/payments/{payment_id}/capture",
        "/payments/{payment_id}/refund",
        "/payments/{payment_id}/void",
        "/merchants/{merchant_id}/payments",
        "/customers/{customer_id}/payments",
    ):
        assert path in paths, path
    create = paths["/payments"]["post"]
    assert {"200", "201", "409", "422"} <= set(create["responses"])
    assert "404" in paths["/payments/{payment_id}/refund"]["post"]["responses"]
    amount = schema["components"]["schemas"]["PaymentIn"]["properties"]["amount"]
    assert amount["type"] == "integer" and amount["exclusiveMinimum"] == 0
