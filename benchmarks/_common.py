"""Shared benchmark plumbing: CPU timing, the concurrent driver, subject workers, output.

Each subject runs in a fresh child process of the benchmark script (``--worker
SUBJECT``), so it pays only for its own imports, and the memory one peer keeps (say,
botocore's service models) cannot slow the garbage collector of another. All workers
are started first; then the parent interleaves the timed runs: round *r* runs every
subject once, in a rotated order. On a shared machine a slow spell then hits every
subject alike instead of one, and the ratios stay honest.

Before and after every run, the parent reads the null server's request count: it must
grow by exactly the number of calls the worker reports making, or the run fails.

CPU is ``ru_utime + ru_stime`` of ``getrusage(RUSAGE_SELF)`` in the worker, around the
timed loop only; the server's CPU is in another process. Ratios between subjects are
medians of per-round ratios (:meth:`SubjectResult.ratio_to`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import os
import resource
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import IO, Any, NoReturn, TypedDict

from _nullserver import NullServer

#: One operation of a subject: an awaitable call that returns the decoded answer.
Op = Callable[[], Awaitable[Any]]
#: Builds a subject against an endpoint URL: an async context manager yielding its ``Op``.
SubjectFactory = Callable[[str], AbstractAsyncContextManager[Op]]

_READ_TIMEOUT = 600.0
_UNSET_ENV = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB")


class Row(TypedDict):
    """One result row of ``--json`` output (the protocol of DESIGN.md)."""

    benchmark: str
    subject: str
    metric: str
    value: float
    unit: str


def row(benchmark: str, subject: str, metric: str, value: float, unit: str) -> Row:
    """Build a :class:`Row`, rounding the value to 3 decimals."""
    return Row(
        benchmark=benchmark, subject=subject, metric=metric, value=round(value, 3), unit=unit
    )


@dataclasses.dataclass
class SubjectResult:
    """The timed runs of one subject: CPU and wall seconds per run of ``ops`` operations."""

    subject: str
    ops: int
    cpu_s: list[float] = dataclasses.field(default_factory=list)
    wall_s: list[float] = dataclasses.field(default_factory=list)

    @property
    def cpu_us_per_op(self) -> float:
        """Median client CPU per operation, in microseconds."""
        return statistics.median(self.cpu_s) / self.ops * 1e6

    @property
    def ops_per_s(self) -> float:
        """Median wall-clock throughput."""
        return self.ops / statistics.median(self.wall_s)

    def ratio_to(self, other: SubjectResult) -> float:
        """Median over rounds of (this CPU per op) / (``other``'s CPU per op, same round).

        Runs of one round are close in time, so pairing them cancels most of the drift
        that other load on the machine causes; the median then drops outlier rounds.
        """
        pairs = zip(self.cpu_s, other.cpu_s, strict=True)
        return statistics.median((a / self.ops) / (b / other.ops) for a, b in pairs)

    @property
    def spread(self) -> float:
        """(max - min) / median of the per-run CPU: how noisy the runs were."""
        return (max(self.cpu_s) - min(self.cpu_s)) / statistics.median(self.cpu_s)


def set_bench_credentials() -> None:
    """Dummy credentials and a region for every subject; no profile or IMDS lookups."""
    for name in _UNSET_ENV:
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )


def signed_headers(url: str, region: str, operation: str, body: bytes) -> dict[str, str]:
    """The headers of a real signed request, computed once, for the floor (which never signs).

    The floor sends the same header bytes as a client would; it just does not recompute them.
    """
    from urllib.parse import urlsplit

    from dynamorm_async.wire.credentials import Credentials
    from dynamorm_async.wire.sigv4 import SigV4Signer

    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": f"DynamoDB_20120810.{operation}",
    }
    SigV4Signer(region).sign(
        Credentials("bench", "bench"),
        method="POST",
        host=urlsplit(url).netloc,
        path="/",
        headers=headers,
        body=body,
    )
    return headers


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads), in seconds."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def drive(op: Op, total: int, concurrency: int) -> tuple[float, float]:
    """Run ``op`` ``total`` times from ``concurrency`` tasks; return (CPU s, wall s)."""
    per, extra = divmod(total, concurrency)

    async def loop(n: int) -> None:
        for _ in range(n):
            await op()

    counts = [per + (1 if i < extra else 0) for i in range(concurrency)]
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(loop(n) for n in counts if n))
    return cpu_seconds() - cpu0, time.perf_counter() - wall0


# ---------------------------------------------------------------------------- options


def _positive(kind: Callable[[str], float], zero: bool = False) -> Callable[[str], Any]:
    def parse(text: str) -> float:
        value = kind(text)
        if not (value > 0 or (zero and value == 0)):
            raise argparse.ArgumentTypeError(f"must be {'>=' if zero else '>'} 0, not {text}")
        return value

    return parse


def base_parser(
    description: str, subjects: Sequence[str], *, ops: int, concurrency: int, max_seconds: float
) -> argparse.ArgumentParser:
    """The options every null-server benchmark shares."""
    p = argparse.ArgumentParser(description=description)
    count, seconds = _positive(int), _positive(float)
    for flag, kind, default, text in (
        ("--ops", count, ops, "operations per timed run (upper bound)"),
        ("--repeat", count, 5, "timed runs per subject, interleaved; medians reported"),
        ("--warmup", _positive(int, zero=True), 0, "warm-up operations per subject (0: ops/10)"),
        (
            "--max-seconds",
            seconds,
            max_seconds,
            "CPU budget of a run; slower subjects do fewer ops",
        ),
        ("--concurrency", count, concurrency, "concurrent tasks issuing requests"),
        ("--subjects", str, ",".join(subjects), f"comma-separated, from {list(subjects)}"),
    ):
        p.add_argument(flag, type=kind, default=default, help=text)
    p.add_argument("--json", type=Path, help="write the result rows to this file")
    p.add_argument("--check-targets", action="store_true", help="exit 1 if a target is missed")
    p.add_argument("-v", "--verbose", action="store_true", help="print every run's CPU per op")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    return p


def _forward(args: argparse.Namespace) -> list[str]:
    names = ("ops", "warmup", "max_seconds", "concurrency")
    return [f"--{n.replace('_', '-')}={getattr(args, n)}" for n in names]


# ---------------------------------------------------------------------------- worker side


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _serve(factory: SubjectFactory, check: Callable[[Any], None], args: Any) -> None:
    conc: int = args.concurrency
    warmup: int = args.warmup or max(conc * 4, args.ops // 10)
    min_ops = min(args.ops, conc * 8)
    async with factory(args.url) as op:
        check(await op())
        cpu, _ = await drive(op, warmup, conc)
        per_op = max(cpu / warmup, 1e-7)
        n = max(min_ops, min(args.ops, int(args.max_seconds / per_op)))
        n -= n % conc
        _emit({"ready": True, "ops": n, "requests": 1 + warmup})
        rewarm = conc * 2  # untimed: reopens connections that idled while others ran
        while sys.stdin.readline().strip() == "run":
            await drive(op, rewarm, conc)
            gc.collect()
            cpu, wall = await drive(op, n, conc)
            _emit({"cpu_s": cpu, "wall_s": wall, "requests": rewarm + n})


def worker_main(
    factories: dict[str, SubjectFactory],
    checks: dict[str, Callable[[Any], None]],
    args: argparse.Namespace,
) -> None:
    """Worker side: set ``args.worker`` up, check one answer, warm up, then time runs.

    Protocol on stdin/stdout (one JSON object per line): it prints ``{"ready", "ops",
    "requests"}`` once warm, then for each ``run`` line one timed run of ``ops``
    operations as ``{"cpu_s", "wall_s", "requests"}``. End of input ends it.
    """
    set_bench_credentials()
    asyncio.run(_serve(factories[args.worker], checks[args.worker], args))


# ---------------------------------------------------------------------------- parent side


class _Worker:
    """A worker process seen from the parent."""

    def __init__(self, script: str, subject: str, url: str, argv: Sequence[str]) -> None:
        self.subject = subject
        self._err: IO[bytes] = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [sys.executable, script, "--worker", subject, "--url", url, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            bufsize=0,
        )

    def send(self, line: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(line.encode() + b"\n")
        self._proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        out = self._proc.stdout  # unbuffered: select() sees all that is unread
        assert out is not None
        with selectors.DefaultSelector() as sel:
            sel.register(out, selectors.EVENT_READ)
            while True:
                if not sel.select(_READ_TIMEOUT):
                    self.fail(f"no answer within {_READ_TIMEOUT:.0f} s")
                line = out.readline()
                if not line:
                    self.fail(f"exited with status {self._proc.wait()}")
                if line.startswith(b"{"):
                    message: dict[str, Any] = json.loads(line)
                    return message

    def fail(self, why: str) -> NoReturn:
        self.close()
        self._err.seek(0)
        tail = self._err.read().decode(errors="replace")[-4000:]
        raise SystemExit(f"subject {self.subject!r} failed: {why}\n{tail}")

    def close(self) -> None:
        proc = self._proc
        if proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _counted(server: NullServer, worker: _Worker, command: str | None) -> dict[str, Any]:
    before = server.requests()
    if command is not None:
        worker.send(command)
    message = worker.read()
    sent = server.requests() - before
    if sent != message["requests"]:
        worker.fail(f"reported {message['requests']} calls but the server answered {sent}")
    return message


def measure_subjects(
    script: str, server: NullServer, args: argparse.Namespace, known: Sequence[str]
) -> dict[str, SubjectResult]:
    """Start, warm up and time each subject of ``args.subjects`` (see the module doc)."""
    subjects = [s.strip() for s in args.subjects.split(",") if s.strip()]
    unknown = sorted(set(subjects) - set(known))
    if unknown or not subjects:
        raise SystemExit(f"unknown subject(s) {unknown}; choose from {list(known)}")
    workers: list[_Worker] = []
    results: dict[str, SubjectResult] = {}
    try:
        for subject in subjects:
            print(f"  starting {subject} ...", file=sys.stderr, flush=True)
            worker = _Worker(script, subject, server.url, _forward(args))
            workers.append(worker)
            ready = _counted(server, worker, None)
            results[subject] = SubjectResult(subject, int(ready["ops"]))
        for r in range(args.repeat):
            print(f"  round {r + 1}/{args.repeat}", file=sys.stderr, flush=True)
            for worker in workers[r % len(workers) :] + workers[: r % len(workers)]:
                run = _counted(server, worker, "run")
                results[worker.subject].cpu_s.append(float(run["cpu_s"]))
                results[worker.subject].wall_s.append(float(run["wall_s"]))
    finally:
        for worker in workers:
            worker.close()
    return results


# ---------------------------------------------------------------------------- output


def write_rows(path: Path | None, rows: list[Row]) -> None:
    """Write ``rows`` as a JSON list to ``path`` (if given)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2) + "\n")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table; numeric columns right-aligned."""

    def align(i: int) -> str:
        return "---:" if rows and isinstance(rows[0][i], int | float) else "---"

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(align(i) for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def report(
    title: str, results: dict[str, SubjectResult], headers: Sequence[str], verbose: bool
) -> None:
    """Print the title, the per-subject table (floor ratios paired by round) and the runs."""
    base = results.get("floor")
    table = [
        [
            name,
            res.ops,
            res.cpu_us_per_op,
            f"{res.ratio_to(base):.2f}x" if base else "n/a",
            res.ops_per_s,
            f"{res.spread:.0%}",
        ]
        for name, res in results.items()
    ]
    print(title + "\n")
    print(markdown_table(headers, table))
    if verbose:
        rounds = max(len(r.cpu_s) for r in results.values())
        runs = [[n, *(cpu / r.ops * 1e6 for cpu in r.cpu_s)] for n, r in results.items()]
        print("\nCPU µs per operation, run by run:\n")
        print(markdown_table(["subject", *(f"round {i + 1}" for i in range(rounds))], runs))


def verdict(what: str, ok: bool, detail: str) -> tuple[bool, str]:
    """One line of the target summary, with whether the target is met."""
    return ok, f"- {'met   ' if ok else 'MISSED'} {what}: {detail}"
