"""CostMeter against the real test backend: the metered capacity equals what the server
reports, known unit counts, partner labels, nesting, and the price arithmetic."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any

import attrs
import pytest

from dynamorm_async import DynamoClient
from dynamorm_async.cost import (
    HOURS_PER_MONTH,
    US_EAST_1_ON_DEMAND,
    US_EAST_1_PROVISIONED,
    CostMeter,
    OnDemandPrices,
    ProvisionedPrices,
    Usage,
    partner_label,
)
from dynamorm_async.errors import InvalidInput
from dynamorm_async.hooks import observing
from dynamorm_async.model import GSI, entity
from dynamorm_async.repository import Repository
from dynamorm_async.tables import create_table, delete_table


@entity(
    table="ledger",
    hash_key="account",
    range_key="seq",
    indexes=[GSI("by_kind", hash_key="kind", range_key="seq")],
)
@attrs.define(slots=False)
class Entry:
    account: str
    seq: int
    kind: str
    amount: Decimal
    memo: str = ""


class Reported:
    """An outer observer keeping every ConsumedCapacity the server returned."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, Mapping[str, Any]]] = []
        self.asked: list[Any] = []

    def before(self, operation: str, request: Mapping[str, Any]) -> Mapping[str, Any]:
        return request

    def after(
        self, operation: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        self.asked.append(request.get("ReturnConsumedCapacity"))
        cc = response.get("ConsumedCapacity")
        for e in [cc] if isinstance(cc, Mapping) else cc or []:
            self.entries.append((operation, e))

    def per_table(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for _, e in self.entries:
            out[e["TableName"]] = out.get(e["TableName"], 0.0) + float(e["CapacityUnits"])
        return out


@pytest.fixture
async def repo(dynamodb_endpoint: str, table_name: str) -> AsyncIterator[Repository[Entry]]:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as client:
        prefix = table_name + "-"
        await create_table(client, Entry, prefix=prefix)
        yield Repository(Entry, client, table_prefix=prefix)
        await delete_table(client, Entry, prefix=prefix)


async def workload(repo: Repository[Entry]) -> None:
    client, table = repo.client, repo.table_name
    for i in range(5):
        await repo.put(Entry("a#1", i, "credit" if i % 2 else "debit", Decimal(i)))
    await repo.put(Entry("a#1", 99, "big", Decimal(1), memo="x" * 5000))
    await repo.get(account="a#1", seq=1)
    await repo.get(account="a#1", seq=1, consistent=True)
    await repo.get(account="a#1", seq=99, consistent=True)
    await repo.query(Entry.account == "a#1").to_list()  # type: ignore[arg-type]
    await repo.query(Entry.kind == "credit", index="by_kind").to_list()  # type: ignore[arg-type]
    await repo.update({"account": "a#1", "seq": 1}, Entry.memo.set("m"))  # type: ignore[attr-defined]
    await repo.delete({"account": "a#1", "seq": 2})
    await repo.scan().to_list()
    await client.batch_write_item(
        RequestItems={
            table: [
                {"PutRequest": {"Item": repo.meta.encode(Entry("b#1", i, "x", Decimal(0)))}}
                for i in range(3)
            ]
        }
    )
    await client.batch_get_item(
        RequestItems={table: {"Keys": [{"account": {"S": "b#1"}, "seq": {"N": "0"}}]}}
    )
    await client.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": table,
                    "Item": repo.meta.encode(Entry("c#1", 1, "t", Decimal(1))),
                }
            },
            {
                "Update": {
                    "TableName": table,
                    "Key": {"account": {"S": "a#1"}, "seq": {"N": "3"}},
                    "UpdateExpression": "SET memo = :m",
                    "ExpressionAttributeValues": {":m": {"S": "tx"}},
                }
            },
        ]
    )
    await client.transact_get_items(
        TransactItems=[
            {"Get": {"TableName": table, "Key": {"account": {"S": "c#1"}, "seq": {"N": "1"}}}}
        ]
    )
    await client.describe_table(TableName=table)  # not metered


@pytest.mark.xfail_moto(
    reason="moto reports an index query's capacity under both Table and an index, "
    "so its parts add up to more than its CapacityUnits total"
)
async def test_meter_matches_the_reported_capacity(repo: Repository[Entry]) -> None:
    reported = Reported()
    with observing(reported), CostMeter() as meter:
        await workload(repo)
    table = repo.table_name
    assert set(reported.asked) == {"INDEXES", None}  # asked for on every metered call
    assert reported.asked.count(None) == 1  # DescribeTable
    per_table = reported.per_table()
    metered = meter.by("table")
    assert set(metered) == {table}
    t = metered[table]
    assert t.read_units + t.write_units == pytest.approx(per_table[table])
    # per operation, what each answer said
    by_op: dict[str, float] = {}
    for op, e in reported.entries:
        by_op[op] = by_op.get(op, 0.0) + float(e["CapacityUnits"])
    for op, units in by_op.items():
        u = meter.by("operation")[op]
        assert u.read_units + u.write_units == pytest.approx(units), op
    ops = meter.by("operation")
    assert ops["PutItem"].requests == 6 and ops["GetItem"].requests == 3
    assert ops["TransactWriteItems"].requests == 1 and "DescribeTable" not in ops
    assert meter.total().requests == sum(u.requests for u in ops.values()) == 18
    reads = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
    for op, u in ops.items():
        assert (u.write_units == 0) if op in reads else (u.read_units == 0), op


