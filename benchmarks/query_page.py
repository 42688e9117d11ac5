"""Client CPU per 100-item Query page, decoded, against a null server's canned page.

The null server (its own process) answers every request with one page of 100 payment
items of 12 attributes each. Subjects, each in a fresh process of its own:

* ``floor``: raw aiohttp POST of the pre-encoded, pre-signed Query and ``orjson.loads``
  of the answer (wire-format dicts, no typed decoding).
* ``handwritten`` (a reference, not a peer): the floor plus straight-line code that
  builds the same ``Payment`` entities with no checks at all. ``aiobotocore /
  handwritten`` shows how far check-free plain Python gets against aiobotocore here.
* ``dynamorm_async``: ``DynamoClient.query(...)`` then ``meta_of(Payment).decode`` of
  every item into ``Payment`` entities (UUID, Decimal, enum, datetimes, map).
* ``aiobotocore``: its ``dynamodb`` client's ``query``, then boto3's
  ``TypeDeserializer`` on every attribute (plain dicts of Decimals, str, ...).
* ``aioboto3``: the ``Table`` resource's ``query`` (it deserializes into plain dicts).
* ``aiodynamo``: ``Client.query_single_page`` (it deserializes into plain dicts).

Metric: ``cpu_us_per_page``, the median over ``--repeat`` interleaved runs of the client
process's user + system CPU per page. Run with ``--help`` for the options.
"""

# No ``from __future__ import annotations``: the Payment entity is declared inside a function
# (only the dynamorm_async worker imports our model), so its annotations must be real objects.

