"""A recording HTTP proxy for tests: forwards every request and keeps what was exchanged.

>>> async with RecordingProxy(upstream_url) as proxy:
...     client = DynamoClient(endpoint_url=proxy.endpoint_url)
...     ...
...     for ex in proxy.exchanges:
...         print(ex.operation, ex.access_key, ex.tables)

It serves any AWS protocol (DynamoDB's JSON, STS's query form), so a test can check,
from the bytes on the wire, which access key signed each request, which tables it
touched, and what STS issued. Nothing is changed on the way, except the ``Host`` header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import attrs
import orjson
from aiohttp import web

__all__ = ["Exchange", "RecordingProxy"]

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_PASS_BACK = ("content-type", "content-encoding", "x-amz-crc32", "x-amzn-requestid")


@attrs.frozen
class Exchange:
    """One request and its answer. ``headers`` has lower-case names."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    status: int
    response: bytes

    @property
    def access_key(self) -> str | None:
        """The access key id in the SigV4 ``Authorization`` header, if signed."""
        found = _CREDENTIAL.search(self.headers.get("authorization", ""))
        return found.group(1) if found else None

    @property
    def operation(self) -> str:
        """The operation: ``X-Amz-Target``'s suffix (JSON protocols) or the form's
        ``Action`` (query protocols such as STS); ``""`` if neither."""
        target = self.headers.get("x-amz-target")
        if target:
            return target.rpartition(".")[2]
        return self.form.get("Action", "")

    @property
    def form(self) -> dict[str, str]:
        """The body as a URL-encoded form (first value of each field; ``{}`` if not one)."""
        if "x-www-form-urlencoded" not in self.headers.get("content-type", ""):
            return {}
        parsed = parse_qs(self.body.decode("utf-8", errors="replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    def json(self) -> Any:
        """The request body decoded as JSON."""
        return orjson.loads(self.body)

    @property
    def tables(self) -> frozenset[str]:
        """Every table a DynamoDB request names: ``TableName``, the keys of
        ``RequestItems`` and each ``TransactItems`` action's ``TableName``."""
        if "x-amz-target" not in self.headers or not self.body:
            return frozenset()
        req = self.json()
        names: set[str] = set()
        if isinstance(req.get("TableName"), str):
            names.add(req["TableName"])
        names.update(req.get("RequestItems") or {})
        for action in req.get("TransactItems") or []:
            for spec in action.values():
                if isinstance(spec, dict) and isinstance(spec.get("TableName"), str):
                    names.add(spec["TableName"])
        return frozenset(names)


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 that forwards to ``upstream_url`` and records exchanges.

    ``exchanges`` lists them in the order the answers were sent; ``clear()`` empties it.
    """

    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = upstream_url.rstrip("/")
        self.exchanges: list[Exchange] = []
        self.port = 0
        self._runner: web.ServerRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def endpoint_url(self) -> str:
        """The proxy's URL, to give to a client as ``endpoint_url``."""
        return f"http://127.0.0.1:{self.port}"

    def clear(self) -> None:
        """Forget the recorded exchanges."""
        self.exchanges.clear()

    def by_operation(self, operation: str) -> list[Exchange]:
        """The recorded exchanges of ``operation``."""
        return [ex for ex in self.exchanges if ex.operation == operation]

    async def start(self) -> RecordingProxy:
        """Start listening on a free port."""
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._runner = web.ServerRunner(web.Server(self._handle), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Stop listening and close the upstream session."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> RecordingProxy:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        forward = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        url = self.upstream_url + request.path_qs
        async with self._session.request(request.method, url, data=body, headers=forward) as answer:
            data = await answer.read()
            status = answer.status
            back = {k: v for k, v in answer.headers.items() if k.lower() in _PASS_BACK}
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.exchanges.append(
            Exchange(request.method, request.path_qs, headers, body, status, data)
        )
        return web.Response(status=status, body=data, headers=back)
