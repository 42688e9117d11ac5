"""Our AttributeValues equal boto3's ``TypeSerializer`` output for plain values, and our
generic decoding equals ``TypeDeserializer`` (B/BS compared after base64)."""

import base64
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamorm_async.attrvalue import from_attribute_value
from dynamorm_async.model import entity, field, meta_of

SER = TypeSerializer()
DESER = TypeDeserializer()


@entity(table="plain", hash_key="s")
class Plain:
    s: str
    i: int = 0
    d: Decimal = Decimal(0)
    b: bool = False
    raw: bytes = b""
    ints: list[int] = field(factory=list)
    names: dict[str, str] = field(factory=dict)
    ss: set[str] = field(factory=set)
    ns: set[int] = field(factory=set)
    ds: set[Decimal] = field(factory=set)
    bs: set[bytes] = field(factory=set)
    nothing: None = None
    anything: Any = None


META = meta_of(Plain)

ints = st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1)
decimals = st.builds(
    lambda i, e: Decimal(i).scaleb(e),
    st.integers(min_value=-(10**37), max_value=10**37),
    st.integers(min_value=-80, max_value=80),
)
plain_values = st.recursive(
    st.none() | st.booleans() | st.text(max_size=10) | ints | decimals | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


def canon(av: Any, raw_bytes: bool) -> Any:
    """An AttributeValue with set members sorted; raw bytes (boto3) turned into base64."""
    ((tag, raw),) = av.items()
    b64 = (lambda b: base64.b64encode(bytes(b)).decode()) if raw_bytes else (lambda b: b)
    if tag == "B":
        return {"B": b64(raw)}
    if tag == "BS":
        return {"BS": sorted(b64(b) for b in raw)}
    if tag in ("SS", "NS"):
        return {tag: sorted(raw)}
    if tag == "L":
        return {"L": [canon(v, raw_bytes) for v in raw]}
    if tag == "M":
        return {"M": {k: canon(v, raw_bytes) for k, v in raw.items()}}
    return av


def to_wire(boto_av: Any) -> Any:
    """boto3's AttributeValue in our wire format (base64 text), sets sorted."""
    return canon(boto_av, raw_bytes=True)


def normalized(av: Any) -> Any:
    """Our AttributeValue with sets sorted."""
    return canon(av, raw_bytes=False)


def unbinary(v: Any) -> Any:
    if isinstance(v, Binary):
        return bytes(v)
    if isinstance(v, list):
        return [unbinary(x) for x in v]
    if isinstance(v, dict):
        return {k: unbinary(x) for k, x in v.items()}
    if isinstance(v, set):
        return {unbinary(x) for x in v}
    return v


@settings(max_examples=300, deadline=None)
@given(
    st.builds(
        Plain,
        s=st.text(min_size=1, max_size=10),
        i=ints,
        d=decimals,
        b=st.booleans(),
        raw=st.binary(min_size=1, max_size=10),
        ints=st.lists(ints, max_size=4),
        names=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
        ss=st.sets(st.text(max_size=5), min_size=1, max_size=4),
        ns=st.sets(ints, min_size=1, max_size=4),
        ds=st.sets(decimals, min_size=1, max_size=4),
        bs=st.sets(st.binary(max_size=5), min_size=1, max_size=3),
        anything=plain_values.filter(lambda v: v is not None),
    )
)
def test_typed_fields_serialize_like_boto3(obj: Plain) -> None:
    item = META.encode(obj)
    for name, av in item.items():
        value = getattr(obj, META.field_for_stored(name).name)  # type: ignore[union-attr]
        assert normalized(av) == to_wire(SER.serialize(value)), name
    assert set(item) == {f.stored_name for f in META.fields.values()} - {"nothing"}


@settings(max_examples=300, deadline=None)
@given(plain_values)
def test_generic_values_match_boto3_both_ways(value: Any) -> None:
    boto = SER.serialize(value)
    ours = META.fields["anything"].encode_value(value)
    assert normalized(ours) == to_wire(boto)
    assert from_attribute_value(ours) == unbinary(DESER.deserialize(boto))
    assert META.fields["anything"].decode_value(ours) == unbinary(DESER.deserialize(boto))


@settings(max_examples=200, deadline=None)
@given(st.sets(ints, min_size=1, max_size=5), st.sets(st.binary(max_size=4), min_size=1))
def test_typed_sets_decode_like_boto3(ns: set[int], bs: set[bytes]) -> None:
    obj = Plain("k", ns=ns, bs=bs)
    back = META.decode(META.encode(obj))
    assert back.ns == DESER.deserialize(SER.serialize(ns))
    assert back.bs == unbinary(DESER.deserialize(SER.serialize(bs)))


def test_none_is_null_like_boto3() -> None:
    assert META.fields["nothing"].encode_value(None) == SER.serialize(None) == {"NULL": True}
    assert META.fields["anything"].encode_value(None) == {"NULL": True}
