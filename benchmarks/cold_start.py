"""Cold start: wall time from process start to the first GetItem done (DynamoDB Local).

Each run is a fresh ``python -c`` process that imports one client library, builds a
client, sends one GetItem for an item that exists, checks the answer and writes one
line to stdout. The parent takes the time from just before ``Popen`` to that line, so
a run covers interpreter start-up, every import, client construction, credential
lookup (environment variables), the TCP connection and the request itself.

Subjects (each a ``-c`` snippet below): ``floor`` (the interpreter alone), ours
(``dynamorm_async``: ``ClientPool().client().get_item``; ``dynamorm_async_lambda``:
the same through ``@lambda_handler`` and an entity ``Repository.get``, as a handler
would), ``aiobotocore``, ``aioboto3``, ``boto3`` and ``aiodynamo`` (their ``get_item``
on a client built the documented way).

Rounds are interleaved: round *r* runs every subject once, in a rotated order, after
one untimed warm-up run per subject (bytecode caches, OS file cache). Reported: the
median ``wall_ms`` per subject and ratios as medians of per-round ratios.

Without ``--endpoint`` it starts DynamoDB Local through :mod:`dynamorm_async.testing`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import Row, markdown_table, row, set_bench_credentials, verdict, write_rows

BENCHMARK = "cold_start"
TABLE = "cold_start"
REGION = "us-east-1"

_ASYNC_MAIN = "import asyncio\n{body}\nasyncio.run(main())\n"

SNIPPETS: dict[str, str] = {
    "floor": "import sys\nsys.stdout.write('done\\n')\n",
    "dynamorm_async": _ASYNC_MAIN.format(
        body="""
from dynamorm_async import ClientPool

async def main():
    pool = ClientPool()
    out = await pool.client(URL, "us-east-1").get_item(
        TableName=TABLE, Key={"pk": {"S": "k"}}
    )
    assert out["Item"]["v"]["S"] == "hello", out
    print("done", flush=True)
    await pool.aclose()
"""
    ),
    "dynamorm_async_lambda": """
from dynamorm_async import ClientPool
from dynamorm_async.aws_lambda import lambda_handler
from dynamorm_async.model import entity
from dynamorm_async.repository import Repository

@entity(table=TABLE, hash_key="pk")
class Thing:
    pk: str
    v: str = ""

pool = ClientPool()

@lambda_handler
async def handler(event, context):
    repo = Repository(Thing, pool.client(URL, "us-east-1"))
    return await repo.get(pk=event["pk"])

assert handler({"pk": "k"}, None).v == "hello"
print("done", flush=True)
""",
    "aiobotocore": _ASYNC_MAIN.format(
        body="""
from aiobotocore.session import get_session

async def main():
    async with get_session().create_client(
        "dynamodb", region_name="us-east-1", endpoint_url=URL
    ) as client:
        out = await client.get_item(TableName=TABLE, Key={"pk": {"S": "k"}})
        assert out["Item"]["v"]["S"] == "hello", out
        print("done", flush=True)
"""
    ),
    "aioboto3": _ASYNC_MAIN.format(
        body="""
import aioboto3

async def main():
    async with aioboto3.Session().client(
        "dynamodb", region_name="us-east-1", endpoint_url=URL
    ) as client:
        out = await client.get_item(TableName=TABLE, Key={"pk": {"S": "k"}})
        assert out["Item"]["v"]["S"] == "hello", out
        print("done", flush=True)
"""
    ),
    "boto3": """
import boto3

client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=URL)
out = client.get_item(TableName=TABLE, Key={"pk": {"S": "k"}})
assert out["Item"]["v"]["S"] == "hello", out
print("done", flush=True)
""",
    "aiodynamo": _ASYNC_MAIN.format(
        body="""
import os
import aiohttp
from aiodynamo.client import Client
from aiodynamo.credentials import EnvironmentCredentials
from aiodynamo.http.aiohttp import AIOHTTP
from yarl import URL as Url

async def main():
    async with aiohttp.ClientSession() as session:
        client = Client(AIOHTTP(session), EnvironmentCredentials(), "us-east-1", endpoint=Url(URL))
        item = await client.get_item(TABLE, {"pk": "k"})
        assert item["v"] == "hello", item
        print("done", flush=True)
