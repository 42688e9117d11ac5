"""``python -m dynamorm_async.loadtest`` against the test backend: short bounded runs,
the JSON result and PNG plot, injected faults reported by class, Ctrl-C, tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dynamorm_async import DynamoClient
from dynamorm_async.binding import Binding
from dynamorm_async.db import Database
from dynamorm_async.loadtest.capacity import CapacityMeter, CostMeterAdapter
from dynamorm_async.loadtest.cli import main
from dynamorm_async.loadtest.engine import LoadEngine
from dynamorm_async.loadtest.report import result_json
from dynamorm_async.loadtest.runner import LoadTestConfig, run_load_test
from dynamorm_async.loadtest.scenarios import ScenarioSettings
from dynamorm_async.loadtest.scenarios.mixed import MixedItem, MixedScenario
from dynamorm_async.tables import delete_table, ensure_table
from dynamorm_async.testing.faults import Fault, FaultProxy

from .test_loadtest_units import decode_png

REPO = Path(__file__).resolve().parents[1]
LATENCY_KEYS = {"count", "errors", "min_ms", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


async def table_exists(endpoint: str, name: str) -> bool:
    async with DynamoClient(endpoint_url=endpoint, region="us-east-1") as client:
        names: list[str] = (await client.list_tables())["TableNames"]
        return name in names


def test_mixed_run_writes_json_and_plot(
    dynamodb_endpoint: str, table_name: str, tmp_path: Path
) -> None:
    out, png = tmp_path / "result.json", tmp_path / "latency.png"
    argv = ["--endpoint", dynamodb_endpoint, "--scenario", "mixed", "--duration", "2"]
    argv += ["--concurrency", "6", "--seed", "7", "--read-ratio", "0.6", "--quiet"]
    argv += ["--table-prefix", table_name + "-", "--json", str(out), "--plot", str(png)]
    started = time.monotonic()
    assert main(argv) == 0
    assert time.monotonic() - started < 60
    doc = load(out)
    params = doc["parameters"]
    assert params["scenario"] == "mixed" and params["concurrency"] == 6
    assert params["seed"] == 7 and params["duration_s"] == 2.0 and params["count"] is None
    assert params["scenario_parameters"]["read_ratio"] == 0.6
    assert doc["stopped_by"] == "duration" and doc["interrupted"] is False
    assert 2.0 <= doc["elapsed_s"] < 2.0 + 10  # in-flight steps may drain for up to 10 s
    assert doc["errors"] == 0 and doc["errors_by_class"] == {}
    assert set(doc["latency"]) == {"get", "query", "put", "update"}
    for stats in doc["latency"].values():
        assert set(stats) == LATENCY_KEYS | {"errors_by_class"}
        assert stats["count"] > 0
        assert stats["min_ms"] <= stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"]
        assert stats["p99_ms"] <= stats["max_ms"]
    total = sum(s["count"] for s in doc["latency"].values())
    assert total == doc["operations"] == doc["steps"]
    assert doc["throughput_ops_per_s"] == pytest.approx(total / doc["elapsed_s"], rel=0.01)
    assert 0 < doc["client_cpu_s"] < 2 * doc["elapsed_s"] and doc["client_cpu_us_per_op"] > 0
    cap = doc["capacity"]
    assert "on-demand" in cap["pricing"]["table"]
    assert cap["read_units"] > 0 and cap["write_units"] > 0
    assert cap["metered_requests"] >= total
    expected = (cap["read_units"] * 0.125 + cap["write_units"] * 0.625) / 1e6
    assert cap["estimated_cost_usd"] == pytest.approx(expected, rel=1e-3)
    assert set(cap["by_table"]) == {f"{table_name}-mixed_items"}
    assert set(cap["by_operation"]) == {"GetItem", "Query", "PutItem", "UpdateItem"}
    assert doc["tables"] == {
        "created": [f"{table_name}-mixed_items"],
        "deleted": [f"{table_name}-mixed_items"],
    }
    assert doc["plot"] == str(png)
    width, height, rows = decode_png(png.read_bytes())
    assert (width, height) == (1000, 760) and len(rows) == height


def test_count_bound_and_summary(
    dynamodb_endpoint: str, table_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    argv = ["--endpoint", dynamodb_endpoint, "--count", "60", "--concurrency", "4"]
    argv += ["--table-prefix", table_name + "-", "--json", str(out)]
    assert main(argv) == 0
    doc = load(out)
    assert doc["stopped_by"] == "count" and doc["steps"] == 60 and doc["operations"] == 60
    printed = capsys.readouterr().out
    assert "| operation | ok | errors | p50 ms | p95 ms | p99 ms | max ms |" in printed
    assert "throughput:" in printed and "errors: none" in printed and "client CPU:" in printed
    assert "consumed capacity:" in printed and "estimated cost $" in printed
    assert "  GetItem: " in printed and " RRU, " in printed


def test_batch_run(dynamodb_endpoint: str, table_name: str, tmp_path: Path) -> None:
    out, png = tmp_path / "batch.json", tmp_path / "batch.png"
    argv = ["--endpoint", dynamodb_endpoint, "--scenario", "batch", "--duration", "2"]
    argv += ["--concurrency", "4", "--batch-size", "30", "--keys", "400", "--quiet"]
    argv += ["--table-prefix", table_name + "-", "--json", str(out), "--plot", str(png)]
    assert main(argv) == 0
    doc = load(out)
    assert doc["parameters"]["scenario_parameters"]["batch_size"] == 30
    assert doc["stopped_by"] == "duration" and doc["errors"] == 0
    assert set(doc["latency"]) == {"batch_get", "batch_write"}
    assert all(s["count"] > 0 for s in doc["latency"].values())
    assert doc["tables"]["deleted"] == [f"{table_name}-batch_items"]
    decode_png(png.read_bytes())


async def test_meters_agree_on_a_real_run(dynamodb_endpoint: str, table_name: str) -> None:
    """The load test's own meter and the toolkit's CostMeter, both observing one run,
    count the same units (the seam can switch between them without changing results)."""
    pytest.importorskip("dynamorm_async.cost")
    from dynamorm_async.cost import CostMeter

    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as client:
        binding = Binding(client, table_name + "-")
        await ensure_table(binding, MixedItem)
        try:
            scenario = MixedScenario(ScenarioSettings(read_ratio=0.5, keys=200))
            await scenario.setup(Database(binding))
            engine = LoadEngine(scenario, concurrency=4, count=150)
            with CapacityMeter() as own, CostMeterAdapter(CostMeter()) as toolkit:
                await engine.run()
        finally:
            await delete_table(binding, MixedItem)
    a, b = own.report(), toolkit.report()
    assert a.read_units > 0 and a.write_units > 0
    assert (a.read_units, a.write_units) == (b.read_units, b.write_units)
    assert a.metered_requests == b.metered_requests >= 150
    assert a.estimated_cost_usd == pytest.approx(b.estimated_cost_usd)
    assert (
        set(a.by_operation) == set(b.by_operation) == {"GetItem", "Query", "PutItem", "UpdateItem"}
    )


async def test_faults_are_reported_by_error_class(dynamodb_endpoint: str, table_name: str) -> None:
    """With retries off, every injected fault surfaces as one error of its class."""
    async with FaultProxy(dynamodb_endpoint) as proxy:

        def arm(engine: LoadEngine) -> None:  # after setup: faults hit the timed run only
            proxy.inject(
                *[Fault.throttle(only="GetItem")] * 3,
                *[Fault.server_error(only="UpdateItem")] * 2,
                Fault.reset_before(only="Query"),
            )

        config = LoadTestConfig(
            endpoint=proxy.endpoint_url,
            duration=2.5,
            concurrency=4,
            max_attempts=1,
            table_prefix=table_name + "-",
            settings=ScenarioSettings(read_ratio=0.6, keys=300),
        )
        result = await run_load_test(config, on_engine=arm)
        assert proxy.pending == 0
    doc = result_json(result)
    assert doc["errors_by_class"] == {
        "ThrottlingException": 3,
        "InternalServerError": 2,
        "TransportError": 1,
    }
    assert doc["errors"] == 6
    lat = doc["latency"]
    assert lat["get"]["errors_by_class"] == {"ThrottlingException": 3}
    assert lat["update"]["errors_by_class"] == {"InternalServerError": 2}
    assert lat["query"]["errors_by_class"] == {"TransportError": 1}
    assert lat["put"]["errors"] == 0
    assert doc["operations"] == sum(s["count"] + s["errors"] for s in lat.values())


async def test_retried_faults_are_not_errors(dynamodb_endpoint: str, table_name: str) -> None:
    """With the client's default retries, throttles slow calls down but do not fail them."""
    async with FaultProxy(dynamodb_endpoint) as proxy:
        config = LoadTestConfig(
            endpoint=proxy.endpoint_url,
            count=40,
            concurrency=2,
            table_prefix=table_name + "-",
            settings=ScenarioSettings(read_ratio=1.0, keys=100),
        )
        result = await run_load_test(
            config, on_engine=lambda e: proxy.inject(*[Fault.throttle(only="GetItem")] * 4)
        )
        assert proxy.pending == 0
    assert result.outcome.stats.errors == 0 and result.outcome.steps == 40


