"""Random condition trees: DynamoDB's answer must match a reference evaluator.

This checks the *meaning* of compiled expressions (operator precedence, parentheses,
NOT, missing attributes, type mismatches), not just that DynamoDB accepts them.
The trees come from a seeded generator, so runs are reproducible.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from dynamorm_async.attrvalue import to_item
from dynamorm_async.client import DynamoClient
from dynamorm_async.expr import Condition, ExpressionBuilder, Path, attr

MISSING = object()
# (path, how to read it from a plain item)
PATHS: list[tuple[Path, Callable[[dict[str, Any]], Any]]] = [
    (attr("a"), lambda i: i.get("a", MISSING)),
    (attr("b"), lambda i: i.get("b", MISSING)),
    (attr("x.y"), lambda i: i.get("x.y", MISSING)),
    (attr("c")["k"], lambda i: i.get("c", {}).get("k", MISSING)),
]
NUMBERS = [Decimal(n) for n in range(5)]
STRINGS = ["a", "ab", "b", "ba", "c"]

Tree = tuple[Condition, Callable[[dict[str, Any]], bool]]


def _same_type(x: Any, v: Any) -> bool:
    return x is not MISSING and type(x) is type(v)


def _value(rng: random.Random) -> Any:
    return rng.choice(NUMBERS) if rng.random() < 0.5 else rng.choice(STRINGS)


def leaf(rng: random.Random) -> Tree:
    path, get = rng.choice(PATHS)
    kind = rng.randrange(6)
    if kind == 0:
        v = _value(rng)
        op = rng.choice(["==", "!=", "<", "<=", ">", ">="])
        cond = {
            "==": lambda: path == v,
            "!=": lambda: path != v,
            "<": lambda: path < v,
            "<=": lambda: path <= v,
            ">": lambda: path > v,
            ">=": lambda: path >= v,
        }[op]()

        def cmp(i: dict[str, Any]) -> bool:
            x = get(i)
            if op == "!=":
                return not (_same_type(x, v) and x == v)
            if not _same_type(x, v):
                return False
            return bool(
                {
                    "==": x == v,
                    "<": x < v,
                    "<=": x <= v,
                    ">": x > v,
                    ">=": x >= v,
                }[op]
            )

        return cond, cmp
    if kind == 1:
        pool: list[Any] = NUMBERS if rng.random() < 0.5 else STRINGS
        lo, hi = sorted(rng.sample(pool, 2))
        return path.between(lo, hi), lambda i: _same_type(get(i), lo) and lo <= get(i) <= hi
    if kind == 2:
        vs = [_value(rng) for _ in range(rng.randint(1, 3))]
        return path.is_in(vs), lambda i: any(_same_type(get(i), v) and get(i) == v for v in vs)
    if kind == 3:
        prefix = rng.choice(["a", "b", "ab"])
        return path.begins_with(
            prefix
        ), lambda i: isinstance(get(i), str) and get(i).startswith(prefix)
    if kind == 4:
        return path.exists(), lambda i: get(i) is not MISSING
    return path.not_exists(), lambda i: get(i) is MISSING


def tree(rng: random.Random, depth: int) -> Tree:
    if depth == 0 or rng.random() < 0.3:
        return leaf(rng)
    kind = rng.randrange(3)
    if kind == 2:
        c, f = tree(rng, depth - 1)
        return ~c, lambda i: not f(i)
    (c1, f1), (c2, f2) = tree(rng, depth - 1), tree(rng, depth - 1)
    if kind == 0:
        return c1 & c2, lambda i: f1(i) and f2(i)
    return c1 | c2, lambda i: f1(i) or f2(i)


def random_item(rng: random.Random, sk: str) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": "p", "sk": sk}
    for name in ("a", "b", "x.y"):
        if rng.random() < 0.75:
            item[name] = _value(rng)
    if rng.random() < 0.75:
        item["c"] = {"k": _value(rng)} if rng.random() < 0.8 else {}
    return item


@pytest.fixture
async def client(dynamodb_endpoint: str) -> AsyncIterator[DynamoClient]:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as c:
        yield c


@pytest.mark.xfail_moto(
    reason="moto server answers HTTP 500 (a Python traceback) for some valid filter trees"
)
async def test_random_trees_match_reference(client: DynamoClient, table_name: str) -> None:
    rng = random.Random(20240101)
    await client.create_table(
        TableName=table_name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        await client.wait_for_table_active(table_name)
        items = [random_item(rng, f"{n:03d}") for n in range(40)]
        for item in items:
            await client.put_item(TableName=table_name, Item=to_item(item))
        checked = 0
        for _ in range(120):
            cond, evaluate = tree(rng, 4)
            b = ExpressionBuilder()
            req = {
                "TableName": table_name,
                "KeyConditionExpression": b.key_condition(attr("pk") == "p", hash_key="pk"),
                "FilterExpression": b.condition(cond),
            }
            resp = await client.query(**b.apply(req))
            got = {i["sk"]["S"] for i in resp["Items"]}
            expected = {i["sk"] for i in items if evaluate(i)}
            assert got == expected, (req, cond)
            checked += 0 < len(expected) < len(items)
        assert checked > 30  # most trees select a proper, non-empty subset
    finally:
        await client.delete_table(TableName=table_name)
