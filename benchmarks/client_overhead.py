"""Client CPU per GetItem against a null server, 32 concurrent tasks.

Subjects, each in a fresh process of its own, against one null server (its own process):

* ``floor``: raw aiohttp POST of the pre-encoded, pre-signed request body with the same
  headers; read the body and ``orjson.loads`` it. The least any client must do.
* ``dynamorm_async``: ``ClientPool(...).client(...).get_item(...)`` (signs every call,
  verifies ``x-amz-crc32``, maps errors, retry policy armed).
* ``aiobotocore``: its ``dynamodb`` client's ``get_item``.
* ``aiodynamo``: ``aiodynamo.client.Client`` with the ``AIOHTTP`` adapter and
  ``StaticCredentials``, its ``get_item``.

Metrics (medians of ``--repeat`` runs): ``cpu_us_per_op`` = (user + system CPU of the
client process) / operations, and ``ops_per_s`` (wall clock). Run with ``--help``.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from _common import (
    Op,
    Row,
    SubjectFactory,
    SubjectResult,
    base_parser,
    measure_subjects,
    report,
    row,
    set_bench_credentials,
    verdict,
    worker_main,
    write_rows,
)
from _floor import raw_floor
from _nullserver import NullServer

BENCHMARK = "client_overhead"
TABLE = "bench"
REGION = "us-east-1"
POOL_SIZE = 64
KEY: dict[str, Any] = {"pk": {"S": "user#000123"}, "sk": {"S": "profile"}}
#: The ~10-attribute item the null server returns for every GetItem.
ITEM: dict[str, Any] = {
    **KEY,
    "name": {"S": "Ada Lovelace"},
    "email": {"S": "ada@example.com"},
    "age": {"N": "36"},
    "balance": {"N": "1234.56"},
    "active": {"BOOL": True},
    "tags": {"SS": ["admin", "beta"]},
    "created_at": {"S": "2024-05-01T12:00:00+00:00"},
    "address": {"M": {"city": {"S": "London"}, "zip": {"S": "W1"}}},
}
RESPONSE = orjson.dumps({"Item": ITEM})
REQUEST: dict[str, Any] = {"TableName": TABLE, "Key": KEY}


def _check_wire(out: Any) -> None:
    if out != {"Item": ITEM}:
        raise AssertionError(f"unexpected GetItem answer: {out!r}")


def _check_plain(out: Any) -> None:
    if not isinstance(out, dict) or set(out) != set(ITEM) or out["pk"] != "user#000123":
        raise AssertionError(f"unexpected GetItem item: {out!r}")


@asynccontextmanager
async def floor(url: str) -> AsyncIterator[Op]:
    """Raw aiohttp: POST pre-encoded bytes, read, ``orjson.loads``."""
    async with raw_floor(url, REGION, "GetItem", REQUEST, POOL_SIZE) as op:
        yield op


@asynccontextmanager
async def dynamorm_async(url: str) -> AsyncIterator[Op]:
    """Ours: the pooled ``DynamoClient.get_item``."""
    from dynamorm_async import ClientPool

    pool = ClientPool(connection_limit=POOL_SIZE)
    client = pool.client(endpoint_url=url, region=REGION)
    try:

        async def op() -> Any:
            return await client.get_item(TableName=TABLE, Key=KEY)

        yield op
    finally:
        await pool.aclose()


@asynccontextmanager
async def aiobotocore(url: str) -> AsyncIterator[Op]:
    """aiobotocore's ``dynamodb`` client (parameter validation on, as by default)."""
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    config = AioConfig(max_pool_connections=POOL_SIZE)
    async with get_session().create_client(
        "dynamodb", region_name=REGION, endpoint_url=url, config=config
    ) as client:

        async def op() -> Any:
            out = await client.get_item(TableName=TABLE, Key=KEY)
            out.pop("ResponseMetadata", None)
            return out

        yield op


@asynccontextmanager
async def aiodynamo(url: str) -> AsyncIterator[Op]:
    """aiodynamo's ``Client.get_item`` over its ``AIOHTTP`` adapter (plain dicts out)."""
    import aiohttp
    from aiodynamo.client import Client
    from aiodynamo.credentials import Key, StaticCredentials
    from aiodynamo.http.aiohttp import AIOHTTP
    from yarl import URL

    connector = aiohttp.TCPConnector(limit=POOL_SIZE, limit_per_host=POOL_SIZE)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = Client(
            AIOHTTP(session), StaticCredentials(Key("bench", "bench")), REGION, endpoint=URL(url)
        )
        key = {"pk": "user#000123", "sk": "profile"}

        async def op() -> Any:
            return await client.get_item(TABLE, key)

        yield op


FACTORIES: dict[str, SubjectFactory] = {
    "floor": floor,
    "dynamorm_async": dynamorm_async,
    "aiodynamo": aiodynamo,
    "aiobotocore": aiobotocore,
}
CHECKS: dict[str, Callable[[Any], None]] = {
    "floor": _check_wire,
    "dynamorm_async": _check_wire,
    "aiodynamo": _check_plain,
    "aiobotocore": _check_wire,
}


def main() -> int:
    """Parse options; run as the parent (orchestrate, report) or as one subject's worker."""
    parser = base_parser(
        __doc__.splitlines()[0], list(FACTORIES), ops=20_000, concurrency=32, max_seconds=2.0
    )
    args = parser.parse_args()
    if args.worker:
        worker_main(FACTORIES, CHECKS, args)
        return 0
    set_bench_credentials()
    with NullServer(RESPONSE) as server:
        results = measure_subjects(str(Path(__file__).resolve()), server, args, list(FACTORIES))

    rows: list[Row] = []
    for subject, res in results.items():
        rows.append(row(BENCHMARK, subject, "cpu_us_per_op", res.cpu_us_per_op, "us"))
        rows.append(row(BENCHMARK, subject, "ops_per_s", res.ops_per_s, "ops/s"))
    write_rows(args.json, rows)
    title = (
        f"GetItem client overhead: null server, {args.concurrency} concurrent tasks, "
        f"median of {args.repeat} interleaved runs"
    )
    headers = ["subject", "ops/run", "CPU µs/op", "vs floor", "ops/s", "CPU spread"]
    report(title, results, headers, args.verbose)
    checks = _targets(results)
    if checks:
        print("\nTargets (DESIGN.md; ratios are medians of per-round ratios):")
        print("\n".join(line for _, line in checks))
    return 1 if args.check_targets and not all(ok for ok, _ in checks) else 0


def _targets(results: dict[str, SubjectResult]) -> list[tuple[bool, str]]:
    ours = results.get("dynamorm_async")
    if ours is None:
        return []
    out = []
    if "floor" in results:
        r = ours.ratio_to(results["floor"])
        out.append(verdict("CPU <= 1.5x floor", r <= 1.5, f"{r:.2f}x"))
    if "aiobotocore" in results:
        r = results["aiobotocore"].ratio_to(ours)
        out.append(verdict(">= 5x less CPU than aiobotocore", r >= 5, f"{r:.1f}x"))
    if "aiodynamo" in results:
        r = results["aiodynamo"].ratio_to(ours)
        out.append(verdict("less CPU than aiodynamo", r > 1, f"{r:.2f}x"))
    return out


if __name__ == "__main__":
    sys.exit(main())
