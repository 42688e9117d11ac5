"""The example handler invoked as Lambda would: real-shaped API Gateway events, one
environment (the module's loop and pool), DynamoDB Local or moto behind it.

Run: ``.venv/bin/pytest examples/lambda_handler``.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from dynamorm_async import DynamoClient
from dynamorm_async.aws_lambda import LocalLambdaContext
from dynamorm_async.tables import delete_table
from dynamorm_async.testing.plugin import unique_table_name

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def api(dynamodb_endpoint: str) -> Iterator[ModuleType]:
    """The handler module, configured through its environment, as a deployed function."""
    prefix = unique_table_name("notes_api", prefix="ex_") + "-"
    patch = pytest.MonkeyPatch()
    patch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    patch.setenv("TABLE_PREFIX", prefix)
    patch.setenv("NOTES_CREATE_TABLE", "1")
    patch.setenv("CURSOR_SECRET", "test-secret-0123456789")
    patch.syspath_prepend(str(HERE))
    sys.modules.pop("notes_api", None)
    module = importlib.import_module("notes_api")
    try:
        yield module
    finally:
        runtime = module.handler.runtime
        runtime.run(module.POOL.aclose())
        runtime.close()

        async def drop() -> None:
            async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as c:
                await delete_table(c, module.Note, prefix=prefix)

        asyncio.run(drop())
        sys.modules.pop("notes_api", None)
        patch.undo()


def rest_event(method: str, path: str, body: Any = None, **query: str) -> dict[str, Any]:
    """An API Gateway REST API (v1) proxy event, as documented."""
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": "application/json", "Host": "abc.execute-api.amazonaws.com"},
        "multiValueHeaders": {},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8"},
        },
        "body": None if body is None else orjson.dumps(body).decode(),
        "isBase64Encoded": False,
    }


def http_event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """An HTTP API (v2) event with a base64 body, as documented."""
    raw = None if body is None else base64.b64encode(orjson.dumps(body)).decode()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1"},
            "requestId": "JKJaXmPLvHcESHA=",
            "stage": "$default",
        },
        "body": raw,
        "isBase64Encoded": raw is not None,
    }


def call(api: ModuleType, event: dict[str, Any]) -> tuple[int, Any]:
    out = api.handler(event, LocalLambdaContext(timeout=3.0))
    assert out["headers"]["content-type"] == "application/json"
    return out["statusCode"], orjson.loads(out["body"]) if out["body"] else None


def test_crud_round_trip(api: ModuleType) -> None:
    status, made = call(api, rest_event("POST", "/users/u1/notes", {"text": "hi", "tags": ["a"]}))
    assert status == 201 and made["text"] == "hi" and made["tags"] == ["a"]
    assert made["version"] == 1 and made["created_at"] == made["updated_at"]
    path = f"/users/u1/notes/{made['id']}"
    assert call(api, rest_event("GET", path)) == (200, made)
    status, changed = call(api, http_event("PUT", path, {"text": "bye", "version": 1}))
    assert status == 200 and changed["text"] == "bye" and changed["version"] == 2
    status, conflict = call(api, rest_event("PUT", path, {"text": "stale", "version": 1}))
    assert status == 409 and conflict["current"] == changed
    assert call(api, http_event("DELETE", path)) == (204, None)
    assert call(api, rest_event("GET", path))[0] == 404
    assert call(api, rest_event("DELETE", path))[0] == 404


def test_listing_pages_with_cursors(api: ModuleType) -> None:
    ids = {
        call(api, http_event("POST", "/users/u2/notes", {"text": f"n{i}"}))[1]["id"]
        for i in range(5)
    }
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        status, page = call(api, rest_event("GET", "/users/u2/notes", **query))
        assert status == 200 and len(page["items"]) <= 2
        seen += [n["id"] for n in page["items"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
    assert call(api, rest_event("GET", "/users/u2/notes", cursor="forged"))[0] == 400


def test_bad_requests_are_4xx(api: ModuleType) -> None:
    bad_json = rest_event("POST", "/users/u3/notes")
    bad_json["body"] = "{not json"
    assert call(api, bad_json)[0] == 400
    assert call(api, rest_event("POST", "/users/u3/notes", {"text": ""}))[0] == 400
    assert call(api, rest_event("POST", "/users/u3/notes", {"text": "x", "tags": [1]}))[0] == 400
    assert call(api, rest_event("PUT", "/users/u3/notes/x", {"text": "x"}))[0] == 400
    assert call(api, rest_event("GET", "/users/u3/notes", limit="many"))[0] == 400
    assert call(api, rest_event("GET", "/nope"))[0] == 404
    assert call(api, rest_event("PATCH", "/users/u3/notes/x", {"text": "x"}))[0] == 405


def test_one_environment_serves_every_invocation(api: ModuleType) -> None:
    """The module's pool keeps one client and one connector across invocations."""
    before = api.POOL.client_count
    for i in range(10):
        assert call(api, rest_event("POST", "/users/u4/notes", {"text": f"t{i}"}))[0] == 201
    assert api.POOL.client_count == before == 1
    assert api.handler.initialized and api.handler.runtime.runs >= 10
