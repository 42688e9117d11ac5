"""Partner isolation under load: 50 partners, 500 concurrent tasks, checked on the wire.

A recording proxy sits in front of moto's STS and another in front of DynamoDB. From
the bytes alone the test learns which access key STS issued for which role, then checks
every DynamoDB request: signed with the key issued to the partner whose data the request
carries, addressed to that partner's prefixed tables, and to no one else's.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable

import attrs

from dynamorm_async.batch_keys import key
from dynamorm_async.db import Database
from dynamorm_async.partners import Partner, PartnerRegistry
from dynamorm_async.repository import Repository
from dynamorm_async.tables import delete_table, ensure_table
from dynamorm_async.testing.recorder import Exchange, RecordingProxy

from .test_partners import BASE, Note, ddb, issued_keys, role, sts, sts_endpoint

__all__ = ["ddb", "sts", "sts_endpoint"]  # fixtures shared with test_partners

PARTNERS = 50
TASKS = 500
_NAMED = re.compile(rb"ptn\d\d")


def make_registry(
    sts: RecordingProxy, ddb: RecordingProxy, table_name: str, count: int, same_prefix: bool
) -> PartnerRegistry:
    partners = [
        Partner(
            f"ptn{i:02d}",
            role(i),
            endpoint_url=ddb.endpoint_url,
            region="us-east-1",
            table_prefix=f"{table_name}-" if same_prefix else f"{table_name}-ptn{i:02d}-",
        )
        for i in range(count)
    ]
    return PartnerRegistry(partners, sts_endpoint_url=sts.endpoint_url, base_credentials=BASE)


def mismatches(
    sts: RecordingProxy, exchanges: Iterable[Exchange], registry: PartnerRegistry
) -> list[str]:
    """Every DynamoDB request whose signing key, tables or data belong to different
    partners (or to none)."""
    by_role = {p.role_arn: p for p in registry.partners}
    owners = {}
    for ex, issued in zip(sts.by_operation("AssumeRole"), issued_keys(sts), strict=True):
        owners[issued] = by_role[ex.form["RoleArn"]]
    bad = []
    for ex in exchanges:
        owner = owners.get(ex.access_key or "")
        named = {m.decode() for m in _NAMED.findall(ex.body)}
        if (
            owner is None
            or not ex.tables
            or not all(t.startswith(owner.table_prefix) for t in ex.tables)
            or named != {owner.name}
        ):
            who = owner.name if owner else None
            bad.append(f"{ex.operation} key={ex.access_key} owner={who} named={named}")
    return bad


async def test_fifty_partners_five_hundred_tasks(
    sts: RecordingProxy, ddb: RecordingProxy, table_name: str
) -> None:
    """500 tasks over 50 partners (each with a child task inheriting its scope): every
    request carries its partner's STS key and prefix. Not one mismatch."""
    registry = make_registry(sts, ddb, table_name, PARTNERS, same_prefix=False)
    repo = Repository(Note, registry)
    names = [p.name for p in registry.partners]

    async def setup(name: str) -> None:
        async with registry.use(name):
            await ensure_table(registry, Note)

    async def task(i: int) -> None:
        name = names[i % PARTNERS]
        async with registry.use(name):
            await asyncio.sleep(0)  # interleave with the other partners' tasks
            await repo.put(Note(name, f"task{i:03d}", text=name))
            got = await repo.get(owner=name, note_id=f"task{i:03d}", consistent=True)
            assert got is not None and got.text == name
            child = asyncio.create_task(listing(name))
        owners = await child  # finishes after the scope closed: it kept the partner
        assert owners == {name}

    async def listing(name: str) -> set[str]:
        await asyncio.sleep(0)
        return {n.owner async for n in repo.query(Note.owner == name)}

    await asyncio.gather(*(setup(n) for n in names))
    try:
        await asyncio.gather(*(task(i) for i in range(TASKS)))
    finally:
        await asyncio.gather(*(_drop(registry, n) for n in names))
    assert len(sts.by_operation("AssumeRole")) == PARTNERS  # single-flight per partner
    assert all(s.sts_calls == 1 for s in registry.all_stats().values())
    load = [ex for ex in ddb.exchanges if ex.operation in ("PutItem", "GetItem", "Query")]
    assert len(load) == 3 * TASKS and all(ex.status == 200 for ex in load)
    assert len(set(issued_keys(sts))) == PARTNERS
    assert mismatches(sts, ddb.exchanges, registry) == []
    await registry.aclose()


async def _drop(registry: PartnerRegistry, name: str) -> None:
    async with registry.use(name):
        await delete_table(registry, Note)


async def test_each_account_sees_only_its_own_tables(
    sts: RecordingProxy, ddb: RecordingProxy, table_name: str
) -> None:
    """Two partners with the same table prefix in different accounts: each has its own
    table and data (moto separates accounts; DynamoDB Local separates access keys)."""
    registry = make_registry(sts, ddb, table_name, 2, same_prefix=True)
    repo = Repository(Note, registry)
    async with registry.use("ptn00"):
        assert (await ensure_table(registry, Note)).created
        await repo.put(Note("ptn00", "secret", text="ptn00"))
    switch = len(ddb.exchanges)
    async with registry.use("ptn01"):
        assert (await ensure_table(registry, Note)).created  # not ptn00's table
        assert await repo.get(owner="ptn00", note_id="secret", consistent=True) is None
    key0, key1 = issued_keys(sts)
    assert key0 != key1
    assert {ex.access_key for ex in ddb.exchanges[:switch]} == {key0}
    assert {ex.access_key for ex in ddb.exchanges[switch:]} == {key1}
    for name in ("ptn00", "ptn01"):
        await _drop(registry, name)
    await registry.aclose()


async def test_batches_and_transactions_follow_the_partner(
    sts: RecordingProxy, ddb: RecordingProxy, table_name: str
) -> None:
    """Batch writes and gets, write and get transactions resolve the partner's binding."""
    registry = make_registry(sts, ddb, table_name, 5, same_prefix=False)
    db = Database(registry)
    names = [p.name for p in registry.partners]

    async def work(name: str) -> None:
        async with registry.use(name):
            await ensure_table(registry, Note)
            report = await db.batch().write(puts=[Note(name, f"b{j:02d}") for j in range(30)])
            report.raise_for_failures()
            keys = [key(Note, owner=name, note_id=f"b{j:02d}") for j in (0, 29)]
            found = await db.batch().get(keys, consistent=True)
            assert [n.owner for n in found.found] == [name, name]
            async with db.transaction() as tx:
                tx.create(Note(name, "tx1", text=name))
                tx.create(Note(name, "tx2", text=name))
            (got,) = await db.transact_get(key(Note, owner=name, note_id="tx1"))
            assert got is not None and got.text == name

    try:
        await asyncio.gather(*(work(n) for n in names))
    finally:
        await asyncio.gather(*(_drop(registry, n) for n in names))
    ops = {ex.operation for ex in ddb.exchanges}
    assert {"BatchWriteItem", "BatchGetItem", "TransactWriteItems", "TransactGetItems"} <= ops
    data = [ex for ex in ddb.exchanges if ex.operation not in ("DescribeTable", "CreateTable")]
    assert mismatches(sts, data, registry) == []
    # The checker is not vacuous: the same request signed with another partner's key fails.
    first, other = data[0], next(ex for ex in data if ex.access_key != data[0].access_key)
    auth = first.headers["authorization"].replace(str(first.access_key), str(other.access_key))
    forged = attrs.evolve(first, headers={**first.headers, "authorization": auth})
    assert len(mismatches(sts, [forged, *data], registry)) == 1
    await registry.aclose()
