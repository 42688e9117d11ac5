"""Container codecs: list, tuple, dict, set, unions, ``None`` and ``Any``."""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from ..attrvalue import AttributeValue, from_attribute_value, to_attribute_value
from ..errors import DecodeError, EncodeError
from .codec_base import Codec, Gen, join_path, single_tag
from .scalars import Scalar, StrCodec

__all__ = [
    "AnyCodec",
    "DictCodec",
    "FixedTupleCodec",
    "ListCodec",
    "NoneCodec",
    "SetCodec",
    "TupleCodec",
    "UnionCodec",
]

_ALL_TAGS = frozenset({"S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"})


def _expect(av: Any, tag: str, what: str, path: str | None) -> Any:
    got, raw = single_tag(av, path)
    if got != tag:
        raise DecodeError(f"expected {tag} ({what}), got {got}", path)
    return raw


class NoneCodec(Codec):
    """``None`` as ``NULL`` (only inside lists, maps and unions; top-level ``None`` is omitted)."""

    tags = frozenset({"NULL"})
    fast_types = (type(None),)

    def describe(self) -> str:
        """``None``."""
        return "None"

    def enc(self, v: str, g: Gen) -> str:
        """Fast."""
        return f'({{"NULL": True}} if {v} is None else _fb())'

    def dec(self, x: str, g: Gen) -> str:
        """Fast."""
        return f'(None if {x}["NULL"] is True else _fb())'

    def encode(self, value: Any, path: str | None) -> AttributeValue:
        """Careful."""
        if value is not None:
            raise EncodeError(f"expected None, got {type(value).__name__}", path)
        return {"NULL": True}

    def decode(self, av: Any, path: str | None) -> Any:
        """Careful."""
        _expect(av, "NULL", "None", path)
        return None


class AnyCodec(Codec):
    """``Any``: the generic rules of :mod:`dynamorm_async.attrvalue` (numbers read as Decimal)."""

    tags = _ALL_TAGS
    fast_types = (object,)

    def describe(self) -> str:
        """``Any``."""
        return "Any"

    def enc(self, v: str, g: Gen) -> str:
        """Fast (the generic converter)."""
        return f"{g.ref(to_attribute_value, 'to_av')}({v})"

    def dec(self, x: str, g: Gen) -> str:
        """Fast (the generic converter)."""
        return f"{g.ref(from_attribute_value, 'from_av')}({x})"

    def accepts(self, value: Any) -> bool:
        """Everything."""
        return True

    def encode(self, value: Any, path: str | None) -> AttributeValue:
        """Careful."""
        return to_attribute_value(value, path)

    def decode(self, av: Any, path: str | None) -> Any:
        """Careful."""
        return from_attribute_value(av, path)


class ListCodec(Codec):
    """``list[T]`` as ``L``."""

    tags = frozenset({"L"})
    container: type = list

    def __init__(self, item: Codec) -> None:
        self.item = item
        self.fast_types = (self.container,)

    def describe(self) -> str:
        """``list[T]``."""
        return f"list[{self.item.describe()}]"

    def enc(self, v: str, g: Gen) -> str:
        """Fast."""
        x = g.var("x")
        t = self.container.__name__
        return (
            f'({{"L": [{self.item.enc(x, g)} for {x} in {v}]}} if {v}.__class__ is {t} else _fb())'
        )

    def dec(self, x: str, g: Gen) -> str:
        """Fast."""
        y = g.var("y")
        body = f'[{self.item.dec(y, g)} for {y} in {x}["L"]]'
        return body if self.container is list else f"tuple({body})"

    def accepts(self, value: Any) -> bool:
        """lists and tuples."""
        return isinstance(value, list | tuple)

    def encode(self, value: Any, path: str | None) -> AttributeValue:
        """Careful."""
        if not self.accepts(value):
            raise EncodeError(f"expected {self.describe()}, got {type(value).__name__}", path)
        return {"L": [self.item.encode(v, f"{path}[{i}]") for i, v in enumerate(value)]}

    def decode(self, av: Any, path: str | None) -> Any:
        """Careful."""
        raw = _expect(av, "L", self.describe(), path)
        out = [self.item.decode(v, f"{path}[{i}]") for i, v in enumerate(raw)]
        return out if self.container is list else self.container(out)

    def child(self, key: str | int) -> Codec | None:
        """The item codec for an index."""
        return self.item if isinstance(key, int) else None


