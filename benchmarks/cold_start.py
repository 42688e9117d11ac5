"""Cold start: wall time from process start to the first GetItem done (DynamoDB Local).

Each run is a fresh ``python -c`` process that imports one client library, builds a
client, sends one GetItem for an item that exists, checks the answer and writes one
line to stdout. The parent takes the time from just before ``Popen`` to that line, so
a run covers interpreter start-up, every import, client construction, credential
lookup (environment variables), the TCP connection and the request itself.

Subjects (each a ``-c`` snippet below): ``python`` (the interpreter alone), ``floor``
(raw aiohttp: one POST of a pre-signed GetItem, ``orjson.loads`` of the answer; what
any aiohttp-based client pays at least), ours
(``dynamorm_async``: ``ClientPool().client().get_item``; ``dynamorm_async_lambda``:
the same through ``@lambda_handler`` and an entity ``Repository.get``, as a handler
would; ``dynamorm_async_lambda_stdlib``: that handler on ``ClientPool(http="stdlib")``,
the asyncio-streams transport that never imports aiohttp), ``aiobotocore``,
``aioboto3``, ``boto3`` and ``aiodynamo`` (their ``get_item`` on a client built the
documented way).

Rounds are interleaved: round *r* runs every subject once, in a rotated order, after
one untimed warm-up run per subject, which fills the OS file cache and writes the
bytecode caches (``PYTHONDONTWRITEBYTECODE`` is dropped for the children: installed
peers ship ``.pyc`` files, and a deployed package has them too). Reported: the
median ``wall_ms`` per subject (the target's metric) and ``cpu_ms``, the child's own
user + system CPU up to that point (steadier than wall time on a busy machine), with
ratios as medians of per-round ratios.

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

import orjson
from _common import (
    Row,
    markdown_table,
    row,
    set_bench_credentials,
    signed_headers,
    verdict,
    write_rows,
)

BENCHMARK = "cold_start"
TABLE = "cold_start"
REGION = "us-east-1"

_ASYNC_MAIN = "import asyncio\n{body}\nasyncio.run(main())\n"
#: Put before every snippet: ``_done()`` reports the first GetItem done, with the CPU used.
_PRELUDE = """
def _done():
    import resource, sys
    r = resource.getrusage(resource.RUSAGE_SELF)
    sys.stdout.write("done %.3f\\n" % ((r.ru_utime + r.ru_stime) * 1000))
    sys.stdout.flush()
"""

SNIPPETS: dict[str, str] = {
    "python": "_done()\n",
    "floor": _ASYNC_MAIN.format(
        body="""
import aiohttp, orjson

async def main():
    async with aiohttp.ClientSession() as session:
        async with session.post(URL, data=BODY, headers=HEADERS) as resp:
            out = orjson.loads(await resp.read())
        assert out["Item"]["v"]["S"] == "hello", out
        _done()
"""
    ),
    "dynamorm_async": _ASYNC_MAIN.format(
        body="""
from dynamorm_async import ClientPool

async def main():
    pool = ClientPool()
    out = await pool.client(URL, "us-east-1").get_item(
        TableName=TABLE, Key={"pk": {"S": "k"}}
    )
    assert out["Item"]["v"]["S"] == "hello", out
    _done()
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
_done()
""",
    "dynamorm_async_lambda_stdlib": """
from dynamorm_async import ClientPool
from dynamorm_async.aws_lambda import lambda_handler
from dynamorm_async.model import entity
from dynamorm_async.repository import Repository

@entity(table=TABLE, hash_key="pk")
class Thing:
    pk: str
    v: str = ""

pool = ClientPool(http="stdlib")

@lambda_handler
async def handler(event, context):
    repo = Repository(Thing, pool.client(URL, "us-east-1"))
    return await repo.get(pk=event["pk"])

assert handler({"pk": "k"}, None).v == "hello"
_done()
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
        _done()
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
        _done()
"""
    ),
    "boto3": """
import boto3

client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=URL)
out = client.get_item(TableName=TABLE, Key={"pk": {"S": "k"}})
assert out["Item"]["v"]["S"] == "hello", out
_done()
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
        _done()
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


