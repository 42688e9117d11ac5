"""The fast UUID decoder is indistinguishable from ``uuid.UUID(text)``."""

from __future__ import annotations

import copy
import pickle
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamorm_async.errors import DecodeError
from dynamorm_async.model import entity, meta_of
from dynamorm_async.model.temporal import uuid_from_text


@entity(table="uuids", hash_key="id")
class Thing:
    id: uuid.UUID


@given(st.uuids())
def test_same_as_stdlib(u: uuid.UUID) -> None:
    text = str(u)
    v = uuid_from_text(text)
    assert v == u and type(v) is uuid.UUID
    assert (str(v), repr(v), hash(v), v.version, v.variant) == (
        text,
        repr(u),
        hash(u),
        u.version,
        u.variant,
    )
    assert pickle.loads(pickle.dumps(v)) == u and copy.deepcopy(v) == u


@pytest.mark.parametrize(
    "text", ["", "not-a-uuid", "12345678-1234-1234-1234-12345678901g", "-" * 36, "x" * 36]
)
def test_bad_text_is_a_decode_error_with_the_attribute(text: str) -> None:
    with pytest.raises(DecodeError) as ei:
        meta_of(Thing).decode({"id": {"S": text}})
    assert ei.value.path == "id"


def test_non_canonical_text_still_parses() -> None:
    u = uuid.uuid4()
    assert uuid_from_text("{" + str(u) + "}") == u
    assert uuid_from_text(u.hex) == u


@given(st.uuids(), st.sampled_from(["hex", "hyphens", "braces", "urn", "upper", "odd-hyphens"]))
def test_every_accepted_spelling_matches_stdlib(u: uuid.UUID, form: str) -> None:
    text = {
        "hex": u.hex,
        "hyphens": str(u),
        "braces": "{" + str(u) + "}",
        "urn": u.urn,
        "upper": str(u).upper(),
        "odd-hyphens": "-".join(u.hex[i : i + 4] for i in range(0, 32, 4)),
    }[form]
    assert uuid_from_text(text) == uuid.UUID(text) == u


@pytest.mark.parametrize("text", ["_" + "a" * 31, "+" + "a" * 31, " " + "a" * 31, "g" * 32])
def test_odd_texts_behave_exactly_like_stdlib(text: str) -> None:
    try:
        expected: uuid.UUID | type[ValueError] = uuid.UUID(text)
    except ValueError:
        expected = ValueError
    try:
        got: uuid.UUID | type[ValueError] = uuid_from_text(text)
    except ValueError:
        got = ValueError
    assert got == expected
