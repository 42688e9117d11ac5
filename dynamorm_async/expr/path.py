"""Document paths: the attribute references that conditions and updates are built from.

A :class:`Path` names one attribute of an item, optionally followed by map keys
and list indexes: ``Path(("meta", "ip"))`` is ``meta.ip``, ``Path(("tags", 0))`` is
``tags[0]``. Each element is one name, dots included: ``attr("a.b")`` is the single
attribute called ``a.b``, never ``a`` then ``b`` (nested paths are built with
``[]``: ``attr("a")["b"]``). Every name becomes an ``#n`` placeholder when compiled,
so reserved words and any character are safe.

Entities expose one :class:`Path` per field as a class attribute; :func:`attr`
(alias :data:`Attr`) builds free paths without an entity.

**Equality and hashing.** ``path == value`` builds a condition, it does not compare
paths. Paths therefore hash by *identity* (``__hash__`` is ``object.__hash__``):
they can be dict keys and set members, and a lookup never calls the overloaded
``__eq__``. To compare two paths structurally, compare their ``elements``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from ..attrvalue import AttributeValue
from ..errors import ExpressionError
from .conditions import (
    ATTRIBUTE_TYPES,
    AttributeType,
    BeginsWith,
    Between,
    Compare,
    Contains,
    Exists,
    In,
    NotExists,
)
from .operands import SET_TAGS, Encoder, Operand, Value, encode_value, trusted_value
from .update import (
    AddAction,
    Arithmetic,
    DeleteAction,
    IfNotExists,
    ListAppend,
    RemoveAction,
    SetAction,
    SetOperand,
    if_not_exists,
)

__all__ = ["MAX_IN_OPERANDS", "Attr", "Path", "Size", "attr"]

#: DynamoDB's limit on the right-hand side of ``IN``.
MAX_IN_OPERANDS = 100

ChildEncoder = Callable[[str | int], Encoder | None]


class _Comparable(Operand):
    """Comparison operators shared by :class:`Path` and :class:`Size`."""

    __slots__ = ()

    #: Turns the right-hand side of a comparison into an operand (each subclass defines it).
    _rhs: Callable[[Any], Operand]

    def __eq__(self, other: Any) -> Compare:  # type: ignore[override]
        return Compare("=", self, self._rhs(other))

    def __ne__(self, other: Any) -> Compare:  # type: ignore[override]
        return Compare("<>", self, self._rhs(other))

    def __lt__(self, other: Any) -> Compare:
        return Compare("<", self, self._rhs(other))

    def __le__(self, other: Any) -> Compare:
        return Compare("<=", self, self._rhs(other))

    def __gt__(self, other: Any) -> Compare:
        return Compare(">", self, self._rhs(other))

    def __ge__(self, other: Any) -> Compare:
        return Compare(">=", self, self._rhs(other))

    __hash__ = object.__hash__

    def between(self, low: Any, high: Any) -> Between:
        """``self BETWEEN low AND high`` (inclusive).

        When both bounds are values they must have the same type and ``low <= high``
        (DynamoDB's rule), else :class:`~dynamorm_async.errors.ExpressionError`.
        """
        lo, hi = self._rhs(low), self._rhs(high)
        if isinstance(lo, Value) and isinstance(hi, Value):
            _check_bounds(lo.av, hi.av, self)
        return Between(self, lo, hi)

    def is_in(self, values: Iterable[Any]) -> In:
        """``self IN (values...)``: 1 to 100 candidates (DynamoDB's limit)."""
        if isinstance(values, str | bytes | bytearray | Mapping) or not isinstance(
            values, Iterable
        ):
            raise ExpressionError(
                f"is_in() takes a list, tuple or set of candidates, got {type(values).__name__}"
            )
        candidates = tuple(self._rhs(v) for v in values)
        if not candidates:
            raise ExpressionError("is_in() needs at least one candidate")
        if len(candidates) > MAX_IN_OPERANDS:
            raise ExpressionError(
                f"is_in() got {len(candidates)} candidates; DynamoDB allows at most "
                f"{MAX_IN_OPERANDS}"
            )
        return In(self, candidates)


class Path(_Comparable):
    """A document path: a stored attribute name, then map keys (str) and list indexes (int).

    ``encoder`` turns a Python value of this attribute into a wire-format
    AttributeValue (generic rules of :func:`~dynamorm_async.attrvalue.to_attribute_value`
    if ``None``). ``owner`` is the entity class and ``field_name`` the Python field
    name, both ``None`` for free paths. ``child_encoder(key)`` optionally gives the
    encoder of a child path ``self[key]``. Paths are immutable; they hash by identity
    (see the module docstring).
    """

    __slots__ = ("child_encoder", "elements", "encoder", "field_name", "owner")

    def __init__(
        self,
        elements: tuple[str | int, ...],
        *,
        encoder: Encoder | None = None,
        owner: type | None = None,
        field_name: str | None = None,
        child_encoder: ChildEncoder | None = None,
    ) -> None:
        elements = tuple(elements)
        if not elements or not isinstance(elements[0], str):
            raise ExpressionError(f"a path starts with an attribute name (str), got {elements!r}")
        for e in elements:
            _check_element(e, elements)
        self.elements: tuple[str | int, ...] = elements
        self.encoder = encoder
        self.owner = owner
        self.field_name = field_name
        self.child_encoder = child_encoder

    # ----------------------------------------------------------------- structure

    @property
    def name(self) -> str:
        """The path as text for messages: ``meta.ip``, ``tags[0]``."""
        parts = [str(self.elements[0])]
        for e in self.elements[1:]:
            parts.append(f"[{e}]" if isinstance(e, int) else f".{e}")
        return "".join(parts)

    def __getitem__(self, key: str | int) -> Path:
        """The child path ``self[key]``: a map key (str) or a list index (int)."""
        _check_element(key, (*self.elements, key))
        enc = self.child_encoder(key) if self.child_encoder is not None else None
        return Path((*self.elements, key), encoder=enc, owner=self.owner)

    def __iter__(self) -> Any:
        raise TypeError("a Path is not iterable; use its .elements")

    def __contains__(self, item: object) -> bool:
        raise TypeError("'in' does not work on a Path; use path.contains(value) in a condition")

    def __repr__(self) -> str:
        if self.owner is not None and self.field_name is not None and len(self.elements) == 1:
            return f"{self.owner.__name__}.{self.field_name}"
        return f"Path({self.elements!r})"

    def __str__(self) -> str:
        return self.name

    def encode(self, value: Any) -> AttributeValue:
        """Encode ``value`` as this attribute's AttributeValue (errors name the path)."""
        return encode_value(value, self.encoder, self.name)

    def _rhs(self, other: Any) -> Operand:
        if isinstance(other, Operand):
            return other
        return trusted_value(self.encode(other))

    # ----------------------------------------------------------------- conditions

    def begins_with(self, prefix: str | bytes) -> BeginsWith:
        """``begins_with(self, prefix)``; ``prefix`` is a str or bytes."""
        av = encode_value(prefix, None, self.name)
        if "S" not in av and "B" not in av:
            raise ExpressionError(
                f"{self.name}: begins_with() needs a str or bytes prefix, "
                f"got {type(prefix).__name__}"
            )
        return BeginsWith(self, trusted_value(av))

    def contains(self, operand: Any) -> Contains:
        """``contains(self, operand)``: a substring, or an element of a set or list.

        The operand is encoded with the generic rules (it is an element, not a value
        of this attribute); pass a :class:`Value` or a path to control it.
        """
        if isinstance(operand, Operand):
            if isinstance(operand, Size):
                raise ExpressionError(f"{self.name}: contains() does not take size()")
            return Contains(self, operand)
        return Contains(self, trusted_value(encode_value(operand, None, self.name)))

    def exists(self) -> Exists:
        """``attribute_exists(self)``."""
        return Exists(self)

    def not_exists(self) -> NotExists:
        """``attribute_not_exists(self)``."""
        return NotExists(self)

    def attribute_type(self, type_name: str) -> AttributeType:
        """``attribute_type(self, t)`` with ``t`` in S, SS, N, NS, B, BS, BOOL, NULL, L, M."""
        if type_name not in ATTRIBUTE_TYPES:
            raise ExpressionError(
                f"{self.name}: attribute_type() takes one of {sorted(ATTRIBUTE_TYPES)}, "
                f"got {type_name!r}"
            )
        return AttributeType(self, type_name)

    def size(self) -> Size:
        """``size(self)``, an operand to compare with numbers: ``A.tags.size() > 3``."""
        return Size(self)

    # ----------------------------------------------------------------- updates

    def set(self, value: Any) -> SetAction:
        """``SET self = value``; ``value`` may be a Python value, a path or
        :func:`if_not_exists`."""
        if isinstance(value, Size):
            raise ExpressionError(f"{self.name}: size() cannot be used in an update")
        if isinstance(value, Path | Value | IfNotExists | ListAppend | Arithmetic):
            operand: SetOperand = value
        else:
            operand = trusted_value(self.encode(value))
        return SetAction(self, operand)

    def set_if_not_exists(self, default: Any) -> SetAction:
        """``SET self = if_not_exists(self, default)``: write only if absent."""
        return SetAction(self, if_not_exists(self, default))

    def remove(self) -> RemoveAction:
        """``REMOVE self``."""
        return RemoveAction(self)

    def add(self, value: Any) -> AddAction:
        """``ADD self value``: add a number, or add the elements of a (non-empty) set."""
        av = self.encode(value)
        if "N" not in av and not SET_TAGS.intersection(av):
            raise ExpressionError(
                f"{self.name}: add() takes a number or a set, got {next(iter(av))}; "
                "use append() for lists and set() for other values"
            )
        return AddAction(self, trusted_value(av))

    def delete(self, values: Any) -> DeleteAction:
        """``DELETE self values``: remove the elements of a (non-empty) set."""
        av = self.encode(values)
        if not SET_TAGS.intersection(av):
            raise ExpressionError(
                f"{self.name}: delete() takes a set of elements to remove, got "
                f"{next(iter(av))}; use remove() to delete the attribute"
            )
        return DeleteAction(self, trusted_value(av))

    def append(self, values: Any) -> SetAction:
        """``SET self = list_append(self, values)``: add elements at the end of a list."""
        return SetAction(self, ListAppend(self, self._list_value(values, "append")))

    def prepend(self, values: Any) -> SetAction:
        """``SET self = list_append(values, self)``: add elements at the start of a list."""
        return SetAction(self, ListAppend(self._list_value(values, "prepend"), self))

    def increment(self, n: int | float | Any = 1, *, initial: Any = None) -> SetAction:
        """``SET self = self + n``. With ``initial``, a missing attribute counts as
        ``initial``: ``SET self = if_not_exists(self, initial) + n``."""
        return self._arith("+", n, initial)

    def decrement(self, n: int | float | Any = 1, *, initial: Any = None) -> SetAction:
        """``SET self = self - n`` (``initial`` as in :meth:`increment`)."""
        return self._arith("-", n, initial)

    def _arith(self, op: Any, n: Any, initial: Any) -> SetAction:
        amount = self._number(n, "increment" if op == "+" else "decrement")
        left: SetOperand = self
        if initial is not None:
            left = IfNotExists(self, self._number(initial, "initial"))
        return SetAction(self, Arithmetic(left, op, amount))

    def _number(self, n: Any, what: str) -> Value:
        av = encode_value(n, None, self.name)
        if "N" not in av:
            raise ExpressionError(f"{self.name}: {what} needs a number, got {type(n).__name__}")
        return trusted_value(av)

    def _list_value(self, values: Any, what: str) -> Value:
        av = self.encode(values)
        if "L" not in av:
            raise ExpressionError(
                f"{self.name}: {what}() takes a list of elements, got {next(iter(av))}"
            )
        return trusted_value(av)


class Size(_Comparable):
    """``size(path)``: the length of a string, binary, set, list or map.

    Compare it with numbers or other operands: ``Payment.tags.size() > 3``.
    """

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def _rhs(self, other: Any) -> Operand:
        if isinstance(other, Operand):
            return other
        av = encode_value(other, None, f"size({self.path.name})")
        if "N" not in av:
            raise ExpressionError(
                f"size({self.path.name}) compares with numbers, got {type(other).__name__}"
            )
        return trusted_value(av)

    def __repr__(self) -> str:
        return f"size({self.path!r})"


def attr(name: str, *, encoder: Encoder | None = None) -> Path:
    """A free path to the top-level attribute ``name`` (never split on dots).

    ``attr("a.b")`` is the one attribute named ``a.b``; nest with ``[]``:
    ``attr("meta")["ip"]``, ``attr("tags")[0]``.
    """
    return Path((name,), encoder=encoder)


#: Alias of :func:`attr`.
Attr = attr


def _check_bounds(low: AttributeValue, high: AttributeValue, where: Operand) -> None:
    ((lt, lv),) = low.items()
    ((ht, hv),) = high.items()
    if lt != ht:
        raise ExpressionError(f"{where!r}.between(): bounds of different types ({lt} and {ht})")
    if lt not in ("N", "S", "B"):
        raise ExpressionError(f"{where!r}.between(): bounds must be S, N or B, got {lt}")
    key: Callable[[Any], Any] = {
        "N": Decimal,
        "S": lambda x: x.encode("utf-8"),
        "B": base64.b64decode,
    }[lt]
    if key(lv) > key(hv):
        raise ExpressionError(
            f"{where!r}.between(): the low bound {lv!r} is above the high bound {hv!r}"
        )


def _check_element(e: Any, elements: tuple[Any, ...]) -> None:
    if isinstance(e, bool) or not isinstance(e, str | int):
        raise ExpressionError(
            f"path elements are str (names, map keys) or int (list indexes), "
            f"got {type(e).__name__} in {elements!r}"
        )
    if isinstance(e, str) and not e:
        raise ExpressionError(f"empty attribute name in path {elements!r}")
    if isinstance(e, int) and e < 0:
        raise ExpressionError(f"negative list index {e} in path {elements!r}")
