"""Codecs of closed value sets: ``Enum`` (stored by value) and ``Literal``."""

from __future__ import annotations

import enum
from typing import Any

from ..attrvalue import number_to_wire
from ..errors import DecodeError, EncodeError
from .codec_base import Gen
from .scalars import BoolCodec, IntCodec, Scalar, StrCodec

__all__ = ["EnumCodec", "LiteralCodec"]


class EnumCodec(Scalar):
    """An ``Enum`` stored by value: ``S`` if all values are str, ``N`` if all are int."""

    def __init__(self, cls: type[enum.Enum], where: str) -> None:
        values = [m.value for m in cls]
        if values and all(isinstance(v, str) for v in values):
            self.tag = "S"
            wire = {m: str.__str__(m.value) for m in cls}
        elif values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            self.tag = "N"
            wire = {m: number_to_wire(int(m.value)) for m in cls}
        else:
            raise TypeError(
                f"{where}: Enum {cls.__name__} must have only str values or only int values"
            )
        super().__init__()
        self.cls = cls
        self.fast_types = (cls,)
        self._wire: dict[Any, str] = wire
        self._members: dict[str, Any] = {w: m for m, w in wire.items()}

    def describe(self) -> str:
        """The enum's name."""
        return self.cls.__name__

    def enc_raw(self, v: str, g: Gen) -> str:
        """Fast: precomputed wire text per member."""
        wire, cls = g.ref(self._wire, "ew"), g.ref(self.cls, "E")
        return f"({wire}[{v}] if {v}.__class__ is {cls} else _fb())"

    def dec_raw(self, r: str, g: Gen) -> str:
        """Fast: dict lookup by wire text."""
        return f"{g.ref(self._members, 'em')}[{r}]"

    def accepts(self, value: Any) -> bool:
        """Members, or raw values that name one."""
        return isinstance(value, self.cls)

    def to_raw(self, value: Any, path: str | None) -> Any:
        """Careful: a member, or a value of a member."""
        if not isinstance(value, self.cls):
            try:
                value = self.cls(value)
            except (ValueError, TypeError):
                valid = ", ".join(repr(m.value) for m in self.cls)
                raise EncodeError(
                    f"{value!r:.80} is not a {self.cls.__name__} (values: {valid})", path
                ) from None
        wire = self._wire.get(value)
        if wire is None:  # Flag combinations
            v = value.value
            wire = str.__str__(v) if self.tag == "S" else number_to_wire(int(v), path)
        return wire

    def from_raw(self, raw: Any, path: str | None) -> Any:
        """Careful."""
        member = self._members.get(raw) if isinstance(raw, str) else None
        if member is not None:
            return member
        try:
            value: Any = raw if self.tag == "S" else IntCodec().from_raw(raw, path)
            return self.cls(value)
        except (ValueError, TypeError):
            raise DecodeError(f"{raw!r:.80} is not a {self.cls.__name__} value", path) from None


class LiteralCodec(Scalar):
    """``Literal[...]`` of str (``S``), int (``N``) or bool (``BOOL``) values of one kind."""

    def __init__(self, values: tuple[Any, ...], where: str) -> None:
        kinds = {type(v) for v in values}
        base: Scalar
        if kinds == {str}:
            self.tag, base = "S", StrCodec()
        elif kinds == {int}:
            self.tag, base = "N", IntCodec()
        elif kinds == {bool}:
            self.tag, base = "BOOL", BoolCodec()
        else:
            raise TypeError(f"{where}: Literal values of one kind (str, int or bool) expected")
        super().__init__()
        self.values = frozenset(values)
        self.fast_types = (next(iter(kinds)),)
        self._base: Scalar = base

    def describe(self) -> str:
        """``Literal[...]``."""
        return "Literal[" + ", ".join(sorted(repr(v) for v in self.values)) + "]"

    def enc_raw(self, v: str, g: Gen) -> str:
        """Fast: exact type and membership."""
        vals = g.ref(self.values, "lv")
        t = self.fast_types[0].__name__
        raw = self._base.enc_raw(v, g)
        return f"({raw} if {v}.__class__ is {t} and {v} in {vals} else _fb())"

    def accepts(self, value: Any) -> bool:
        """Exact kind and one of the values."""
        return type(value) is self.fast_types[0] and value in self.values

    def to_raw(self, value: Any, path: str | None) -> Any:
        """Careful."""
        if not self.accepts(value):
            raise EncodeError(f"{value!r:.80} is not one of {self.describe()}", path)
        return self._base.to_raw(value, path)

    def from_raw(self, raw: Any, path: str | None) -> Any:
        """Careful (also the fast path: a set lookup is all it costs)."""
        value = self._base.from_raw(raw, path)
        if type(value) is not self.fast_types[0] or value not in self.values:
            raise DecodeError(f"{raw!r:.80} is not one of {self.describe()}", path)
        return value
