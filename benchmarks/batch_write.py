"""Batch write of 20,000 items to DynamoDB Local: items per second, ours against the peers.

Subjects, each run in a fresh child process that writes every item into a fresh table:

* ``dynamorm_async``: ``Database.batch().write(puts=entities)`` (entities encoded by the
  repository; 25-item requests, ``--concurrency`` in flight, unprocessed items retried
  with backoff).
* ``aioboto3``: the ``Table`` resource's ``batch_writer()`` (plain dicts, one request at a
  time, as aioboto3 documents it).
* ``boto3``: the ``Table`` resource's ``batch_writer()`` (sync, one request at a time).

The items are payment-like (10 attributes, about 300 bytes), built before the clock
starts. A worker first writes 100 of them untimed (connections, imports and the server's
code paths warm), then times writing all of them. The parent checks that the table then
holds exactly ``--items`` items, and runs ``--repeat`` rounds, rotating the order of the
subjects in each round. Metric: ``items_per_s`` (median over rounds); ratios are medians
of per-round ratios. DynamoDB Local is started through ``dynamorm_async.testing`` unless
``--endpoint`` is given. Run with ``--help`` for the options.
"""

# No ``from __future__ import annotations``: the entity is declared inside a function (only
# our worker imports our model), so its annotations must be real objects.

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import (
    Row,
    cpu_seconds,
    markdown_table,
    row,
    set_bench_credentials,
    verdict,
    write_rows,
)

BENCHMARK = "batch_write"
REGION = "us-east-1"
SUBJECTS = ("dynamorm_async", "aioboto3", "boto3")
WARMUP = 100
BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def values(i: int) -> dict[str, Any]:
    """The ``i``-th payment as plain values (strings, Decimals, ints, a map)."""
    return {
        "pk": f"MERCHANT#m-{i % 50:04d}",
        "sk": f"PAYMENT#{i:08d}",
        "payment_id": str(uuid.UUID(int=(i + 1) * 0x9E3779B97F4A7C15 % (1 << 128))),
        "customer": f"c-{(i * 7919) % 100_000:06d}",
        "amount": Decimal(f"{(i * 1234) % 100_000 / 100:.2f}"),
        "currency": ("EUR", "USD", "GBP")[i % 3],
        "status": ("PENDING", "CAPTURED", "REFUNDED")[i % 3],
        "created_at": BASE + timedelta(seconds=97 * i),
        "version": 1 + i % 4,
        "meta": {"order_id": f"o-{i:08d}", "channel": "web"},
    }


# ---------------------------------------------------------------------------- subjects


async def run_ours(url: str, table: str, n: int, concurrency: int) -> tuple[float, float]:
    """Ours: entities through ``Database.batch().write``; (wall s, CPU s) of the timed write."""
    from dynamorm_async import DynamoClient
    from dynamorm_async.db import Database
    from dynamorm_async.model import entity

    @entity(table=table, hash_key="pk", range_key="sk")
    class Payment:
        pk: str
        sk: str
        payment_id: str
        customer: str
        amount: Decimal
        currency: str
        status: str
        created_at: datetime
        version: int
        meta: dict[str, str]

    objs = [Payment(**values(i)) for i in range(n)]
    async with DynamoClient(endpoint_url=url, region=REGION) as client:
        batch = Database(client).batch(concurrency=concurrency)
        (await batch.write(puts=objs[:WARMUP])).raise_for_failures()
        start, cpu = time.perf_counter(), cpu_seconds()
        report = await batch.write(puts=objs)
        took, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        report.raise_for_failures()
    return took, cpu


def _plain(i: int) -> dict[str, Any]:
    v = values(i)
    v["created_at"] = v["created_at"].isoformat()
    return v


async def run_aioboto3(url: str, table: str, n: int, concurrency: int) -> tuple[float, float]:
    """aioboto3: ``Table.batch_writer()`` with plain dicts; (wall s, CPU s)."""
    import aioboto3

    items = [_plain(i) for i in range(n)]
    session = aioboto3.Session()
    async with session.resource("dynamodb", endpoint_url=url, region_name=REGION) as ddb:
        t = await ddb.Table(table)
        async with t.batch_writer() as w:
            for it in items[:WARMUP]:
                await w.put_item(Item=it)
        start, cpu = time.perf_counter(), cpu_seconds()
        async with t.batch_writer() as w:
            for it in items:
                await w.put_item(Item=it)
        return time.perf_counter() - start, cpu_seconds() - cpu