class TupleCodec(ListCodec):
    """``tuple[T, ...]`` as ``L``."""

    container = tuple

    def describe(self) -> str:
        """``tuple[T, ...]``."""
        return f"tuple[{self.item.describe()}, ...]"


class FixedTupleCodec(Codec):
    """``tuple[A, B, ...]`` (fixed length) as ``L``."""

    tags = frozenset({"L"})
    fast_types = (tuple,)

    def __init__(self, items: list[Codec]) -> None:
        self.items = items

    def describe(self) -> str:
        """``tuple[A, B]``."""
        return "tuple[" + ", ".join(c.describe() for c in self.items) + "]"

    def accepts(self, value: Any) -> bool:
        """lists and tuples."""
        return isinstance(value, list | tuple)

    def encode(self, value: Any, path: str | None) -> AttributeValue:
        """Careful."""
        if not self.accepts(value) or len(value) != len(self.items):
            raise EncodeError(f"expected {self.describe()}, got {value!r:.80}", path)
        return {
            "L": [
                c.encode(v, f"{path}[{i}]")
                for i, (c, v) in enumerate(zip(self.items, value, strict=True))
            ]
        }

    def decode(self, av: Any, path: str | None) -> Any:
        """Careful."""
        raw = _expect(av, "L", self.describe(), path)
        if len(raw) != len(self.items):
            raise DecodeError(f"expected {len(self.items)} items, got {len(raw)}", path)
        return tuple(
            c.decode(v, f"{path}[{i}]")
            for i, (c, v) in enumerate(zip(self.items, raw, strict=True))
        )

    def child(self, key: str | int) -> Codec | None:
        """The codec at an index."""
        if isinstance(key, int) and 0 <= key < len(self.items):
            return self.items[key]
        return None


class DictCodec(Codec):
    """``dict[K, V]`` as ``M``; ``K`` is str or a str-valued Enum."""

    tags = frozenset({"M"})
    fast_types = (dict,)

    def __init__(self, key: Scalar, value: Codec) -> None:
        self.key = key
        self.value = value

    def describe(self) -> str:
        """``dict[K, V]``."""
        return f"dict[{self.key.describe()}, {self.value.describe()}]"

    def enc(self, v: str, g: Gen) -> str:
        """Fast."""
        k, x = g.var("k"), g.var("x")
        body = f"{{{self.key.enc_raw(k, g)}: {self.value.enc(x, g)} for {k}, {x} in {v}.items()}}"
        return f'({{"M": {body}}} if {v}.__class__ is dict else _fb())'

    def dec(self, x: str, g: Gen) -> str:
        """Fast."""
        k, y = g.var("k"), g.var("y")
        return (
            f'{{{self.key.dec_raw(k, g)}: {self.value.dec(y, g)} for {k}, {y} in {x}["M"].items()}}'
        )

    def accepts(self, value: Any) -> bool:
        """Mappings."""
        return isinstance(value, Mapping)

    def encode(self, value: Any, path: str | None) -> AttributeValue:
        """Careful."""
        if not self.accepts(value):
            raise EncodeError(f"expected {self.describe()}, got {type(value).__name__}", path)
        out: dict[str, AttributeValue] = {}
        for k, v in value.items():
            name = self.key.to_raw(k, path)
            out[name] = self.value.encode(v, join_path(path, name))
        return {"M": out}

    def decode(self, av: Any, path: str | None) -> Any:
        """Careful."""
        raw = _expect(av, "M", self.describe(), path)
        if not isinstance(raw, dict):
            raise DecodeError(f"M holds {type(raw).__name__}", path)
        return {
            self.key.from_raw(k, path): self.value.decode(v, join_path(path, k))
            for k, v in raw.items()
        }

    def child(self, key: str | int) -> Codec | None:
        """The value codec for a map key."""
        return self.value if isinstance(key, str) else None


