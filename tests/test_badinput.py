"""The bad-input catalog: each case raises the exact typed error, before anything is
sent (the proxy's request counter proves it), with a message that says what to fix.
Names that are legal but awkward (reserved words, dots, ``#``, ``:``) must work end to
end through placeholders. A stored item that drifted from the schema gives a
:class:`DecodeError` naming the attribute path.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from dynamorm_async import DynamoClient, errors
from dynamorm_async.batch_keys import key
from dynamorm_async.db import Database
from dynamorm_async.model import entity, field
from dynamorm_async.tables import create_table
from dynamorm_async.testing.faults import FaultProxy
from dynamorm_async.transactions_errors import TransactionTooLarge


@entity(table="bi_things", hash_key="pk", range_key="sk")
@attrs.define(slots=False)
class Thing:
    pk: str
    sk: str
    n: int = 0
    f: float = 0.0
    d: decimal.Decimal = decimal.Decimal(0)
    tags: set[str] = attrs.Factory(set)
    blob: dict[str, Any] = attrs.Factory(dict)
    s: str = ""


@entity(table="bi_odd", hash_key="id")
@attrs.define(slots=False)
class Odd:
    """Stored names that need placeholders: a reserved word, a dot, ``#`` and ``:``."""

    id: str
    status: str = field("status", default="")
    dotted: int = field("a.b", default=0)
    hashed: str = field("#x", default="")
    colon: str = field(":y", default="")
    nested: dict[str, int] = field("size", factory=dict)  # noqa: RUF009


@attrs.define
class Env:
    proxy: FaultProxy
    db: Database
    raw: DynamoClient
    prefix: str

    def sent(self) -> int:
        return sum(self.proxy.requests.values())


@pytest.fixture
async def env(dynamodb_endpoint: str, table_name: str) -> AsyncIterator[Env]:
    prefix = table_name + "-"
    async with (
        DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as raw,
        FaultProxy(dynamodb_endpoint) as proxy,
        DynamoClient(endpoint_url=proxy.endpoint_url, region="us-east-1") as via,
    ):
        for cls in (Thing, Odd):
            await create_table(raw, cls, prefix=prefix)
        yield Env(proxy, Database(via, table_prefix=prefix, cursor_secret=b"s" * 32), raw, prefix)


async def refused(
    env: Env, exc_type: type[BaseException], words: tuple[str, ...], work: Any
) -> BaseException:
    """Run ``work``; it must raise exactly ``exc_type`` before any request, with every
    word of ``words`` in the message."""
    before = env.sent()
    with pytest.raises(errors.DynamormError) as ei:
        await work()
    assert type(ei.value) is exc_type, repr(ei.value)
    assert isinstance(ei.value, ValueError)  # bad input is also a ValueError
    text = str(ei.value).lower()
    for w in words:
        assert w.lower() in text, (w, text)
    assert env.sent() == before, "bad input reached the network"
    return ei.value


def repo(env: Env) -> Any:
    return env.db.repository(Thing)


async def test_item_over_400kb(env: Env) -> None:
    exc = await refused(
        env,
        errors.ItemTooLarge,
        ("409600", "limit", "s3"),
        lambda: repo(env).put(Thing("a", "b", s="x" * 410_000)),
    )
    assert isinstance(exc, errors.ItemTooLarge) and exc.size > exc.limit == 409_600


async def test_item_over_400kb_in_batches_and_transactions(env: Env) -> None:
    big = Thing("a", "b", s="x" * 410_000)
    report = await env.db.batch().write(puts=[big, Thing("a", "ok")])
    (failed,) = report.failed
    assert isinstance(failed.error, errors.ItemTooLarge) and failed.index == 0

    async def tx() -> None:
        async with env.db.transaction() as t:
            t.put(big)

    await refused(env, errors.ItemTooLarge, ("limit",), tx)


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ({"pk": "", "sk": "b"}, ("pk", "empty")),
        ({"pk": "a", "sk": ""}, ("sk", "empty")),
        ({"pk": 5, "sk": "b"}, ("pk", "expected str", "int")),
        ({"pk": "a"}, ("sk", "missing")),
        ({"pk": "a", "sk": "b", "zz": 1}, ("zz", "no key attribute")),
        ({"pk": None, "sk": "b"}, ("pk", "none")),
        ({"pk": "x" * 2049, "sk": "b"}, ("pk", "2048")),
    ],
    ids=["empty-hash", "empty-range", "wrong-type", "missing-range", "unknown", "none", "long"],
)
async def test_bad_keys(env: Env, keys: dict[str, Any], words: tuple[str, ...]) -> None:
    await refused(env, errors.KeyError_, words, lambda: repo(env).get(**keys))
    await refused(env, errors.KeyError_, words, lambda: repo(env).delete(keys))


