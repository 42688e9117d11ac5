"""The ``payments`` load-test scenario: a short run of ``python -m dynamorm_async.loadtest
--scenario payments`` through the real command line, and its steps checked against the
stored payments."""

from __future__ import annotations

import json
import random
from pathlib import Path

from dynamorm_async import DynamoClient
from dynamorm_async.binding import Binding
from dynamorm_async.db import Database
from dynamorm_async.loadtest.cli import main
from dynamorm_async.loadtest.scenarios import ScenarioSettings, make_scenario
from dynamorm_async.loadtest.scenarios.payments import DECLINE_ABOVE, PaymentsScenario
from dynamorm_async.payments import PaymentStatus, delete_payment_tables, ensure_payment_tables


def test_payments_run_through_the_command_line(
    dynamodb_endpoint: str, table_name: str, tmp_path: Path
) -> None:
    out, png = tmp_path / "result.json", tmp_path / "latency.png"
    argv = ["--endpoint", dynamodb_endpoint, "--scenario", "payments", "--count", "12"]
    argv += ["--concurrency", "4", "--seed", "3", "--keys", "20", "--quiet"]
    argv += ["--table-prefix", table_name + "-", "--json", str(out), "--plot", str(png)]
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["steps"] == 12 and doc["errors"] == 0
    latency = doc["latency"]
    assert latency["create"]["count"] == latency["authorize"]["count"] == 12
    declined = 12 - latency["capture"]["count"]
    assert latency["refund"]["count"] == latency["capture"]["count"] > 0
    assert doc["operations"] == 12 * 4 - 2 * declined
    assert doc["parameters"]["scenario_parameters"]["customers"] == 20
    tables = doc["tables"]
    assert len(tables["created"]) == 6 and tables["deleted"] == tables["created"]
    assert png.read_bytes().startswith(b"\x89PNG")


async def test_steps_leave_consistent_payments(dynamodb_endpoint: str, table_name: str) -> None:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as client:
        binding = Binding(client, table_name + "-")
        await ensure_payment_tables(binding)
        try:
            scenario = make_scenario("payments", ScenarioSettings(keys=5))
            assert isinstance(scenario, PaymentsScenario)
            await scenario.setup(Database(binding))
            rng = random.Random(5)
            for _ in range(10):
                samples = await scenario.step(rng)
                assert all(s.error is None for s in samples)
            proc = scenario.processor
            for p in await proc.payments.scan().to_list():
                if p.amount > DECLINE_ABOVE:
                    assert p.status is PaymentStatus.FAILED
                    continue
                assert p.status is PaymentStatus.PARTIALLY_REFUNDED
                assert 0 < p.refunded_amount < p.captured_amount == p.amount
                assert (await proc.verify(p.payment_id)).length == 4
        finally:
            await delete_payment_tables(binding)
