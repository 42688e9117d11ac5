"""Property tests: random condition trees and update sets compile to well-formed text."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dynamorm_async.expr import (
    ATTRIBUTE_TYPES,
    Condition,
    ExpressionBuilder,
    Path,
    Size,
    UpdateAction,
    attr,
)

NAMES = ["a", "b", "name", "size", "a.b", "#n0", ":v1", "x y", ") OR (", "ü", "AND", "[0]"]

names = st.sampled_from(NAMES)
keys = st.one_of(names, st.integers(min_value=0, max_value=20))
paths = st.builds(lambda first, rest: _path(first, rest), names, st.lists(keys, max_size=3))
scalars = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    st.binary(max_size=4),
)
values = st.one_of(
    scalars, st.lists(scalars, max_size=3), st.dictionaries(names, scalars, max_size=2)
)
ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])


def _path(first: str, rest: list[str | int]) -> Path:
    p = attr(first)
    for k in rest:
        p = p[k]
    return p


def _compare(left: Any, op: str, right: Any) -> Condition:
    result: Condition = {
        "==": lambda: left == right,
        "!=": lambda: left != right,
        "<": lambda: left < right,
        "<=": lambda: left <= right,
        ">": lambda: left > right,
        ">=": lambda: left >= right,
    }[op]()
    return result


leaves = st.one_of(
    st.builds(_compare, paths, ops, values),
    st.builds(_compare, paths, ops, paths),
    st.builds(_compare, paths.map(lambda p: p.size()), ops, st.integers(0, 100)),
    st.builds(
        lambda p, lo, hi: p.between(min(lo, hi), max(lo, hi)),
        paths,
        st.integers(),
        st.integers(),
    ),
    st.builds(lambda p, vs: p.is_in(vs), paths, st.lists(scalars, min_size=1, max_size=5)),
    st.builds(lambda p, s: p.begins_with(s), paths, st.text(min_size=1, max_size=4)),
    st.builds(lambda p, v: p.contains(v), paths, st.one_of(scalars, paths)),
    paths.map(lambda p: p.exists()),
    paths.map(lambda p: p.not_exists()),
    st.builds(lambda p, t: p.attribute_type(t), paths, st.sampled_from(sorted(ATTRIBUTE_TYPES))),
)
conditions = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.builds(lambda a, b: a & b, children, children),
        st.builds(lambda a, b: a | b, children, children),
        children.map(lambda c: ~c),
    ),
    max_leaves=12,
)

_TOKEN = re.compile(
    r"#n\d+|:v\d+|\[\d+\]|[(),.]|<>|<=|>=|[=<>+-]|"
    r"AND|OR|NOT|BETWEEN|IN|size|begins_with|contains|attribute_exists|"
    r"attribute_not_exists|attribute_type|if_not_exists|list_append|SET|REMOVE|ADD|DELETE|\s+"
)


def check_well_formed(text: str, b: ExpressionBuilder, tree_names: set[str]) -> None:
    """Balanced parentheses, only known tokens, placeholders defined iff used."""
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        assert depth >= 0, text
    assert depth == 0, text
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m is not None, f"unexpected text at {pos}: {text[pos : pos + 20]!r} in {text!r}"
        pos = m.end()
    used_names = set(re.findall(r"#n\d+", text))
    used_values = set(re.findall(r":v\d+", text))
    assert used_names == set(b.names), (text, b.names)
    assert used_values == set(b.values), (text, b.values)
    assert len(set(b.names.values())) == len(b.names)  # one placeholder per name
    assert set(b.names.values()) == tree_names


def names_of(p: Path) -> set[str]:
    return {e for e in p.elements if isinstance(e, str)}


def condition_names(c: Any) -> set[str]:
    """Every attribute name referenced by a condition tree (walks operands)."""
    out: set[str] = set()
    for slot in ("left", "right", "operand", "low", "high", "path", "condition"):
        v = getattr(c, slot, None)
        if isinstance(v, Path):
            out |= names_of(v)
        elif isinstance(v, Size):
            out |= names_of(v.path)
        elif isinstance(v, Condition):
            out |= condition_names(v)
    for child in getattr(c, "conditions", ()) or ():
        out |= condition_names(child)
    for cand in getattr(c, "candidates", ()) or ():
        if isinstance(cand, Path):
            out |= names_of(cand)
    return out


@settings(max_examples=200, deadline=None)
@given(conditions)
def test_random_conditions_compile_well_formed(cond: Condition) -> None:
    b = ExpressionBuilder()
    text = b.condition(cond)
    check_well_formed(text, b, condition_names(cond))


def _action(p: Path, kind: int, v: Any) -> UpdateAction:
    if kind == 0:
        return p.set(v)
    if kind == 1:
        return p.remove()
    if kind == 2:
        return p.add(abs(hash(str(v))) % 100)
    if kind == 3:
        return p.delete({"x", str(v)})
    if kind == 4:
        return p.append([v])
    if kind == 5:
        return p.increment(3, initial=0)
    return p.set_if_not_exists(v)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(names, min_size=1, max_size=8, unique=True),
    st.lists(st.tuples(st.integers(0, 6), values), min_size=8, max_size=8),
    st.booleans(),
)
def test_random_updates_compile_well_formed(
    tops: list[str], kinds: list[tuple[int, Any]], nest: bool
) -> None:
    actions = [
        _action(attr("m")[n] if nest else attr(n), kind, v)
        for n, (kind, v) in zip(tops, kinds, strict=False)
    ]
    b = ExpressionBuilder()
    text = b.update(actions)
    expected_names = set(tops) | ({"m"} if nest else set())
    check_well_formed(text, b, expected_names)
    clauses = re.findall(r"\b(SET|REMOVE|ADD|DELETE)\b", text)
    assert clauses == sorted(set(clauses), key=["SET", "REMOVE", "ADD", "DELETE"].index)
