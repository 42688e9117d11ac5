"""``@entity``: decoration, metadata, descriptors and keys (pure; no server)."""

import abc
import enum
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest

from dynamorm_async.errors import ExpressionError, InvalidInput, KeyError_
from dynamorm_async.expr.path import Path
from dynamorm_async.model import GSI, LSI, EntityMeta, Projection, entity, field, meta_of
from dynamorm_async.model.entity import META_ATTR, EntityType


class Status(enum.Enum):
    PENDING = "pending"
    PAID = "paid"


@entity(
    table="payments",
    hash_key="pk",
    range_key="sk",
    indexes=[
        GSI("by_customer", hash_key="customer_id", range_key="created_at"),
        GSI("by_status", hash_key="status", projection="KEYS_ONLY"),
        LSI("by_amount", range_key="amount", projection=("INCLUDE", ["status", "customer_id"])),
    ],
    ttl="expires_at",
    version="version",
    created_at="created_at",
    updated_at="updated_at",
)
class Payment:
    pk: str
    sk: str
    amount: Decimal
    customer_id: str = field(name="cust")
    status: Status = Status.PENDING
    expires_at: datetime | None = field(default=None)
    tags: set[str] = field(factory=set)
    card: str | None = field(default=None, encrypted=True)
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


META = meta_of(Payment)


def make(**kw: Any) -> Payment:
    base: dict[str, Any] = {"pk": "p#1", "sk": "v1", "amount": Decimal("9.50"), "customer_id": "c1"}
    base.update(kw)
    return Payment(**base)


# --------------------------------------------------------------------------- descriptors


def test_class_attribute_is_path_of_stored_name() -> None:
    p = Payment.customer_id
    assert isinstance(p, Path)
    assert p.elements == ("cust",)
    assert p.owner is Payment and p.field_name == "customer_id"
    assert Payment.amount is Payment.amount  # cached
    assert META.path("amount") is Payment.amount


