"""Codec errors: bad values raise ``EncodeError`` before sending, and schema drift raises
``DecodeError`` naming the attribute path (never a raw KeyError/TypeError)."""

import enum
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest

from dynamorm_async.errors import DecodeError, EncodeError
from dynamorm_async.model import entity, field, meta_of


class Status(enum.Enum):
    NEW = "new"
    DONE = "done"


@attrs.define
class Line:
    sku: str
    amount: Decimal


@attrs.define
class Meta:
    ip: str
    port: int = 0


@entity(table="orders", hash_key="id")
class Order:
    id: str
    total: Decimal = Decimal(0)
    ratio: float = 0.0
    count: int = 0
    status: Status = Status.NEW
    at: datetime | None = None
    expires: datetime | None = field(default=None, epoch=True)
    day: date | None = None
    ref: uuid.UUID | None = None
    lines: list[Line] = field(factory=list)
    meta: Meta | None = None
    tags: set[str] = field(factory=set)
    groups: list[set[str]] = field(factory=list)
    either: int | str = 0
    flag: bool = False


M = meta_of(Order)
NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def order(**kw: Any) -> Order:
    return Order("o1", **kw)


# --------------------------------------------------------------------------- encode


@pytest.mark.parametrize(
    ("kw", "path", "match"),
    [
        ({"at": datetime(2024, 1, 1)}, "at", "naive datetime"),
        ({"expires": datetime(2024, 1, 1)}, "expires", "naive datetime"),
        ({"ratio": float("nan")}, "ratio", "NaN"),
        ({"ratio": float("inf")}, "ratio", "infinity"),
        ({"ratio": float("-inf")}, "ratio", "infinity"),
        ({"ratio": 1e300}, "ratio", "outside DynamoDB's number range"),
        ({"ratio": 5e-324}, "ratio", "outside DynamoDB's number range"),
        ({"count": 10**38}, "count", "outside DynamoDB's number range"),
        ({"count": -(10**38)}, "count", "outside DynamoDB's number range"),
        ({"total": Decimal("1" * 39)}, "total", "outside DynamoDB's number range"),
        ({"total": Decimal("1.00000000000000000000000000000000000001")}, "total", "range"),
        ({"total": Decimal("NaN")}, "total", "NaN"),
        ({"total": Decimal("Infinity")}, "total", "infinity"),
        ({"total": Decimal("1E+200")}, "total", "range"),
        ({"total": 1.5}, "total", "floats are not exact"),
        ({"count": True}, "count", "expected int, got bool"),
        ({"count": "5"}, "count", "expected int, got str"),
        ({"flag": 1}, "flag", "expected bool, got int"),
        ({"status": "nope"}, "status", "'nope' is not a Status"),
        ({"day": NOW}, "day", "expected date, got datetime"),
        ({"ref": "not-a-uuid"}, "ref", "not a UUID"),
        ({"tags": {"a", 1}}, "tags", "set element 1"),
        ({"groups": [{"a"}, set()]}, "groups[1]", "empty set"),
        (
            {"lines": [Line("a", Decimal(1)), Line("b", Decimal(2)), Line("c", "x")]},  # type: ignore[arg-type]
            "lines[2].amount",
            "expected Decimal, got str",
        ),
        ({"lines": [Line(5, Decimal(1))]}, "lines[0].sku", "expected str"),  # type: ignore[arg-type]
        ({"lines": ["x"]}, "lines[0]", "expected Line, got str"),
        ({"meta": Meta("1.2.3.4", port=10**40)}, "meta.port", "range"),
        ({"either": 1.5}, "either", "expected int | str, got float"),
        ({"lines": None}, "lines", "declare the field Optional"),
    ],
)
def test_encode_errors_name_the_path(kw: dict[str, Any], path: str, match: str) -> None:
    with pytest.raises(EncodeError, match=match) as info:
        M.encode(order(**kw))
    assert info.value.path == path


def test_encode_rejects_other_classes_and_unset_attributes() -> None:
    with pytest.raises(EncodeError, match="expected Order, got Line"):
        M.encode(Line("a", Decimal(1)))  # type: ignore[arg-type]
    o = order()
    del o.__dict__["count"]
    with pytest.raises(EncodeError, match="not set") as info:
        M.encode(o)
    assert info.value.path == "count"


def test_lenient_inputs_take_the_careful_path_and_encode() -> None:
    class Name(str):
        pass

    o = order(
        status="done",  # type: ignore[arg-type]
        total=3,  # type: ignore[arg-type]
        ratio=2,
        lines=(Line(Name("s"), Decimal(1)),),  # type: ignore[arg-type]
        tags=frozenset({"x"}),  # type: ignore[arg-type]
        ref="12345678-1234-5678-1234-567812345678",  # type: ignore[arg-type]
    )
    with pytest.raises(Exception):  # noqa: B017 - the fast path refuses these
        M.codec.fenc(o)
    item = M.encode(o)
    assert item["status"] == {"S": "done"} and item["total"] == {"N": "3"}
    assert item["ratio"] == {"N": "2.0"} and item["tags"] == {"SS": ["x"]}
    assert item["lines"] == {"L": [{"M": {"sku": {"S": "s"}, "amount": {"N": "1"}}}]}
    assert type(item["lines"]["L"][0]["M"]["sku"]["S"]) is str
    assert M.decode(item).status is Status.DONE