def run_boto3(url: str, table: str, n: int) -> tuple[float, float]:
    """boto3: ``Table.batch_writer()`` with plain dicts; (wall s, CPU s)."""
    import boto3

    items = [_plain(i) for i in range(n)]
    t = boto3.resource("dynamodb", endpoint_url=url, region_name=REGION).Table(table)
    with t.batch_writer() as w:
        for it in items[:WARMUP]:
            w.put_item(Item=it)
    start, cpu = time.perf_counter(), cpu_seconds()
    with t.batch_writer() as w:
        for it in items:
            w.put_item(Item=it)
    return time.perf_counter() - start, cpu_seconds() - cpu


def worker(args: argparse.Namespace) -> None:
    """Write ``--items`` items with one subject; print ``{"seconds": ..., "cpu_s": ...}``."""
    set_bench_credentials()
    subject, url, table, n = args.worker, args.url, args.table, args.items
    if subject == "dynamorm_async":
        took, cpu = asyncio.run(run_ours(url, table, n, args.concurrency))
    elif subject == "aioboto3":
        took, cpu = asyncio.run(run_aioboto3(url, table, n, args.concurrency))
    else:
        took, cpu = run_boto3(url, table, n)
    print(json.dumps({"seconds": took, "cpu_s": cpu}), flush=True)


# ---------------------------------------------------------------------------- parent


async def _admin(url: str, action: Callable[[Any], Any]) -> Any:
    from dynamorm_async import DynamoClient

    async with DynamoClient(endpoint_url=url, region=REGION) as client:
        return await action(client)


