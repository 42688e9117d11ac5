"""Payments per second and client CPU per payment on DynamoDB Local, against the raw floor.

One *payment* is ``PaymentProcessor.process(request)``: create, authorize and capture,
each one TransactWriteItems (payment, Transaction record, audit entry and head) after a
consistent GetItem of the audit chain's head: 6 requests. Subjects, each in a fresh
process of its own, all against the same DynamoDB Local (started here unless
``--endpoint`` is given):

* ``floor``: the same 6 requests per payment as raw aiohttp POSTs: each body is
  ``orjson.dumps``-ed from a dict, signed with SigV4, sent, and its answer
  ``orjson.loads``-ed. The bodies are the ones our processor sent for a template
  payment, with the payment id, idempotency key and transaction tokens replaced, built
  before the timed loop. The least any client must do for those requests.
* ``client``: the same prebuilt request dicts through ``DynamoClient.call``: what the
  requests alone cost in our client.
* ``dynamorm_async``: ``PaymentProcessor.process`` with a fresh request each time: state
  machine, entity encoding and decoding, expressions, transactions, the audit chain.

Metrics: ``cpu_us_per_payment`` (client process user + system CPU per payment, median of
``--repeat`` interleaved runs) and ``payments_per_s`` (wall clock; DynamoDB Local, which
shares the machine, is most of it). Target: ``dynamorm_async`` <= 3x ``floor``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import orjson
from _common import (
    Row,
    SubjectResult,
    _forward,
    _Worker,
    base_parser,
    drive,
    report,
    row,
    set_bench_credentials,
    verdict,
    write_rows,
)

BENCHMARK = "payments"
REGION = "us-east-1"
PREFIX = "bench-payments-"
MERCHANT = "m-bench"
POOL_SIZE = 64


class Subject(Protocol):
    """A subject in its worker: ``prepare`` (untimed) readies ``n`` payments, ``op`` makes one."""

    requests_per_payment: int

    async def prepare(self, n: int) -> None:
        """Build what the next ``n`` payments need (not timed)."""
        ...

    async def op(self) -> None:
        """Make one payment (timed)."""
        ...


class _Recorder:
    """A request observer keeping (operation, request) of everything sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Mapping[str, Any]]] = []

    def before(self, operation: str, request: Mapping[str, Any]) -> Mapping[str, Any]:
        self.sent.append((operation, request))
        return request

    def after(self, operation: str, request: Mapping[str, Any], response: Any) -> None:
        pass


@contextlib.asynccontextmanager
async def _processor(url: str) -> AsyncIterator[Any]:
    from dynamorm_async import ClientPool
    from dynamorm_async.binding import Binding
    from dynamorm_async.db import Database
    from dynamorm_async.payments import PaymentProcessor

    async with ClientPool(connection_limit=POOL_SIZE) as pool:
        db = Database(Binding(pool.client(endpoint_url=url, region=REGION), PREFIX))
        yield PaymentProcessor(db, actor="bench")


def _request(key: str) -> Any:
    from dynamorm_async.payments import PaymentRequest

    return PaymentRequest(MERCHANT, "c-bench", 1999, "EUR", key)


class _Template:
    """The requests of one payment as our processor sent them, ready to be re-keyed."""

    def __init__(self, sent: list[tuple[str, Mapping[str, Any]]], payment_id: str, key: str):
        self.operations = [op for op, _ in sent]
        self.texts = [orjson.dumps(req).decode() for _, req in sent]
        self.payment_id, self.key = payment_id, key
        self.tokens = [str(req.get("ClientRequestToken", "")) for _, req in sent]

    def payment(self, tag: str) -> list[tuple[str, dict[str, Any]]]:
        """The requests of a new payment (new id, key and tokens)."""
        from dynamorm_async.payments.requests import payment_id_for

        key = f"{tag}-{uuid.uuid4().hex}"
        pid = payment_id_for(MERCHANT, key)
        out = []
        for op, text, token in zip(self.operations, self.texts, self.tokens, strict=True):
            text = text.replace(self.payment_id, pid).replace(self.key, key)
            if token:
                text = text.replace(token, str(uuid.uuid4()))
            out.append((op, orjson.loads(text)))
        return out


async def _record_template(url: str) -> _Template:
    """Process two payments with ours and keep the requests of the second (warm caches)."""
    from dynamorm_async.hooks import observing
    from dynamorm_async.payments.requests import payment_id_for

    async with _processor(url) as proc:
        await proc.process(_request(f"template-{uuid.uuid4().hex}"))
        key = f"template-{uuid.uuid4().hex}"
        recorder = _Recorder()
        with observing(recorder):
            result = await proc.process(_request(key))
        assert result.status.value == "ok", result
    return _Template(recorder.sent, payment_id_for(MERCHANT, key), key)