async def test_bad_keys_in_batches_and_transactions(env: Env) -> None:
    """A batch reports a bad key per item (reason ``invalid``) and sends nothing for it."""
    result = await env.db.batch().get([key(Thing, pk="", sk="b")])
    (failed,) = result.report.failed
    assert type(failed.error) is errors.KeyError_ and "empty" in str(failed.error)
    report = await env.db.batch().write(deletes=[key(Thing, pk="a", sk="")])
    (failed,) = report.failed
    assert type(failed.error) is errors.KeyError_ and "sk" in str(failed.error)
    assert env.sent() == 0

    async def tx() -> None:
        async with env.db.transaction() as t:
            t.delete(key(Thing, pk="a", sk=""))

    await refused(env, errors.KeyError_, ("sk", "empty"), tx)


async def test_bad_key_in_an_entity_is_refused_before_sending(env: Env) -> None:
    """Whole-entity writes (put, create, update, batches, transactions) check the key."""
    await refused(env, errors.KeyError_, ("pk", "empty"), lambda: repo(env).put(Thing("", "b")))
    await refused(env, errors.KeyError_, ("sk", "empty"), lambda: repo(env).create(Thing("a", "")))
    await refused(env, errors.KeyError_, ("2048",), lambda: repo(env).put(Thing("x" * 2049, "b")))
    report = await env.db.batch().write(puts=[Thing("", "b")])
    (failed,) = report.failed
    assert type(failed.error) is errors.KeyError_

    async def tx() -> None:
        async with env.db.transaction() as t:
            t.put(Thing("a", ""))

    await refused(env, errors.KeyError_, ("empty",), tx)


@pytest.mark.parametrize(
    ("obj", "cls", "words"),
    [
        (Thing("a", "b", f=math.nan), errors.EncodeError, ("f", "nan")),
        (Thing("a", "b", f=math.inf), errors.EncodeError, ("f", "infinity")),
        (Thing("a", "b", f=-math.inf), errors.EncodeError, ("f", "infinity")),
        (Thing("a", "b", d=decimal.Decimal("1" * 39)), errors.EncodeError, ("d", "38")),
        (Thing("a", "b", n=10**40), errors.EncodeError, ("n", "38 significant")),
        (Thing("a", "b", d=decimal.Decimal("1e-131")), errors.EncodeError, ("d", "1e-130")),
        (Thing("a", "b", d=decimal.Decimal("1e126")), errors.EncodeError, ("d", "9.99e+125")),
        (Thing("a", "b", d=decimal.Decimal("NaN")), errors.EncodeError, ("d", "nan")),
    ],
    ids=["nan", "inf", "-inf", "39-digits", "int-40-digits", "tiny", "huge", "decimal-nan"],
)
async def test_bad_numbers(
    env: Env, obj: Thing, cls: type[BaseException], words: tuple[str, ...]
) -> None:
    exc = await refused(env, cls, words, lambda: repo(env).put(obj))
    assert isinstance(exc, errors.EncodeError) and exc.path == words[0]


async def test_empty_sets_are_not_stored(env: Env) -> None:
    """DynamoDB has no empty set: an empty set field is left out of the item and reads
    back as an empty set (not an error, and not a ValidationException)."""
    await repo(env).put(Thing("a", "empty-set", tags=set()))
    raw = await env.raw.get_item(
        TableName=env.prefix + "bi_things", Key={"pk": {"S": "a"}, "sk": {"S": "empty-set"}}
    )
    assert "tags" not in raw["Item"]
    got = await repo(env).get(pk="a", sk="empty-set")
    assert got is not None and got.tags == set()


async def test_empty_set_in_an_update_is_refused(env: Env) -> None:
    await repo(env).put(Thing("a", "u"))
    await refused(
        env,
        errors.EncodeError,
        ("empty",),
        lambda: repo(env).update({"pk": "a", "sk": "u"}, Thing.tags.set(set())),
    )


async def test_maps_nested_deeper_than_32_levels(env: Env) -> None:
    deep: dict[str, Any] = {}
    cur = deep
    for _ in range(33):
        cur["x"] = {}
        cur = cur["x"]
    exc = await refused(
        env, errors.EncodeError, ("32", "nested"), lambda: repo(env).put(Thing("a", "b", blob=deep))
    )
    assert isinstance(exc, errors.EncodeError) and exc.path is not None
    assert exc.path.startswith("blob.x.x")


