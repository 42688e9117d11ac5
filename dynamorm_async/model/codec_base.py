"""The codec protocol and the code-generation context shared by all codecs.

Every declared type compiles to a :class:`Codec` with two implementations:

* a **fast** one, emitted as Python source (:meth:`Codec.enc` / :meth:`Codec.dec`
  return expressions) and compiled once per entity with ``exec``. It handles the
  exact declared types only and raises (anything) on everything else;
* a **careful** one (:meth:`Codec.encode` / :meth:`Codec.decode`), path-aware and
  lenient (subclasses, ``tuple`` for ``list``...), which raises
  :class:`~dynamorm_async.errors.EncodeError` / :class:`~dynamorm_async.errors.DecodeError`
  naming the attribute path.

The per-entity functions run the fast code and, only if it raises, run the careful
code on the same input, so errors are precise and the common path pays for no checks
beyond one ``__class__`` test per value.
"""

from __future__ import annotations

import abc
from typing import Any, NoReturn

from ..attrvalue import AttributeValue
from ..errors import DecodeError

__all__ = ["Codec", "Fallback", "Gen", "fallback", "join_path", "single_tag"]


class Fallback(Exception):
    """Raised by generated fast code when a value is not of the exact declared type."""


def fallback() -> NoReturn:
    """Leave the fast path (generated code calls this as ``_fb()``)."""
    raise Fallback


def join_path(path: str | None, name: str) -> str:
    """``path.name`` (or ``name`` at the top level)."""
    return f"{path}.{name}" if path else name


def single_tag(av: Any, path: str | None) -> tuple[str, Any]:
    """The ``(tag, raw)`` pair of a wire AttributeValue, or :class:`DecodeError`."""
    if isinstance(av, dict) and len(av) == 1:
        ((tag, raw),) = av.items()
        return tag, raw
    raise DecodeError(f"not an AttributeValue: {av!r}", path)


class Gen:
    """Code-generation context: the namespace of the generated module and fresh names."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {"_fb": fallback}
        self._ids: dict[int, str] = {}
        self._n = 0

    def ref(self, obj: Any, hint: str = "c") -> str:
        """A global name bound to ``obj`` in the generated namespace (one per object)."""
        name = self._ids.get(id(obj))
        if name is None:
            name = self.var(f"_{hint}")
            self._ids[id(obj)] = name
            self.ns[name] = obj
        return name

    def var(self, hint: str = "x") -> str:
        """A fresh identifier."""
        self._n += 1
        return f"{hint}{self._n}"


class Codec(abc.ABC):
    """Converts one declared Python type to and from wire AttributeValues.

    ``tags`` are the AttributeValue tags it produces; ``fast_types`` the exact Python
    types its fast encoder handles (used to dispatch unions).
    """

    tags: frozenset[str] = frozenset()
    fast_types: tuple[type, ...] = ()

    def describe(self) -> str:
        """The declared type, for messages."""
        return type(self).__name__

    # ------------------------------------------------------------ careful path

    @abc.abstractmethod
    def encode(self, value: Any, path: str | None) -> AttributeValue:
        """Encode ``value`` (lenient); raise ``EncodeError`` naming ``path``."""

    @abc.abstractmethod
    def decode(self, av: Any, path: str | None) -> Any:
        """Decode a wire AttributeValue; raise ``DecodeError`` naming ``path``."""

    def accepts(self, value: Any) -> bool:
        """Whether the careful encoder takes ``value`` (union dispatch)."""
        return isinstance(value, self.fast_types)

    # ------------------------------------------------------------ fast path (codegen)

    def enc(self, v: str, g: Gen) -> str:
        """Source of an expression turning the value named ``v`` into an AttributeValue.

        ``v`` must be a plain name (it may be evaluated more than once). The default
        calls the careful encoder.
        """
        return f"{g.ref(self)}.encode({v}, None)"

    def dec(self, x: str, g: Gen) -> str:
        """Source of an expression turning the AttributeValue named ``x`` into a value."""
        return f"{g.ref(self)}.decode({x}, None)"

    def child(self, key: str | int) -> Codec | None:
        """The codec of ``value[key]`` (map key or list index), if known."""
        return None