class _Prebuilt:
    """Shared by ``floor`` and ``client``: payments' request dicts built before timing."""

    def __init__(self, template: _Template, tag: str) -> None:
        self.template = template
        self.tag = tag
        self.requests_per_payment = len(template.operations)
        self.ready: list[list[tuple[str, dict[str, Any]]]] = []

    async def prepare(self, n: int) -> None:
        self.ready = [self.template.payment(self.tag) for _ in range(n)]
        self.ready.reverse()


class Floor(_Prebuilt):
    """Raw aiohttp: dumps, sign, POST, read, loads; every answer must be a 200."""

    def __init__(self, template: _Template, session: Any, url: str) -> None:
        super().__init__(template, "floor")
        from urllib.parse import urlsplit

        from dynamorm_async.wire.credentials import Credentials
        from dynamorm_async.wire.sigv4 import SigV4Signer

        self.session, self.url = session, url
        self.host = urlsplit(url).netloc
        self.signer, self.creds = SigV4Signer(REGION), Credentials("bench", "bench")

    async def op(self) -> None:
        for operation, request in self.ready.pop():
            body = orjson.dumps(request)
            headers = {
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810." + operation,
            }
            self.signer.sign(
                self.creds, method="POST", host=self.host, path="/", headers=headers, body=body
            )
            async with self.session.post(self.url, data=body, headers=headers) as resp:
                out = orjson.loads(await resp.read())
                if resp.status != 200:
                    raise AssertionError(f"floor {operation}: {resp.status} {out}")


class Client(_Prebuilt):
    """Our client, requests only."""

    def __init__(self, template: _Template, client: Any) -> None:
        super().__init__(template, "client")
        self.client = client

    async def op(self) -> None:
        for operation, request in self.ready.pop():
            await self.client.call(operation, request)


class Ours:
    """``PaymentProcessor.process`` of a fresh request; each must come back ``ok``."""

    def __init__(self, proc: Any) -> None:
        self.proc = proc
        self.ids = itertools.count()
        self.run = uuid.uuid4().hex[:8]
        self.requests_per_payment = 0
        self.ready: list[Any] = []

    async def prepare(self, n: int) -> None:
        self.ready = [_request(f"ours-{self.run}-{next(self.ids)}") for _ in range(n)]
        self.ready.reverse()

    async def op(self) -> None:
        result = await self.proc.process(self.ready.pop())
        if result.status.value != "ok":
            raise AssertionError(f"payment not ok: {result}")


@contextlib.asynccontextmanager
async def make_subject(name: str, url: str) -> AsyncIterator[Subject]:
    """The subject ``name`` against ``url``."""
    if name == "dynamorm_async":
        from dynamorm_async.hooks import observing

        async with _processor(url) as proc:
            ours = Ours(proc)
            await ours.prepare(2)
            await ours.op()  # warms the merchant cache
            recorder = _Recorder()
            with observing(recorder):
                await ours.op()
            ours.requests_per_payment = len(recorder.sent)
            yield ours
        return
    template = await _record_template(url)
    if name == "client":
        from dynamorm_async import ClientPool

        async with ClientPool(connection_limit=POOL_SIZE) as pool:
            yield Client(template, pool.client(endpoint_url=url, region=REGION))
        return
    import aiohttp

    connector = aiohttp.TCPConnector(limit=POOL_SIZE, limit_per_host=POOL_SIZE)
    async with aiohttp.ClientSession(
        connector=connector, skip_auto_headers=("Accept-Encoding",), auto_decompress=False
    ) as session:
        yield Floor(template, session, url.rstrip("/") + "/")


SUBJECTS = ("floor", "client", "dynamorm_async")


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _serve(args: Any) -> None:
    conc: int = args.concurrency
    warmup: int = args.warmup or conc * 2
    async with make_subject(args.worker, args.url) as subject:
        await subject.prepare(warmup)
        cpu, _ = await drive(subject.op, warmup, conc)
        per = max(cpu / warmup, 1e-6)
        n = max(min(args.ops, conc * 4), min(args.ops, int(args.max_seconds / per)))
        n -= n % conc
        _emit({"ready": True, "ops": n, "requests": subject.requests_per_payment})
        rewarm = conc
        while sys.stdin.readline().strip() == "run":
            await subject.prepare(rewarm + n)
            await drive(subject.op, rewarm, conc)
            gc.collect()
            cpu, wall = await drive(subject.op, n, conc)
            _emit({"cpu_s": cpu, "wall_s": wall, "requests": subject.requests_per_payment})