def test_path_encodes_with_field_codec() -> None:
    cond = Payment.status == Status.PAID
    assert type(cond).__name__ == "Compare"
    assert Payment.status.encode(Status.PAID) == {"S": "paid"}
    assert Payment.amount.encode(100) == {"N": "100"}
    assert Payment.created_at.encode(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == {
        "S": "2024-01-02T03:04:05.000000Z"
    }
    assert Payment.expires_at.encode(datetime(1970, 1, 2, tzinfo=UTC)) == {"N": "86400"}


def test_no_class_attribute_shadows_a_field_paths_come_from_the_metaclass() -> None:
    # CPython only specialises ``o.field`` when the class has no attribute of that name.
    for name in ("status", "tags", "version", "pk", "customer_id"):
        assert all(name not in vars(k) for k in Payment.__mro__)
        assert type(getattr(Payment, name)).__name__ == "Path"
    assert isinstance(Payment, EntityType)
    assert not hasattr(Payment, "no_such_field")
    assert not hasattr(Payment, "__attrs_pre_init__")
    with pytest.raises(AttributeError, match="no_such_field"):
        _ = Payment.no_such_field


def test_entity_methods_super_classmethods_and_foreign_metaclasses_survive() -> None:
    class Base(abc.ABC):  # noqa: B024 - a foreign metaclass, no abstract method needed
        def label(self) -> str:
            return "base"

    @entity(table="things", hash_key="pk")
    class Thing(Base):
        pk: str
        n: int = 0

        def label(self) -> str:
            return "thing:" + super().label()

        @classmethod
        def make(cls, pk: str) -> "Thing":
            return cls(pk=pk)

        @property
        def double(self) -> int:
            return self.n * 2

    t = Thing.make("a")
    assert type(t) is Thing and t.label() == "thing:base" and t.double == 0
    assert isinstance(Thing, EntityType) and isinstance(Thing, abc.ABCMeta)
    assert meta_of(Thing).decode(meta_of(Thing).encode(t)) == t
    assert Thing.n.elements == ("n",)


def test_instance_access_defaults_factories_eq_repr() -> None:
    a, b = make(), make()
    assert a.status is Status.PENDING and a.version == 0 and a.expires_at is None
    assert a.tags == set() and a.tags is not b.tags
    assert a.__dict__["amount"] == Decimal("9.50") and a.amount == Decimal("9.50")
    assert a == b and a != make(sk="v2")
    assert repr(a).startswith("Payment(pk='p#1', sk='v1', amount=Decimal('9.50')")
    a.amount = Decimal(3)
    assert a.amount == 3 and Payment.amount.elements == ("amount",)
    assert attrs.asdict(b)["customer_id"] == "c1"
    assert attrs.evolve(b, sk="x").sk == "x"


def test_missing_instance_attribute_raises_attribute_error() -> None:
    p = make()
    del p.__dict__["card"]
    with pytest.raises(AttributeError):
        _ = p.card


def test_meta_of_class_and_instance() -> None:
    assert meta_of(make()) is META is getattr(Payment, META_ATTR)
    assert isinstance(META, EntityMeta)

    class NotEntity:
        pass

    with pytest.raises(TypeError, match="not an entity"):
        meta_of(NotEntity)


# --------------------------------------------------------------------------- metadata


def test_meta_describes_the_declaration() -> None:
    m = META
    assert m.cls is Payment and m.table == "payments"
    assert (m.hash_key.field_name, m.hash_key.stored_name, m.hash_key.type) == ("pk", "pk", "S")
    assert m.range_key is not None and m.range_key.field_name == "sk"
    assert m.ttl is not None and m.ttl.name == "expires_at" and m.ttl.options.epoch is True
    assert m.version is not None and m.version.name == "version"
    assert m.created_at is not None and m.updated_at is not None
    assert m.fields["customer_id"].stored_name == "cust"
    assert m.fields["card"].encrypted and not m.fields["pk"].encrypted
    assert m.fields["card"].optional and not m.fields["amount"].optional
    assert m.stored_name("customer_id") == "cust"
    assert m.field_for_stored("cust") is m.fields["customer_id"]
    assert m.field_for_stored("nope") is None
    with pytest.raises(ExpressionError, match="stored name of field 'customer_id'"):
        m.stored_name("cust")
    with pytest.raises(ExpressionError):
        m.path("nope")
    with pytest.raises(AttributeError):
        m.table = "x"  # type: ignore[misc]


def test_indexes_and_schema() -> None:
    m = META
    gsi = m.indexes["by_customer"]
    assert gsi.kind == "GSI" and gsi.hash_key.stored_name == "cust"
    assert gsi.range_key is not None and gsi.range_key.type == "S"
    assert gsi.projection == Projection("ALL")
    lsi = m.index("by_amount")
    assert lsi.kind == "LSI" and lsi.hash_key == m.hash_key
    assert lsi.projection == Projection("INCLUDE", ("status", "cust"))
    assert lsi.definition() == {
        "IndexName": "by_amount",
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "amount", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status", "cust"]},
    }
    assert m.indexes["by_status"].definition()["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert m.key_schema() == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    defs = {d["AttributeName"]: d["AttributeType"] for d in m.attribute_definitions()}
    assert defs == {
        "pk": "S",
        "sk": "S",
        "cust": "S",
        "created_at": "S",
        "status": "S",
        "amount": "N",
    }
    only = m.attribute_definitions(["by_status"])
    assert [d["AttributeName"] for d in only] == ["pk", "sk", "status"]
    with pytest.raises(InvalidInput, match="no index 'nope'"):
        m.attribute_definitions(["nope"])


# --------------------------------------------------------------------------- keys


def test_key_from_kwargs_and_encode_key() -> None:
    assert META.key_from_kwargs(pk="p#1", sk="v1") == {"pk": {"S": "p#1"}, "sk": {"S": "v1"}}
    assert META.encode_key(make()) == {"pk": {"S": "p#1"}, "sk": {"S": "v1"}}


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"pk": "a"}, "key part sk is missing"),
        ({"sk": "a"}, "key part pk is missing"),
        ({}, "missing"),
        ({"pk": "a", "sk": "b", "zz": 1}, "no key attribute 'zz'"),
        ({"pk": "a", "amount": 1}, "'amount' is not part of the key"),
        ({"pk": "a", "sk": "b", "amount": 1}, "'amount' is not part of the key"),
        ({"pk": 5, "sk": "b"}, r"partition key Payment\.pk: .*expected str, got int"),
        ({"pk": "a", "sk": b"x"}, "sort key Payment.sk"),
        ({"pk": "", "sk": "b"}, "empty"),
        ({"pk": "a", "sk": ""}, "empty"),
        ({"pk": None, "sk": "b"}, "missing"),
        ({"pk": "x" * 2049, "sk": "b"}, "2049 bytes; DynamoDB allows 2048"),
        ({"pk": "a", "sk": "é" * 513}, "1026 bytes; DynamoDB allows 1024"),
    ],
)
def test_key_from_kwargs_errors(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(KeyError_, match=match):
        META.key_from_kwargs(**kw)


def test_key_error_suggests_field_name_for_stored_name() -> None:
    @entity(table="renamed", hash_key="customer_id")
    class Renamed:
        customer_id: str = field(name="cust")

    with pytest.raises(KeyError_, match="use the field name 'customer_id', not the stored name"):
        meta_of(Renamed).key_from_kwargs(cust="c")
    assert meta_of(Renamed).key_from_kwargs(customer_id="c") == {"cust": {"S": "c"}}


def test_key_from_item_and_index_key_from_item() -> None:
    item = META.encode(make(created_at=datetime(2024, 1, 1, tzinfo=UTC)))
    assert META.key_from_item(item) == {"pk": {"S": "p#1"}, "sk": {"S": "v1"}}
    assert META.index_key_from_item("by_customer", item) == {
        "cust": {"S": "c1"},
        "created_at": {"S": "2024-01-01T00:00:00.000000Z"},
        "pk": {"S": "p#1"},
        "sk": {"S": "v1"},
    }
    assert set(META.index_key_from_item("by_amount", item)) == {"pk", "amount", "sk"}
    sparse = META.encode(make())  # created_at None: not in the by_customer index
    with pytest.raises(KeyError_, match="'created_at'"):
        META.index_key_from_item("by_customer", sparse)
    with pytest.raises(KeyError_, match="'sk'"):
        META.key_from_item({"pk": {"S": "a"}})
    with pytest.raises(InvalidInput, match="no index"):
        META.index_key_from_item("nope", item)


class Kind(enum.IntEnum):
    A = 1
    B = 2


@pytest.mark.parametrize(
    ("tp", "value", "kt", "av"),
    [
        (int, 7, "N", {"N": "7"}),
        (Decimal, Decimal("1.5"), "N", {"N": "1.5"}),
        (bytes, b"\x00\x01", "B", {"B": "AAE="}),
        (uuid.UUID, uuid.UUID(int=1), "S", {"S": "00000000-0000-0000-0000-000000000001"}),
        (Status, Status.PAID, "S", {"S": "paid"}),
        (Kind, Kind.B, "N", {"N": "2"}),
        (date, date(2024, 2, 29), "S", {"S": "2024-02-29"}),
    ],
)
def test_key_types(tp: Any, value: Any, kt: str, av: dict[str, Any]) -> None:
    cls = type("K", (), {"__annotations__": {"k": tp}})
    m = meta_of(entity(table="keys", hash_key="k")(cls))
    assert m.hash_key.type == kt
    assert m.key_from_kwargs(k=value) == {"k": av}
    assert m.attribute_definitions() == [{"AttributeName": "k", "AttributeType": kt}]


def test_empty_bytes_key_rejected() -> None:
    @entity(table="bin", hash_key="k")
    class Bin:
        k: bytes

    with pytest.raises(KeyError_, match="empty"):
        meta_of(Bin).key_from_kwargs(k=b"")
    with pytest.raises(KeyError_, match="empty"):
        meta_of(Bin).encode_key(Bin(b""))


# --------------------------------------------------------------------------- classes


def test_existing_dict_attrs_class_is_accepted() -> None:
    @entity(table="things", hash_key="id")
    @attrs.define(slots=False)
    class Thing:
        id: str
        n: int = 1

    assert isinstance(Thing.n, Path)
    t = Thing("a")
    assert t.n == 1 and meta_of(Thing).encode(t) == {"id": {"S": "a"}, "n": {"N": "1"}}


def test_slotted_attrs_class_is_rejected() -> None:
    with pytest.raises(TypeError, match="slotted attrs class"):

        @entity(table="things", hash_key="id")
        @attrs.define
        class Slotted:
            id: str


def test_frozen_dict_class_round_trips() -> None:
    @entity(table="frozen", hash_key="id")
    @attrs.frozen(slots=False)
    class Frozen:
        id: str
        tags: frozenset[str] = frozenset()

    m = meta_of(Frozen)
    f = Frozen("a", frozenset({"x"}))
    assert m.decode(m.encode(f)) == f
    assert m.codec.fdec(m.encode(f)) == f


def test_init_false_converter_and_post_init_fields() -> None:
    seen: list[str] = []

    @entity(table="conv", hash_key="id")
    class Conv:
        id: str
        n: int = attrs.field(default=0, converter=int)
        derived: str = attrs.field(init=False, default="d")

        def __attrs_post_init__(self) -> None:
            seen.append(self.id)

    m = meta_of(Conv)
    c = Conv("a", n="5")  # type: ignore[arg-type]
    c.derived = "changed"
    item = m.encode(c)
    assert item == {"id": {"S": "a"}, "n": {"N": "5"}, "derived": {"S": "changed"}}
    back = m.codec.fdec(item)
    assert back == c and back.derived == "changed" and seen == ["a", "a"]
    assert m.decode({"id": {"S": "b"}}).derived == "d"


def test_plain_construction_only_when_init_would_just_assign() -> None:
    from dynamorm_async.model.struct import plain_construction

    assert plain_construction(Payment, META.codec.fields)

    @entity(table="valid", hash_key="id")
    class Validated:
        id: str = attrs.field(validator=attrs.validators.min_len(2))

    m = meta_of(Validated)
    assert not plain_construction(Validated, m.codec.fields)
    assert "_C(**kw)" in m.codec.source


# --------------------------------------------------------------------------- declaration errors


def _decl(annotations: dict[str, Any], **kw: Any) -> Any:
    kw.setdefault("table", "things")
    kw.setdefault("hash_key", "id")
    ns: dict[str, Any] = {"__annotations__": {"id": str, **annotations}}
    return entity(**kw)(type("Thing", (), ns))


@pytest.mark.parametrize(
    ("annotations", "kw", "exc", "match"),
    [
        ({}, {"hash_key": "nope"}, ValueError, "hash_key='nope' is not a field"),
        ({"b": bool}, {"hash_key": "b"}, TypeError, r"Thing\.b: hash_key must be stored as"),
        ({"l": list[str]}, {"hash_key": "l"}, TypeError, "not list"),
        ({"o": str | None}, {"hash_key": "o"}, TypeError, "cannot be Optional"),
        ({}, {"range_key": "id"}, ValueError, "same field"),
        ({"v": str}, {"version": "v"}, TypeError, "version field must be int"),
        ({"v": int | None}, {"version": "v"}, TypeError, r"int \(not Optional\)"),
        ({"t": str}, {"ttl": "t"}, TypeError, "ttl field must be datetime or int"),
        ({"c": int}, {"created_at": "c"}, TypeError, "created_at field must be datetime"),
        ({"c": datetime}, {"created_at": "c", "updated_at": "c"}, ValueError, "both"),
        ({"c": int}, {"ttl": "c", "version": "c"}, ValueError, "both ttl and version"),
        ({"r": str}, {"indexes": [LSI("by_r", range_key="r")]}, ValueError, "needs a table"),
        (
            {"r": str},
            {"range_key": "r", "indexes": [LSI("by_r", range_key="r")]},
            ValueError,
            "must differ",
        ),
        ({"r": str}, {"indexes": [GSI("ix1", "r"), GSI("ix1", "r")]}, ValueError, "declared twice"),
        ({"r": str}, {"indexes": [GSI("ab", "r")]}, ValueError, "3-255"),
        (
            {"r": str},
            {"indexes": [GSI("ix1", "r", projection=("INCLUDE", ["zz"]))]},
            ValueError,
            "'zz' is not a field",
        ),
        (
            {"r": str},
            {"indexes": [GSI("ix1", "r", projection=("INCLUDE", []))]},
            ValueError,
            "at least one",
        ),
        (
            {"r": str},
            {"indexes": [GSI("ix1", "r", projection=("INCLUDE", ["r"]))]},
            ValueError,
            "key attribute",
        ),
        (
            {"r": str},
            {"indexes": [GSI("ix1", "r", projection="SOME")]},
            ValueError,
            "projection must be",
        ),
        ({"r": str}, {"indexes": ["ix"]}, TypeError, "GSI"),
        ({"r": dict[str, int]}, {"indexes": [GSI("ix1", "r")]}, TypeError, "must be stored as"),
        ({}, {"table": "x"}, ValueError, "table name 'x' is invalid"),
        ({}, {"table": "bad name!"}, ValueError, "table name"),
        (
            {"u": str | uuid.UUID},
            {},
            TypeError,
            r"ambiguous union: str and UUID .*both stored as S",
        ),
        ({"u": int | Decimal}, {}, TypeError, "ambiguous union"),
        ({"u": dict[str, int] | list[int] | dict[str, str]}, {}, TypeError, "both stored as M"),
        ({"c": complex}, {}, TypeError, r"Thing\.c: unsupported type complex"),
        ({"c": set}, {}, TypeError, "element type"),
        ({"c": set[bool]}, {}, TypeError, "bool is not one of them"),
        ({"c": set[list[str]]}, {}, TypeError, "sets hold only"),
        ({"c": dict[int, str]}, {}, TypeError, "map keys must be str"),
        ({"c": Any}, {"indexes": [GSI("ix1", "c")]}, TypeError, "must be stored as"),
    ],
)
def test_declaration_errors(
    annotations: dict[str, Any], kw: dict[str, Any], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        _decl(annotations, **kw)


def test_declaration_errors_for_fields() -> None:
    class Mixed(enum.Enum):
        A = "a"
        B = 2

    with pytest.raises(TypeError, match="Enum Mixed must have only str values or only int"):
        _decl({"m": Mixed})
    dup = {"__annotations__": {"a": str, "b": str}, "a": field(name="x"), "b": field(name="x")}
    with pytest.raises(ValueError, match="fields 'a' and 'b' are both stored as 'x'"):
        entity(table="things", hash_key="a")(type("Dup", (), dup))
    with pytest.raises(ValueError, match="epoch seconds"):
        entity(table="things", hash_key="id", ttl="t")(
            type(
                "T",
                (),
                {"__annotations__": {"id": str, "t": datetime}, "t": field(epoch=False)},
            )
        )
    with pytest.raises(ValueError, match="default= or factory="):
        field(default=1, factory=list)
    with pytest.raises(ValueError, match="non-empty str"):
        field(name="")
    with pytest.raises(TypeError, match="decorates a class"):
        entity(table="things", hash_key="id")(42)  # type: ignore[type-var]


def test_ttl_int_and_epoch_datetime_ttl() -> None:
    m = meta_of(_decl({"t": int}, ttl="t"))
    assert m.ttl is not None and m.ttl.name == "t"
    m2 = meta_of(_decl({"t": datetime | None}, ttl="t"))
    item = m2.encode(m2.cls("a", datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)))
    assert item["t"] == {"N": "1.5"}


def test_path_child_encoder_for_nested_types() -> None:
    @attrs.define
    class Line:
        sku: str
        amount: Decimal

    @entity(table="orders", hash_key="id")
    class Order:
        id: str
        lines: list[Line] = field(factory=list)
        meta: dict[str, int] = field(factory=dict)

    assert Order.lines[0].encode(Line("s", Decimal(1))) == {
        "M": {"sku": {"S": "s"}, "amount": {"N": "1"}}
    }
    assert Order.meta["n"].encode(3) == {"N": "3"}
