"""Codec benchmark: encode and decode 1,000 twelve-attribute payment records.

Subjects (each encodes objects to DynamoDB-JSON item dicts and decodes its own items
back; no server, no JSON text):

* ``dynamorm_async``: ``meta_of(Payment).encode`` / ``.decode`` (generated codec);
* ``boto3``: ``TypeSerializer``/``TypeDeserializer`` plus the conversions a user
  writes by hand (datetime, Enum, epoch) and attrs class construction;
* ``pynamodb``: ``Model.serialize()`` / ``Model.from_raw_data()``;
* ``aiodynamo``: ``py2dy`` / ``dy2py`` on plain dicts (no model: a lower bound for it);
* ``handwritten`` (a reference, not a peer): straight-line code a careful engineer
  would write for exactly these records, without any check or fallback. It shows how
  far plain Python gets; the generated codec, checks included, is about as fast.

Usage: ``python benchmarks/codec.py --json out.json [--n 1000] [--repeat 15]``. Times
are wall-clock (``time.perf_counter``) medians over interleaved rounds. Writes
``{"benchmark": "codec", "subject", "metric": "encode_ms"|"decode_ms", "value",
"unit": "ms"}`` rows and prints a markdown table with the ratios to ours.
"""

from __future__ import annotations

import argparse
import enum
import gc
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from _common import Row, markdown_table, row, verdict, write_rows

from dynamorm_async.model import entity, field, meta_of

BENCHMARK = "codec"


class Status(enum.Enum):
    """Payment status."""

    PENDING = "pending"
    CAPTURED = "captured"
    REFUNDED = "refunded"


@entity(table="payments", hash_key="pk", range_key="sk", ttl="expires_at", version="version")
class Payment:
    """Ours: twelve attributes."""

    pk: str
    sk: str
    amount: Decimal
    currency: str
    customer_id: str = field(name="cust")
    status: Status = Status.PENDING
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    tags: set[str] = field(factory=set)
    version: int = 0
    metadata: dict[str, str] = field(factory=dict)


@attrs.define
class PlainPayment:
    """The same record as a plain attrs class (for the boto3 subject)."""

    pk: str
    sk: str
    amount: Decimal
    currency: str
    customer_id: str
    status: Status
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    tags: set[str]
    version: int
    metadata: dict[str, str]


def records(n: int) -> list[dict[str, Any]]:
    """``n`` deterministic payment records as keyword dicts."""
    base = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        created = base + timedelta(seconds=i * 37, microseconds=i * 11 % 1_000_000)
        out.append(
            {
                "pk": f"PAY#{i:08d}",
                "sk": "v1",
                "amount": Decimal(f"{(i * 7919) % 100000}.{i % 100:02d}"),
                "currency": "EUR" if i % 3 else "USD",
                "customer_id": f"CUST#{i % 97:05d}",
                "status": list(Status)[i % 3],
                "created_at": created,
                "updated_at": created + timedelta(minutes=5),
                "expires_at": created.replace(microsecond=0) + timedelta(days=90),
                "tags": {"card", "eu"} if i % 2 else {"sepa"},
                "version": i % 5 + 1,
                "metadata": {"ip": f"10.0.{i % 256}.{i % 200}", "channel": "web"},
            }
        )
    return out


#: A prepared subject: (encode all records, decode all items).
Runs = tuple[Callable[[], object], Callable[[], object]]


def bench_ours(recs: list[dict[str, Any]]) -> Runs:
    """dynamorm_async."""
    meta = meta_of(Payment)
    objs = [Payment(**r) for r in recs]
    enc, dec = meta.encode, meta.decode
    items = [enc(o) for o in objs]
    assert [dec(i) for i in items] == objs
    return (
        lambda: [enc(o) for o in objs],
        lambda: [dec(i) for i in items],
    )