async def _setup(url: str) -> list[str]:
    """Create the tables that are missing and the merchant; return the tables created."""
    from dynamorm_async import ClientPool
    from dynamorm_async.binding import Binding
    from dynamorm_async.errors import AlreadyExists
    from dynamorm_async.payments import ensure_payment_tables

    async with ClientPool() as pool, _processor(url) as proc:
        binding = Binding(pool.client(endpoint_url=url, region=REGION), PREFIX)
        reports = await ensure_payment_tables(binding)
        with contextlib.suppress(AlreadyExists):
            await proc.accounts.add_merchant(MERCHANT, "Benchmark merchant")
    return [r.name for r in reports if r.created]


async def _teardown(url: str) -> None:
    from dynamorm_async import ClientPool
    from dynamorm_async.binding import Binding
    from dynamorm_async.payments import delete_payment_tables

    async with ClientPool() as pool:
        await delete_payment_tables(Binding(pool.client(endpoint_url=url, region=REGION), PREFIX))


def measure(url: str, args: Any) -> tuple[dict[str, SubjectResult], dict[str, int]]:
    """Start every subject's worker, then time ``--repeat`` interleaved rounds."""
    subjects = [s.strip() for s in args.subjects.split(",") if s.strip()]
    unknown = sorted(set(subjects) - set(SUBJECTS))
    if unknown or not subjects:
        raise SystemExit(f"unknown subject(s) {unknown}; choose from {list(SUBJECTS)}")
    script = str(Path(__file__).resolve())
    workers: list[_Worker] = []
    results: dict[str, SubjectResult] = {}
    per_payment: dict[str, int] = {}
    try:
        for subject in subjects:
            print(f"  starting {subject} ...", file=sys.stderr, flush=True)
            worker = _Worker(script, subject, url, _forward(args))
            workers.append(worker)
            ready = worker.read()
            results[subject] = SubjectResult(subject, int(ready["ops"]))
            per_payment[subject] = int(ready["requests"])
        for r in range(args.repeat):
            print(f"  round {r + 1}/{args.repeat}", file=sys.stderr, flush=True)
            for worker in workers[r % len(workers) :] + workers[: r % len(workers)]:
                worker.send("run")
                run = worker.read()
                results[worker.subject].cpu_s.append(float(run["cpu_s"]))
                results[worker.subject].wall_s.append(float(run["wall_s"]))
    finally:
        for worker in workers:
            worker.close()
    return results, per_payment


def main() -> int:
    """Parse options; run as the parent (DynamoDB Local, orchestration, report) or a worker."""
    parser = base_parser(
        __doc__.splitlines()[0], list(SUBJECTS), ops=160, concurrency=16, max_seconds=3.0
    )
    parser.set_defaults(repeat=3)
    parser.add_argument("--endpoint", help="a running DynamoDB (default: start DynamoDB Local)")
    args = parser.parse_args()
    set_bench_credentials()
    if args.worker:
        asyncio.run(_serve(args))
        return 0
    with contextlib.ExitStack() as stack:
        url = args.endpoint
        if url is None:
            from dynamorm_async.testing import DynamoDBLocal

            print("  starting DynamoDB Local ...", file=sys.stderr, flush=True)
            url = stack.enter_context(DynamoDBLocal()).endpoint_url
        created = asyncio.run(_setup(url))
        try:
            results, per_payment = measure(url, args)
        finally:
            if args.endpoint is not None and created:
                asyncio.run(_teardown(url))
    rows: list[Row] = []
    for subject, res in results.items():
        rows.append(row(BENCHMARK, subject, "cpu_us_per_payment", res.cpu_us_per_op, "us"))
        rows.append(row(BENCHMARK, subject, "payments_per_s", res.ops_per_s, "1/s"))
    write_rows(args.json, rows)
    title = (
        f"Payments (create + authorize + capture) on DynamoDB Local: {args.concurrency} "
        f"concurrent tasks, median of {args.repeat} interleaved runs; requests per payment: "
        + ", ".join(f"{s} {n}" for s, n in per_payment.items())
    )
    headers = ["subject", "payments/run", "CPU µs/payment", "vs floor", "payments/s", "CPU spread"]
    report(title, results, headers, args.verbose)
    checks = []
    ours, floor = results.get("dynamorm_async"), results.get("floor")
    if ours is not None and floor is not None:
        same = per_payment["dynamorm_async"] == per_payment["floor"]
        ratio = ours.ratio_to(floor)
        checks.append(verdict("same requests per payment as the floor", same, str(per_payment)))
        checks.append(verdict("client CPU per payment <= 3x floor", ratio <= 3.0, f"{ratio:.2f}x"))
    plain = results.get("client")
    if ours is not None and plain is not None:
        checks.append(
            verdict("processor over its bare requests", True, f"{ours.ratio_to(plain):.2f}x")
        )
    if checks:
        print("\nTargets (issue 8; ratios are medians of per-round ratios):")
        print("\n".join(line for _, line in checks))
    return 1 if args.check_targets and not all(ok for ok, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
