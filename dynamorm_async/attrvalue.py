"""Generic conversion between Python values and DynamoDB AttributeValues.

These are the *untyped* rules, the same as boto3's ``TypeSerializer`` and
``TypeDeserializer``, with three differences:

* the dicts are **wire format**: ``B`` and ``BS`` hold base64 text, so they go to
  and come from orjson without another pass;
* finite floats are accepted and stored as ``N`` (shortest round-tripping repr);
* errors are :class:`~dynamorm_async.errors.EncodeError` /
  :class:`~dynamorm_async.errors.DecodeError` naming the attribute path.

Typed entity fields (datetime, UUID, Enum, ...) are handled by the entity codec in
:mod:`dynamorm_async.model`; this module is the fallback for plain values.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Set
from decimal import (
    Clamped,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
)
from typing import Any

import orjson

from .errors import DecodeError, EncodeError, ItemTooLarge

__all__ = [
    "DYNAMODB_CONTEXT",
    "MAX_DEPTH",
    "MAX_ITEM_SIZE",
    "AttributeValue",
    "Item",
    "check_item_size",
    "from_attribute_value",
    "from_item",
    "item_size",
    "number_to_wire",
    "to_attribute_value",
    "to_item",
]

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

#: DynamoDB's number rules: 38 significant digits, exponent range as in boto3.
DYNAMODB_CONTEXT = Context(
    # DynamoDB's range is 1E-130 to 9.99..E+125: below Emin is Subnormal, above Emax Overflow
    Emin=-130,
    Emax=125,
    prec=38,
    traps=[Clamped, Overflow, Inexact, Rounded, Underflow, Subnormal],
)
#: DynamoDB's maximum item size in bytes.
MAX_ITEM_SIZE = 400 * 1024
#: DynamoDB's maximum nesting depth of lists and maps.
MAX_DEPTH = 32

_INT_LIMIT = 10**38


def number_to_wire(value: int | float | Decimal, path: str | None = None) -> str:
    """Format a number as DynamoDB ``N`` text, rejecting what DynamoDB cannot store."""
    if type(value) is int and -_INT_LIMIT < value < _INT_LIMIT:
        return str(value)
    if isinstance(value, bool):
        raise EncodeError("a bool is not a number", path)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EncodeError(f"{value!r} cannot be stored: DynamoDB has no NaN or infinity", path)
        value = Decimal(repr(value))
    try:
        d = DYNAMODB_CONTEXT.create_decimal(value)
    except (InvalidOperation, ArithmeticError) as exc:
        raise EncodeError(
            f"{value!r} is outside DynamoDB's number range "
            "(38 significant digits, magnitude 1E-130 to 9.99E+125)",
            path,
        ) from exc
    if not d.is_finite():
        raise EncodeError(f"{value!r} cannot be stored: DynamoDB has no NaN or infinity", path)
    return str(d)


def to_attribute_value(value: Any, path: str | None = None, _depth: int = 0) -> AttributeValue:
    """Convert a plain Python value to a wire-format AttributeValue."""
    t = type(value)
    if t is str:
        return {"S": value}
    if t is bool:
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if t is int or t is Decimal or t is float:
        return {"N": number_to_wire(value, path)}
    if t is bytes or t is bytearray or t is memoryview:
        return {"B": base64.b64encode(value).decode("ascii")}
    if _depth >= MAX_DEPTH:
        raise EncodeError(f"nested deeper than DynamoDB's limit of {MAX_DEPTH} levels", path)
    if isinstance(value, Mapping):
        out: dict[str, AttributeValue] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise EncodeError(f"map keys must be str, got {type(k).__name__}", path)
            out[k] = to_attribute_value(v, f"{path}.{k}" if path else k, _depth + 1)
        return {"M": out}
    if isinstance(value, list | tuple):
        return {
            "L": [to_attribute_value(v, f"{path}[{i}]", _depth + 1) for i, v in enumerate(value)]
        }
    if isinstance(value, Set):
        return _set_to_av(value, path)
    if isinstance(value, str | int | float | Decimal | bytes):  # subclasses (str Enums...)
        return to_attribute_value(_base_value(value), path, _depth)
    raise EncodeError(
        f"unsupported type {t.__name__}; declare the field's type on an entity "
        "or convert it to str, number, bytes, bool, None, list, dict or set",
        path,
    )


def _base_value(value: Any) -> Any:
    """The plain builtin value of a subclass instance (a str Enum member, an int flag...)."""
    base: type[Any]
    for base in (bool, str, int, float, Decimal, bytes):
        if isinstance(value, base):
            return base(value)
    return value  # pragma: no cover


def _set_to_av(value: Set[Any], path: str | None) -> AttributeValue:
    if not value:
        raise EncodeError("DynamoDB cannot store an empty set", path)
    if all(isinstance(v, str) for v in value):
        return {"SS": list(value)}
    if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in value):
        return {"NS": [number_to_wire(v, path) for v in value]}
    if all(isinstance(v, bytes | bytearray) for v in value):
        return {"BS": [base64.b64encode(v).decode("ascii") for v in value]}
    raise EncodeError("a set must hold only str, only numbers, or only bytes", path)


def to_item(values: Mapping[str, Any]) -> Item:
    """Convert a mapping of plain values to a DynamoDB item."""
    return {k: to_attribute_value(v, k) for k, v in values.items()}


def from_attribute_value(av: Mapping[str, Any], path: str | None = None) -> Any:
    """Convert a wire-format AttributeValue to plain Python (numbers become Decimal)."""
    try:
        ((tag, raw),) = av.items()
    except (ValueError, AttributeError) as exc:
        raise DecodeError(f"not an AttributeValue: {av!r}", path) from exc
    if tag == "S":
        return raw
    if tag == "N":
        return Decimal(raw)
    if tag == "BOOL":
        return raw
    if tag == "NULL":
        return None
    if tag == "M":
        return {k: from_attribute_value(v, f"{path}.{k}" if path else k) for k, v in raw.items()}
    if tag == "L":
        return [from_attribute_value(v, f"{path}[{i}]") for i, v in enumerate(raw)]
    if tag == "B":
        return base64.b64decode(raw)
    if tag == "SS":
        return set(raw)
    if tag == "NS":
        return {Decimal(x) for x in raw}
    if tag == "BS":
        return {base64.b64decode(x) for x in raw}
    raise DecodeError(f"unknown AttributeValue type {tag!r}", path)


def from_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Convert a DynamoDB item to a dict of plain Python values."""
    return {k: from_attribute_value(v, k) for k, v in item.items()}