"""
    ),
}


def _seed(url: str) -> None:
    """Create the table and its one item (through our client; not timed)."""
    from dynamorm_async import DynamoClient, errors

    async def run() -> None:
        async with DynamoClient(endpoint_url=url, region=REGION) as client:
            try:
                await client.create_table(
                    TableName=TABLE,
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            except errors.ResourceInUse:
                pass
            await client.wait_for_table_active(TABLE)
            await client.put_item(TableName=TABLE, Item={"pk": {"S": "k"}, "v": {"S": "hello"}})

    asyncio.run(run())


def _one_run(subject: str, url: str) -> float:
    """Seconds from just before ``Popen`` to the subject's ``done`` line."""
    code = f"URL = {url!r}\nTABLE = {TABLE!r}\n" + SNIPPETS[subject]
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    took = time.perf_counter() - start
    _, err = proc.communicate(timeout=60)
    if line.strip() != b"done" or proc.returncode != 0:
        raise SystemExit(f"subject {subject!r} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    return took


def _measure(subjects: list[str], url: str, repeat: int) -> dict[str, list[float]]:
    for subject in subjects:
        print(f"  warming up {subject} ...", file=sys.stderr, flush=True)
        _one_run(subject, url)
    runs: dict[str, list[float]] = {s: [] for s in subjects}
    for r in range(repeat):
        print(f"  round {r + 1}/{repeat}", file=sys.stderr, flush=True)
        for subject in subjects[r % len(subjects) :] + subjects[: r % len(subjects)]:
            runs[subject].append(_one_run(subject, url))
    return runs


def _ratio(runs: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of a's time / b's time in the same round."""
    return statistics.median(x / y for x, y in zip(runs[a], runs[b], strict=True))


def main() -> int:
    """Parse options, start DynamoDB Local if needed, time the subjects, report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", help="a running DynamoDB endpoint (default: start DynamoDB Local)")
    p.add_argument("--repeat", type=int, default=15, help="timed rounds (default 15)")
    p.add_argument("--subjects", default=",".join(SNIPPETS), help="comma-separated subjects")
    p.add_argument("--json", type=Path, help="write the result rows to this file")
    p.add_argument("--check-targets", action="store_true", help="exit 1 if a target is missed")
    args = p.parse_args()
    subjects = [s.strip() for s in args.subjects.split(",") if s.strip()]
    unknown = sorted(set(subjects) - set(SNIPPETS))
    if unknown or not subjects or args.repeat < 1:
        raise SystemExit(f"bad --subjects/--repeat; subjects are {list(SNIPPETS)}")
    set_bench_credentials()
    if args.endpoint:
        _seed(args.endpoint)
        runs = _measure(subjects, args.endpoint, args.repeat)
    else:
        from dynamorm_async.testing import DynamoDBLocal

        with DynamoDBLocal() as ddb:
            _seed(ddb.endpoint_url)
            runs = _measure(subjects, ddb.endpoint_url, args.repeat)

    rows: list[Row] = [
        row(BENCHMARK, s, "wall_ms", statistics.median(t) * 1000, "ms") for s, t in runs.items()
    ]
    write_rows(args.json, rows)
    table = []
    for s, t in runs.items():
        line: list[object] = [s, statistics.median(t) * 1000, min(t) * 1000]
        for peer in ("aiobotocore", "aiodynamo"):
            line.append(f"{_ratio(runs, s, peer):.2f}x" if peer in runs else "n/a")
        table.append(line)
    print(
        f"Cold start, process start to first GetItem done (DynamoDB Local), "
        f"median of {args.repeat} interleaved fresh processes\n"
    )
    print(
        markdown_table(["subject", "median ms", "min ms", "vs aiobotocore", "vs aiodynamo"], table)
    )
    checks = []
    for ours in ("dynamorm_async", "dynamorm_async_lambda"):
        if ours not in runs:
            continue
        if "aiobotocore" in runs:
            r = _ratio(runs, ours, "aiobotocore")
            checks.append(verdict(f"{ours} <= 0.5x aiobotocore", r <= 0.5, f"{r:.2f}x"))
        if "aiodynamo" in runs:
            r = _ratio(runs, ours, "aiodynamo")
            checks.append(verdict(f"{ours} <= aiodynamo", r <= 1.0, f"{r:.2f}x"))
    if checks:
        print("\nTargets (DESIGN.md; ratios are medians of per-round ratios):")
        print("\n".join(text for _, text in checks))
    return 1 if args.check_targets and not all(ok for ok, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
