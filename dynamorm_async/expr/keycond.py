"""Key conditions: validate a condition's shape against a table's (or index's) keys.

A key condition is exactly one equality on the hash key, optionally AND one
condition on the range key using ``= < <= > >=``, ``BETWEEN`` or ``begins_with``.
:func:`split_key_condition` checks that and returns the parts, for the compiler and
for callers that need to inspect the query (cursors, validation).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from ..attrvalue import AttributeValue
from ..errors import ExpressionError
from .conditions import (
    And,
    AttributeType,
    BeginsWith,
    Between,
    Compare,
    Condition,
    Contains,
    Exists,
    In,
    Not,
    NotExists,
    Or,
)
from .operands import Operand, Value
from .path import Path

__all__ = ["KeyConditionParts", "RangeOp", "split_key_condition"]

#: The operators a range-key condition can use.
RangeOp = Literal["=", "<", "<=", ">", ">=", "BETWEEN", "begins_with"]

_KEY_TAGS = frozenset({"S", "N", "B"})
_FILTER_ONLY: dict[type[Condition], str] = {
    In: "IN",
    Contains: "contains()",
    Exists: "attribute_exists()",
    NotExists: "attribute_not_exists()",
    AttributeType: "attribute_type()",
}


@dataclass(frozen=True, slots=True)
class KeyConditionParts:
    """The validated parts of a key condition.

    ``hash_value`` is the wire-format AttributeValue the hash key must equal;
    ``range_op`` (``None`` without a range condition) and ``range_values`` (one value,
    or two for ``BETWEEN``) describe the range-key condition. ``hash_condition`` and
    ``range_condition`` are the original condition nodes.
    """

    hash_key: str
    hash_value: AttributeValue
    hash_condition: Compare = field(compare=False, repr=False)
    range_key: str | None = None
    range_op: RangeOp | None = None
    range_values: tuple[AttributeValue, ...] = ()
    range_condition: Condition | None = field(default=None, compare=False, repr=False)


def split_key_condition(
    condition: Condition, hash_key: str, range_key: str | None = None
) -> KeyConditionParts:
    """Check ``condition`` is a valid key condition for ``hash_key``/``range_key``
    (stored attribute names) and return its parts.

    Raises :class:`~dynamorm_async.errors.ExpressionError` naming what is wrong: OR,
    NOT, a filter-only function, ``<>``, a non-key or nested attribute, two
    conditions on one key, or no equality on the hash key.
    """
    if not isinstance(condition, Condition):
        raise ExpressionError(
            f"a key condition must be a Condition, got {type(condition).__name__}"
        )
    hash_part: Compare | None = None
    range_part: Condition | None = None
    range_op: RangeOp | None = None
    range_values: tuple[AttributeValue, ...] = ()
    hash_value: AttributeValue = {}
    for part in _flatten_and(condition):
        name, op, values = _key_part(part)
        if name == hash_key:
            if op != "=" or not isinstance(part, Compare):
                raise ExpressionError(
                    f"the hash key {hash_key!r} takes only an equality (==) in a key "
                    f"condition, got {op}"
                )
            if hash_part is not None:
                raise ExpressionError(f"two conditions on the hash key {hash_key!r}")
            hash_part = part
            hash_value = values[0]
        elif range_key is not None and name == range_key:
            if range_part is not None:
                raise ExpressionError(
                    f"two conditions on the range key {range_key!r}; use between() for a range"
                )
            range_part, range_op, range_values = part, op, values
        else:
            keys = f"hash key {hash_key!r}" + (
                f", range key {range_key!r}" if range_key is not None else ", no range key"
            )
            raise ExpressionError(
                f"{name!r} is not a key attribute here ({keys}); "
                "put conditions on other attributes in a filter expression"
            )
    if hash_part is None:
        raise ExpressionError(
            f"a key condition needs an equality (==) on the hash key {hash_key!r}"
        )
    return KeyConditionParts(
        hash_key=hash_key,
        hash_value=hash_value,
        hash_condition=hash_part,
        range_key=range_key if range_part is not None else None,
        range_op=range_op,
        range_values=range_values,
        range_condition=range_part,
    )


def _flatten_and(condition: Condition) -> Iterator[Condition]:
    if isinstance(condition, And):
        for c in condition.conditions:
            yield from _flatten_and(c)
    else:
        yield condition


def _key_part(part: Condition) -> tuple[str, RangeOp, tuple[AttributeValue, ...]]:
    """The key attribute, operator and values of one AND-ed part of a key condition."""
    if isinstance(part, Or):
        raise ExpressionError("OR is not allowed in a key condition; use a filter expression")
    if isinstance(part, Not):
        raise ExpressionError("NOT is not allowed in a key condition; use a filter expression")
    for cls, what in _FILTER_ONLY.items():
        if isinstance(part, cls):
            raise ExpressionError(
                f"{what} is not allowed in a key condition (only = < <= > >= BETWEEN "
                "begins_with); use a filter expression"
            )
    if isinstance(part, Compare):
        if part.op == "<>":
            raise ExpressionError(
                "<> (!=) is not allowed in a key condition; use a filter expression"
            )
        return _key_name(part.left), part.op, (_key_value(part.right, part.left),)
    if isinstance(part, Between):
        name = _key_name(part.operand)
        return (
            name,
            "BETWEEN",
            (_key_value(part.low, part.operand), _key_value(part.high, part.operand)),
        )
    if isinstance(part, BeginsWith):
        return _key_name(part.path), "begins_with", (_key_value(part.prefix, part.path),)
    raise ExpressionError(f"{type(part).__name__} is not allowed in a key condition")


def _key_name(operand: Operand) -> str:
    if not isinstance(operand, Path):
        raise ExpressionError(
            f"a key condition compares a key attribute with a value, got {operand!r}"
        )
    if len(operand.elements) != 1:
        raise ExpressionError(
            f"{operand.name} is a nested path; key attributes are top-level attributes"
        )
    return str(operand.elements[0])


def _key_value(operand: Operand, key: Operand) -> AttributeValue:
    if not isinstance(operand, Value):
        raise ExpressionError(
            f"a key condition compares {key!r} with a value, not with {operand!r}"
        )
    tag = next(iter(operand.av))
    if tag not in _KEY_TAGS:
        raise ExpressionError(
            f"key attribute {key!r} is compared with a {tag} value; keys are S, N or B"
        )
    return operand.av
