"""Valid key conditions: compiled text and the parts callers can inspect."""

from __future__ import annotations

from typing import Any

import pytest

from dynamorm_async.expr import (
    ExpressionBuilder,
    KeyConditionParts,
    Path,
    attr,
    split_key_condition,
)

PK, SK = attr("pk"), attr("sk")


@pytest.mark.parametrize(
    ("range_cond", "text", "op", "values"),
    [
        (SK == 3, "#n1 = :v1", "=", ({"N": "3"},)),
        (SK < 3, "#n1 < :v1", "<", ({"N": "3"},)),
        (SK <= 3, "#n1 <= :v1", "<=", ({"N": "3"},)),
        (SK > 3, "#n1 > :v1", ">", ({"N": "3"},)),
        (SK >= 3, "#n1 >= :v1", ">=", ({"N": "3"},)),
        (3 < SK, "#n1 > :v1", ">", ({"N": "3"},)),
        (SK.between(1, 9), "#n1 BETWEEN :v1 AND :v2", "BETWEEN", ({"N": "1"}, {"N": "9"})),
        (SK.begins_with("o#"), "begins_with(#n1, :v1)", "begins_with", ({"S": "o#"},)),
    ],
)
def test_range_operators(range_cond: Any, text: str, op: str, values: tuple[Any, ...]) -> None:
    b = ExpressionBuilder()
    assert b.key_condition((PK == "u") & range_cond, hash_key="pk", range_key="sk") == (
        "#n0 = :v0 AND " + text
    )
    assert b.names == {"#n0": "pk", "#n1": "sk"}
    parts = split_key_condition((PK == "u") & range_cond, "pk", "sk")
    assert parts == KeyConditionParts(
        hash_key="pk",
        hash_value={"S": "u"},
        hash_condition=parts.hash_condition,
        range_key="sk",
        range_op=op,  # type: ignore[arg-type]
        range_values=values,
    )
    assert parts.range_condition is range_cond


def test_hash_only_and_order_independence() -> None:
    parts = split_key_condition(PK == b"\x01", "pk", "sk")
    assert (parts.hash_value, parts.range_key, parts.range_op, parts.range_values) == (
        {"B": "AQ=="},
        None,
        None,
        (),
    )
    b = ExpressionBuilder()
    # the range part first still compiles hash first
    assert b.key_condition((SK > 1) & (PK == 1), hash_key="pk", range_key="sk") == (
        "#n0 = :v0 AND #n1 > :v1"
    )
    assert b.values == {":v0": {"N": "1"}, ":v1": {"N": "1"}}


def test_key_names_are_stored_names_and_placeholders() -> None:
    # An index whose keys have reserved or odd names; the entity field name differs.
    hash_path = Path(("status",), field_name="state")
    range_path = Path(("a.b",))
    b = ExpressionBuilder()
    text = b.key_condition(
        (hash_path == "paid") & (range_path >= "2024"), hash_key="status", range_key="a.b"
    )
    assert text == "#n0 = :v0 AND #n1 >= :v1"
    assert b.names == {"#n0": "status", "#n1": "a.b"}


def test_key_condition_with_custom_encoder() -> None:
    def cents(v: Any) -> dict[str, Any]:
        return {"N": str(round(v * 100))}

    parts = split_key_condition(Path(("pk",)) == "x", "pk")
    assert parts.hash_value == {"S": "x"}
    amount = Path(("amt",), encoder=cents)
    parts = split_key_condition((Path(("pk",)) == "x") & amount.between(1, 2.5), "pk", "amt")
    assert parts.range_values == ({"N": "100"}, {"N": "250"})
