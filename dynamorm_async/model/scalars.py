"""Scalar codecs: one wire tag (``S``, ``N``, ``B`` or ``BOOL``) holding one raw value.

Scalars with tag ``S``, ``N`` or ``B`` can be key attributes and set elements. This
module has the base class and the plain types; :mod:`.temporal` has UUID and time
types, :mod:`.choices` Enum and Literal.
"""

from __future__ import annotations

import abc
import binascii
import math
from decimal import Decimal, InvalidOperation
from typing import Any

from ..attrvalue import DYNAMODB_CONTEXT, AttributeValue, number_to_wire
from ..errors import DecodeError, EncodeError
from .codec_base import Codec, Gen, single_tag

__all__ = [
    "BoolCodec",
    "BytesCodec",
    "DecimalCodec",
    "FloatCodec",
    "IntCodec",
    "Scalar",
    "StrCodec",
    "decimal_from_wire",
    "kind",
]

_INT_LIMIT = 10**38


def kind(value: Any) -> str:
    """The type name of ``value``, for messages."""
    return type(value).__name__


class Scalar(Codec):
    """A codec whose AttributeValue is ``{tag: raw}`` with a scalar ``raw``."""

    tag: str = "S"

    def __init__(self) -> None:
        self.tags = frozenset({self.tag})

    @property
    def key_type(self) -> str | None:
        """``'S'``, ``'N'`` or ``'B'`` if this type can be a key attribute, else ``None``."""
        return self.tag if self.tag in ("S", "N", "B") else None

    def enc_raw(self, v: str, g: Gen) -> str:
        """Expression: the raw wire value of the Python value named ``v`` (fast path)."""
        return f"{g.ref(self)}.to_raw({v}, None)"

    def dec_raw(self, r: str, g: Gen) -> str:
        """Expression: the Python value of the raw wire expression ``r`` (evaluated once)."""
        return f"{g.ref(self)}.from_raw({r}, None)"

    @abc.abstractmethod
    def to_raw(self, value: Any, path: str | None) -> Any:
        """Careful: the raw wire value of ``value``."""

    @abc.abstractmethod
    def from_raw(self, raw: Any, path: str | None) -> Any:
        """Careful: the Python value of a raw wire value."""

    def enc(self, v: str, g: Gen) -> str:
        """Fast: ``{tag: raw}``."""
        return f"{{{self.tag!r}: {self.enc_raw(v, g)}}}"

    def dec(self, x: str, g: Gen) -> str:
        """Fast: raw of ``x[tag]`` decoded (a wrong tag raises ``KeyError``)."""
        return self.dec_raw(f"{x}[{self.tag!r}]", g)

    def encode(self, value: Any, path: str | None) -> AttributeValue:
        """Careful encode."""
        return {self.tag: self.to_raw(value, path)}

    def decode(self, av: Any, path: str | None) -> Any:
        """Careful decode, checking the tag."""
        tag, raw = single_tag(av, path)
        if tag != self.tag:
            raise DecodeError(f"expected {self.tag} ({self.describe()}), got {tag}", path)
        return self.from_raw(raw, path)

    def _wrong(self, value: Any, path: str | None) -> EncodeError:
        return EncodeError(f"expected {self.describe()}, got {kind(value)} {value!r:.80}", path)


class StrCodec(Scalar):
    """``str`` as ``S``."""

    tag = "S"
    fast_types = (str,)

    def describe(self) -> str:
        """``str``."""
        return "str"

    def enc_raw(self, v: str, g: Gen) -> str:
        """Fast."""
        return f"({v} if {v}.__class__ is str else _fb())"

    def dec_raw(self, r: str, g: Gen) -> str:
        """Fast: identity."""
        return r

    def to_raw(self, value: Any, path: str | None) -> Any:
        """Careful: str and str subclasses (their plain text)."""
        if isinstance(value, str):
            return str.__str__(value)
        raise self._wrong(value, path)

    def from_raw(self, raw: Any, path: str | None) -> Any:
        """Careful."""
        if isinstance(raw, str):
            return raw
        raise DecodeError(f"S holds {kind(raw)}, not text", path)


class IntCodec(Scalar):
    """``int`` as ``N`` (38 digits at most)."""

    tag = "N"
    fast_types = (int,)

    def describe(self) -> str:
        """``int``."""
        return "int"

    def enc_raw(self, v: str, g: Gen) -> str:
        """Fast: exact ints in range."""
        return (
            f"(str({v}) if {v}.__class__ is int and -{_INT_LIMIT} < {v} < {_INT_LIMIT} else _fb())"
        )

    def dec_raw(self, r: str, g: Gen) -> str:
        """Fast."""
        return f"int({r})"

    def accepts(self, value: Any) -> bool:
        """ints, not bools."""
        return isinstance(value, int) and not isinstance(value, bool)

    def to_raw(self, value: Any, path: str | None) -> Any:
        """Careful: ints (and int subclasses), never bools."""
        if not self.accepts(value):
            raise self._wrong(value, path)
        return number_to_wire(int(value), path)

    def from_raw(self, raw: Any, path: str | None) -> Any:
        """Careful: integral numbers only (``1E+2`` is accepted as 100)."""
        try:
            return int(raw)
        except (TypeError, ValueError):
            pass
        d = decimal_from_wire(raw, path)
        if d != d.to_integral_value():
            raise DecodeError(f"N {raw!r} is not an integer", path)
        return int(d)


