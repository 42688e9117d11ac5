"""Compile tests: expected expression text and placeholder maps (no server)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from dynamorm_async.expr import (
    And,
    ExpressionBuilder,
    Path,
    Value,
    all_of,
    any_of,
    attr,
    if_not_exists,
)


def compile_cond(cond: Any) -> tuple[str, dict[str, str], dict[str, Any]]:
    b = ExpressionBuilder()
    text = b.condition(cond)
    return text, b.names, b.values


@pytest.mark.parametrize(
    ("cond", "op"),
    [
        (attr("amount") == 100, "="),
        (attr("amount") != 100, "<>"),
        (attr("amount") < 100, "<"),
        (attr("amount") <= 100, "<="),
        (attr("amount") > 100, ">"),
        (attr("amount") >= 100, ">="),
        (100 > attr("amount"), "<"),  # reflected by Python
        (100 == attr("amount"), "="),
    ],
)
def test_comparisons(cond: Any, op: str) -> None:
    assert compile_cond(cond) == (f"#n0 {op} :v0", {"#n0": "amount"}, {":v0": {"N": "100"}})


def test_path_against_path_has_no_values() -> None:
    assert compile_cond(attr("a") < attr("b")) == ("#n0 < #n1", {"#n0": "a", "#n1": "b"}, {})


def test_nested_paths_and_list_indexes() -> None:
    text, names, values = compile_cond(attr("meta")["ip"][2]["v"] == "x")
    assert text == "#n0.#n1[2].#n2 = :v0"
    assert names == {"#n0": "meta", "#n1": "ip", "#n2": "v"}
    assert values == {":v0": {"S": "x"}}


def test_dotted_name_is_one_attribute() -> None:
    text, names, _ = compile_cond(attr("a.b") == 1)
    assert text == "#n0 = :v0"
    assert names == {"#n0": "a.b"}
    assert attr("a.b").elements == ("a.b",)


WEIRD = [
    "name",
    "status",
    "size",
    "a.b",
    "#n0",
    ":v0",
    "a b",
    "x)) OR (attribute_exists(pk",
    "'; DROP TABLE t; --",
    "[0]",
    "üñí©ødé",
]


@pytest.mark.parametrize("name", WEIRD)
def test_any_name_is_a_placeholder(name: str) -> None:
    cond = (attr(name) == 1) | attr("x")[name].exists()
    text, names, _ = compile_cond(cond)
    assert text == "#n0 = :v0 OR attribute_exists(#n1.#n0)"
    assert names == {"#n0": name, "#n1": "x"}
    # Nothing of the name leaks into the expression text.
    assert re.fullmatch(r"[#:nv0-9 =()._\[\]A-Za-z]*", text)
    for word in ("DROP", "pk", "ü", "'"):
        assert word not in text


def test_same_name_gets_one_placeholder_values_do_not() -> None:
    text, names, values = compile_cond((attr("a") > 1) & (attr("a") < 1) & (attr("b") == 1))
    assert text == "#n0 > :v0 AND #n0 < :v1 AND #n1 = :v2"
    assert names == {"#n0": "a", "#n1": "b"}
    assert values == {":v0": {"N": "1"}, ":v1": {"N": "1"}, ":v2": {"N": "1"}}


def test_boolean_structure_and_parentheses() -> None:
    a, b, c = attr("a") == 1, attr("b") == 2, attr("c") == 3
    assert compile_cond(a & (b | c))[0] == "#n0 = :v0 AND (#n1 = :v1 OR #n2 = :v2)"
    assert compile_cond((a & b) | c)[0] == "(#n0 = :v0 AND #n1 = :v1) OR #n2 = :v2"
    assert compile_cond(~a)[0] == "NOT #n0 = :v0"
    assert compile_cond(~(a & b))[0] == "NOT (#n0 = :v0 AND #n1 = :v1)"
    assert compile_cond(a & ~(b | c))[0] == "#n0 = :v0 AND (NOT (#n1 = :v1 OR #n2 = :v2))"
    assert ~~a is a
    flat = a & b & c
    assert isinstance(flat, And) and len(flat.conditions) == 3
    assert compile_cond(And(a, And(b, c)))[0] == "#n0 = :v0 AND (#n1 = :v1 AND #n2 = :v2)"


def test_functions() -> None:
    p = attr("p")
    assert compile_cond(p.between(1, 5)) == (
        "#n0 BETWEEN :v0 AND :v1",
        {"#n0": "p"},
        {":v0": {"N": "1"}, ":v1": {"N": "5"}},
    )
    text, _, values = compile_cond(p.is_in(["x", "y", "z"]))
    assert text == "#n0 IN (:v0, :v1, :v2)"
    assert values == {":v0": {"S": "x"}, ":v1": {"S": "y"}, ":v2": {"S": "z"}}
    assert compile_cond(p.begins_with("ab"))[0:3:2] == (
        "begins_with(#n0, :v0)",
        {":v0": {"S": "ab"}},
    )
    assert compile_cond(p.begins_with(b"\x00"))[2] == {":v0": {"B": "AA=="}}
    assert compile_cond(p.contains("x"))[0] == "contains(#n0, :v0)"
    assert compile_cond(p.contains(attr("q")))[0] == "contains(#n0, #n1)"
    assert compile_cond(p.exists())[0] == "attribute_exists(#n0)"
    assert compile_cond(p.not_exists())[0] == "attribute_not_exists(#n0)"
    assert compile_cond(p.attribute_type("SS"))[0:3:2] == (
        "attribute_type(#n0, :v0)",
        {":v0": {"S": "SS"}},
    )
    assert compile_cond(p.size() > 3) == ("size(#n0) > :v0", {"#n0": "p"}, {":v0": {"N": "3"}})
    assert compile_cond(p.size() <= attr("n"))[0] == "size(#n0) <= #n1"
    assert compile_cond(p.size().between(1, 2))[0] == "size(#n0) BETWEEN :v0 AND :v1"
    assert compile_cond(p.size().is_in([1, 2]))[0] == "size(#n0) IN (:v0, :v1)"
    assert compile_cond(p == None)[2] == {":v0": {"NULL": True}}  # noqa: E711
    assert compile_cond(p == Value({"N": "7"}))[2] == {":v0": {"N": "7"}}


def test_condition_has_no_truth_value() -> None:
    a, b = attr("a") == 1, attr("b") == 2
    with pytest.raises(TypeError, match="&"):
        bool(a)
    with pytest.raises(TypeError):
        _ = a and b
    with pytest.raises(TypeError):
        if attr("a") == 1:
            pass


def test_paths_hash_by_identity() -> None:
    p, q = attr("a"), attr("a")
    d = {p: 1, q: 2}
    assert d[p] == 1 and d[q] == 2 and len({p, q, p}) == 2
    assert hash(p) == object.__hash__(p)
    s = attr("s").size()
    assert {s: 1}[s] == 1
    with pytest.raises(TypeError, match="not iterable"):
        list(p)
    with pytest.raises(TypeError, match="contains"):
        _ = "x" in p


def test_custom_encoder_and_child_encoder() -> None:
    def enc(v: Any) -> dict[str, Any]:
        return {"S": v.isoformat()}

    when = Path(("at",), encoder=enc, field_name="created", owner=None)
    t = datetime(2024, 1, 2, tzinfo=UTC)
    assert compile_cond(when < t)[2] == {":v0": {"S": "2024-01-02T00:00:00+00:00"}}
    # begins_with / contains take generic values (a prefix, an element), not field values.
    assert compile_cond(when.begins_with("2024-01"))[2] == {":v0": {"S": "2024-01"}}
    meta = Path(("m",), child_encoder=lambda key: enc if key == "at" else None)
    assert compile_cond(meta["at"] == t)[2] == {":v0": {"S": "2024-01-02T00:00:00+00:00"}}
    assert compile_cond(meta["n"] == 1)[2] == {":v0": {"N": "1"}}


def test_repr_and_name() -> None:
    class Payment:
        pass

    p = Path(("amt",), owner=Payment, field_name="amount")
    assert repr(p) == "Payment.amount"
    assert repr(p["x"][0]) == "Path(('amt', 'x', 0))"
    assert p["x"][0].name == "amt.x[0]" == str(p["x"][0])
    assert p["x"].owner is Payment
    assert repr(attr("a") > 1) == "(Path(('a',)) > Value({'N': '1'}))"


def test_all_of_any_of() -> None:
    a, b = attr("a") == 1, attr("b") == 2
    assert all_of() is None and all_of(None) is None and any_of(None, None) is None
    assert all_of(a) is a and all_of(None, a, None) is a
    assert compile_cond(all_of(a, None, b))[0] == "#n0 = :v0 AND #n1 = :v1"
    assert compile_cond(any_of(a, b))[0] == "#n0 = :v0 OR #n1 = :v1"


def test_projection() -> None:
    b = ExpressionBuilder()
    text = b.projection([attr("a"), "b", attr("m")["k"][3], attr("a")])
    assert text == "#n0, #n1, #n2.#n3[3]"
    assert b.names == {"#n0": "a", "#n1": "b", "#n2": "m", "#n3": "k"}
    assert b.values == {}
    assert ExpressionBuilder().projection("name") == "#n0"
    assert ExpressionBuilder().projection(attr("a.b")) == "#n0"


def test_one_builder_for_a_request() -> None:
    b = ExpressionBuilder()
    req: dict[str, Any] = {"TableName": "t"}
    req["KeyConditionExpression"] = b.key_condition(
        (attr("pk") == "u#1") & attr("sk").begins_with("o#"), hash_key="pk", range_key="sk"
    )
    req["FilterExpression"] = b.condition(attr("status").is_in(["paid", "new"]))
    req["ProjectionExpression"] = b.projection([attr("pk"), attr("sk"), attr("status")])
    assert b.apply(req) is req
    assert req == {
        "TableName": "t",
        "KeyConditionExpression": "#n0 = :v0 AND begins_with(#n1, :v1)",
        "FilterExpression": "#n2 IN (:v2, :v3)",
        "ProjectionExpression": "#n0, #n1, #n2",
        "ExpressionAttributeNames": {"#n0": "pk", "#n1": "sk", "#n2": "status"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "u#1"},
            ":v1": {"S": "o#"},
            ":v2": {"S": "paid"},
            ":v3": {"S": "new"},
        },
    }


def test_apply_without_placeholders_and_merging() -> None:
    req: dict[str, Any] = {}
    ExpressionBuilder().apply(req)
    assert req == {}
    b = ExpressionBuilder()
    b.projection(["a"])
    req = {"ExpressionAttributeNames": {"#other": "x"}}
    b.apply(req)
    assert req == {"ExpressionAttributeNames": {"#other": "x", "#n0": "a"}}
    # applying twice is harmless
    b.apply(req)
    assert req["ExpressionAttributeNames"] == {"#other": "x", "#n0": "a"}


def test_update_actions_grouped_by_clause() -> None:
    b = ExpressionBuilder()
    text = b.update(
        [
            attr("tags").delete({"old"}),
            attr("status").set("paid"),
            attr("note").remove(),
            attr("count").add(2),
            attr("copy").set(attr("status")),
            attr("created").set_if_not_exists(5),
            attr("owner").set(if_not_exists(attr("creator"), "nobody")),
            attr("log").append(["e1"]),
            attr("first").prepend(["e0"]),
            attr("n").increment(),
            attr("m").decrement(3),
            attr("k").increment(2, initial=10),
            attr("labels").add({"x"}),
            attr("items")[1].remove(),
        ]
    )
    assert text == (
        "SET #n0 = :v0, #n1 = #n0, #n2 = if_not_exists(#n2, :v1), "
        "#n3 = if_not_exists(#n4, :v2), #n5 = list_append(#n5, :v3), "
        "#n6 = list_append(:v4, #n6), #n7 = #n7 + :v5, #n8 = #n8 - :v6, "
        "#n9 = if_not_exists(#n9, :v7) + :v8 "
        "REMOVE #n10, #n11[1] ADD #n12 :v9, #n13 :v10 DELETE #n14 :v11"
    )
    assert b.names == {
        f"#n{i}": n
        for i, n in enumerate(
            "status copy created owner creator log first n m k note items count labels tags".split()
        )
    }
    assert b.values == {
        ":v0": {"S": "paid"},
        ":v1": {"N": "5"},
        ":v2": {"S": "nobody"},
        ":v3": {"L": [{"S": "e1"}]},
        ":v4": {"L": [{"S": "e0"}]},
        ":v5": {"N": "1"},
        ":v6": {"N": "3"},
        ":v7": {"N": "10"},
        ":v8": {"N": "2"},
        ":v9": {"N": "2"},
        ":v10": {"SS": ["x"]},
        ":v11": {"SS": ["old"]},
    }


def test_update_single_action_and_sibling_paths() -> None:
    assert ExpressionBuilder().update(attr("a").remove()) == "REMOVE #n0"
    b = ExpressionBuilder()
    text = b.update([attr("m")["a"].set(1), attr("m")["b"].set(2), attr("l")[0].remove()])
    assert text == "SET #n0.#n1 = :v0, #n0.#n2 = :v1 REMOVE #n3[0]"
    assert ExpressionBuilder().update([attr("l")[0].remove(), attr("l")[1].remove()])
    # a map key "0" and list index 0 are different paths
    assert ExpressionBuilder().update([attr("x")["0"].set(1), attr("x")[0].set(2)])