async def test_awkward_names_work_through_placeholders(env: Env) -> None:
    """Reserved words, dots, ``#`` and ``:`` in stored names: put, get, filter, update."""
    odd = env.db.repository(Odd)
    await odd.put(Odd("1", "open", 5, "h", "c", {"k": 1}))
    got = await odd.get(id="1")
    assert got == Odd("1", "open", 5, "h", "c", {"k": 1})
    raw = await env.raw.get_item(TableName=env.prefix + "bi_odd", Key={"id": {"S": "1"}})
    assert set(raw["Item"]) == {"id", "status", "a.b", "#x", ":y", "size"}
    found = [
        o
        async for o in odd.scan(
            filter=(Odd.status == "open") & (Odd.dotted > 4) & (Odd.hashed == "h"), consistent=True
        )
    ]
    assert [o.id for o in found] == ["1"]
    updated = await odd.update(
        {"id": "1"}, Odd.dotted.increment(1), Odd.colon.set("z"), Odd.nested["k"].set(2)
    )
    assert (updated.dotted, updated.colon, updated.nested) == (6, "z", {"k": 2})


async def test_unknown_fields(env: Env) -> None:
    with pytest.raises(AttributeError):
        _ = Thing.nope  # type: ignore[attr-defined]
    await refused(
        env,
        errors.ExpressionError,
        ("nope", "no field"),
        lambda: repo(env).query(Thing.pk == "a", projection=["nope"]).to_list(),
    )


async def test_oversized_transaction(env: Env) -> None:
    async def tx() -> None:
        async with env.db.transaction() as t:
            for i in range(101):
                t.put(Thing("a", f"{i}"))

    await refused(env, TransactionTooLarge, ("100 actions",), tx)


async def test_duplicate_keys(env: Env) -> None:
    async def tx() -> None:
        async with env.db.transaction() as t:
            t.put(Thing("a", "1"))
            t.update(Thing("a", "1"), Thing.n.increment(1))

    await refused(env, errors.DuplicateItem, ("same item", "one action per item"), tx)
    await refused(
        env,
        errors.DuplicateItem,
        ("more than once", "dedupe='last'"),
        lambda: env.db.batch().write(puts=[Thing("a", "b"), Thing("a", "b")]),
    )
    await refused(
        env,
        errors.DuplicateItem,
        ("more than once",),
        lambda: env.db.batch().get([key(Thing, pk="a", sk="b")] * 2),
    )


async def test_big_batches_are_chunked_not_refused(env: Env) -> None:
    """Batches over DynamoDB's 25/100 limits are split, never sent oversized."""
    things = [Thing("big", f"{i:03d}") for i in range(60)]
    report = await env.db.batch().write(puts=things)
    assert report.ok and env.proxy.requests["BatchWriteItem"] == 3
    result = await env.db.batch().get([key(Thing, pk="big", sk=t.sk) for t in things] * 1)
    assert result.found == things


async def test_tampered_cursors(env: Env) -> None:
    r = repo(env)
    for i in range(4):
        await r.put(Thing("c", f"{i}"))
    page = await anext(aiter(r.query(Thing.pk == "c", page_size=2, consistent=True).pages()))
    assert page.cursor is not None
    body, sig = page.cursor.split(".")
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B")
    for bad, words in [
        (f"{flipped}.{sig}", ("signature",)),
        (f"{body}.{sig[:-2]}", ("signature",)),
        (page.cursor + ".x", ("malformed",)),
        ("not-a-cursor", ("malformed",)),
        ("%%%.$$$", ("cursor",)),
    ]:
        await refused(
            env,
            errors.InvalidCursor,
            words,
            lambda bad=bad: r.query(Thing.pk == "c", page_size=2, cursor=bad).to_list(),
        )
    # a cursor of another query is refused too
    await refused(
        env,
        errors.InvalidCursor,
        ("different query",),
        lambda: r.query(Thing.pk == "other", page_size=2, cursor=page.cursor).to_list(),
    )


async def test_schema_drift_read_names_the_attribute(env: Env) -> None:
    table = env.prefix + "bi_things"
    base = {"pk": {"S": "drift"}, "s": {"S": ""}}
    cases = [
        ({**base, "sk": {"S": "n"}, "n": {"S": "seven"}}, "n"),
        ({**base, "sk": {"S": "b"}, "blob": {"S": "not a map"}}, "blob"),
        ({**base, "sk": {"S": "t"}, "tags": {"NS": ["1"]}}, "tags"),
    ]
    for item, path in cases:
        await env.raw.put_item(TableName=table, Item=item)
        with pytest.raises(errors.DecodeError) as ei:
            await repo(env).get(pk="drift", sk=item["sk"]["S"])
        assert ei.value.path is not None and ei.value.path.startswith(path), ei.value
        assert path in str(ei.value)
    with pytest.raises(errors.DecodeError):
        await repo(env).query(Thing.pk == "drift", consistent=True).to_list()