# --------------------------------------------------------------------------- decode


def item(**attrs_: Any) -> dict[str, Any]:
    return {"id": {"S": "o1"}, **attrs_}


@pytest.mark.parametrize(
    ("it", "path", "match"),
    [
        ({}, "id", "missing required attribute"),
        ({"id": {"N": "1"}}, "id", "expected S"),
        ({"id": {"NULL": True}}, "id", "expected S"),
        ({"id": "o1"}, "id", "not an AttributeValue"),
        (item(total={"S": "1"}), "total", "expected N"),
        (item(total={"N": "abc"}), "total", "not a number"),
        (item(total={"N": "NaN"}), "total", "not a finite number"),
        (item(count={"N": "1.5"}), "count", "not an integer"),
        (item(ratio={"N": "1E+400"}), "ratio", "out of the float range"),
        (item(status={"S": "gone"}), "status", "'gone' is not a Status value"),
        (item(at={"S": "2024-01-02T03:04:05"}), "at", "ISO-8601 datetime with offset"),
        (item(at={"S": "yesterday"}), "at", "ISO-8601"),
        (item(expires={"S": "1"}), "expires", "expected N"),
        (item(expires={"N": "1E+30"}), "expires", "not a datetime in range"),
        (item(day={"S": "2024-13-01"}), "day", "ISO-8601 date"),
        (item(ref={"S": "x"}), "ref", "not a UUID"),
        (item(meta={"M": {"ip": {"N": "1"}}}), "meta.ip", "expected S"),
        (item(meta={"M": {}}), "meta.ip", "missing required attribute"),
        (item(meta={"S": "x"}), "meta", "expected M"),
        (
            item(
                lines={
                    "L": [{"M": {"sku": {"S": "a"}, "amount": {"N": "1"}}}] * 2
                    + [{"M": {"sku": {"S": "c"}, "amount": {"S": "x"}}}]
                }
            ),
            "lines[2].amount",
            "expected N",
        ),
        (item(lines={"M": {}}), "lines", "expected L"),
        (item(tags={"NS": ["1"]}), "tags", "expected SS"),
        (item(tags={"NULL": True}), "tags", "expected SS"),
        (item(groups={"L": [{"SS": ["a"]}, {"S": "b"}]}), "groups[1]", "expected SS"),
        (item(either={"BOOL": True}), "either", "expected one of N, S"),
        (item(flag={"S": "true"}), "flag", "expected BOOL"),
    ],
)
def test_decode_errors_name_the_path(it: dict[str, Any], path: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match) as info:
        M.decode(it)
    assert info.value.path == path


def test_decode_rejects_non_items() -> None:
    with pytest.raises(DecodeError, match="map of attributes"):
        M.decode([])  # type: ignore[arg-type]


def test_decode_is_lenient_where_values_are_unambiguous() -> None:
    o = M.decode(item(count={"N": "1E+2"}, at={"S": "2024-01-02T04:04:05+01:00"}))
    assert o.count == 100 and type(o.count) is int
    assert o.at == NOW
    assert M.decode(item(at={"NULL": True}, meta={"NULL": True})).at is None
    assert M.decode(item(expires={"N": "-1.5"})).expires == datetime(
        1969, 12, 31, 23, 59, 58, 500000, tzinfo=UTC
    )


def test_validator_failure_on_decode_is_a_decode_error() -> None:
    @entity(table="valid", hash_key="id")
    class Valid:
        id: str = attrs.field(validator=attrs.validators.min_len(3))

    m = meta_of(Valid)
    with pytest.raises(DecodeError, match=r"Valid\(\) rejected the stored values"):
        m.decode({"id": {"S": "ab"}})
    assert m.decode({"id": {"S": "abc"}}) == Valid("abc")


def test_field_value_helpers() -> None:
    f = M.fields["at"]
    assert f.encode_value(None) == {"NULL": True}
    assert f.decode_value({"NULL": True}) is None
    assert f.decode_value(f.encode_value(NOW)) == NOW
    with pytest.raises(EncodeError, match="None is not a"):
        M.fields["count"].encode_value(None)
    with pytest.raises(EncodeError, match="empty set"):
        M.fields["tags"].encode_value(set())
    with pytest.raises(DecodeError, match="expected N"):
        M.fields["count"].decode_value({"S": "1"})
