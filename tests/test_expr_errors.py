"""Bad input is rejected with typed errors before anything is sent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from dynamorm_async.errors import EncodeError, ExpressionError, InvalidInput
from dynamorm_async.expr import (
    MAX_EXPRESSION_LENGTH,
    Between,
    ExpressionBuilder,
    In,
    Path,
    Value,
    all_of,
    any_of,
    attr,
    split_key_condition,
)

# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    "elements",
    [(), (0,), ("",), ("a", ""), ("a", -1), ("a", True), ("a", 1.5), ("a", None), (b"a",)],
)
def test_invalid_path_elements(elements: tuple[Any, ...]) -> None:
    with pytest.raises(ExpressionError):
        Path(elements)


def test_invalid_child_keys() -> None:
    with pytest.raises(ExpressionError, match="negative"):
        attr("a")[-1]
    with pytest.raises(ExpressionError):
        attr("a")[slice(0, 1)]  # type: ignore[index]
    with pytest.raises(ExpressionError, match="empty"):
        attr("a")[""]
    with pytest.raises(ExpressionError):
        attr("")


# --------------------------------------------------------------------------- values


def test_encoding_errors_name_the_path() -> None:
    with pytest.raises(EncodeError, match="NaN") as info:
        _ = attr("amount") > float("nan")
    assert info.value.path == "amount"
    with pytest.raises(EncodeError, match="unsupported type object") as info:
        _ = attr("meta")["ip"] == object()
    assert info.value.path == "meta.ip"
    with pytest.raises(EncodeError) as info:
        attr("tags")[3].set(float("inf"))
    assert info.value.path == "tags[3]"
    with pytest.raises(EncodeError):
        attr("a").between(1, Decimal("1e999"))


def test_empty_sets_are_rejected() -> None:
    for build in (
        lambda: attr("s") == set(),
        lambda: attr("s").set(set()),
        lambda: attr("s").add(set()),
        lambda: attr("s").delete(frozenset()),
        lambda: attr("m").set({"inner": set()}),
        lambda: attr("s").contains(set()),
        lambda: attr("s").is_in([set()]),
    ):
        with pytest.raises(EncodeError, match="empty set"):
            build()


def test_custom_encoder_failures_become_encode_errors() -> None:
    def broken(value: Any) -> dict[str, Any]:
        raise ValueError("boom")

    with pytest.raises(EncodeError, match="boom") as info:
        _ = Path(("x",), encoder=broken) == 1
    assert info.value.path == "x"
    assert isinstance(info.value.__cause__, ValueError)

    def no_path(value: Any) -> dict[str, Any]:
        raise EncodeError("bad value")

    with pytest.raises(EncodeError) as info:
        Path(("y",), encoder=no_path).set(1)
    assert info.value.path == "y"

    bad_results: list[Any] = [
        {"SS": []},
        {"M": {"k": {"NS": []}}},
        {"L": [{"BS": []}]},
        {"X": "1"},
        {"S": "a", "N": "1"},
        "S",
        {"SS": "abc"},
        {"M": []},
        {"L": {}},
    ]
    for result in bad_results:

        def returns(value: Any, result: Any = result) -> Any:
            return result

        with pytest.raises(EncodeError) as info:
            _ = Path(("z",), encoder=returns) == 1
        assert info.value.path is not None and info.value.path.startswith("z")


def test_value_wrapper_is_checked() -> None:
    with pytest.raises(EncodeError):
        Value({"SS": []})
    with pytest.raises(EncodeError):
        Value({"Q": 1})


# --------------------------------------------------------------------------- conditions


def test_in_limits() -> None:
    assert isinstance(attr("a").is_in(range(100)), In)
    with pytest.raises(ExpressionError, match="at most 100"):
        attr("a").is_in(range(101))
    with pytest.raises(ExpressionError, match="at least one"):
        attr("a").is_in([])
    for wrong in ("abc", b"abc", {"a": 1}, 5):
        with pytest.raises(ExpressionError, match="list, tuple or set"):
            attr("a").is_in(wrong)  # type: ignore[arg-type]


def test_between_bounds() -> None:
    with pytest.raises(ExpressionError, match="above"):
        attr("a").between(5, 1)
    with pytest.raises(ExpressionError, match="above"):
        attr("a").between("b", "a")
    with pytest.raises(ExpressionError, match="above"):
        attr("a").between(b"\x02", b"\x01")
    with pytest.raises(ExpressionError, match="different types"):
        attr("a").between(1, "2")
    with pytest.raises(ExpressionError, match="S, N or B"):
        attr("a").between(True, True)
    # UTF-8 byte order, as DynamoDB compares strings: U+FFFF sorts before U+10000.
    assert isinstance(attr("a").between("\uffff", "\U00010000"), Between)
    assert isinstance(attr("a").between(1, 1), Between)
    assert isinstance(attr("a").between(attr("lo"), 0), Between)


def test_function_argument_checks() -> None:
    with pytest.raises(ExpressionError, match="str or bytes"):
        attr("a").begins_with(1)  # type: ignore[arg-type]
    with pytest.raises(ExpressionError, match="attribute_type"):
        attr("a").attribute_type("STRING")
    with pytest.raises(ExpressionError, match="numbers"):
        _ = attr("a").size() > "3"
    with pytest.raises(ExpressionError):
        attr("a").contains(attr("b").size())


def test_builder_rejects_non_conditions() -> None:
    b = ExpressionBuilder()
    with pytest.raises(ExpressionError, match="is a path, not a condition"):
        b.condition(attr("flag"))  # type: ignore[arg-type]
    with pytest.raises(ExpressionError, match="got bool"):
        b.condition(True)  # type: ignore[arg-type]
    with pytest.raises(ExpressionError):
        all_of(attr("a") == 1, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        (attr("a") == 1) & True  # type: ignore[operator]


def test_errors_are_also_value_errors() -> None:
    assert issubclass(ExpressionError, InvalidInput) and issubclass(ExpressionError, ValueError)
    assert issubclass(EncodeError, ValueError)


def test_entity_owner_check() -> None:
    class Base:
        pass

    class Payment(Base):
        pass

    class Refund:
        pass

    amount = Path(("amount",), owner=Base, field_name="amount")
    assert ExpressionBuilder(entity=Payment).condition(amount > 1) == "#n0 > :v0"
    with pytest.raises(ExpressionError, match="belongs to Base, not to Refund"):
        ExpressionBuilder(entity=Refund).condition(amount > 1)
    assert ExpressionBuilder(entity=Refund).condition(attr("free") > 1)


def test_expression_length_limit_and_rollback() -> None:
    b = ExpressionBuilder()
    b.condition(attr("kept") == 1)
    many = [attr(f"attribute_{i}") for i in range(MAX_EXPRESSION_LENGTH // 5)]
    with pytest.raises(ExpressionError, match="bytes"):
        b.projection(many)
    huge = any_of(*(attr(f"a{i}").is_in(range(100)) for i in range(10)))
    assert huge is not None
    with pytest.raises(ExpressionError, match="bytes"):
        b.condition(huge)
    # the failed compiles left no placeholders behind (DynamoDB rejects unused ones)
    assert b.names == {"#n0": "kept"} and b.values == {":v0": {"N": "1"}}
    assert b.projection(["kept", "x"]) == "#n0, #n1"


def test_apply_conflict() -> None:
    b = ExpressionBuilder()
    b.projection(["a"])
    with pytest.raises(ExpressionError, match="one ExpressionBuilder per request"):
        b.apply({"ExpressionAttributeNames": {"#n0": "other"}})


# --------------------------------------------------------------------------- updates


def test_update_same_or_overlapping_paths() -> None:
    b = ExpressionBuilder()
    with pytest.raises(ExpressionError, match="updated twice"):
        b.update([attr("a").set(1), attr("a").remove()])
    with pytest.raises(ExpressionError, match="overlap"):
        b.update([attr("a").set({}), attr("a")["b"].set(1)])
    with pytest.raises(ExpressionError, match="overlap"):
        b.update([attr("l")[0]["x"].remove(), attr("l").append([1])])
    with pytest.raises(ExpressionError, match="overlap"):
        b.projection([attr("m"), attr("m")["k"]])
    assert b.names == {} and b.values == {}


def test_update_argument_checks() -> None:
    with pytest.raises(ExpressionError, match="add\\(\\) takes a number or a set"):
        attr("l").add([1])
    with pytest.raises(ExpressionError, match="add\\(\\)"):
        attr("s").add("x")
    with pytest.raises(ExpressionError, match="delete\\(\\) takes a set"):
        attr("n").delete(1)
    with pytest.raises(ExpressionError, match="append\\(\\) takes a list"):
        attr("l").append({"x"})
    with pytest.raises(ExpressionError, match="prepend\\(\\) takes a list"):
        attr("l").prepend("x")
    with pytest.raises(ExpressionError, match="increment needs a number"):
        attr("n").increment("1")
    with pytest.raises(ExpressionError, match="decrement needs a number"):
        attr("n").decrement(True)
    with pytest.raises(ExpressionError, match="initial needs a number"):
        attr("n").increment(1, initial="0")
    with pytest.raises(ExpressionError, match="size"):
        attr("n").set(attr("s").size())


def test_update_builder_checks() -> None:
    b = ExpressionBuilder()
    with pytest.raises(ExpressionError, match="at least one action"):
        b.update([])
    with pytest.raises(ExpressionError, match="expected update actions"):
        b.update([attr("a") == 1])  # type: ignore[list-item]
    with pytest.raises(ExpressionError, match="key attribute"):
        b.update([attr("pk").set("x")], protected={"pk", "sk"})
    assert b.update([attr("other")["pk"].set("x")], protected={"pk"})
    with pytest.raises(ExpressionError, match="at least one path"):
        b.projection([])
    with pytest.raises(ExpressionError, match="paths or attribute names"):
        b.projection([1])  # type: ignore[list-item]


# --------------------------------------------------------------------------- key conditions

PK, SK = attr("pk"), attr("sk")


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ((PK == 1) | (SK == 1), "OR is not allowed"),
        ((PK == 1) & ~(SK == 1), "NOT is not allowed"),
        ((PK == 1) & SK.contains("x"), "contains"),
        ((PK == 1) & SK.is_in([1, 2]), "IN"),
        ((PK == 1) & SK.exists(), "attribute_exists"),
        ((PK == 1) & SK.not_exists(), "attribute_not_exists"),
        ((PK == 1) & SK.attribute_type("S"), "attribute_type"),
        ((PK == 1) & (SK != 1), "<>"),
        ((PK == 1) & (attr("other") == 1), "'other' is not a key attribute"),
        ((PK == 1) & (SK > 1) & (SK < 5), "two conditions on the range key"),
        ((PK == 1) & (PK == 2), "two conditions on the hash key"),
        (SK == 1, "needs an equality"),
        (PK > 1, "takes only an equality"),
        (PK.begins_with("a"), "takes only an equality"),
        (PK.between(1, 2), "takes only an equality"),
        ((PK == 1) & (attr("sk")["x"] == 1), "nested path"),
        ((PK == 1) & (SK == attr("pk")), "with a value"),
        ((PK == 1) & (SK.size() > 1), "compares a key attribute"),
        ((PK == True) & (SK == 1), "keys are S, N or B"),  # noqa: E712
        ((PK == 1) & (SK == [1]), "keys are S, N or B"),
    ],
)
def test_invalid_key_conditions(cond: Any, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        ExpressionBuilder().key_condition(cond, hash_key="pk", range_key="sk")


def test_key_condition_without_range_key() -> None:
    with pytest.raises(ExpressionError, match="no range key"):
        ExpressionBuilder().key_condition((PK == 1) & (SK == 1), hash_key="pk")
    with pytest.raises(ExpressionError, match="must be a Condition"):
        split_key_condition(PK, "pk")  # type: ignore[arg-type]
