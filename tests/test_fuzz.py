"""Fuzzing what comes from outside: cursors (random text and bytes) and stored items
(random AttributeValues). Either the value is accepted or the typed error is raised,
never anything else. (Codec round trips and the expression compiler have their own
property tests: tests/test_codec_roundtrip.py, tests/test_expr_property.py.)"""

from __future__ import annotations

import base64
import datetime as dt
import enum
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamorm_async import errors
from dynamorm_async.cursor import CursorCodec
from dynamorm_async.model import entity, meta_of


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.define(slots=False)
class Line:
    sku: str
    qty: int


@entity(table="fz_orders", hash_key="id")
@attrs.define(slots=False)
class Order:
    id: str
    total: int = 0
    price: float = 0.0
    color: Color = Color.RED
    tags: set[str] = attrs.Factory(set)
    lines: list[Line] = attrs.Factory(list)
    meta: dict[str, int] = attrs.Factory(dict)
    at: dt.datetime | None = None
    note: str | None = None


CODEC = CursorCodec(b"fuzz-secret-0123456789abcdef")

_scalar_av = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=10)),
    st.builds(lambda n: {"N": n}, st.text(max_size=10) | st.integers().map(str)),
    st.builds(lambda b: {"B": base64.b64encode(b).decode()}, st.binary(max_size=8)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda x: {"SS": x}, st.lists(st.text(max_size=4), max_size=3)),
    st.builds(lambda x: {"NS": x}, st.lists(st.integers().map(str), max_size=3)),
    st.builds(lambda x: {"X": x}, st.text(max_size=3)),  # not a DynamoDB type at all
    st.text(max_size=3),  # not even a dict
)
_av = st.recursive(
    _scalar_av,
    lambda inner: st.one_of(
        st.builds(lambda m: {"M": m}, st.dictionaries(st.text(max_size=5), inner, max_size=3)),
        st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
    ),
    max_leaves=8,
)
_fields = st.sampled_from(["total", "price", "color", "tags", "lines", "meta", "at", "note", "zz"])


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_random_text_is_never_a_cursor(text: str) -> None:
    try:
        CODEC.decode(text, "fp")
    except errors.InvalidCursor:
        return
    raise AssertionError(f"accepted a forged cursor {text!r}")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.binary(max_size=24))
def test_random_bytes_are_never_a_cursor(body: bytes, sig: bytes) -> None:
    text = base64.urlsafe_b64encode(body).decode() + "." + base64.urlsafe_b64encode(sig).decode()
    try:
        CODEC.decode(text, "fp")
    except errors.InvalidCursor:
        return
    raise AssertionError("accepted random bytes as a cursor")


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(_fields, _av, max_size=4))
def test_random_stored_items_decode_or_raise_decode_error(extra: dict[str, Any]) -> None:
    meta = meta_of(Order)
    item = {"id": {"S": "o-1"}, **extra}
    try:
        obj = meta.decode(item)
    except errors.DecodeError as exc:
        assert exc.path is not None and exc.path.split(".")[0].split("[")[0] in extra, exc
        return
    assert isinstance(obj, Order) and obj.id == "o-1"


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "total"]), _av, max_size=2))
def test_random_keys_decode_or_raise_decode_error(item: dict[str, Any]) -> None:
    try:
        meta_of(Order).decode(item)
    except errors.DecodeError:
        pass
