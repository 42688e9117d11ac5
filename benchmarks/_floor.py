"""The raw-request floor shared by the null-server benchmarks.

The floor is the least any DynamoDB client must do for one request: POST pre-encoded,
pre-signed bytes through aiohttp, read the answer and ``orjson.loads`` it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from _common import signed_headers


@asynccontextmanager
async def raw_floor(
    url: str, region: str, operation: str, request: Mapping[str, Any], pool_size: int
) -> AsyncIterator[Callable[[], Awaitable[Any]]]:
    """Yield an ``op()`` that sends ``request`` as ``operation`` with raw aiohttp."""
    import aiohttp

    body = orjson.dumps(request)
    headers = signed_headers(url, region, operation, body)
    connector = aiohttp.TCPConnector(limit=pool_size, limit_per_host=pool_size)
    async with aiohttp.ClientSession(
        connector=connector, skip_auto_headers=("Accept-Encoding",), auto_decompress=False
    ) as session:

        async def op() -> Any:
            async with session.post(url, data=body, headers=headers) as resp:
                data = await resp.read()
            return orjson.loads(data)

        yield op
