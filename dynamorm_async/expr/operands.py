"""Operands shared by conditions and update actions, and the value-encoding rules.

An *operand* is what can stand on either side of a comparison: a document path
(:class:`~dynamorm_async.expr.path.Path`), ``size(path)``
(:class:`~dynamorm_async.expr.path.Size`) or an already-encoded value (:class:`Value`).
Python values given to the expression API are encoded here, once, when the condition
or action is built, so bad values fail early with an
:class:`~dynamorm_async.errors.EncodeError` naming the path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ..attrvalue import AttributeValue, to_attribute_value
from ..errors import DynamormError, EncodeError

__all__ = [
    "SET_TAGS",
    "VALUE_TAGS",
    "Encoder",
    "Operand",
    "Value",
    "check_attribute_value",
    "encode_value",
    "trusted_value",
]

#: Turns a Python value into a wire-format AttributeValue.
Encoder = Callable[[Any], dict[str, Any]]

#: Every AttributeValue type tag DynamoDB knows.
VALUE_TAGS: Final = frozenset({"S", "N", "B", "SS", "NS", "BS", "BOOL", "NULL", "L", "M"})
#: The set type tags (they may not be empty).
SET_TAGS: Final = frozenset({"SS", "NS", "BS"})


class Operand:
    """Base class of everything that can be an operand of a condition."""

    __slots__ = ()


class Value(Operand):
    """An already-encoded value: a wire-format AttributeValue used as an operand.

    The expression API encodes plain Python values itself; wrap a value in
    :class:`Value` to pass the AttributeValue verbatim (``Value({"N": "5"})``), for
    example an element of a typed set for ``contains``. It is checked on creation.
    """

    __slots__ = ("av",)

    def __init__(self, av: Mapping[str, Any], where: str | None = None) -> None:
        check_attribute_value(av, where)
        self.av: AttributeValue = dict(av)

    def __repr__(self) -> str:
        return f"Value({self.av!r})"


def trusted_value(av: AttributeValue) -> Value:
    """Wrap an AttributeValue already known to be valid (skips the check of ``Value()``)."""
    v = Value.__new__(Value)
    v.av = av
    return v


def encode_value(value: Any, encoder: Encoder | None, where: str) -> AttributeValue:
    """Encode ``value`` with ``encoder`` (generic rules if ``None``); errors name ``where``.

    A :class:`Value` is returned as is. Any failure of a custom encoder becomes an
    :class:`~dynamorm_async.errors.EncodeError` naming ``where``, and the result is
    checked to be a valid AttributeValue without empty sets.
    """
    if isinstance(value, Value):
        return value.av
    if encoder is None:
        return to_attribute_value(value, where)
    try:
        av = encoder(value)
    except EncodeError as exc:
        if exc.path is None:
            raise EncodeError(str(exc), where) from exc
        raise
    except DynamormError:
        raise
    except Exception as exc:
        raise EncodeError(f"cannot encode {value!r}: {exc}", where) from exc
    check_attribute_value(av, where)
    return av


def check_attribute_value(av: Any, where: str | None) -> None:
    """Raise :class:`~dynamorm_async.errors.EncodeError` unless ``av`` is a valid
    wire-format AttributeValue with no empty set anywhere inside."""
    if not isinstance(av, Mapping) or len(av) != 1:
        raise EncodeError(f"not an AttributeValue: {av!r}", where)
    ((tag, raw),) = av.items()
    if tag not in VALUE_TAGS:
        raise EncodeError(f"unknown AttributeValue type {tag!r}", where)
    if tag in SET_TAGS:
        if not isinstance(raw, list | tuple):
            raise EncodeError(f"{tag} must hold a list, got {type(raw).__name__}", where)
        if not raw:
            raise EncodeError("DynamoDB cannot store an empty set", where)
    elif tag == "M":
        if not isinstance(raw, Mapping):
            raise EncodeError(f"M must hold a mapping, got {type(raw).__name__}", where)
        for k, v in raw.items():
            check_attribute_value(v, f"{where}.{k}" if where else str(k))
    elif tag == "L":
        if not isinstance(raw, list | tuple):
            raise EncodeError(f"L must hold a list, got {type(raw).__name__}", where)
        for i, v in enumerate(raw):
            check_attribute_value(v, f"{where}[{i}]")