def _number_size(text: str) -> int:
    digits = text.lstrip("-").split("E")[0].split("e")[0].replace(".", "").strip("0")
    return (len(digits) + 1) // 2 + 1


def _value_size(av: Mapping[str, Any]) -> int:
    ((tag, raw),) = av.items()
    if tag == "S":
        return len(raw.encode("utf-8"))
    if tag == "N":
        return _number_size(raw)
    if tag == "B":
        return len(base64.b64decode(raw))
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "SS":
        return sum(len(s.encode("utf-8")) for s in raw)
    if tag == "NS":
        return sum(_number_size(s) for s in raw)
    if tag == "BS":
        return sum(len(base64.b64decode(b)) for b in raw)
    if tag == "L":
        return 3 + sum(1 + _value_size(v) for v in raw)
    if tag == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + _value_size(v) for k, v in raw.items())
    raise DecodeError(f"unknown AttributeValue type {tag!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """DynamoDB's size of an item in bytes (names plus values, as DynamoDB counts them)."""
    return sum(len(k.encode("utf-8")) + _value_size(v) for k, v in item.items())


def check_item_size(item: Mapping[str, Mapping[str, Any]], limit: int = MAX_ITEM_SIZE) -> None:
    """Raise :class:`ItemTooLarge` if ``item`` is over ``limit`` bytes.

    The JSON length is an upper bound of the DynamoDB size, so the exact count runs
    only for items whose JSON is over the limit.
    """
    if len(orjson.dumps(item)) <= limit:
        return
    size = item_size(item)
    if size > limit:
        raise ItemTooLarge(size, limit)
