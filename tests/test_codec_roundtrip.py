"""Property tests: every supported type survives encode -> JSON -> decode exactly.

Each example also checks that the generated fast functions handle the value on their
own (calling them directly: they raise instead of falling back) and agree with the
careful, path-aware implementation.
"""

import enum
import math
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal, NewType

import attrs
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamorm_async.model import entity, field, meta_of

UserId = NewType("UserId", str)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 10


@attrs.define
class Address:  # slotted, not an entity: stored as M
    city: str
    zip_code: str | None = field(default=None, name="zip")
    lines: list[str] = attrs.field(factory=list)
    tags: set[str] = attrs.field(factory=set)


@attrs.define
class Tree:  # recursive
    value: int
    children: list["Tree"] = attrs.field(factory=list)


@entity(table="kitchen", hash_key="id", range_key="n")
class Kitchen:
    id: str
    n: int
    d: Decimal
    f: float
    b: bool
    raw: bytes
    u: uuid.UUID
    at: datetime
    at_epoch: datetime = field(epoch=True)
    day: date = date(2000, 1, 1)
    color: Color = Color.RED
    level: Level = Level.LOW
    lit: Literal["a", "b"] = "a"
    lit_n: Literal[1, 2, "x"] = 1
    maybe: int | None = None
    either: int | str = 0
    ints: list[int] = field(factory=list)
    sparse: list[int | None] = field(factory=list)
    prices: dict[str, Decimal] = field(factory=dict)
    by_color: dict[Color, int] = field(factory=dict)
    pair: tuple[str, int] = ("", 0)
    many: tuple[int, ...] = ()
    ss: set[str] = field(factory=set)
    ns: set[int] = field(factory=set)
    ds: set[Decimal] = field(factory=set)
    bs: set[bytes] = field(factory=set)
    fs: frozenset[str] = frozenset()
    us: set[uuid.UUID] = field(factory=set)
    address: Address | None = None
    addresses: list[Address] = field(factory=list)
    tree: Tree | None = None
    anything: Any = None
    doc: dict[str, Any] = field(factory=dict)
    when: datetime | None = None
    blob: bytes | None = None
    lit_opt: Literal["x", None] = None
    user: UserId = UserId("u")
    annotated: Annotated[int, "doc"] = 0


META = meta_of(Kitchen)

# --------------------------------------------------------------------------- strategies

TZS = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
text = st.text(max_size=20)
ints = st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1)
decimals = st.builds(
    lambda i, e: Decimal(i).scaleb(e),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-90, max_value=90),
)
floats = st.floats(min_value=-1e120, max_value=1e120, allow_nan=False).filter(
    lambda x: x == 0 or abs(x) > 1e-120
)
aware = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.sampled_from(TZS)
)
addresses = st.builds(
    Address,
    city=text,
    zip_code=st.none() | text,
    lines=st.lists(text, max_size=3),
    tags=st.sets(text, max_size=3),
)
trees = st.recursive(
    st.builds(Tree, value=ints),
    lambda kids: st.builds(Tree, value=ints, children=st.lists(kids, max_size=3)),
    max_leaves=8,
)
plain = st.recursive(
    st.none() | st.booleans() | text | ints | decimals | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=10,
)

kitchens = st.builds(
    Kitchen,
    id=text.filter(bool),
    n=ints,
    d=decimals,
    f=floats,
    b=st.booleans(),
    raw=st.binary(max_size=16),
    u=st.uuids(),
    at=aware,
    at_epoch=aware,
    day=st.dates(),
    color=st.sampled_from(Color),
    level=st.sampled_from(Level),
    lit=st.sampled_from(["a", "b"]),
    lit_n=st.sampled_from([1, 2, "x"]),
    maybe=st.none() | ints,
    either=ints | text,
    ints=st.lists(ints, max_size=4),
    sparse=st.lists(st.none() | ints, max_size=4),
    prices=st.dictionaries(text, decimals, max_size=3),
    by_color=st.dictionaries(st.sampled_from(Color), ints, max_size=2),
    pair=st.tuples(text, ints),
    many=st.lists(ints, max_size=3).map(tuple),
    ss=st.sets(text, max_size=4),
    ns=st.sets(ints, max_size=4),
    ds=st.sets(decimals, max_size=3),
    bs=st.sets(st.binary(max_size=6), max_size=3),
    fs=st.frozensets(text, max_size=3),
    us=st.sets(st.uuids(), max_size=2),
    address=st.none() | addresses,
    addresses=st.lists(addresses, max_size=2),
    tree=st.none() | trees,
    anything=plain,
    doc=st.dictionaries(text, plain, max_size=3),
    when=st.none() | aware,
    blob=st.none() | st.binary(max_size=4),
    lit_opt=st.sampled_from(["x", None]),
    user=text.map(UserId),
    annotated=ints,
)


