"""Declared Python types to codecs: all type inspection happens here, once per class."""

from __future__ import annotations

import enum
import types
import typing
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

import attrs

from .choices import EnumCodec, LiteralCodec
from .codec_base import Codec
from .composite import (
    AnyCodec,
    DictCodec,
    FixedTupleCodec,
    ListCodec,
    NoneCodec,
    SetCodec,
    TupleCodec,
    UnionCodec,
)
from .fields import FieldOptions, options_of
from .scalars import BoolCodec, BytesCodec, DecimalCodec, FloatCodec, IntCodec, Scalar, StrCodec
from .struct import StructCodec, StructField
from .temporal import DateCodec, DatetimeCodec, EpochDatetimeCodec, UUIDCodec

__all__ = ["SUPPORTED", "build_struct", "resolve", "split_optional"]

#: Human-readable list of the supported declared types (used in error messages).
SUPPORTED = (
    "str, int, Decimal, float, bool, bytes, None, UUID, datetime (tz-aware), date, Enum, "
    "Literal, Any, list[T], tuple[T, ...], tuple[A, B], dict[str, T], set[T]/frozenset[T] "
    "(T = str, int, Decimal, float, bytes or another S/N/B scalar), attrs classes, "
    "Optional[T] and unions of types with distinct DynamoDB types"
)

_SCALARS: dict[Any, type[Scalar]] = {
    str: StrCodec,
    int: IntCodec,
    Decimal: DecimalCodec,
    float: FloatCodec,
    bool: BoolCodec,
    bytes: BytesCodec,
    uuid.UUID: UUIDCodec,
    date: DateCodec,
}

Memo = dict[type, StructCodec]