import functools
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from _common import (
    Op,
    SubjectFactory,
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

BENCHMARK = "query_page"
TABLE = "payments"
REGION = "us-east-1"
POOL_SIZE = 64
PAGE_SIZE = 100
MERCHANT = "m-000042"
STATUSES = ("PENDING", "AUTHORIZED", "CAPTURED", "REFUNDED", "FAILED")
REQUEST: dict[str, Any] = {
    "TableName": TABLE,
    "KeyConditionExpression": "#pk = :pk",
    "ExpressionAttributeNames": {"#pk": "pk"},
    "ExpressionAttributeValues": {":pk": {"S": f"MERCHANT#{MERCHANT}"}},
    "Limit": PAGE_SIZE,
}


def payment_item(i: int) -> dict[str, Any]:
    """The wire form of the ``i``-th canned payment: 12 attributes, as DynamoDB sends them."""
    created = datetime(2024, 5, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=97 * i, microseconds=i)
    updated = created + timedelta(minutes=5)
    return {
        "pk": {"S": f"MERCHANT#{MERCHANT}"},
        "sk": {"S": f"PAYMENT#{created:%Y-%m-%dT%H:%M:%S}#{i:06d}"},
        "payment_id": {"S": str(uuid.UUID(int=(i + 1) * 0x9E3779B97F4A7C15))},
        "merchant_id": {"S": MERCHANT},
        "cust": {"S": f"c-{(i * 7919) % 100_000:06d}"},
        "amount": {"N": f"{(i * 1234) % 100_000 / 100:.2f}"},
        "currency": {"S": ("EUR", "USD", "GBP")[i % 3]},
        "status": {"S": STATUSES[i % len(STATUSES)]},
        "created_at": {"S": created.isoformat().replace("+00:00", "Z")},
        "updated_at": {"S": updated.isoformat().replace("+00:00", "Z")},
        "version": {"N": str(1 + i % 4)},
        "metadata": {"M": {"order_id": {"S": f"o-{i:08d}"}, "channel": {"S": "web"}}},
    }


ITEMS = [payment_item(i) for i in range(PAGE_SIZE)]
RESPONSE = orjson.dumps(
    {
        "Items": ITEMS,
        "Count": PAGE_SIZE,
        "ScannedCount": PAGE_SIZE,
        "LastEvaluatedKey": {"pk": ITEMS[-1]["pk"], "sk": ITEMS[-1]["sk"]},
    }
)


# ---------------------------------------------------------------------------- checks


def _check_wire(out: Any) -> None:
    if not isinstance(out, dict) or out.get("Items") != ITEMS or out.get("Count") != PAGE_SIZE:
        raise AssertionError("floor: unexpected Query answer")


def _check_plain(out: Any) -> None:
    """Peers that deserialize to plain dicts: 100 of them, values decoded."""
    if not isinstance(out, list) or len(out) != PAGE_SIZE:
        raise AssertionError(f"expected {PAGE_SIZE} items, got {type(out).__name__}")
    first = out[1]
    if set(first) != set(ITEMS[1]) or float(first["amount"]) != float(ITEMS[1]["amount"]["N"]):
        raise AssertionError(f"unexpected item {first!r}")
    if first["metadata"] != {"order_id": "o-00000001", "channel": "web"}:
        raise AssertionError(f"unexpected map {first['metadata']!r}")


# ---------------------------------------------------------------------------- subjects


@asynccontextmanager
async def floor(url: str) -> AsyncIterator[Op]:
    """Raw aiohttp: POST pre-encoded bytes, read, ``orjson.loads``."""
    async with raw_floor(url, REGION, "Query", REQUEST, POOL_SIZE) as op:
        yield op


@functools.cache
def payment_entity() -> tuple[type[Any], Callable[[Any], Any]]:
    """Declare the ``Payment`` entity (only the ``dynamorm_async`` worker imports our model).

    Returns the class and its generated decoder.
    """
    import enum

    from dynamorm_async.model import entity, field, meta_of

    class Status(enum.StrEnum):
        PENDING = "PENDING"
        AUTHORIZED = "AUTHORIZED"
        CAPTURED = "CAPTURED"
        REFUNDED = "REFUNDED"
        FAILED = "FAILED"

    @entity(
        table=TABLE,
        hash_key="pk",
        range_key="sk",
        version="version",
        created_at="created_at",
        updated_at="updated_at",
    )
    class Payment:
        pk: str
        sk: str
        payment_id: uuid.UUID
        merchant_id: str
        customer_id: str = field(name="cust")
        amount: Decimal = Decimal(0)
        currency: str = "EUR"
        status: Status = Status.PENDING
        created_at: datetime | None = None
        updated_at: datetime | None = None
        version: int = 0
        metadata: dict[str, str] = field(factory=dict)

    return Payment, meta_of(Payment).decode


def _check_entities(payment: type[Any]) -> Callable[[Any], None]:
    def check(out: Any) -> None:
        if not isinstance(out, list) or len(out) != PAGE_SIZE:
            raise AssertionError(f"expected {PAGE_SIZE} entities, got {type(out).__name__}")
        p = out[1]
        wire = ITEMS[1]
        ok = (
            isinstance(p, payment)
            and p.payment_id == uuid.UUID(wire["payment_id"]["S"])
            and p.amount == Decimal(wire["amount"]["N"])
            and p.status == wire["status"]["S"]
            and p.created_at == datetime.fromisoformat(wire["created_at"]["S"])
            and p.customer_id == wire["cust"]["S"]
            and p.metadata == {"order_id": "o-00000001", "channel": "web"}
        )
        if not ok:
            raise AssertionError(f"unexpected entity {p!r}")

    return check


@asynccontextmanager
async def dynamorm_async(url: str) -> AsyncIterator[Op]:
    """Ours: ``DynamoClient.query`` + the entity's generated decoder."""
    from dynamorm_async import ClientPool

    _, decode = payment_entity()
    pool = ClientPool(connection_limit=POOL_SIZE)
    client = pool.client(endpoint_url=url, region=REGION)
    try:

        async def op() -> Any:
            out = await client.query(**REQUEST)
            return [decode(item) for item in out["Items"]]

        yield op
    finally:
        await pool.aclose()


def handwritten_decoder(payment: type[Any]) -> Callable[[dict[str, Any]], Any]:
    """Hand-written wire item -> ``Payment`` for exactly this shape: a reference, not a peer.

    Straight-line code with the cheapest conversions known (ours, for UUID text) and
    no checks, no fallbacks, no missing-attribute handling.
    """
    from dynamorm_async.model.temporal import uuid_from_text

    new = object.__new__
    status = {m.value: m for m in payment.__annotations__["status"]}
    fromiso = datetime.fromisoformat

    def decode(item: dict[str, Any]) -> Any:
        o = new(payment)
        o.pk = item["pk"]["S"]
        o.sk = item["sk"]["S"]
        o.payment_id = uuid_from_text(item["payment_id"]["S"])
        o.merchant_id = item["merchant_id"]["S"]
        o.customer_id = item["cust"]["S"]
        o.amount = Decimal(item["amount"]["N"])
        o.currency = item["currency"]["S"]
        o.status = status[item["status"]["S"]]
        o.created_at = fromiso(item["created_at"]["S"])
        o.updated_at = fromiso(item["updated_at"]["S"])
        o.version = int(item["version"]["N"])
        o.metadata = {k: v["S"] for k, v in item["metadata"]["M"].items()}
        return o

    return decode


@asynccontextmanager
async def handwritten(url: str) -> AsyncIterator[Op]:
    """Reference: the raw floor plus :func:`handwritten_decoder` (no library at all)."""
    decode = handwritten_decoder(payment_entity()[0])
    async with raw_floor(url, REGION, "Query", REQUEST, POOL_SIZE) as raw:

        async def op() -> Any:
            out = await raw()
            return [decode(item) for item in out["Items"]]

        yield op


@asynccontextmanager
async def aiobotocore(url: str) -> AsyncIterator[Op]:
    """aiobotocore's ``query`` + boto3's ``TypeDeserializer`` on every attribute."""
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize
    config = AioConfig(max_pool_connections=POOL_SIZE)
    async with get_session().create_client(
        "dynamodb", region_name=REGION, endpoint_url=url, config=config
    ) as client:

        async def op() -> Any:
            out = await client.query(**REQUEST)
            return [{k: deserialize(v) for k, v in item.items()} for item in out["Items"]]

        yield op


@asynccontextmanager
async def aioboto3(url: str) -> AsyncIterator[Op]:
    """aioboto3's ``Table`` resource ``query`` (deserializes the items itself)."""
    import aioboto3 as _aioboto3
    from aiobotocore.config import AioConfig
    from boto3.dynamodb.conditions import Key

    config = AioConfig(max_pool_connections=POOL_SIZE)
    session = _aioboto3.Session()
    async with session.resource(
        "dynamodb", region_name=REGION, endpoint_url=url, config=config
    ) as dynamodb:
        table = await dynamodb.Table(TABLE)
        condition = Key("pk").eq(f"MERCHANT#{MERCHANT}")

        async def op() -> Any:
            out = await table.query(KeyConditionExpression=condition, Limit=PAGE_SIZE)
            return out["Items"]

        yield op


@asynccontextmanager
async def aiodynamo(url: str) -> AsyncIterator[Op]:
    """aiodynamo's ``Client.query_single_page`` over its ``AIOHTTP`` adapter."""
    import aiohttp
    from aiodynamo.client import Client
    from aiodynamo.credentials import Key, StaticCredentials
    from aiodynamo.expressions import HashKey
    from aiodynamo.http.aiohttp import AIOHTTP
    from yarl import URL

    connector = aiohttp.TCPConnector(limit=POOL_SIZE, limit_per_host=POOL_SIZE)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = Client(
            AIOHTTP(session), StaticCredentials(Key("bench", "bench")), REGION, endpoint=URL(url)
        )
        condition = HashKey("pk", f"MERCHANT#{MERCHANT}")

        async def op() -> Any:
            page = await client.query_single_page(TABLE, condition, limit=PAGE_SIZE)
            return page.items

        yield op


FACTORIES: dict[str, SubjectFactory] = {
    "floor": floor,
    "handwritten": handwritten,
    "dynamorm_async": dynamorm_async,
    "aiodynamo": aiodynamo,
    "aioboto3": aioboto3,
    "aiobotocore": aiobotocore,
}


def _checks(subject: str | None) -> dict[str, Callable[[Any], None]]:
    checks: dict[str, Callable[[Any], None]] = {
        "floor": _check_wire,
        "aiodynamo": _check_plain,
        "aioboto3": _check_plain,
        "aiobotocore": _check_plain,
    }
    if subject in ("dynamorm_async", "handwritten"):
        checks[subject] = _check_entities(payment_entity()[0])
    return checks


# ---------------------------------------------------------------------------- report


def main() -> int:
    """Parse options; run as the parent (orchestrate, report) or as one subject's worker."""
    parser = base_parser(
        __doc__.splitlines()[0], list(FACTORIES), ops=3_000, concurrency=8, max_seconds=2.0
    )
    args = parser.parse_args()
    if args.worker:
        worker_main(FACTORIES, _checks(args.worker), args)
        return 0
    set_bench_credentials()
    with NullServer(RESPONSE) as server:
        results = measure_subjects(str(Path(__file__).resolve()), server, args, list(FACTORIES))

    rows = [
        row(BENCHMARK, subject, "cpu_us_per_page", res.cpu_us_per_op, "us")
        for subject, res in results.items()
    ]
    write_rows(args.json, rows)
    title = (
        f"100-item Query page, decoded: null server ({len(RESPONSE):,}-byte page), "
        f"{args.concurrency} concurrent tasks, median of {args.repeat} interleaved runs"
    )
    headers = ["subject", "pages/run", "CPU µs/page", "vs floor", "pages/s", "CPU spread"]
    report(title, results, headers, args.verbose)
    base = results.get("floor")
    checks = []
    ours = results.get("dynamorm_async")
    if ours is not None and base is not None:
        r = ours.ratio_to(base)
        checks.append(verdict("CPU <= 2x floor", r <= 2, f"{r:.2f}x"))
    if ours is not None and "aiobotocore" in results:
        r = results["aiobotocore"].ratio_to(ours)
        what = ">= 10x less CPU than aiobotocore + TypeDeserializer"
        checks.append(verdict(what, r >= 10, f"{r:.1f}x"))
    hand = results.get("handwritten")
    if hand is not None and base is not None and "aiobotocore" in results:
        print(
            f"\nReference: check-free handwritten decoding is {hand.ratio_to(base):.2f}x the "
            f"floor and {results['aiobotocore'].ratio_to(hand):.1f}x less CPU than aiobotocore"
        )
    if checks:
        print("\nTargets (DESIGN.md; ratios are medians of per-round ratios):")
        print("\n".join(line for _, line in checks))
    return 1 if args.check_targets and not all(ok for ok, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
