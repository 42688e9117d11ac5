"""``DynamoClient``: one async method per DynamoDB operation, DynamoDB JSON in and out.

>>> async with DynamoClient(endpoint_url="http://127.0.0.1:8000") as client:
...     await client.put_item(TableName="t", Item={"pk": {"S": "a"}})
...     out = await client.get_item(TableName="t", Key={"pk": {"S": "a"}})

Requests are plain dicts in DynamoDB's JSON shape (``B`` values as base64 text). The
client signs with its own SigV4 signer, sends through the pool's transport (aiohttp, or
the stdlib one of ``ClientPool(http="stdlib")``), verifies ``x-amz-crc32``, maps errors
to :mod:`dynamorm_async.errors` and retries what is retryable, never past the current
deadline (:mod:`dynamorm_async.deadlines`).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from . import deadlines as _deadline
from .errors import (
    ChecksumMismatch,
    DeadlineExceeded,
    ResourceNotFound,
    TransportError,
    error_from_response,
)
from .hooks import current_observer
from .wire.credentials import CredentialProvider, default_credentials
from .wire.endpoints import Endpoint, resolve_endpoint
from .wire.http import HttpResponse, _Timeout
from .wire.retry import RetryPolicy
from .wire.sigv4 import SigV4Signer

if TYPE_CHECKING:
    from .pool import ClientPool

__all__ = ["DynamoClient"]

_CONTENT_TYPE = "application/x-amz-json-1.0"
_TARGET_PREFIX = "DynamoDB_20120810."


class DynamoClient:
    """An async DynamoDB client bound to one endpoint, region and credential provider.

    Build one directly (it then owns a private :class:`~dynamorm_async.pool.ClientPool`
    that :meth:`aclose` closes) or get a shared one from ``ClientPool.client()``.
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        region: str | None = None,
        credentials: CredentialProvider | None = None,
        *,
        pool: ClientPool | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        from .pool import ClientPool

        self._owns_pool = pool is None
        self._pool: ClientPool = pool if pool is not None else ClientPool()
        self.endpoint: Endpoint = resolve_endpoint(region, endpoint_url)
        self.credentials: CredentialProvider = credentials or default_credentials()
        self.retry: RetryPolicy = retry or self._pool.retry
        self._signer = SigV4Signer(self.endpoint.region, "dynamodb")
        self._path = self.endpoint.url.split(self.endpoint.host, 1)[1] or "/"

    @property
    def region(self) -> str:
        """The region requests are signed for."""
        return self.endpoint.region

    # ------------------------------------------------------------------ core

    async def call(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Send ``operation`` (e.g. ``"GetItem"``) with a DynamoDB-JSON ``request``."""
        observer = current_observer()
        if observer is not None:
            request = observer.before(operation, request)
        body = orjson.dumps(request)
        out = await self.retry.call(lambda: self._send(operation, body), operation)
        if observer is not None:
            observer.after(operation, request, out)
        return out

    async def _send(self, operation: str, body: bytes) -> dict[str, Any]:
        timeout = _deadline.check(operation)
        creds = await self.credentials.get()
        headers = {"Content-Type": _CONTENT_TYPE, "X-Amz-Target": _TARGET_PREFIX + operation}
        self._signer.sign(
            creds,
            method="POST",
            host=self.endpoint.host,
            path=self._path,
            headers=headers,
            body=body,
        )
        transport = self._pool.transport(self.endpoint.url)
        try:
            resp = await transport.post(self.endpoint.url, headers, body, timeout)
        except _Timeout as exc:
            if timeout is not None:
                raise DeadlineExceeded(f"deadline exceeded during {operation}") from exc
            raise
        return self._decode(operation, resp)

    def _decode(self, operation: str, resp: HttpResponse) -> dict[str, Any]:
        data = resp.body
        crc = resp.headers.get("x-amz-crc32")
        if crc is not None and zlib.crc32(data) != int(crc):
            raise ChecksumMismatch(
                f"{operation}: response CRC32 {zlib.crc32(data)} != header {crc}",
                self.endpoint.url,
            )
        try:
            parsed = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError as exc:
            raise TransportError(
                f"{operation}: HTTP {resp.status} with a body that is not JSON: {data[:200]!r}",
                self.endpoint.url,
            ) from exc
        if not isinstance(parsed, dict):
            raise TransportError(
                f"{operation}: HTTP {resp.status} with a non-object JSON body", self.endpoint.url
            )
        if resp.status == 200:
            return parsed
        if "__type" not in parsed and resp.status >= 500:
            raise TransportError(f"{operation}: HTTP {resp.status} {parsed}", self.endpoint.url)
        raise error_from_response(resp.status, parsed, resp.headers.get("x-amzn-RequestId"))

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close the private pool, if this client owns one."""
        if self._owns_pool:
            await self._pool.aclose()

    async def __aenter__(self) -> DynamoClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"DynamoClient(endpoint={self.endpoint.url!r}, region={self.endpoint.region!r}, "
            f"identity={self.credentials.identity!r})"
        )

    # ------------------------------------------------------------------ items

    async def get_item(self, **request: Any) -> dict[str, Any]:
        """GetItem: ``TableName``, ``Key``, optional ``ConsistentRead``, projection, ..."""
        return await self.call("GetItem", request)

    async def put_item(self, **request: Any) -> dict[str, Any]:
        """PutItem: ``TableName``, ``Item``, optional condition and return values."""
        return await self.call("PutItem", request)

    async def update_item(self, **request: Any) -> dict[str, Any]:
        """UpdateItem: ``TableName``, ``Key``, ``UpdateExpression``, ..."""
        return await self.call("UpdateItem", request)

    async def delete_item(self, **request: Any) -> dict[str, Any]:
        """DeleteItem: ``TableName``, ``Key``, optional condition and return values."""
        return await self.call("DeleteItem", request)

    async def query(self, **request: Any) -> dict[str, Any]:
        """Query: one page. ``LastEvaluatedKey`` in the answer continues it."""
        return await self.call("Query", request)

    async def scan(self, **request: Any) -> dict[str, Any]:
        """Scan: one page (``Segment``/``TotalSegments`` for parallel scans)."""
        return await self.call("Scan", request)

    # ------------------------------------------------------------------ batches

    async def batch_get_item(self, **request: Any) -> dict[str, Any]:
        """BatchGetItem: ``RequestItems``; the answer may hold ``UnprocessedKeys``."""
        return await self.call("BatchGetItem", request)

    async def batch_write_item(self, **request: Any) -> dict[str, Any]:
        """BatchWriteItem: ``RequestItems``; the answer may hold ``UnprocessedItems``."""
        return await self.call("BatchWriteItem", request)

    async def transact_get_items(self, **request: Any) -> dict[str, Any]:
        """TransactGetItems: ``TransactItems`` (up to 100 Gets)."""
        return await self.call("TransactGetItems", request)

    async def transact_write_items(self, **request: Any) -> dict[str, Any]:
        """TransactWriteItems: ``TransactItems``, optional ``ClientRequestToken``."""
        return await self.call("TransactWriteItems", request)

    # ------------------------------------------------------------------ tables

    async def create_table(self, **request: Any) -> dict[str, Any]:
        """CreateTable."""
        return await self.call("CreateTable", request)

    async def describe_table(self, **request: Any) -> dict[str, Any]:
        """DescribeTable: ``TableName``."""
        return await self.call("DescribeTable", request)

    async def update_table(self, **request: Any) -> dict[str, Any]:
        """UpdateTable."""
        return await self.call("UpdateTable", request)

    async def delete_table(self, **request: Any) -> dict[str, Any]:
        """DeleteTable: ``TableName``."""
        return await self.call("DeleteTable", request)

    async def list_tables(self, **request: Any) -> dict[str, Any]:
        """ListTables: one page (``ExclusiveStartTableName``, ``Limit``)."""
        return await self.call("ListTables", request)

    async def update_time_to_live(self, **request: Any) -> dict[str, Any]:
        """UpdateTimeToLive: ``TableName``, ``TimeToLiveSpecification``."""
        return await self.call("UpdateTimeToLive", request)

    async def describe_time_to_live(self, **request: Any) -> dict[str, Any]:
        """DescribeTimeToLive: ``TableName``."""
        return await self.call("DescribeTimeToLive", request)

    # ------------------------------------------------------------------ waiters

    async def wait_for_table_active(
        self, table_name: str, *, timeout: float = 300.0, interval: float = 0.2
    ) -> dict[str, Any]:
        """Poll DescribeTable until the table and all its GSIs are ACTIVE; return the table."""
        end = time.monotonic() + timeout
        while True:
            try:
                table: dict[str, Any] = (await self.describe_table(TableName=table_name))["Table"]
            except ResourceNotFound:
                table = {}
            gsis = table.get("GlobalSecondaryIndexes") or []
            if table.get("TableStatus") == "ACTIVE" and all(
                g.get("IndexStatus", "ACTIVE") == "ACTIVE" for g in gsis
            ):
                return table
            await self._wait_step(end, interval, f"table {table_name} to become ACTIVE")

    async def wait_for_table_deleted(
        self, table_name: str, *, timeout: float = 300.0, interval: float = 0.2
    ) -> None:
        """Poll DescribeTable until the table no longer exists."""
        end = time.monotonic() + timeout
        while True:
            try:
                await self.describe_table(TableName=table_name)
            except ResourceNotFound:
                return
            await self._wait_step(end, interval, f"table {table_name} to be deleted")

    @staticmethod
    async def _wait_step(end: float, interval: float, what: str) -> None:
        if time.monotonic() + interval > end:
            raise DeadlineExceeded(f"timed out waiting for {what}")
        left = _deadline.remaining()
        if left is not None and left <= interval:
            raise DeadlineExceeded(f"deadline reached waiting for {what}")
        await asyncio.sleep(interval)