@pytest.mark.ddblocal_only
async def test_known_unit_counts(repo: Repository[Entry]) -> None:
    """DynamoDB's rules: 1 WCU per KB written (table and each index holding the item),
    0.5 RCU per 4 KB read eventually consistent, 1 strongly consistent."""
    with CostMeter() as meter:
        await repo.put(Entry("a#1", 1, "k", Decimal(1)))
    assert meter.by("index") == {None: Usage(0, 0.0, 1.0), "by_kind": Usage(0, 0.0, 1.0)}
    for consistent, units in ((False, 0.5), (True, 1.0)):
        with CostMeter() as meter:
            await repo.get(account="a#1", seq=1, consistent=consistent)
        assert meter.total() == Usage(1, units, 0.0)
    with CostMeter() as meter:
        await repo.put(Entry("a#1", 2, "k", Decimal(1), memo="x" * 4500))  # < 5 KB
    assert meter.by("index")[None].write_units == 5.0
    with CostMeter() as meter:
        await repo.query(Entry.kind == "k", index="by_kind").to_list()  # type: ignore[arg-type]
    assert meter.by("index")["by_kind"].read_units == 1.0  # 2 items, ~5 KB: 2 blocks / 2


async def test_partner_labels_and_nesting(repo: Repository[Entry]) -> None:
    current: contextvars.ContextVar[str | None] = contextvars.ContextVar("p", default=None)
    with CostMeter(label_fn=current.get) as outer:
        await repo.put(Entry("a#1", 1, "k", Decimal(1)))
        with CostMeter(label_fn=current.get) as inner:
            token = current.set("acme")
            await repo.put(Entry("a#1", 2, "k", Decimal(1)))
            await repo.get(account="a#1", seq=2)
            current.reset(token)
        await repo.get(account="a#1", seq=1)
    assert inner.total().requests == 2
    assert outer.total().requests == 4  # the outer meter saw the inner scope too
    parts = outer.by("partner")
    assert parts["acme"].requests == 2 and parts[None].requests == 2
    assert parts["acme"].write_units == parts[None].write_units
    # outside any scope nothing is asked or metered
    await repo.get(account="a#1", seq=1)
    assert outer.total().requests == 4
    # a meter can be entered again and keeps adding
    with outer:
        await repo.get(account="a#1", seq=1)
    assert outer.total().requests == 5


def test_partner_label_reads_a_registry() -> None:
    @attrs.frozen
    class P:
        name: str

    class Registry:
        def __init__(self) -> None:
            self.now: P | None = None

        def current(self) -> P | None:
            return self.now

    reg = Registry()
    label = partner_label(reg)
    assert label() is None
    reg.now = P("acme")
    assert label() == "acme"


def test_price_arithmetic() -> None:
    million = Usage(1, 1e6, 1e6)
    assert million.cost(US_EAST_1_ON_DEMAND) == pytest.approx(0.125 + 0.625)
    hour_of_one_unit = Usage(1, 3600, 3600)  # one RCU and one WCU busy for an hour
    assert hour_of_one_unit.cost(US_EAST_1_PROVISIONED) == pytest.approx(0.00013 + 0.00065)
    assert hour_of_one_unit.cost(ProvisionedPrices(utilization=0.5)) == pytest.approx(
        2 * (0.00013 + 0.00065)
    )
    with pytest.raises(InvalidInput):
        ProvisionedPrices(utilization=0)
    cheap = OnDemandPrices(read_request_unit=1.0, write_request_unit=10.0)
    assert Usage(0, 2, 3).cost(cheap) == 32.0


async def test_estimates_per_operation_request_and_month(repo: Repository[Entry]) -> None:
    flat = OnDemandPrices(read_request_unit=1.0, write_request_unit=10.0, label="test")
    with CostMeter(prices=flat) as meter:
        await repo.put(Entry("a#1", 1, "k", Decimal(1)))
        await repo.get(account="a#1", seq=1)
        await repo.get(account="a#1", seq=1)
    ops = meter.by("operation")
    put_cost = ops["PutItem"].write_units * 10.0
    get_cost = ops["GetItem"].read_units * 1.0
    assert meter.cost(operation="PutItem") == pytest.approx(put_cost)
    assert meter.cost() == pytest.approx(put_cost + get_cost)
    assert meter.cost_per_request("GetItem") == pytest.approx(get_cost / 2)
    assert meter.cost_per_request() == pytest.approx((put_cost + get_cost) / 3)
    assert meter.projected_monthly(10.0) == pytest.approx(
        (put_cost + get_cost) / 3 * 10 * HOURS_PER_MONTH * 3600
    )
    assert meter.projected_monthly(1.0, operation="PutItem") == pytest.approx(
        put_cost * HOURS_PER_MONTH * 3600
    )
    assert meter.cost_per_request("Scan") == 0.0
    text = meter.report()
    assert repo.table_name in text and "PutItem" in text and "**total** (3 requests)" in text
    assert "CostMeter(requests=3" in repr(meter)
    meter.reset()
    assert meter.total() == Usage()
    with pytest.raises(InvalidInput):
        meter.by("colour")  # type: ignore[arg-type]