def create(url: str, table: str) -> None:
    """Create the (pk, sk) table and wait until it is active."""

    async def go(client: Any) -> None:
        await client.create_table(
            TableName=table,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        await client.wait_for_table_active(table)

    asyncio.run(_admin(url, go))


def count_and_drop(url: str, table: str) -> int:
    """How many items the table holds (consistent scan count); then delete it."""

    async def go(client: Any) -> int:
        total, start = 0, None
        while True:
            req: dict[str, Any] = {"TableName": table, "Select": "COUNT", "ConsistentRead": True}
            if start:
                req["ExclusiveStartKey"] = start
            out = await client.scan(**req)
            total += out["Count"]
            start = out.get("LastEvaluatedKey")
            if not start:
                break
        await client.delete_table(TableName=table)
        return int(total)

    result: int = asyncio.run(_admin(url, go))
    return result


@dataclasses.dataclass
class Runs:
    """One subject's runs: items/s, client CPU µs per item and server CPU µs per item."""

    items_per_s: list[float] = dataclasses.field(default_factory=list)
    client_us: list[float] = dataclasses.field(default_factory=list)
    server_us: list[float] = dataclasses.field(default_factory=list)


def process_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux), or ``None``."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(
    script: str, url: str, subject: str, args: argparse.Namespace, tag: str, pid: int | None
) -> tuple[float, float, float | None]:
    """Write the items with ``subject`` into a fresh table; check and drop it.

    Returns items/s, client CPU µs per item (timed region) and server CPU µs per item
    (the server's CPU over the worker's whole life, when its pid is known).
    """
    table = f"bench-{subject}-{tag}"
    create(url, table)
    cmd = [sys.executable, script, "--worker", subject, "--url", url, "--table", table]
    cmd += ["--items", str(args.items), "--concurrency", str(args.concurrency)]
    server0 = process_cpu(pid)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    server1 = process_cpu(pid)
    if proc.returncode != 0:
        raise SystemExit(f"subject {subject} failed:\n{proc.stderr[-4000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    stored = count_and_drop(url, table)
    if stored != args.items:
        raise SystemExit(f"subject {subject} left {stored} items, expected {args.items}")
    n = args.items
    server = None if server0 is None or server1 is None else (server1 - server0) / n * 1e6
    return n / float(out["seconds"]), float(out["cpu_s"]) / n * 1e6, server


def measure(
    url: str, args: argparse.Namespace, subjects: list[str], pid: int | None
) -> dict[str, Runs]:
    """Warm the server up, then run every subject ``--repeat`` times, rotating the order."""
    script = str(Path(__file__).resolve())
    print("  warming the server up ...", file=sys.stderr, flush=True)
    run_one(script, url, "dynamorm_async", args, "warmup", pid)
    runs = {s: Runs() for s in subjects}
    for r in range(args.repeat):
        print(f"  round {r + 1}/{args.repeat}", file=sys.stderr, flush=True)
        for subject in subjects[r % len(subjects) :] + subjects[: r % len(subjects)]:
            rate, client, server = run_one(script, url, subject, args, str(r), pid)
            runs[subject].items_per_s.append(rate)
            runs[subject].client_us.append(client)
            if server is not None:
                runs[subject].server_us.append(server)
    return runs


def main() -> int:
    """Parse options; run as the parent (server, tables, report) or as one worker."""
    from dynamorm_async.sizing import default_batch_concurrency

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", help="a running DynamoDB Local (default: start one)")
    p.add_argument("--server-pid", type=int, help="its pid, to report its CPU per item")
    p.add_argument("--items", type=int, default=20_000, help="items per run")
    p.add_argument("--repeat", type=int, default=3, help="rounds; medians reported")
    p.add_argument("--concurrency", type=int, default=default_batch_concurrency())
    p.add_argument("--subjects", default=",".join(SUBJECTS), help=f"from {list(SUBJECTS)}")
    p.add_argument("--json", type=Path, help="write the result rows to this file")
    p.add_argument("--check-targets", action="store_true", help="exit 1 if a target is missed")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--table", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return 0
    subjects = [s.strip() for s in args.subjects.split(",") if s.strip()]
    if not subjects or set(subjects) - set(SUBJECTS) or args.items < 1 or args.repeat < 1:
        raise SystemExit(f"choose subjects from {list(SUBJECTS)}, items and repeat >= 1")
    set_bench_credentials()
    if args.endpoint:
        runs = measure(args.endpoint.rstrip("/"), args, subjects, args.server_pid)
    else:
        from dynamorm_async.testing import DynamoDBLocal

        with DynamoDBLocal() as server:
            runs = measure(server.endpoint_url, args, subjects, server.pid)
    return report(runs, args)


def report(runs: dict[str, Runs], args: argparse.Namespace) -> int:
    """Print the table and the target verdict; write the rows."""
    med = statistics.median
    rows: list[Row] = []
    for s, r in runs.items():
        rows.append(row(BENCHMARK, s, "items_per_s", med(r.items_per_s), "items/s"))
        rows.append(row(BENCHMARK, s, "cpu_us_per_item", med(r.client_us), "us"))
    write_rows(args.json, rows)
    ours = runs.get("dynamorm_async")

    def ratio(s: str) -> str:
        if ours is None:
            return "n/a"
        pairs = zip(ours.items_per_s, runs[s].items_per_s, strict=True)
        return f"{med(a / b for a, b in pairs):.2f}x"

    table = [
        [
            s,
            med(r.items_per_s),
            min(r.items_per_s),
            max(r.items_per_s),
            ratio(s),
            med(r.client_us),
            med(r.server_us) if r.server_us else "n/a",
        ]
        for s, r in runs.items()
    ]
    print(
        f"Batch write of {args.items:,} items to DynamoDB Local, {args.repeat} interleaved "
        f"rounds (ours: concurrency {args.concurrency})\n"
    )
    headers = [
        "subject",
        "items/s (median)",
        "min",
        "max",
        "ours / subject",
        "client CPU µs/item",
        "server CPU µs/item",
    ]
    print(markdown_table(headers, table))
    checks = []
    if ours is not None and "aioboto3" in runs:
        text = ratio("aioboto3")
        ok = float(text[:-1]) >= 3
        checks.append(verdict(">= 3x aioboto3 batch_writer items/s", ok, text))
    if checks:
        print("\nTargets (DESIGN.md; ratios are medians of per-round ratios):")
        print("\n".join(line for _, line in checks))
    return 1 if args.check_targets and not all(ok for ok, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