def _one_run(subject: str, url: str) -> tuple[float, float]:
    """(Seconds from just before ``Popen`` to the ``done`` line, the child's CPU ms by then)."""
    body = orjson.dumps({"TableName": TABLE, "Key": {"pk": {"S": "k"}}})
    headers = signed_headers(url, REGION, "GetItem", body)
    code = (
        f"URL = {url!r}\nTABLE = {TABLE!r}\nBODY = {body!r}\nHEADERS = {headers!r}\n"
        + _PRELUDE
        + SNIPPETS[subject]
    )
    env = os.environ.copy()
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # every subject runs from cached bytecode
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    took = time.perf_counter() - start
    _, err = proc.communicate(timeout=60)
    word, _, cpu = line.decode().partition(" ")
    if word != "done" or proc.returncode != 0:
        raise SystemExit(f"subject {subject!r} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    return took, float(cpu)


Runs = dict[str, list[float]]


def _measure(subjects: list[str], url: str, repeat: int) -> tuple[Runs, Runs]:
    """Per subject, the wall ms and the CPU ms of each timed run (rounds interleaved)."""
    for subject in subjects:
        print(f"  warming up {subject} ...", file=sys.stderr, flush=True)
        _one_run(subject, url)
    wall: Runs = {s: [] for s in subjects}
    cpu: Runs = {s: [] for s in subjects}
    for r in range(repeat):
        print(f"  round {r + 1}/{repeat}", file=sys.stderr, flush=True)
        for subject in subjects[r % len(subjects) :] + subjects[: r % len(subjects)]:
            seconds, cpu_ms = _one_run(subject, url)
            wall[subject].append(seconds * 1000)
            cpu[subject].append(cpu_ms)
    return wall, cpu


def _ratio(runs: Runs, a: str, b: str) -> float:
    """Median over rounds of a's value / b's value in the same round."""
    return statistics.median(x / y for x, y in zip(runs[a], runs[b], strict=True))


def _table(wall: Runs, cpu: Runs) -> str:
    peers = [p for p in ("floor", "aiobotocore", "aiodynamo") if p in wall]
    headers = ["subject", "wall ms", "min wall ms", "CPU ms"]
    headers += [f"wall vs {p}" for p in peers] + [f"CPU vs {p}" for p in peers]
    table = []
    for s in wall:
        line: list[object] = [
            s,
            statistics.median(wall[s]),
            min(wall[s]),
            statistics.median(cpu[s]),
        ]
        line += [f"{_ratio(wall, s, p):.2f}x" for p in peers]
        line += [f"{_ratio(cpu, s, p):.2f}x" for p in peers]
        table.append(line)
    return markdown_table(headers, table)


def _targets(wall: Runs) -> list[tuple[bool, str]]:
    checks = []
    for ours in ("dynamorm_async", "dynamorm_async_lambda", "dynamorm_async_lambda_stdlib"):
        if ours not in wall:
            continue
        if "aiobotocore" in wall:
            r = _ratio(wall, ours, "aiobotocore")
            checks.append(verdict(f"{ours} <= 0.5x aiobotocore", r <= 0.5, f"{r:.2f}x"))
        if "aiodynamo" in wall:
            r = _ratio(wall, ours, "aiodynamo")
            checks.append(verdict(f"{ours} <= aiodynamo", r <= 1.0, f"{r:.2f}x"))
    return checks


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
        wall, cpu = _measure(subjects, args.endpoint, args.repeat)
    else:
        from dynamorm_async.testing import DynamoDBLocal

        with DynamoDBLocal() as ddb:
            _seed(ddb.endpoint_url)
            wall, cpu = _measure(subjects, ddb.endpoint_url, args.repeat)

    rows: list[Row] = []
    for s in wall:
        rows.append(row(BENCHMARK, s, "wall_ms", statistics.median(wall[s]), "ms"))
        rows.append(row(BENCHMARK, s, "cpu_ms", statistics.median(cpu[s]), "ms"))
    write_rows(args.json, rows)
    print(
        "Cold start, process start to first GetItem done (DynamoDB Local), "
        f"median of {args.repeat} interleaved fresh processes\n"
    )
    print(_table(wall, cpu))
    checks = _targets(wall)
    if checks:
        print("\nTargets (DESIGN.md, on wall time; ratios are medians of per-round ratios):")
        print("\n".join(text for _, text in checks))
    return 1 if args.check_targets and not all(ok for ok, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