def resolve(tp: Any, opts: FieldOptions, where: str, memo: Memo) -> Codec:
    """The codec for the declared type ``tp`` (``where`` names the field in errors)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        return resolve(args[0], opts, where, memo)
    if isinstance(tp, typing.NewType):
        return resolve(tp.__supertype__, opts, where, memo)
    if tp is Any:
        return AnyCodec()
    if tp is None or tp is type(None):
        return NoneCodec()
    if origin is Union or origin is types.UnionType:
        return _union(args, opts, where, memo)
    if origin is Literal:
        return _literal(args, where)
    if tp is datetime:
        return EpochDatetimeCodec() if opts.epoch else DatetimeCodec()
    scalar = _SCALARS.get(tp)
    if scalar is not None:
        return scalar()
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return EnumCodec(tp, where)
    if isinstance(tp, type) and attrs.has(tp):
        return build_struct(tp, memo)
    if tp is list or origin is list:
        return ListCodec(resolve(args[0], opts, where, memo) if args else AnyCodec())
    if tp is tuple or origin is tuple:
        return _tuple(args, opts, where, memo)
    if tp is dict or origin is dict:
        return _dict(args, opts, where, memo)
    if origin in (set, frozenset) or tp in (set, frozenset):
        return _set(tp, origin, args, opts, where, memo)
    raise TypeError(f"{where}: unsupported type {_name(tp)}; supported: {SUPPORTED}")


def _name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else repr(tp)


def _union(args: tuple[Any, ...], opts: FieldOptions, where: str, memo: Memo) -> Codec:
    members: list[Codec] = []
    literals: list[Any] = []
    for a in args:
        if typing.get_origin(a) is Literal:
            literals.extend(typing.get_args(a))
            continue
        c = resolve(a, opts, where, memo)
        if isinstance(c, AnyCodec):
            return c
        members.extend(c.members if isinstance(c, UnionCodec) else [c])
    if literals:
        lit = _literal(tuple(literals), where)
        members.extend(lit.members if isinstance(lit, UnionCodec) else [lit])
    seen: dict[str, Codec] = {}
    for m in members:
        for tag in m.tags:
            other = seen.get(tag)
            if other is not None:
                raise TypeError(
                    f"{where}: ambiguous union: {other.describe()} and {m.describe()} are "
                    f"both stored as {tag}, so a stored value could not be read back; "
                    "use a single type, or types stored differently (e.g. int | str)"
                )
            seen[tag] = m
    return members[0] if len(members) == 1 else UnionCodec(members)


def _literal(values: tuple[Any, ...], where: str) -> Codec:
    by_kind: dict[type, list[Any]] = {}
    members: list[Codec] = []
    for v in values:
        if v is None:
            members.append(NoneCodec())
        elif type(v) in (str, int, bool):
            by_kind.setdefault(type(v), []).append(v)
        else:
            raise TypeError(f"{where}: Literal values must be str, int, bool or None, got {v!r}")
    members[:0] = [LiteralCodec(tuple(vs), where) for vs in by_kind.values()]
    return members[0] if len(members) == 1 else UnionCodec(members)


def _tuple(args: tuple[Any, ...], opts: FieldOptions, where: str, memo: Memo) -> Codec:
    if not args:
        return TupleCodec(AnyCodec())
    if len(args) == 2 and args[1] is Ellipsis:
        return TupleCodec(resolve(args[0], opts, where, memo))
    if args == ((),):
        raise TypeError(f"{where}: tuple[()] cannot be stored")
    return FixedTupleCodec([resolve(a, opts, where, memo) for a in args])


def _dict(args: tuple[Any, ...], opts: FieldOptions, where: str, memo: Memo) -> Codec:
    if not args:
        return DictCodec(StrCodec(), AnyCodec())
    key = resolve(args[0], opts, where, memo)
    if not isinstance(key, StrCodec | EnumCodec) or key.tag != "S":
        raise TypeError(f"{where}: map keys must be str or a str-valued Enum, got {_name(args[0])}")
    return DictCodec(key, resolve(args[1], opts, where, memo))


def _set(
    tp: Any, origin: Any, args: tuple[Any, ...], opts: FieldOptions, where: str, memo: Memo
) -> Codec:
    container = origin or tp
    if not args:
        raise TypeError(
            f"{where}: declare the element type of the set (set[str], set[int], set[bytes]...)"
        )
    elem = resolve(args[0], opts, where, memo)
    if not isinstance(elem, Scalar) or elem.key_type is None:
        raise TypeError(
            f"{where}: DynamoDB sets hold only strings, numbers or binary; "
            f"{_name(args[0])} is not one of them"
        )
    return SetCodec(elem, container)


def split_optional(codec: Codec) -> tuple[Codec, bool]:
    """``(codec without None, optional?)``: ``T | None`` gives ``(T, True)``.

    ``Any`` admits ``None`` and so counts as optional, as does a field typed ``None``.
    """
    if isinstance(codec, AnyCodec | NoneCodec):
        return codec, True
    if isinstance(codec, UnionCodec) and any(isinstance(m, NoneCodec) for m in codec.members):
        rest = [m for m in codec.members if not isinstance(m, NoneCodec)]
        if not rest:
            return codec, True
        return (rest[0] if len(rest) == 1 else UnionCodec(rest)), True
    return codec, False


def _slot_names(cls: type) -> set[str]:
    names: set[str] = set()
    for k in cls.__mro__:
        slots = k.__dict__.get("__slots__", ())
        names.update([slots] if isinstance(slots, str) else slots)
    return names


def type_hints(cls: type) -> dict[str, Any]:
    """Resolved annotations of ``cls`` (string annotations evaluated), or a clear error."""
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:
        raise TypeError(
            f"{cls.__qualname__}: cannot resolve its type annotations ({exc}); define the "
            "types it refers to at module level, before the class"
        ) from exc


def build_struct(
    cls: type, memo: Memo, overrides: Mapping[str, FieldOptions] | None = None
) -> StructCodec:
    """The (not yet compiled) codec of the attrs class ``cls``; nested classes go to ``memo``."""
    found = memo.get(cls)
    if found is not None:
        return found
    codec = StructCodec(cls)
    memo[cls] = codec
    hints = type_hints(cls)
    slots = _slot_names(cls)
    has_dict = any("__slots__" not in k.__dict__ for k in cls.__mro__ if k is not object)
    fields: list[StructField] = []
    stored_by: dict[str, str] = {}
    for a in attrs.fields(cls):
        where = f"{cls.__qualname__}.{a.name}"
        opts = (overrides or {}).get(a.name) or options_of(a)
        tp = hints.get(a.name, a.type)
        if tp is None:
            raise TypeError(f"{where}: missing type annotation")
        inner, optional = split_optional(resolve(tp, opts, where, memo))
        stored = opts.name or a.name
        if stored in stored_by:
            raise ValueError(
                f"{cls.__qualname__}: fields {stored_by[stored]!r} and {a.name!r} are both "
                f"stored as {stored!r}"
            )
        stored_by[stored] = a.name
        fields.append(
            StructField(
                name=a.name,
                alias=a.alias or a.name,
                stored=stored,
                codec=inner,
                optional=optional,
                default=a.default,
                init=a.init,
                in_dict=has_dict and a.name not in slots,
                annotation=tp,
                options=opts,
            )
        )
    codec.set_fields(fields)
    return codec