def bench_handwritten(recs: list[dict[str, Any]]) -> Runs:
    """Reference, not a peer: hand-written code for exactly these records, no checks.

    Straight-line code for this shape with the cheapest conversions known (ours for
    datetimes) and no type checks, no fallbacks, no missing-attribute handling.
    """
    from dynamorm_async.model.temporal import datetime_to_epoch, datetime_to_iso

    new = object.__new__
    fromiso, fromts = datetime.fromisoformat, datetime.fromtimestamp
    status = {m.value: m for m in Status}
    objs = [Payment(**r) for r in recs]

    def encode(p: Payment) -> dict[str, Any]:
        item = {
            "pk": {"S": p.pk},
            "sk": {"S": p.sk},
            "amount": {"N": str(p.amount)},
            "currency": {"S": p.currency},
            "cust": {"S": p.customer_id},
            "status": {"S": p.status.value},
            "version": {"N": str(p.version)},
            "metadata": {"M": {k: {"S": v} for k, v in p.metadata.items()}},
            "created_at": {"S": datetime_to_iso(p.created_at)},  # type: ignore[arg-type]
            "updated_at": {"S": datetime_to_iso(p.updated_at)},  # type: ignore[arg-type]
            "expires_at": {"N": datetime_to_epoch(p.expires_at)},  # type: ignore[arg-type]
        }
        if p.tags:
            item["tags"] = {"SS": list(p.tags)}
        return item

    def decode(item: dict[str, Any]) -> Payment:
        o = new(Payment)
        o.pk = item["pk"]["S"]
        o.sk = item["sk"]["S"]
        o.amount = Decimal(item["amount"]["N"])
        o.currency = item["currency"]["S"]
        o.customer_id = item["cust"]["S"]
        o.status = status[item["status"]["S"]]
        o.created_at = fromiso(item["created_at"]["S"])
        o.updated_at = fromiso(item["updated_at"]["S"])
        o.expires_at = fromts(int(item["expires_at"]["N"]), UTC)
        o.tags = set(item["tags"]["SS"])
        o.version = int(item["version"]["N"])
        o.metadata = {k: v["S"] for k, v in item["metadata"]["M"].items()}
        return o

    items = [encode(o) for o in objs]
    assert [decode(i) for i in items] == objs
    assert items == [meta_of(Payment).encode(o) for o in objs]
    return (
        lambda: [encode(o) for o in objs],
        lambda: [decode(i) for i in items],
    )


