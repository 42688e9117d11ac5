"""``python -m dynamorm_async.loadtest``: the command line of the load test.

    python -m dynamorm_async.loadtest --scenario mixed --concurrency 32 --duration 30 \\
        --json result.json --plot latency.png

Without ``--endpoint`` it starts DynamoDB Local itself (and stops it at the end).
Exit status: 0 done, 1 failed, 2 bad usage or scenario not available here,
130 stopped by Ctrl-C (the partial results are still printed and written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import DynamormError
from .plot import write_plot
from .progress import ProgressBar
from .report import format_summary, plot_title, result_json, write_json
from .runner import LoadTestConfig, LoadTestResult, run_load_test
from .scenarios import SCENARIOS, ScenarioUnavailable, scenario_class
from .scenarios.base import ScenarioSettings

__all__ = ["build_parser", "config_from_args", "main"]

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {text}")
    return value


def _ratio(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m dynamorm_async.loadtest",
        description="Async load test of dynamorm-async against DynamoDB (or a local one).",
    )
    p.add_argument("--endpoint", help="DynamoDB endpoint URL (default: start DynamoDB Local)")
    p.add_argument("--region", default="us-east-1", help="region to sign for (us-east-1)")
    p.add_argument(
        "--scenario",
        choices=list(SCENARIOS),
        default="mixed",
        help="payments: the PaymentProcessor; mixed: get/query/put/update; "
        "batch: BatchExecutor gets and writes (default: mixed)",
    )
    p.add_argument(
        "--concurrency", type=_positive_int, default=16, metavar="N", help="workers (16)"
    )
    p.add_argument(
        "--duration",
        type=_positive_float,
        metavar="SECONDS",
        help="stop after SECONDS (default 30 when --count is not given either)",
    )
    p.add_argument(
        "--count", type=_positive_int, metavar="N", help="stop after N steps (whichever is first)"
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (1)")
    p.add_argument("--json", metavar="PATH", help="write the JSON result here")
    p.add_argument("--plot", metavar="PATH", help="write the PNG latency plot here")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    p.add_argument(
        "--progress", action="store_true", help="show progress even when stderr is not a TTY"
    )
    p.add_argument("--table-prefix", default="loadtest-", help="table name prefix (loadtest-)")
    p.add_argument("--keep-tables", action="store_true", help="keep the tables this run created")
    p.add_argument(
        "--max-attempts",
        type=_positive_int,
        help="client attempts per request (default: the client's; 1 shows every fault)",
    )
    p.add_argument("--read-ratio", type=_ratio, default=0.8, help="share of read steps (0.8)")
    p.add_argument("--keys", type=_positive_int, default=1000, help="key space size (1000)")
    p.add_argument("--item-size", type=_positive_int, default=200, help="payload bytes (200)")
    p.add_argument("--batch-size", type=_positive_int, default=25, help="batch: keys per call (25)")
    return p


def config_from_args(args: argparse.Namespace, endpoint: str) -> LoadTestConfig:
    """The run configuration of parsed arguments, against ``endpoint``."""
    return LoadTestConfig(
        endpoint=endpoint,
        scenario=args.scenario,
        region=args.region,
        concurrency=args.concurrency,
        duration=args.duration,
        count=args.count,
        seed=args.seed,
        table_prefix=args.table_prefix,
        keep_tables=args.keep_tables,
        max_attempts=args.max_attempts,
        settings=ScenarioSettings(
            read_ratio=args.read_ratio,
            keys=args.keys,
            item_size=args.item_size,
            batch_size=args.batch_size,
            seed=args.seed,
        ),
    )


@contextlib.contextmanager
def _endpoint(args: argparse.Namespace) -> Iterator[str]:
    """The endpoint to use: the given one, or a DynamoDB Local started for the run.
    Local endpoints get dummy credentials unless some are set."""
    url: str = args.endpoint or ""
    if url and (urlsplit(url).hostname or "") not in _LOCAL_HOSTS:
        yield url
        return
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "loadtest")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "loadtest")
    if url:
        yield url
        return
    from ..testing import DynamoDBLocal

    if not args.quiet:
        print("starting DynamoDB Local ...", file=sys.stderr)
    with DynamoDBLocal() as server:
        yield server.endpoint_url


def _finish(result: LoadTestResult, args: argparse.Namespace) -> None:
    plot = None
    if args.plot:
        plot = write_plot(
            args.plot, result.outcome.stats, result.outcome.elapsed, plot_title(result)
        )
    if args.json:
        write_json(args.json, result_json(result, plot=plot))
    if not args.quiet:
        print(format_summary(result))
        written = [
            f"{what}: {path}" for what, path in (("json", args.json), ("plot", plot)) if path
        ]
        if written:
            print("wrote " + ", ".join(written))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for option in ("json", "plot"):  # fail before the run, not after it
        path = getattr(args, option)
        if path and not Path(path).resolve().parent.is_dir():
            parser.error(f"--{option} {path}: the directory does not exist")
    try:  # fail before starting any server
        scenario_class(args.scenario)(config_from_args(args, "").settings)
    except ScenarioUnavailable as exc:
        print(f"error: scenario {args.scenario!r} is not available: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        parser.error(f"--scenario {args.scenario}: {exc}")
    show = not args.quiet and (args.progress or sys.stderr.isatty())
    bar = ProgressBar(args.scenario) if show else None
    try:
        with _endpoint(args) as endpoint:
            config = config_from_args(args, endpoint)
            result = asyncio.run(
                run_load_test(
                    config,
                    progress=bar,
                    progress_interval=bar.interval if bar is not None else 0.25,
                    handle_signals=True,
                )
            )
            _finish(result, args)
    except KeyboardInterrupt:
        print("interrupted before the run started", file=sys.stderr)
        return 130
    except (DynamormError, OSError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 130 if result.outcome.stopped_by == "interrupt" else 0
