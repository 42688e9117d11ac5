"""Audit trail against the real test backend: entries ride in the change's transaction,
a failed change writes none, 1,000-entry chains verify, and tampering through the
low-level client is located at the right entry."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any

import attrs
import pytest

from dynamorm_async import DynamoClient
from dynamorm_async.audit import (
    GENESIS,
    AuditChainBroken,
    AuditEntry,
    AuditTrail,
    ensure_audit_table,
)
from dynamorm_async.crypto import FieldEncryptor, LocalKeyring
from dynamorm_async.db import Database
from dynamorm_async.errors import InvalidInput, TransactionCanceled, TransactionConflict
from dynamorm_async.hooks import observing
from dynamorm_async.model import entity, field
from dynamorm_async.tables import create_table, delete_table

SECRET = b"audit-chain-secret-0123456789abcdef"


@entity(table="accounts", hash_key="account_id", version="version")
@attrs.define(slots=False)
class Account:
    account_id: str
    balance: Decimal
    owner: str = "ada"
    pin: str = field(encrypted=True, default="0000")
    version: int = 0


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(milliseconds=1)
        return self.now


class Ops:
    """Records the operations sent in its scope."""

    def __init__(self) -> None:
        self.ops: list[str] = []
        self.requests: list[Mapping[str, Any]] = []

    def before(self, operation: str, request: Mapping[str, Any]) -> Mapping[str, Any]:
        self.ops.append(operation)
        self.requests.append(request)
        return request

    def after(self, operation: str, request: Mapping[str, Any], response: Any) -> None:
        pass


@pytest.fixture
async def db(dynamodb_endpoint: str, table_name: str) -> AsyncIterator[Database]:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as client:
        prefix = table_name + "-"
        await create_table(client, Account, prefix=prefix)
        await ensure_audit_table(client, prefix=prefix)
        yield Database(client, table_prefix=prefix, sealer=FieldEncryptor(LocalKeyring.generate()))
        await delete_table(client, Account, prefix=prefix)
        await delete_table(client, AuditEntry, prefix=prefix)


async def open_account(db: Database, trail: AuditTrail, account_id: str = "a1") -> Account:
    async with db.transaction() as tx:
        new = tx.create(Account(account_id, Decimal(100))).value
        trail.record(tx, actor="system", action="open", after=new, request_id="req-open")
    stored: Account = new
    return stored


async def deposit(
    db: Database, trail: AuditTrail, acct: Account, amount: int, actor: str = "teller"
) -> Account:
    async with db.transaction() as tx:
        new = tx.update(attrs.evolve(acct, balance=acct.balance + amount)).value
        trail.record(tx, actor=actor, action="deposit", before=acct, after=new)
    stored: Account = new
    return stored


async def test_entry_is_written_in_the_changes_transaction(db: Database) -> None:
    trail = AuditTrail(db, secret=SECRET, clock=Clock())
    seen = Ops()
    with observing(seen):
        acct = await open_account(db, trail)
    # one consistent read of the chain head, then one transaction with all three writes
    assert seen.ops == ["GetItem", "TransactWriteItems"]
    (tx_request,) = [r for op, r in zip(seen.ops, seen.requests, strict=True) if op != "GetItem"]
    kinds = [next(iter(i)) for i in tx_request["TransactItems"]]
    assert kinds == ["Put", "Put", "Put"]  # the account, the entry, the head
    acct = await deposit(db, trail, acct, 50)
    entries = await trail.history("Account#a1").to_list()
    assert [e.seq for e in entries] == [1, 2]
    first, second = entries
    assert (first.actor, first.action, first.entity, first.request_id) == (
        "system",
        "open",
        "Account",
        "req-open",
    )
    assert first.prev_hash == GENESIS and second.prev_hash == first.hash
    assert first.changed()["balance"] == (None, {"N": "100"})
    assert second.changed() == {
        "balance": ({"N": "100"}, {"N": "150"}),
        "version": ({"N": "1"}, {"N": "2"}),
    }
    assert first.changed()["pin"] == (None, {"S": "<encrypted>"})  # never in plaintext
    newest = await trail.history("Account#a1", newest_first=True, limit=1).to_list()
    assert [e.seq for e in newest] == [2]
    report = (await trail.verify_chain("Account#a1")).raise_for_error()
    assert report.ok and report.length == 2
    # another secret cannot vouch for this chain
    forged = await AuditTrail(db, secret=b"x" * 32).verify_chain("Account#a1")
    assert not forged.ok and forged.bad_seq == 1


async def test_failed_change_writes_no_entry(db: Database) -> None:
    trail = AuditTrail(db)
    acct = await open_account(db, trail)
    with pytest.raises(TransactionCanceled) as info:
        async with db.transaction() as tx:
            tx.create(Account("a1", Decimal(5)))  # exists already: the change fails
            trail.record(tx, actor="mallory", action="reopen", after=Account("a1", Decimal(5)))
    assert [r.index for r in info.value.failed] == [0]
    with pytest.raises(TransactionCanceled):
        async with db.transaction() as tx:
            tx.update(attrs.evolve(acct, version=7, balance=Decimal(0)))  # stale version
            trail.record(tx, actor="mallory", action="drain", before=acct, after=acct)
    # a block that raises sends nothing, audit included
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            trail.record(tx, actor="x", action="y", changes={"a": (1, 2)}, aggregate="Account#a1")
            raise RuntimeError("abandoned")
    entries = await trail.history("Account#a1").to_list()
    assert [(e.seq, e.action) for e in entries] == [(1, "open")]
    assert (await trail.verify_chain("Account#a1")).ok


async def test_concurrent_appenders_keep_one_chain(db: Database) -> None:
    trail = AuditTrail(db)
    await open_account(db, trail)

    async def note(i: int) -> bool:
        try:
            async with db.transaction() as tx:
                trail.record(
                    tx,
                    actor=f"w{i}",
                    action="note",
                    changes={"n": (None, i)},
                    aggregate="Account#a1",
                )
        except (TransactionCanceled, TransactionConflict):
            return False
        return True

    results = await asyncio.gather(*(note(i) for i in range(20)))
    assert any(results)
    report = (await trail.verify_chain("Account#a1")).raise_for_error()
    assert report.length == 1 + sum(results)


async def test_thousand_entries_verify_and_tampering_is_located(
    db: Database, dynamodb_backend: str
) -> None:
    # 1,000 entries on DynamoDB Local; moto server's transactions are ~10x slower
    n = 1000 if dynamodb_backend == "ddblocal" else 120
    trail = AuditTrail(db, clock=Clock())  # unkeyed: an attacker can recompute hashes
    acct = await open_account(db, trail)
    for i in range(n - 1):
        acct = await deposit(db, trail, acct, 1, actor=f"teller-{i % 7}")
    agg = "Account#a1"
    report = await trail.verify_chain(agg)
    assert report.ok and report.length == n
    assert acct.balance == Decimal(100 + n - 1)

    client = db.source.binding().client
    table = db.repository(AuditEntry).table_name

    async def raw(seq: int) -> dict[str, Any]:
        out = await client.get_item(
            TableName=table, Key={"aggregate": {"S": agg}, "seq": {"N": str(seq)}}
        )
        item: dict[str, Any] = out["Item"]
        return item

    async def put(item: dict[str, Any]) -> None:
        await client.put_item(TableName=table, Item=item)

    async def delete(seq: int) -> None:
        await client.delete_item(
            TableName=table, Key={"aggregate": {"S": agg}, "seq": {"N": str(seq)}}
        )

    async def broken_at() -> tuple[int | None, str | None]:
        r = await trail.verify_chain(agg)
        return r.bad_seq, r.reason

    mid = n // 2
    original = await raw(mid)
    # an edited entry
    await put({**original, "actor": {"S": "mallory"}})
    assert (await broken_at())[0] == mid
    # an edited entry whose hash was recomputed: the next entry no longer links to it
    forged = {**original, "actor": {"S": "mallory"}}
    forged["hash"] = {"S": trail.entry_hash(forged)}
    await put(forged)
    bad, reason = await broken_at()
    assert bad == mid + 1 and reason is not None and "prev_hash" in reason
    await put(original)
    assert (await trail.verify_chain(agg)).ok
    # an added attribute
    e10 = await raw(10)
    await put({**e10, "note": {"S": "added later"}})
    assert (await broken_at())[0] == 10
    await put(e10)
    # a deleted entry
    gone = await raw(n * 7 // 10)
    await delete(n * 7 // 10)
    bad, reason = await broken_at()
    assert bad == n * 7 // 10 and reason is not None and "missing" in reason
    await put(gone)
    # two entries swapped (contents exchanged under the keys)
    k = n * 3 // 10
    a, b = await raw(k), await raw(k + 1)
    await put({**b, "seq": a["seq"]})
    await put({**a, "seq": b["seq"]})
    assert (await broken_at())[0] == k
    await put(a)
    await put(b)
    # the newest entry deleted: the head still points at it
    last = await raw(n)
    await delete(n)
    assert (await broken_at())[0] == n
    with pytest.raises(AuditChainBroken, match=f"seq {n}"):
        (await trail.verify_chain(agg)).raise_for_error()
    await put(last)
    assert (await trail.verify_chain(agg)).ok


async def test_bad_records(db: Database) -> None:
    trail = AuditTrail(db)
    async with db.transaction() as tx:
        with pytest.raises(InvalidInput, match="actor"):
            trail.record(tx, actor="", action="x", aggregate="A#1")
        with pytest.raises(InvalidInput, match="aggregate"):
            trail.record(tx, actor="a", action="x", changes={"f": (1, 2)})
        with pytest.raises(InvalidInput, match="not both"):
            trail.record(
                tx, actor="a", action="x", after=Account("a", Decimal(1)), changes={"f": (1, 2)}
            )
        with pytest.raises(InvalidInput, match="pair"):
            trail.record(tx, actor="a", action="x", aggregate="A#1", changes={"f": 1})  # type: ignore[dict-item]
    with pytest.raises(InvalidInput, match="32 bytes"):
        AuditTrail(db, secret=b"short")
    empty = await trail.verify_chain("nothing")
    assert empty.ok and empty.length == 0


async def test_several_entries_and_aggregates_in_one_transaction(db: Database) -> None:
    trail = AuditTrail(db, secret=SECRET)
    a = await open_account(db, trail, "a1")
    b = await open_account(db, trail, "b1")
    async with db.transaction() as tx:  # a transfer: two changes, three entries
        new_a = tx.update(attrs.evolve(a, balance=a.balance - 30)).value
        new_b = tx.update(attrs.evolve(b, balance=b.balance + 30)).value
        trail.record(tx, actor="u", action="transfer-out", before=a, after=new_a)
        trail.record(tx, actor="u", action="transfer-in", before=b, after=new_b)
        trail.record(
            tx, actor="u", action="fee", changes={"fee": (None, Decimal(1))}, aggregate="Account#a1"
        )
    assert [(e.seq, e.action) for e in await trail.history("Account#a1").to_list()] == [
        (1, "open"),
        (2, "transfer-out"),
        (3, "fee"),
    ]
    assert [e.action for e in await trail.history("Account#b1").to_list()] == [
        "open",
        "transfer-in",
    ]
    for agg in ("Account#a1", "Account#b1"):
        (await trail.verify_chain(agg)).raise_for_error()