def decimal_from_wire(raw: Any, path: str | None) -> Decimal:
    """Careful: ``N`` text as a finite Decimal, or :class:`DecodeError`."""
    if not isinstance(raw, str):
        raise DecodeError(f"N holds {kind(raw)}, not number text", path)
    try:
        d = Decimal(raw)
    except InvalidOperation:
        raise DecodeError(f"N {raw!r:.80} is not a number", path) from None
    if not d.is_finite():
        raise DecodeError(f"N {raw!r} is not a finite number", path)
    return d


class DecimalCodec(Scalar):
    """``Decimal`` as ``N`` (DynamoDB's 38-digit range, never rounded)."""

    tag = "N"
    fast_types = (Decimal,)

    def describe(self) -> str:
        """``Decimal``."""
        return "Decimal"

    def enc_raw(self, v: str, g: Gen) -> str:
        """Fast: the context traps any rounding, so it raises rather than rounds."""
        cd, dec = g.ref(DYNAMODB_CONTEXT.create_decimal, "cd"), g.ref(Decimal, "D")
        return f"(str({cd}({v})) if {v}.__class__ is {dec} and {v}.is_finite() else _fb())"

    def dec_raw(self, r: str, g: Gen) -> str:
        """Fast: finite values only (``NaN`` text is not DynamoDB's)."""
        x = g.var("dec")
        return f"({x} if ({x} := {g.ref(Decimal, 'D')}({r})).is_finite() else _fb())"

    def accepts(self, value: Any) -> bool:
        """Decimals and ints (not bools, not floats: they are not exact)."""
        return isinstance(value, Decimal | int) and not isinstance(value, bool)

    def to_raw(self, value: Any, path: str | None) -> Any:
        """Careful."""
        if isinstance(value, float):
            raise EncodeError(
                f"got float {value!r} for a Decimal field; floats are not exact, "
                "pass Decimal(str(x)) or declare the field float",
                path,
            )
        if not self.accepts(value):
            raise self._wrong(value, path)
        return number_to_wire(value, path)

    def from_raw(self, raw: Any, path: str | None) -> Any:
        """Careful."""
        return decimal_from_wire(raw, path)


class FloatCodec(Scalar):
    """``float`` as ``N`` (shortest round-tripping text; NaN and infinity rejected)."""

    tag = "N"
    fast_types = (float,)

    def describe(self) -> str:
        """``float``."""
        return "float"

    def enc_raw(self, v: str, g: Gen) -> str:
        """Fast."""
        return f"({g.ref(number_to_wire, 'ntw')}({v}) if {v}.__class__ is float else _fb())"

    def dec_raw(self, r: str, g: Gen) -> str:
        """Fast: finite values only (``x - x`` is NaN for infinities and NaN)."""
        x = g.var("fl")
        return f"({x} if ({x} := float({r})) - {x} == 0 else _fb())"

    def accepts(self, value: Any) -> bool:
        """floats and ints (not bools)."""
        return isinstance(value, float | int) and not isinstance(value, bool)

    def to_raw(self, value: Any, path: str | None) -> Any:
        """Careful."""
        if not self.accepts(value):
            raise self._wrong(value, path)
        return number_to_wire(float(value), path)

    def from_raw(self, raw: Any, path: str | None) -> Any:
        """Careful."""
        f = float(decimal_from_wire(raw, path))
        if not math.isfinite(f):
            raise DecodeError(f"N {raw!r} is out of the float range", path)
        return f


class BoolCodec(Scalar):
    """``bool`` as ``BOOL``."""

    tag = "BOOL"
    fast_types = (bool,)

    def describe(self) -> str:
        """``bool``."""
        return "bool"

    def enc_raw(self, v: str, g: Gen) -> str:
        """Fast."""
        return f"({v} if {v}.__class__ is bool else _fb())"

    def dec_raw(self, r: str, g: Gen) -> str:
        """Fast: identity."""
        return r

    def to_raw(self, value: Any, path: str | None) -> Any:
        """Careful."""
        if isinstance(value, bool):
            return bool(value)
        raise self._wrong(value, path)

    def from_raw(self, raw: Any, path: str | None) -> Any:
        """Careful."""
        if isinstance(raw, bool):
            return raw
        raise DecodeError(f"BOOL holds {kind(raw)}", path)


class BytesCodec(Scalar):
    """``bytes`` as ``B`` (base64 text on the wire)."""

    tag = "B"
    fast_types = (bytes,)

    def describe(self) -> str:
        """``bytes``."""
        return "bytes"

    def enc_raw(self, v: str, g: Gen) -> str:
        """Fast."""
        b2a = g.ref(binascii.b2a_base64, "b2a")
        return f"({b2a}({v}, newline=False).decode() if {v}.__class__ is bytes else _fb())"

    def dec_raw(self, r: str, g: Gen) -> str:
        """Fast."""
        return f"{g.ref(binascii.a2b_base64, 'a2b')}({r})"

    def accepts(self, value: Any) -> bool:
        """bytes, bytearray, memoryview."""
        return isinstance(value, bytes | bytearray | memoryview)

    def to_raw(self, value: Any, path: str | None) -> Any:
        """Careful."""
        if not self.accepts(value):
            raise self._wrong(value, path)
        return binascii.b2a_base64(bytes(value), newline=False).decode("ascii")

    def from_raw(self, raw: Any, path: str | None) -> Any:
        """Careful."""
        try:
            return binascii.a2b_base64(raw)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise DecodeError(f"B is not base64 text: {exc}", path) from None
