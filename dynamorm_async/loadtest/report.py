"""The results of a load test: the JSON document and the printed summary."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import __version__
from .runner import LoadTestResult

__all__ = ["format_summary", "plot_title", "result_json", "write_json"]


def result_json(result: LoadTestResult, *, plot: str | Path | None = None) -> dict[str, Any]:
    """The JSON document of a run: parameters, latency per operation (ms), throughput,
    errors by class, consumed capacity and estimated cost, tables, plot path."""
    outcome = result.outcome
    stats = outcome.stats
    elapsed = outcome.elapsed
    return {
        "tool": "dynamorm_async.loadtest",
        "version": __version__,
        "parameters": {
            **result.config.parameters(),
            "scenario_parameters": result.scenario_parameters,
        },
        "started_at": result.started_at.isoformat().replace("+00:00", "Z"),
        "setup_s": round(result.setup_seconds, 3),
        "elapsed_s": round(elapsed, 3),
        "stopped_by": outcome.stopped_by,
        "interrupted": outcome.stopped_by == "interrupt",
        "steps": outcome.steps,
        "operations": stats.operations,
        "errors": stats.errors,
        "throughput_ops_per_s": round(stats.operations / elapsed, 2) if elapsed > 0 else 0.0,
        "steps_per_s": round(outcome.steps / elapsed, 2) if elapsed > 0 else 0.0,
        "client_cpu_s": round(result.client_cpu_seconds, 3),
        "client_cpu_us_per_op": (
            round(result.client_cpu_seconds / stats.operations * 1e6, 1)
            if stats.operations
            else None
        ),
        "latency": {s.operation: s.to_json() for s in stats.summary()},
        "errors_by_class": stats.errors_by_class(),
        "capacity": result.capacity.to_json(),
        "tables": {
            "created": list(result.tables_created),
            "deleted": list(result.tables_deleted),
        },
        "plot": None if plot is None else str(plot),
    }


def write_json(path: str | Path, document: dict[str, Any]) -> Path:
    """Write ``document`` to ``path`` atomically (a reader never sees half a file)."""
    out = Path(path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out


def plot_title(result: LoadTestResult) -> str:
    """The title of the PNG plot."""
    o = result.outcome
    rate = o.stats.operations / o.elapsed if o.elapsed > 0 else 0.0
    return (
        f"{result.config.scenario}: {result.config.concurrency} workers, {o.elapsed:.1f} s, "
        f"{o.stats.operations:,} ops, {rate:,.0f} ops/s"
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_summary(result: LoadTestResult) -> str:
    """The end-of-run summary: a table of latency per operation, then throughput,
    errors by class, and consumed capacity with its estimated cost."""
    o = result.outcome
    cfg = result.config
    stats = o.stats
    lines = [
        f"scenario {cfg.scenario} against {cfg.endpoint}: {cfg.concurrency} workers, "
        f"seed {cfg.seed}, stopped by {o.stopped_by} after {o.elapsed:.2f} s",
        "",
        "| operation | ok | errors | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in stats.summary():
        lines.append(
            f"| {s.operation} | {s.count:,} | {s.errors:,} | {_ms(s.p50_ms)} | "
            f"{_ms(s.p95_ms)} | {_ms(s.p99_ms)} | {_ms(s.max_ms)} |"
        )
    rate = stats.operations / o.elapsed if o.elapsed > 0 else 0.0
    lines += [
        "",
        f"throughput: {rate:,.1f} ops/s ({stats.operations:,} operations in {o.steps:,} steps)",
    ]
    if stats.operations:
        per_op = result.client_cpu_seconds / stats.operations * 1e6
        lines.append(
            f"client CPU: {result.client_cpu_seconds:.2f} s ({per_op:,.0f} us per operation)"
        )
    by_class = stats.errors_by_class()
    lines.append(
        "errors: "
        + (", ".join(f"{name} {n:,}" for name, n in by_class.items()) if by_class else "none")
    )
    cap = result.capacity
    lines.append(
        f"consumed capacity: {cap.read_units:,.1f} read units, {cap.write_units:,.1f} write "
        f"units in {cap.metered_requests:,} requests; estimated cost ${cap.estimated_cost_usd:.6f} "
        f"({cap.pricing}: ${cap.price_per_million_reads:g}/M reads, "
        f"${cap.price_per_million_writes:g}/M writes)"
    )
    for op, u in sorted(cap.by_operation.items()):
        lines.append(
            f"  {op}: {int(u['requests']):,} requests, {u['read']:,.1f} RRU, "
            f"{u['write']:,.1f} WRU, ${u['usd']:.6f}"
        )
    return "\n".join(lines)
