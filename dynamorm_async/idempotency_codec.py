"""How idempotency selects and hashes payloads, and stores responses.

* :func:`selector` and :func:`binder`: which arguments of a call make its key (a
  parameter path such as ``"request.order_id"``, a list of them, or a function).
* :func:`canonical`: the bytes hashed for a key or a payload: JSON with sorted keys
  (orjson), sets sorted, ``Decimal`` as normalised text, ``bytes`` as base64, attrs
  instances as their field dicts. Equal payloads give equal bytes.
* :class:`ResultCodec`: turns a function's response into a stored AttributeValue and
  back. :func:`codec_for_type` builds one from the return annotation with the entity
  model's codecs (an entity uses its own generated codec), so a replay returns the
  declared type; :class:`JsonCodec` wraps any ``dumps``/``loads`` pair.
"""

from __future__ import annotations

import base64
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence, Set
from decimal import Decimal
from typing import Any, Protocol, Union

import attrs
import orjson

from .attrvalue import AttributeValue
from .errors import DecodeError, InvalidInput
from .idempotency_store import IdempotencyKeyError
from .model import EntityMeta, meta_of
from .model.codec_base import Codec
from .model.fields import FieldOptions
from .model.resolve import resolve
from .model.struct import StructCodec

__all__ = [
    "EntityCodec",
    "JsonCodec",
    "KeySpec",
    "ResultCodec",
    "Selector",
    "TypeCodec",
    "binder",
    "canonical",
    "codec_for_type",
    "selector",
]

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value.normalize()) if value.is_finite() else str(value)
    if isinstance(value, Set):
        return sorted(canonical(v).decode() for v in value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if attrs.has(type(value)):
        return {a.name: getattr(value, a.name) for a in attrs.fields(type(value))}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | list):
        return list(value)
    raise TypeError(f"cannot hash a {type(value).__name__}")


def canonical(value: Any) -> bytes:
    """Deterministic bytes of ``value`` for hashing (``InvalidInput`` if it has none)."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except TypeError as exc:
        raise InvalidInput(
            f"idempotency payload cannot be hashed: {exc}; select plain fields with key=, "
            "or pass a function returning plain data"
        ) from None


class ResultCodec(Protocol):
    """Stores a response as a wire AttributeValue and reads it back."""

    def encode(self, value: Any) -> AttributeValue:
        """The stored form of ``value``."""
        ...

    def decode(self, av: AttributeValue) -> Any:
        """The response from its stored form."""
        ...


@attrs.frozen
class TypeCodec:
    """A codec of the entity model for a declared type (``int``, ``list[Receipt]``...)."""

    codec: Codec
    where: str = "result"

    def encode(self, value: Any) -> AttributeValue:
        """Encode with the model codec (``EncodeError`` naming the path)."""
        if value is None:
            return {"NULL": True}
        return self.codec.encode(value, self.where)

    def decode(self, av: AttributeValue) -> Any:
        """Decode with the model codec."""
        if av.get("NULL") is True:
            return None
        return self.codec.decode(av, self.where)


@attrs.frozen
class EntityCodec:
    """An entity response, stored as ``M`` with the entity's generated codec."""

    meta: EntityMeta[Any]

    def encode(self, value: Any) -> AttributeValue:
        """``{"M": item}``; ``None`` as ``NULL``."""
        if value is None:
            return {"NULL": True}
        return {"M": self.meta.encode(value)}

    def decode(self, av: AttributeValue) -> Any:
        """The entity (or ``None``)."""
        if av.get("NULL") is True:
            return None
        if "M" not in av:
            raise DecodeError(f"expected a stored {self.meta.cls.__name__} (M), got {av!r}")
        return self.meta.decode(av["M"])


@attrs.frozen
class JsonCodec:
    """A response stored as text: ``dumps(value)`` (str or bytes) and ``loads(text)``."""

    dumps: Callable[[Any], str | bytes]
    loads: Callable[[str], Any]

    def encode(self, value: Any) -> AttributeValue:
        """``{"S": dumps(value)}``."""
        text = self.dumps(value)
        return {"S": text.decode("utf-8") if isinstance(text, bytes) else text}

    def decode(self, av: AttributeValue) -> Any:
        """``loads`` of the stored text."""
        if "S" not in av:
            raise DecodeError(f"expected stored JSON text (S), got {av!r}")
        return self.loads(av["S"])


