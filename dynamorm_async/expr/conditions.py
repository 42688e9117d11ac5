"""Condition trees: comparisons, functions and their ``&``, ``|``, ``~`` combinations.

Conditions are built from paths (``Payment.amount > 100``) and compiled to
DynamoDB expression text by :class:`~dynamorm_async.expr.compiler.ExpressionBuilder`.
They are immutable values. ``bool(condition)`` raises :class:`TypeError`, so that
``a == 1 and b == 2`` (which Python would silently reduce to ``b == 2``) fails loudly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal, NoReturn

from ..errors import ExpressionError
from .operands import Operand, Value

if TYPE_CHECKING:
    from .path import Path

__all__ = [
    "ATTRIBUTE_TYPES",
    "And",
    "AttributeType",
    "BeginsWith",
    "Between",
    "Compare",
    "CompareOp",
    "Condition",
    "Contains",
    "Exists",
    "In",
    "Not",
    "NotExists",
    "Or",
    "all_of",
    "any_of",
]

#: The comparison operators of DynamoDB's expression language.
CompareOp = Literal["=", "<>", "<", "<=", ">", ">="]

#: The type names accepted by ``attribute_type``.
ATTRIBUTE_TYPES: Final = frozenset({"S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"})


class Condition:
    """Base class of every condition. Combine with ``&`` (AND), ``|`` (OR), ``~`` (NOT)."""

    __slots__ = ()

    def __and__(self, other: Condition) -> Condition:
        if not isinstance(other, Condition):
            return NotImplemented
        left = self.conditions if isinstance(self, And) else (self,)
        right = other.conditions if isinstance(other, And) else (other,)
        return And(*left, *right)

    def __or__(self, other: Condition) -> Condition:
        if not isinstance(other, Condition):
            return NotImplemented
        left = self.conditions if isinstance(self, Or) else (self,)
        right = other.conditions if isinstance(other, Or) else (other,)
        return Or(*left, *right)

    def __invert__(self) -> Condition:
        if isinstance(self, Not):
            return self.condition
        return Not(self)

    def __bool__(self) -> NoReturn:
        raise TypeError(
            "a condition has no truth value: combine conditions with & (and), | (or) "
            "and ~ (not) instead of the keywords and/or/not, and wrap each comparison "
            "in parentheses: (A.x == 1) & (A.y > 2)"
        )


class Compare(Condition):
    """``left op right``, where ``op`` is one of ``= <> < <= > >=``."""

    __slots__ = ("left", "op", "right")

    def __init__(self, op: CompareOp, left: Operand, right: Operand) -> None:
        self.op: CompareOp = op
        self.left = left
        self.right = right

    def __repr__(self) -> str:
        return f"({self.left!r} {self.op} {self.right!r})"


class Between(Condition):
    """``operand BETWEEN low AND high`` (both ends included)."""

    __slots__ = ("high", "low", "operand")

    def __init__(self, operand: Operand, low: Operand, high: Operand) -> None:
        self.operand = operand
        self.low = low
        self.high = high

    def __repr__(self) -> str:
        return f"({self.operand!r} BETWEEN {self.low!r} AND {self.high!r})"


class In(Condition):
    """``operand IN (v1, v2, ...)``: 1 to 100 candidates."""

    __slots__ = ("candidates", "operand")

    def __init__(self, operand: Operand, candidates: tuple[Operand, ...]) -> None:
        self.operand = operand
        self.candidates = candidates

    def __repr__(self) -> str:
        return f"({self.operand!r} IN {self.candidates!r})"


class BeginsWith(Condition):
    """``begins_with(path, prefix)``; the prefix is a string or binary value."""

    __slots__ = ("path", "prefix")

    def __init__(self, path: Path, prefix: Value) -> None:
        self.path = path
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"begins_with({self.path!r}, {self.prefix!r})"


class Contains(Condition):
    """``contains(path, operand)``: a substring, or an element of a set or list."""

    __slots__ = ("operand", "path")

    def __init__(self, path: Path, operand: Operand) -> None:
        self.path = path
        self.operand = operand

    def __repr__(self) -> str:
        return f"contains({self.path!r}, {self.operand!r})"


class Exists(Condition):
    """``attribute_exists(path)``."""

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"attribute_exists({self.path!r})"


class NotExists(Condition):
    """``attribute_not_exists(path)``."""

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"attribute_not_exists({self.path!r})"


class AttributeType(Condition):
    """``attribute_type(path, type)``; ``type`` is one of :data:`ATTRIBUTE_TYPES`."""

    __slots__ = ("path", "type_name")

    def __init__(self, path: Path, type_name: str) -> None:
        self.path = path
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"attribute_type({self.path!r}, {self.type_name!r})"


class And(Condition):
    """All of ``conditions`` hold. Built by ``&``, which flattens nested ANDs."""

    __slots__ = ("conditions",)

    def __init__(self, *conditions: Condition) -> None:
        if len(conditions) < 2:
            raise ExpressionError("And needs at least two conditions (use all_of for any number)")
        self.conditions = conditions

    def __repr__(self) -> str:
        return "(" + " AND ".join(map(repr, self.conditions)) + ")"


class Or(Condition):
    """At least one of ``conditions`` holds. Built by ``|``, which flattens nested ORs."""

    __slots__ = ("conditions",)

    def __init__(self, *conditions: Condition) -> None:
        if len(conditions) < 2:
            raise ExpressionError("Or needs at least two conditions (use any_of for any number)")
        self.conditions = conditions

    def __repr__(self) -> str:
        return "(" + " OR ".join(map(repr, self.conditions)) + ")"


class Not(Condition):
    """``condition`` does not hold. Built by ``~``."""

    __slots__ = ("condition",)

    def __init__(self, condition: Condition) -> None:
        self.condition = condition

    def __repr__(self) -> str:
        return f"NOT {self.condition!r}"


def all_of(*conditions: Condition | None) -> Condition | None:
    """AND of the given conditions, skipping ``None``; ``None`` if there are none.

    Handy to merge optional conditions: ``all_of(user_condition, version_check)``.
    """
    present = _present(conditions)
    if not present:
        return None
    result = present[0]
    for c in present[1:]:
        result = result & c
    return result


def any_of(*conditions: Condition | None) -> Condition | None:
    """OR of the given conditions, skipping ``None``; ``None`` if there are none."""
    present = _present(conditions)
    if not present:
        return None
    result = present[0]
    for c in present[1:]:
        result = result | c
    return result


def _present(conditions: tuple[Condition | None, ...]) -> list[Condition]:
    out: list[Condition] = []
    for c in conditions:
        if c is None:
            continue
        if not isinstance(c, Condition):
            raise ExpressionError(f"expected a Condition or None, got {type(c).__name__}")
        out.append(c)
    return out