async def test_existing_table_is_kept(dynamodb_endpoint: str, table_name: str) -> None:
    prefix = table_name + "-"
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as client:
        await ensure_table(client, MixedItem, prefix=prefix)
        try:
            config = LoadTestConfig(
                endpoint=dynamodb_endpoint, count=20, concurrency=2, table_prefix=prefix
            )
            result = await run_load_test(config)
            assert result.tables_created == () and result.tables_deleted == ()
            assert await table_exists(dynamodb_endpoint, f"{prefix}mixed_items")
        finally:
            await delete_table(client, MixedItem, prefix=prefix)


def test_payments_scenario_runs(dynamodb_endpoint: str, table_name: str) -> None:
    argv = ["--endpoint", dynamodb_endpoint, "--scenario", "payments", "--count", "2"]
    assert main([*argv, "--quiet", "--table-prefix", table_name + "-"]) == 0


def test_bad_options_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--concurrency", "0"],
        ["--duration", "-1"],
        ["--read-ratio", "1.5"],
        ["--scenario", "batch", "--keys", "10", "--batch-size", "20"],
        ["--json", "/nonexistent-dir/r.json"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "must be" in err and "keys must be >= batch_size" in err
    assert "directory does not exist" in err


def _cli(*args: str, endpoint: str | None) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "dynamorm_async.loadtest", *args]
    if endpoint is not None:
        argv += ["--endpoint", endpoint]
    return subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_ctrl_c_stops_cleanly_with_partial_results(
    dynamodb_endpoint: str, table_name: str, tmp_path: Path
) -> None:
    out, png = tmp_path / "r.json", tmp_path / "p.png"
    proc = _cli(
        "--duration", "120", "--concurrency", "4", "--progress",
        "--table-prefix", table_name + "-", "--json", str(out), "--plot", str(png),
        endpoint=dynamodb_endpoint,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = ""
        deadline = time.monotonic() + 60
        while " ops " not in line and time.monotonic() < deadline:  # the run has started
            line = proc.stderr.readline()
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
        assert time.monotonic() - sent < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "stopped by interrupt" in stdout
    doc = load(out)
    assert doc["interrupted"] is True and doc["stopped_by"] == "interrupt"
    assert doc["operations"] > 0 and doc["elapsed_s"] < 60
    assert doc["tables"]["deleted"] == [f"{table_name}-mixed_items"]
    decode_png(png.read_bytes())


@pytest.mark.ddblocal_only
def test_starts_dynamodb_local_by_itself(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNAMORM_TEST")}
    argv = [sys.executable, "-m", "dynamorm_async.loadtest", "--count", "30", "--quiet"]
    proc = subprocess.run(
        [*argv, "--json", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    doc = load(out)
    assert doc["steps"] == 30 and doc["parameters"]["endpoint"].startswith("http://127.0.0.1:")