def bench_boto3(recs: list[dict[str, Any]]) -> Runs:
    """boto3 TypeSerializer/TypeDeserializer with hand-written conversions + attrs."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    ser, de = TypeSerializer().serialize, TypeDeserializer().deserialize
    objs = [PlainPayment(**r) for r in recs]

    def encode(p: PlainPayment) -> dict[str, Any]:
        d = {
            "pk": p.pk,
            "sk": p.sk,
            "amount": p.amount,
            "currency": p.currency,
            "cust": p.customer_id,
            "status": p.status.value,
            "created_at": p.created_at.isoformat(),
            "updated_at": p.updated_at.isoformat(),
            "expires_at": int(p.expires_at.timestamp()),
            "tags": p.tags,
            "version": p.version,
            "metadata": p.metadata,
        }
        return {k: ser(v) for k, v in d.items()}

    def decode(item: dict[str, Any]) -> PlainPayment:
        v = {k: de(x) for k, x in item.items()}
        return PlainPayment(
            pk=v["pk"],
            sk=v["sk"],
            amount=v["amount"],
            currency=v["currency"],
            customer_id=v["cust"],
            status=Status(v["status"]),
            created_at=datetime.fromisoformat(v["created_at"]),
            updated_at=datetime.fromisoformat(v["updated_at"]),
            expires_at=datetime.fromtimestamp(int(v["expires_at"]), UTC),
            tags=v["tags"],
            version=int(v["version"]),
            metadata=v["metadata"],
        )

    items = [encode(o) for o in objs]
    assert [decode(i) for i in items] == objs
    return (
        lambda: [encode(o) for o in objs],
        lambda: [decode(i) for i in items],
    )


def bench_pynamodb(recs: list[dict[str, Any]]) -> Runs:
    """PynamoDB Model.serialize / from_raw_data (no server involved)."""
    from pynamodb.attributes import (
        MapAttribute,
        NumberAttribute,
        TTLAttribute,
        UnicodeAttribute,
        UnicodeSetAttribute,
        UTCDateTimeAttribute,
        VersionAttribute,
    )
    from pynamodb.models import Model

    class PynamoPayment(Model):
        class Meta:
            table_name = "payments"
            region = "us-east-1"

        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        amount = NumberAttribute()
        currency = UnicodeAttribute()
        customer_id = UnicodeAttribute(attr_name="cust")
        status = UnicodeAttribute()
        created_at = UTCDateTimeAttribute()
        updated_at = UTCDateTimeAttribute()
        expires_at = TTLAttribute()
        tags = UnicodeSetAttribute()
        version = VersionAttribute()
        metadata = MapAttribute[str, str]()

    objs = []
    for r in recs:
        kw = dict(r)
        kw["amount"] = float(r["amount"])  # NumberAttribute is float-based
        kw["status"] = r["status"].value
        objs.append(PynamoPayment(**kw))
    items = [o.serialize() for o in objs]
    back = PynamoPayment.from_raw_data(items[0])
    assert back.pk == objs[0].pk and back.tags == objs[0].tags
    return (
        lambda: [o.serialize() for o in objs],
        lambda: [PynamoPayment.from_raw_data(i) for i in items],
    )


def bench_aiodynamo(recs: list[dict[str, Any]]) -> Runs:
    """aiodynamo py2dy/dy2py on plain dicts (values already converted; no model)."""
    from aiodynamo.utils import dy2py, py2dy

    dicts = []
    for r in recs:
        d = dict(r)
        d["status"] = r["status"].value
        d["created_at"] = r["created_at"].isoformat()
        d["updated_at"] = r["updated_at"].isoformat()
        d["expires_at"] = int(r["expires_at"].timestamp())
        dicts.append(d)
    items = [py2dy(d) for d in dicts]
    assert dy2py(items[0], Decimal)["pk"] == dicts[0]["pk"]  # type: ignore[arg-type]
    return (
        lambda: [py2dy(d) for d in dicts],
        lambda: [dy2py(i, Decimal) for i in items],  # type: ignore[arg-type]
    )


SUBJECTS: dict[str, Callable[[list[dict[str, Any]]], Runs]] = {
    "dynamorm_async": bench_ours,
    "handwritten": bench_handwritten,
    "boto3": bench_boto3,
    "pynamodb": bench_pynamodb,
    "aiodynamo": bench_aiodynamo,
}


def measure(runs: dict[str, Runs], repeat: int) -> dict[str, tuple[float, float]]:
    """Median ms of each subject's encode and decode over ``repeat`` interleaved rounds.

    Round *r* runs every subject once, in an order rotated by *r*, so a slow spell of a
    shared machine hits all subjects alike.
    """
    names = list(runs)
    times: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in names}
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            for k, fn in enumerate(runs[name]):
                gc.collect()
                t0 = time.perf_counter()
                fn()
                times[name][k].append((time.perf_counter() - t0) * 1000)
    return {n: (statistics.median(e), statistics.median(d)) for n, (e, d) in times.items()}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, write the JSON rows, print the table."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--json", type=Path, help="where to write the result rows")
    ap.add_argument("--n", type=int, default=1000, help="records per run (default 1000)")
    ap.add_argument("--repeat", type=int, default=15, help="interleaved rounds (median)")
    ap.add_argument(
        "--check-targets", action="store_true", help="exit 1 if a DESIGN.md target is missed"
    )
    args = ap.parse_args(argv)
    recs = records(args.n)
    runs: dict[str, Runs] = {}
    for name, prepare in SUBJECTS.items():
        try:
            runs[name] = prepare(recs)
        except ImportError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
    results = measure(runs, args.repeat)
    rows: list[Row] = []
    table = []
    ours_enc, ours_dec = results["dynamorm_async"]
    for s, (enc, dec) in results.items():
        rows.append(row(BENCHMARK, s, "encode_ms", enc, "ms"))
        rows.append(row(BENCHMARK, s, "decode_ms", dec, "ms"))
        table.append([s, enc, dec, f"{enc / ours_enc:.1f}x", f"{dec / ours_dec:.1f}x"])
    write_rows(args.json, rows)
    print(
        f"codec: {args.n} twelve-attribute payment entities, "
        f"median of {args.repeat} interleaved rounds\n"
    )
    headers = ["subject", "encode ms", "decode ms", "encode vs ours", "decode vs ours"]
    print(markdown_table(headers, table))
    checks = []
    for peer, target in (("boto3", 3.0), ("pynamodb", 10.0)):
        if peer in results:
            pe, pd = results[peer]
            worst = min(pe / ours_enc, pd / ours_dec)
            checks.append(
                verdict(
                    f">= {target:.0f}x faster than {peer} (encode and decode)",
                    worst >= target,
                    f"encode {pe / ours_enc:.1f}x, decode {pd / ours_dec:.1f}x",
                )
            )
    if "handwritten" in results and "pynamodb" in results:
        (he, hd), (pe, pd) = results["handwritten"], results["pynamodb"]
        print(
            f"\nReference: check-free handwritten code is {pe / he:.1f}x (encode) and "
            f"{pd / hd:.1f}x (decode) faster than pynamodb; ours is at "
            f"{ours_enc / he:.2f}x / {ours_dec / hd:.2f}x of it"
        )
    print("\nTargets (DESIGN.md):")
    print("\n".join(line for _, line in checks))
    return 1 if args.check_targets and not all(ok for ok, _ in checks) else 0


if __name__ == "__main__":
    raise SystemExit(main())