def _strip_none(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return tp


def _encrypted(memo: dict[type, StructCodec]) -> list[str]:
    return [
        f"{s.cls.__qualname__}.{f.name}"
        for s in memo.values()
        for f in s.fields
        if f.options.encrypted
    ]


def codec_for_type(tp: Any, where: str = "result") -> ResultCodec:
    """The codec storing values of the declared type ``tp`` (``TypeError`` if unsupported).

    A type holding fields declared ``encrypted=True`` is refused: the response would be
    stored in plaintext; pass a codec that encrypts (or stores a reference) instead.
    """
    inner = _strip_none(tp)
    if isinstance(inner, type):
        meta: EntityMeta[Any] | None
        try:
            meta = meta_of(inner)
        except TypeError:
            meta = None
        if meta is not None:
            secret = [f.name for f in meta.fields.values() if f.encrypted]
            if secret:
                raise TypeError(
                    f"{where}: {inner.__name__} has encrypted fields ({', '.join(secret)}), "
                    "which a stored response would hold in plaintext; pass codec="
                )
            return EntityCodec(meta)
    memo: dict[type, StructCodec] = {}
    try:
        codec = resolve(tp, FieldOptions(), where, memo)
    except TypeError as exc:
        raise TypeError(f"{exc}; or pass codec=JsonCodec(dumps, loads)") from None
    secret = _encrypted(memo)
    if secret:
        raise TypeError(
            f"{where}: the response type holds encrypted fields ({', '.join(secret)}), "
            "which would be stored in plaintext; pass codec="
        )
    for struct in memo.values():
        struct.compile()
    return TypeCodec(codec, where)


KeySpec = str | Sequence[str] | Callable[..., Any] | None
Selector = Callable[[dict[str, Any], tuple[Any, ...], dict[str, Any]], Any]


class _Binder:
    """Maps a call's arguments to parameter names, skipping ``self``/``cls``.

    Plain signatures (no ``*args``/``**kwargs``/positional-only) take a fast path;
    anything else, and every call the fast path cannot place, goes through
    ``Signature.bind`` (which raises the usual ``TypeError`` for bad calls).
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.sig = sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        self.simple = all(p.kind in plain for p in params)
        self.positional = [p.name for p in params if p.kind is plain[0]]
        self.names = frozenset(sig.parameters)
        self.defaults = {p.name: p.default for p in params if p.default is not p.empty}
        self.skip = tuple(n for n in ("self", "cls") if n in sig.parameters)

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] | None = None
        if self.simple and len(args) <= len(self.positional):
            out = dict(zip(self.positional, args, strict=False))
            if kwargs:
                if any(k in out or k not in self.names for k in kwargs):
                    out = None
                else:
                    out.update(kwargs)
            if out is not None and len(out) < len(self.names):
                for n, d in self.defaults.items():
                    out.setdefault(n, d)
                if len(out) < len(self.names):
                    out = None
        if out is None:
            bound = self.sig.bind(*args, **kwargs)
            bound.apply_defaults()
            out = dict(bound.arguments)
        for n in self.skip:
            del out[n]
        return out


def selector(fn: Callable[..., Any], spec: KeySpec, what: str) -> Selector:
    """A function of (bound arguments, args, kwargs) returning the selected payload."""
    if callable(spec):
        custom = spec
        return lambda arguments, args, kwargs: custom(*args, **kwargs)
    if spec is None:
        return lambda arguments, args, kwargs: arguments
    sig = inspect.signature(fn)
    paths = [spec] if isinstance(spec, str) else list(spec)
    if not paths or not all(isinstance(p, str) and p for p in paths):
        raise InvalidInput(f"{what} must be a parameter path, a list of them, or a callable")
    for p in paths:
        if p.split(".", 1)[0] not in sig.parameters:
            raise InvalidInput(f"{what}={p!r}: {fn.__qualname__} has no parameter {p!r}")
    if isinstance(spec, str):
        return lambda arguments, args, kwargs: _walk(arguments, spec)
    return lambda arguments, args, kwargs: {p: _walk(arguments, p) for p in paths}


def _walk(arguments: dict[str, Any], path: str) -> Any:
    value: Any = arguments
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif not isinstance(value, dict) and hasattr(value, part):
            value = getattr(value, part)
        else:
            raise IdempotencyKeyError(f"idempotency key path {path!r}: no {part!r}")
    if value is None:
        raise IdempotencyKeyError(f"idempotency key path {path!r} is None")
    return value


def binder(fn: Callable[..., Any]) -> Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]:
    """A function mapping ``(args, kwargs)`` of calls to ``fn`` to a name -> value dict."""
    return _Binder(fn)