def same(a: Any, b: Any, path: str = "") -> None:
    """Equal, and of the same type all the way down (Any fields excepted by the caller)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if attrs.has(type(a)):
        for f in attrs.fields(type(a)):
            same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, float):
        assert a == b or (math.isnan(a) and math.isnan(b)), path
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
        if isinstance(a, datetime):
            assert b.utcoffset() is not None


def wire(item: Any) -> Any:
    """What DynamoDB would hand back: the item through JSON text."""
    return orjson.loads(orjson.dumps(item))


@settings(max_examples=300, deadline=None)
@given(kitchens)
def test_round_trip(obj: Kitchen) -> None:
    item = META.encode(obj)
    back = META.decode(wire(item))
    assert back == obj
    exact = attrs.evolve(back, anything=obj.anything, doc=obj.doc)  # Any: numbers -> Decimal
    same(exact, obj)


@settings(max_examples=200, deadline=None)
@given(kitchens)
def test_fast_path_handles_declared_types_and_matches_careful(obj: Kitchen) -> None:
    codec = META.codec
    fast = codec.fenc(obj)  # raises if the fast code cannot handle a declared type
    assert fast == codec.encode_careful(obj, None)
    w = wire(fast)
    fast_obj = codec.fdec(w)
    assert fast_obj == codec.decode_careful(w, None) == obj


@settings(max_examples=100, deadline=None)
@given(kitchens)
def test_sparse_attributes_are_omitted(obj: Kitchen) -> None:
    item = META.encode(obj)
    assert ("maybe" in item) == (obj.maybe is not None)
    assert ("ss" in item) == bool(obj.ss)
    assert ("address" in item) == (obj.address is not None)
    if obj.address is not None:
        assert ("zip" in item["address"]["M"]) == (obj.address.zip_code is not None)
    for tag_set in ("ss", "ns", "ds", "bs", "fs", "us"):
        assert item.get(tag_set) != {"SS": []}


def test_empty_sets_come_back_empty_and_typed() -> None:
    obj = Kitchen(
        id="k",
        n=1,
        d=Decimal(1),
        f=1.0,
        b=True,
        raw=b"",
        u=uuid.UUID(int=0),
        at=datetime(2024, 1, 1, tzinfo=UTC),
        at_epoch=datetime(2024, 1, 1, tzinfo=UTC),
    )
    item = META.encode(obj)
    for name in ("ss", "ns", "ds", "bs", "fs", "us", "maybe", "address", "tree", "when"):
        assert name not in item
    back = META.decode(item)
    assert back.fs == frozenset() and type(back.fs) is frozenset
    assert back.ss == set() and type(back.ss) is set
    assert back == obj


def test_wire_formats() -> None:
    at = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=1)))
    obj = Kitchen(
        id="k",
        n=-5,
        d=Decimal("1.50"),
        f=0.1,
        b=False,
        raw=b"\xff\x00",
        u=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        at=at,
        at_epoch=datetime(1969, 12, 31, 23, 59, 58, 500000, tzinfo=UTC),
        level=Level.HIGH,
        lit_n="x",
        either="s",
        sparse=[1, None],
        pair=("p", 2),
        bs={b"\x01"},
        ns={3},
    )
    item = META.encode(obj)
    assert item["n"] == {"N": "-5"} and item["d"] == {"N": "1.50"} and item["f"] == {"N": "0.1"}
    assert item["b"] == {"BOOL": False} and item["raw"] == {"B": "/wA="}
    assert item["u"] == {"S": "12345678-1234-5678-1234-567812345678"}
    assert item["at"] == {"S": "2024-01-02T02:04:05.000006Z"}
    assert item["at_epoch"] == {"N": "-1.5"}
    assert item["day"] == {"S": "2000-01-01"} and item["color"] == {"S": "red"}
    assert item["level"] == {"N": "10"} and item["lit_n"] == {"S": "x"}
    assert item["either"] == {"S": "s"}
    assert item["sparse"] == {"L": [{"N": "1"}, {"NULL": True}]}
    assert item["pair"] == {"L": [{"S": "p"}, {"N": "2"}]}
    assert item["bs"] == {"BS": ["AQ=="]} and item["ns"] == {"NS": ["3"]}
    assert "anything" not in item  # Any admits None, which is omitted like Optional
    assert META.decode(item) == obj
