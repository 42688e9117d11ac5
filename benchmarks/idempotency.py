"""Client CPU of one idempotent call (claim + complete) against a null server.

An idempotent call that runs its function sends two requests: the conditional PutItem
that claims the key and the UpdateItem that stores the response. The null server (its
own process) answers both with ``{}``. Subjects, each in a fresh process of its own:

* ``floor``: two raw aiohttp POSTs of pre-encoded, pre-signed PutItem and UpdateItem
  bodies of the same shape as ours, each answer read and ``orjson.loads``-ed. The least
  any client must do for those two requests.
* ``client``: the same two requests through ``DynamoClient.call`` with pre-built dicts
  (ours, without the idempotency logic): what the requests alone cost in our client.
* ``dynamorm_async``: a function decorated with ``@idempotent(store, key="order_id")``
  called with a fresh order id each time: argument binding, key and payload hashing,
  the claim record, both requests, encoding of the ``Decimal`` response.

Metric: ``cpu_us_per_call`` (client process user + system CPU per call, two requests
per call), median of ``--repeat`` interleaved runs. Target: ``dynamorm_async`` <= 1.5x
``floor``. Run with ``--help`` for the options.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from _common import (
    Op,
    Row,
    SubjectFactory,
    SubjectResult,
    base_parser,
    drive,
    measure_subjects,
    report,
    row,
    set_bench_credentials,
    signed_headers,
    verdict,
    write_rows,
)
from _nullserver import NullServer

BENCHMARK = "idempotency"
TABLE = "idempotency"
REGION = "us-east-1"
POOL_SIZE = 64
#: Requests per measured call (claim + complete).
REQUESTS_PER_CALL = 2
NOW = 1_700_000_000
KEY = "charge#" + "0" * 64
CLAIM: dict[str, Any] = {
    "TableName": TABLE,
    "Item": {
        "id": {"S": KEY},
        "status": {"S": "INPROGRESS"},
        "expiration": {"N": str(NOW + 3600)},
        "in_progress_expiration": {"N": str((NOW + 60) * 1000)},
        "validation": {"S": "1" * 64},
    },
    "ConditionExpression": (
        "attribute_not_exists(#id) OR #exp < :now OR (#st = :ip AND #ipe < :nowms)"
    ),
    "ExpressionAttributeNames": {
        "#id": "id",
        "#exp": "expiration",
        "#st": "status",
        "#ipe": "in_progress_expiration",
    },
    "ExpressionAttributeValues": {
        ":now": {"N": str(NOW)},
        ":nowms": {"N": str(NOW * 1000)},
        ":ip": {"S": "INPROGRESS"},
    },
    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
}
COMPLETE: dict[str, Any] = {
    "TableName": TABLE,
    "Key": {"id": {"S": KEY}},
    "UpdateExpression": "SET #st = :st, #exp = :exp, #data = :data REMOVE #ipe",
    "ConditionExpression": "#st = :ip AND #ipe = :mine",
    "ExpressionAttributeNames": {
        "#st": "status",
        "#exp": "expiration",
        "#ipe": "in_progress_expiration",
        "#data": "data",
    },
    "ExpressionAttributeValues": {
        ":ip": {"S": "INPROGRESS"},
        ":mine": {"N": str((NOW + 60) * 1000)},
        ":st": {"S": "COMPLETED"},
        ":exp": {"N": str(NOW + 3600)},
        ":data": {"N": "19.99"},
    },
}


def _check(out: Any) -> None:
    if out not in ({}, Decimal("19.99")):
        raise AssertionError(f"unexpected answer: {out!r}")


@asynccontextmanager
async def floor(url: str) -> AsyncIterator[Op]:
    """Raw aiohttp: POST the two pre-encoded, pre-signed bodies, read, ``orjson.loads``."""
    import aiohttp

    claim, complete = orjson.dumps(CLAIM), orjson.dumps(COMPLETE)
    claim_headers = signed_headers(url, REGION, "PutItem", claim)
    complete_headers = signed_headers(url, REGION, "UpdateItem", complete)
    connector = aiohttp.TCPConnector(limit=POOL_SIZE, limit_per_host=POOL_SIZE)
    async with aiohttp.ClientSession(
        connector=connector, skip_auto_headers=("Accept-Encoding",), auto_decompress=False
    ) as session:

        async def op() -> Any:
            async with session.post(url, data=claim, headers=claim_headers) as resp:
                orjson.loads(await resp.read())
            async with session.post(url, data=complete, headers=complete_headers) as resp:
                return orjson.loads(await resp.read())

        yield op


@asynccontextmanager
async def client(url: str) -> AsyncIterator[Op]:
    """Ours, requests only: ``DynamoClient.call`` twice with pre-built dicts."""
    from dynamorm_async import ClientPool

    pool = ClientPool(connection_limit=POOL_SIZE)
    c = pool.client(endpoint_url=url, region=REGION)
    try:

        async def op() -> Any:
            await c.call("PutItem", CLAIM)
            return await c.call("UpdateItem", COMPLETE)

        yield op
    finally:
        await pool.aclose()


@asynccontextmanager
async def dynamorm_async(url: str) -> AsyncIterator[Op]:
    """Ours: an ``@idempotent`` function, a fresh order id per call."""
    from dynamorm_async import ClientPool
    from dynamorm_async.idempotency import idempotent
    from dynamorm_async.idempotency_store import DynamoDBIdempotencyStore

    pool = ClientPool(connection_limit=POOL_SIZE)
    store = DynamoDBIdempotencyStore(pool.client(endpoint_url=url, region=REGION))

    @idempotent(store, key="order_id", name="charge")
    async def charge(order_id: str, amount: Decimal, currency: str) -> Decimal:
        return amount

    ids = itertools.count()
    amount = Decimal("19.99")
    try:

        async def op() -> Any:
            return await charge(f"o-{next(ids):09d}", amount, "EUR")

        yield op
    finally:
        await pool.aclose()


FACTORIES: dict[str, SubjectFactory] = {
    "floor": floor,
    "client": client,
    "dynamorm_async": dynamorm_async,
}


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _serve(factory: SubjectFactory, args: Any) -> None:
    """The worker loop of ``_common`` with two requests counted per call."""
    conc: int = args.concurrency
    warmup: int = args.warmup or max(conc * 4, args.ops // 10)
    async with factory(args.url) as op:
        _check(await op())
        cpu, _ = await drive(op, warmup, conc)
        per_op = max(cpu / warmup, 1e-7)
        n = max(min(args.ops, conc * 8), min(args.ops, int(args.max_seconds / per_op)))
        n -= n % conc
        _emit({"ready": True, "ops": n, "requests": (1 + warmup) * REQUESTS_PER_CALL})
        rewarm = conc * 2
        while sys.stdin.readline().strip() == "run":
            await drive(op, rewarm, conc)
            gc.collect()
            cpu, wall = await drive(op, n, conc)
            _emit({"cpu_s": cpu, "wall_s": wall, "requests": (rewarm + n) * REQUESTS_PER_CALL})


def _targets(results: dict[str, SubjectResult]) -> list[tuple[bool, str]]:
    ours, base = results.get("dynamorm_async"), results.get("floor")
    out = []
    if ours is not None and base is not None:
        r = ours.ratio_to(base)
        out.append(verdict("claim + complete CPU <= 1.5x two raw requests", r <= 1.5, f"{r:.2f}x"))
    plain = results.get("client")
    if ours is not None and plain is not None:
        r = ours.ratio_to(plain)
        out.append(verdict("idempotency logic over our two bare requests", True, f"{r:.2f}x"))
    return out


def main() -> int:
    """Parse options; run as the parent (orchestrate, report) or as one subject's worker."""
    parser = base_parser(
        __doc__.splitlines()[0], list(FACTORIES), ops=10_000, concurrency=32, max_seconds=2.0
    )
    args = parser.parse_args()
    if args.worker:
        set_bench_credentials()
        asyncio.run(_serve(FACTORIES[args.worker], args))
        return 0
    set_bench_credentials()
    with NullServer(b"{}") as server:
        results = measure_subjects(str(Path(__file__).resolve()), server, args, list(FACTORIES))
    rows: list[Row] = [
        row(BENCHMARK, subject, "cpu_us_per_call", res.cpu_us_per_op, "us")
        for subject, res in results.items()
    ]
    write_rows(args.json, rows)
    title = (
        f"Idempotent call (claim PutItem + complete UpdateItem): null server, "
        f"{args.concurrency} concurrent tasks, median of {args.repeat} interleaved runs"
    )
    headers = ["subject", "calls/run", "CPU µs/call", "vs floor", "calls/s", "CPU spread"]
    report(title, results, headers, args.verbose)
    checks = _targets(results)
    if checks:
        print("\nTargets (issue 7; ratios are medians of per-round ratios):")
        print("\n".join(line for _, line in checks))
    return 1 if args.check_targets and not all(ok for ok, _ in checks[:1]) else 0


if __name__ == "__main__":
    sys.exit(main())