class SetCodec(Codec):
    """``set[T]`` / ``frozenset[T]`` as ``SS``, ``NS`` or ``BS`` (``T`` a S/N/B scalar).

    DynamoDB cannot store an empty set: entity fields omit it (and read a missing
    attribute back as an empty set); inside lists and maps it is an ``EncodeError``.
    """

    def __init__(self, elem: Scalar, container: type) -> None:
        self.elem = elem
        self.container = container
        self.tag = elem.tag + "S"
        self.tags = frozenset({self.tag})
        self.fast_types = (container,)

    def describe(self) -> str:
        """``set[T]``."""
        return f"{self.container.__name__}[{self.elem.describe()}]"

    def empty(self) -> Any:
        """An empty set of the declared kind."""
        return self.container()

    def enc(self, v: str, g: Gen) -> str:
        """Fast: non-empty set of the exact container type."""
        x = g.var("x")
        t = self.container.__name__
        items = f"[{self.elem.enc_raw(x, g)} for {x} in {v}]"
        return f"({{{self.tag!r}: {items}}} if {v}.__class__ is {t} and {v} else _fb())"

    def dec(self, x: str, g: Gen) -> str:
        """Fast."""
        t = self.container.__name__
        if isinstance(self.elem, StrCodec):
            return f"{t}({x}[{self.tag!r}])"
        y = g.var("y")
        return f"{t}([{self.elem.dec_raw(y, g)} for {y} in {x}[{self.tag!r}]])"

    def accepts(self, value: Any) -> bool:
        """Any set."""
        return isinstance(value, Set)

    def encode(self, value: Any, path: str | None) -> AttributeValue:
        """Careful."""
        if not self.accepts(value):
            raise EncodeError(f"expected {self.describe()}, got {type(value).__name__}", path)
        if not value:
            raise EncodeError("DynamoDB cannot store an empty set", path)
        raws = []
        for v in value:
            try:
                raws.append(self.elem.to_raw(v, path))
            except EncodeError as exc:
                raise EncodeError(f"set element {v!r:.80}: {exc}", path) from None
        return {self.tag: raws}

    def decode(self, av: Any, path: str | None) -> Any:
        """Careful."""
        raw = _expect(av, self.tag, self.describe(), path)
        if not isinstance(raw, list):
            raise DecodeError(f"{self.tag} holds {type(raw).__name__}, not a list", path)
        return self.container(self.elem.from_raw(r, path) for r in raw)


class UnionCodec(Codec):
    """A union of codecs with pairwise distinct wire tags (``int | str``, ``T | None``)."""

    def __init__(self, members: list[Codec]) -> None:
        self.members = members
        self.tags = frozenset().union(*(m.tags for m in members))
        self.fast_types = tuple(t for m in members for t in m.fast_types)
        self._by_tag = {t: m for m in members for t in m.tags}

    def describe(self) -> str:
        """``A | B``."""
        return " | ".join(m.describe() for m in self.members)

    def enc(self, v: str, g: Gen) -> str:
        """Fast: dispatch on the exact class."""
        out = "_fb()"
        for m in reversed(self.members):
            cond = " or ".join(f"{v}.__class__ is {g.ref(t, 'T')}" for t in m.fast_types)
            out = f"({m.enc(v, g)} if {cond} else {out})"
        return out

    def dec(self, x: str, g: Gen) -> str:
        """Fast: dispatch on the tag."""
        out = "_fb()"
        for tag, m in reversed(self._by_tag.items()):
            out = f"({m.dec(x, g)} if {tag!r} in {x} else {out})"
        return out

    def accepts(self, value: Any) -> bool:
        """If any member does."""
        return any(m.accepts(value) for m in self.members)

    def encode(self, value: Any, path: str | None) -> AttributeValue:
        """Careful: the member for the exact class first, then any member accepting it."""
        t = type(value)
        for m in self.members:
            if t in m.fast_types:
                return m.encode(value, path)
        for m in self.members:
            if m.accepts(value):
                return m.encode(value, path)
        raise EncodeError(f"expected {self.describe()}, got {t.__name__}", path)

    def decode(self, av: Any, path: str | None) -> Any:
        """Careful: by tag."""
        tag, _ = single_tag(av, path)
        m = self._by_tag.get(tag)
        if m is None:
            want = ", ".join(sorted(self.tags))
            raise DecodeError(f"expected one of {want} ({self.describe()}), got {tag}", path)
        return m.decode(av, path)

    def child(self, key: str | int) -> Codec | None:
        """The child codec if exactly one member knows it."""
        found = [c for m in self.members if (c := m.child(key)) is not None]
        return found[0] if len(found) == 1 else None
