"""Write transactions and transact_get against the real backend (and through the fault
proxy for conflicts): actions across entities and tables, per-action cancellation
reasons, versions and timestamps, limits, tokens, hooks and raw actions."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
import pytest

from dynamorm_async import DynamoClient, RetryPolicy, errors
from dynamorm_async.attrvalue import to_item
from dynamorm_async.batch_keys import key
from dynamorm_async.db import Database
from dynamorm_async.model import entity
from dynamorm_async.tables import create_table, delete_table
from dynamorm_async.testing.faults import Fault, FaultProxy
from dynamorm_async.transactions import Transaction
from dynamorm_async.transactions_errors import TransactionTooLarge, TxCanceled

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)


@entity(
    table="accounts",
    hash_key="id",
    version="version",
    created_at="created_at",
    updated_at="updated_at",
)
class Account:
    id: str
    balance: Decimal = Decimal(0)
    owner: str = ""
    version: int = 0
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@entity(table="audit", hash_key="stream", range_key="seq")
class Audit:
    stream: str
    seq: int
    what: str = ""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
async def proxy(dynamodb_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(dynamodb_endpoint) as p:
        yield p


@pytest.fixture
async def client(proxy: FaultProxy) -> AsyncIterator[DynamoClient]:
    async with DynamoClient(endpoint_url=proxy.endpoint_url, region="us-east-1") as c:
        yield c


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def db(client: DynamoClient, table_name: str, clock: Clock) -> AsyncIterator[Database]:
    prefix = table_name + "-"
    for cls in (Account, Audit):
        await create_table(client, cls, prefix=prefix)
    yield Database(client, table_prefix=prefix, clock=clock)
    for cls in (Account, Audit):
        await delete_table(client, cls, prefix=prefix)


def acct(id: str, balance: int = 0, **kw: Any) -> Account:
    return Account(id, Decimal(balance), **kw)


async def test_actions_across_entities_and_tables(db: Database, clock: Clock) -> None:
    async with db.transaction() as tx:
        a = tx.create(acct("a", 100))
        tx.create(acct("b", 5))
        tx.put(Audit("s", 1, "opened"))
        tx.put(Audit("s", 0, "root"))
    assert tx.committed and len(tx.token) == 36 and tx.attempts == 1
    assert a.value.version == 1 and a.value.created_at == T0 == a.value.updated_at
    accounts = db.repository(Account)
    assert await accounts.get(id="a", consistent=True) == a.value

    clock.now = T1
    async with db.transaction() as tx:
        tx.update(key(Account, id="a"), Account.balance.increment(Decimal(-30)))
        tx.update(key(Account, id="b"), Account.balance.increment(Decimal(30)))
        tx.condition_check(Audit("s", 0), Audit.what == "root")
        tx.delete(key(Audit, stream="s", seq=1), condition=Audit.what == "opened")
        tx.put(Audit("s", 2, "moved 30"))
    a2 = await accounts.get_or_raise(id="a", consistent=True)
    b2 = await accounts.get_or_raise(id="b", consistent=True)
    assert (a2.balance, a2.version, a2.updated_at, a2.created_at) == (70, 2, T1, T0)
    assert (b2.balance, b2.version) == (35, 2)
    audit = await db.transact_get(key(Audit, stream="s", seq=1), key(Audit, stream="s", seq=2))
    assert audit[0] is None and audit[1] is not None and audit[1].what == "moved 30"


async def test_failure_on_the_third_action_is_reported_as_such(db: Database) -> None:
    await db.repository(Account).create(acct("taken", 1))
    with pytest.raises(errors.TransactionCanceled) as ei:
        async with db.transaction() as tx:
            tx.create(acct("new-1"))
            tx.put(Audit("s", 1, "x"))
            tx.create(acct("taken", 2))
            tx.put(Audit("s", 2, "y"))
    exc = ei.value
    assert isinstance(exc, TxCanceled)
    assert [r.code for r in exc.reasons] == ["None", "None", "ConditionalCheckFailed", "None"]
    (third,) = exc.failed
    assert third.index == 2 and third.action is tx.actions[2]
    assert third.action.kind == "create" and third.entity is Account
    assert third.key == {"id": {"S": "taken"}}
    assert "#2 create Account" in str(exc) and "ConditionalCheckFailed" in str(exc)
    assert exc.codes == {"ConditionalCheckFailed"}
    assert await db.repository(Account).get(id="new-1", consistent=True) is None  # atomic


async def test_cancellation_returns_the_current_item(db: Database) -> None:
    stored = await db.repository(Account).create(acct("taken", 1))
    with pytest.raises(TxCanceled) as ei:
        async with db.transaction() as tx:
            tx.put(Audit("s", 1))
            tx.create(acct("taken", 2))
    (reason,) = ei.value.failed
    assert reason.already_exists and reason.current == stored


async def test_versioned_whole_update_and_delete(db: Database, clock: Clock) -> None:
    accounts = db.repository(Account)
    v1 = await accounts.create(acct("a", 10))
    clock.now = T1
    async with db.transaction() as tx:
        written = tx.update(v1.__class__(**{**v1.__dict__, "balance": Decimal(11)}))
    assert written.value.version == 2 and written.value.updated_at == T1
    assert await accounts.get(id="a", consistent=True) == written.value
    with pytest.raises(TxCanceled) as ei:  # stale: the stored version is 2 now
        async with db.transaction() as tx:
            tx.update(v1)
            tx.put(Audit("s", 9))
    (reason,) = ei.value.failed
    assert reason.index == 0 and reason.action.expected_version == 1
    assert reason.version_conflict
    with pytest.raises(TxCanceled) as ei:
        async with db.transaction() as tx:
            tx.delete(v1)  # versioned delete at version 1: refused
    assert ei.value.failed[0].version_conflict
    async with db.transaction() as tx:
        tx.delete(written.value)
    assert await accounts.get(id="a", consistent=True) is None
    with pytest.raises(TxCanceled):  # an update needs the item to exist
        async with db.transaction() as tx:
            tx.update(key(Account, id="a"), Account.owner.set("x"))


async def test_an_exception_in_the_block_sends_nothing(db: Database, proxy: FaultProxy) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            tx.create(acct("a"))
            raise RuntimeError("changed my mind")
    assert proxy.requests["TransactWriteItems"] == 0
    with pytest.raises(errors.InvalidInput):
        tx.create(acct("b"))  # abandoned: no more actions
    async with db.transaction() as empty:
        pass
    assert empty.committed and proxy.requests["TransactWriteItems"] == 0


async def test_limits_and_duplicates_are_checked_before_sending(
    db: Database, proxy: FaultProxy
) -> None:
    tx = db.transaction()
    for i in range(100):
        tx.put(Audit("s", i))
    with pytest.raises(TransactionTooLarge):
        tx.put(Audit("s", 100))
    with pytest.raises(errors.DuplicateItem, match=r"#0 create Account .* #1 update Account"):
        async with db.transaction() as dup:
            dup.create(acct("a"))
            dup.update(key(Account, id="a"), Account.owner.set("x"))
    big = "x" * 390_000
    with pytest.raises(TransactionTooLarge, match="4194304"):
        async with db.transaction() as large:
            for i in range(11):
                large.put(Audit("big", i, big))
    with pytest.raises(errors.ItemTooLarge):
        async with db.transaction() as huge:
            huge.put(Audit("huge", 1, "x" * 410_000))
    with pytest.raises(errors.InvalidInput):
        db.transaction().put({"id": "a"})
    with pytest.raises(errors.InvalidInput):
        db.transaction().condition_check(key(Account, id="a"), None)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidInput):
        db.transaction(token="x" * 37)
    assert proxy.requests["TransactWriteItems"] == 0


@pytest.mark.xfail_moto(reason="moto replays a ClientRequestToken instead of deduplicating")
async def test_token_replay_is_idempotent(db: Database) -> None:
    await db.repository(Account).create(acct("a", 10))

    async def pay(token: str, amount: int) -> Transaction:
        async with db.transaction(token=token) as tx:
            tx.update(key(Account, id="a"), Account.balance.increment(Decimal(amount)))
            tx.put(Audit("pay", 1, token))
        return tx

    first = await pay("tok-1", 5)
    again = await pay("tok-1", 5)  # same token, same request: applied once
    assert first.token == again.token == "tok-1"
    stored = await db.repository(Account).get_or_raise(id="a", consistent=True)
    assert (stored.balance, stored.version) == (15, 2)
    with pytest.raises(errors.IdempotentParameterMismatch):
        await pay("tok-1", 6)


async def test_conflicts_are_retried_when_allowed(db: Database, proxy: FaultProxy) -> None:
    body = orjson.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled [None, TransactionConflict]",
            "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
        }
    )
    conflict = Fault.answer(400, body, only="TransactWriteItems")
    proxy.inject(conflict)
    with pytest.raises(TxCanceled) as ei:
        async with db.transaction() as tx:
            tx.create(acct("a"))
            tx.create(acct("b"))
    assert ei.value.codes == {"TransactionConflict"} and ei.value.failed[0].entity is Account
    assert tx.attempts == 1

    proxy.inject(conflict, conflict)
    retry = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01)
    async with db.transaction(retry_conflicts=True, retry=retry) as tx:
        tx.create(acct("a"))
        tx.create(acct("b"))
    assert tx.attempts == 3 and proxy.forwarded["TransactWriteItems"] == 1
    assert await db.repository(Account).get(id="b", consistent=True) is not None

    proxy.inject(*[conflict] * 4)
    with pytest.raises(TxCanceled):
        async with db.transaction(retry_conflicts=True, retry=retry) as tx:
            tx.create(acct("c"))
            tx.create(acct("d"))
    assert tx.attempts == 4


async def test_hooks_and_raw_actions_join_the_same_transaction(db: Database) -> None:
    seq = iter(range(1, 100))

    async def audit(tx: Transaction) -> None:
        kinds = ",".join(a.kind for a in tx.actions)
        tx.create(Audit("trail", next(seq), kinds))

    db.before_commit.append(audit)
    async with db.transaction() as tx:
        tx.create(acct("a", 1))
        table = tx.table_of(Audit)
        tx.add_raw(
            {"Put": {"TableName": table, "Item": to_item({"stream": "raw", "seq": 1})}},
            label="raw-audit",
        )
    trail = await db.repository(Audit).get_or_raise(stream="trail", seq=1, consistent=True)
    assert trail.what == "create,raw"
    assert await db.repository(Audit).get(stream="raw", seq=1, consistent=True) is not None

    with pytest.raises(TxCanceled) as ei:  # the audit entry is cancelled with the change
        async with db.transaction() as tx:
            tx.create(acct("a", 1))
    assert [r.action.kind for r in ei.value.reasons] == ["create", "create"]
    assert await db.repository(Audit).get(stream="trail", seq=2, consistent=True) is None
    with pytest.raises(errors.InvalidInput):
        db.transaction().add_raw({"Put": {"Item": {}}})
    with pytest.raises(errors.InvalidInput):
        db.transaction().add_raw({"Get": {"TableName": "t", "Key": {}}})


async def test_transact_get_is_typed_per_entity(db: Database) -> None:
    await db.repository(Account).create(acct("a", 7))
    await db.repository(Audit).put(Audit("s", 1, "hello"))
    account, entry, missing = await db.transact_get(
        key(Account, id="a"), key(Audit, stream="s", seq=1), key(Account, id="zz")
    )
    assert account is not None and account.balance == 7
    assert entry is not None and entry.what == "hello" and missing is None
    assert await db.transact_get() == ()
    with pytest.raises(errors.DuplicateItem):
        await db.transact_get(key(Account, id="a"), key(Account, id="a"))
    with pytest.raises(TransactionTooLarge):
        await db.transact_get(*[key(Audit, stream="s", seq=i) for i in range(101)])
