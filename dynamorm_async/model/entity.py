"""The ``@entity`` decorator: attrs class + table declaration -> compiled :class:`EntityMeta`.

Key attributes (table and index keys) may be any type stored as a DynamoDB scalar
``S``, ``N`` or ``B``: ``str``, ``int``, ``Decimal``, ``float``, ``bytes``, ``UUID``,
``datetime``, ``date``, a str- or int-valued ``Enum``, or a ``Literal``. Table keys
must not be Optional; index keys may be (items without them are simply not in the
index: a *sparse* index).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar, overload

import attr
import attrs

from .codec_base import Codec
from .fields import FieldOptions, field, options_of
from .meta import EntityMeta, FieldMeta, Index, KeyAttr, Projection
from .resolve import build_struct, type_hints
from .scalars import IntCodec, StrCodec
from .struct import StructCodec
from .temporal import DatetimeCodec, EpochDatetimeCodec

__all__ = ["GSI", "LSI", "META_ATTR", "EntityType", "entity", "meta_of"]

T = TypeVar("T")

#: The class attribute holding an entity's :class:`EntityMeta`.
META_ATTR = "__dynamorm_meta__"

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_MAX_GSI = 20
_MAX_LSI = 5
_MAX_PROJECTED = 100


@attrs.frozen
class GSI:
    """A global secondary index declaration (field names; ``projection`` default ``ALL``)."""

    name: str
    hash_key: str
    range_key: str | None = None
    projection: Any = "ALL"


@attrs.frozen
class LSI:
    """A local secondary index declaration: the table's hash key with another range key."""

    name: str
    range_key: str
    projection: Any = "ALL"


class EntityType(type):
    """Metaclass of entity classes: ``Entity.field`` is the field's :class:`Path`.

    The paths are answered by the metaclass, not stored as class attributes, so no
    class attribute shadows a field. CPython 3.11 only specialises instance attribute
    reads and writes (``o.amount``) when the class has no attribute of that name; with
    one, every field access of every instance takes the slow generic path.
    """

    def __getattr__(cls, name: str) -> Any:
        if not name.startswith("__"):
            try:
                meta = type.__getattribute__(cls, META_ATTR)
            except AttributeError:
                pass
            else:
                if name in meta.fields:
                    return meta.path(name)
        raise AttributeError(f"type object {cls.__name__!r} has no attribute {name!r}")


@overload
def meta_of(obj: type[T]) -> EntityMeta[T]: ...
@overload
def meta_of(obj: T) -> EntityMeta[T]: ...
def meta_of(obj: Any) -> EntityMeta[Any]:
    """The :class:`EntityMeta` of an entity class or instance (``TypeError`` if not one)."""
    cls = obj if isinstance(obj, type) else type(obj)
    meta = getattr(cls, META_ATTR, None)
    if not isinstance(meta, EntityMeta):
        raise TypeError(f"{cls.__name__} is not an entity; decorate it with @entity(...)")
    return meta


# PEP 681: type checkers see the ``__init__`` that ``attrs.define(slots=False)`` makes
# (positional or keyword arguments in declaration order, ``__eq__``, not frozen, no
# ordering). A plain default or ``attrs.Factory(...)`` is a default; ``field``,
# ``attrs.field`` and ``attr.ib`` are read for ``default``/``factory``/``init``/
# ``kw_only``/``alias``.
@typing.dataclass_transform(
    eq_default=True,
    order_default=False,
    kw_only_default=False,
    frozen_default=False,
    field_specifiers=(field, attrs.field, attr.attrib),
)
def entity(
    *,
    table: str,
    hash_key: str,
    range_key: str | None = None,
    indexes: Sequence[GSI | LSI] = (),
    ttl: str | None = None,
    version: str | None = None,
    created_at: str | None = None,
    updated_at: str | None = None,
) -> Callable[[type[T]], type[T]]:
    """Declare an entity: make the class an attrs dict class and compile its metadata once.

    ``hash_key``/``range_key``, index keys, ``ttl`` (datetime, stored as epoch
    seconds, or int), ``version`` (int, optimistic locking) and ``created_at`` /
    ``updated_at`` (datetime) name fields of the class. Mistakes raise ``TypeError``
    or ``ValueError`` naming the class and the field, at decoration time.

    Type checkers see the generated ``__init__`` (PEP 681 ``dataclass_transform``), so
    no ``@attrs.define`` is needed for them. They type an attrs ``converter`` field's
    argument as the field's type, and the class attribute ``Entity.field`` (a ``Path``
    at runtime) as the field's type too.
    """

    def decorate(cls: type[T]) -> type[T]:
        cls = _as_attrs_dict_class(cls)
        where = cls.__qualname__
        if not isinstance(table, str) or not _TABLE_NAME.match(table):
            raise ValueError(
                f"{where}: table name {table!r} is invalid; DynamoDB needs 3-255 characters "
                "from A-Z a-z 0-9 _ . -"
            )
        memo: dict[type, StructCodec] = {}
        codec = build_struct(cls, memo, _ttl_override(cls, ttl))
        for c in memo.values():
            c.compile()
        fields = {
            f.name: FieldMeta(
                name=f.name,
                stored_name=f.stored,
                python_type=f.annotation,
                optional=f.optional,
                has_default=f.has_default,
                encrypted=f.options.encrypted,
                options=f.options,
                codec=f.codec,
            )
            for f in codec.fields
        }
        _check_blind_indexes(where, fields)
        roles = _Roles(where, fields)
        hk = roles.key(hash_key, "hash_key", allow_optional=False)
        rk = roles.key(range_key, "range_key", allow_optional=False) if range_key else None
        if rk is not None and rk.field_name == hk.field_name:
            raise ValueError(f"{where}: hash_key and range_key are the same field {hash_key!r}")
        idx = _indexes(where, indexes, roles, hk, rk)
        meta: EntityMeta[T] = EntityMeta(
            cls=cls,
            table=table,
            hash_key=hk,
            range_key=rk,
            indexes=idx,
            ttl=roles.special(ttl, "ttl", (EpochDatetimeCodec, IntCodec), "datetime or int"),
            version=roles.special(version, "version", (IntCodec,), "int", allow_optional=False),
            created_at=roles.special(created_at, "created_at", (DatetimeCodec,), "datetime"),
            updated_at=roles.special(updated_at, "updated_at", (DatetimeCodec,), "datetime"),
            fields=fields,
            codec=codec,
            encode=codec.encode_item,
            decode=codec.decode_item,
        )
        setattr(cls, META_ATTR, meta)
        return cls

    return decorate


def _check_blind_indexes(where: str, fields: dict[str, FieldMeta]) -> None:
    """A ``blind_index`` names another, unencrypted field stored as a string."""
    for f in fields.values():
        target_name = f.options.blind_index
        if target_name is None:
            continue
        target = fields.get(target_name)
        if target is None or target is f:
            raise ValueError(
                f"{where}.{f.name}: blind_index={target_name!r} must name another field"
            )
        if target.encrypted or not isinstance(target.codec, StrCodec):
            raise TypeError(
                f"{where}.{target_name}: a blind index field must be an unencrypted str "
                f"(or str | None), not {target.codec.describe()}"
            )


def _as_attrs_dict_class(cls: type[T]) -> type[T]:
    if not isinstance(cls, type):
        raise TypeError(f"@entity decorates a class, got {cls!r}")
    if "__attrs_attrs__" in cls.__dict__:
        if "__slots__" in cls.__dict__:
            raise TypeError(
                f"{cls.__qualname__} is a slotted attrs class; @entity needs instance "
                "__dict__s: use @attrs.define(slots=False), or drop the attrs decorator "
                "and let @entity apply it"
            )
        return _with_entity_type(cls)
    return _with_entity_type(attrs.define(slots=False)(cls))


def _with_entity_type(cls: type[T]) -> type[T]:
    """``cls`` re-created with :class:`EntityType` (combined with its own metaclass).

    Like attrs' slotted classes, this builds a new class from the namespace and points
    the methods' ``__class__`` cells (zero-argument ``super()``) at it. As there, the
    bases' ``__init_subclass__`` and the namespace's ``__set_name__`` hooks run again,
    for the new class.
    """
    if isinstance(cls, EntityType):
        return cls
    own = type(cls)
    mcls: type = EntityType
    if own is not type:
        mcls = type(f"Entity{own.__name__}", (EntityType, own), {})
    skip = ("__dict__", "__weakref__")
    ns = {k: v for k, v in cls.__dict__.items() if k not in skip}
    new: type[T] = mcls(cls.__name__, cls.__bases__, ns)
    new.__qualname__ = cls.__qualname__
    for value in ns.values():
        for fn in _functions(value):
            for cell in getattr(fn, "__closure__", None) or ():
                try:
                    if cell.cell_contents is cls:
                        cell.cell_contents = new
                except ValueError:  # an empty cell
                    continue
    return new


def _functions(value: Any) -> tuple[Any, ...]:
    """The functions behind a class-body value (method, classmethod, property...)."""
    if isinstance(value, classmethod | staticmethod):
        return (value.__func__,)
    if isinstance(value, property):
        return (value.fget, value.fset, value.fdel)
    return (value,)


def _ttl_override(cls: type, ttl: str | None) -> dict[str, FieldOptions]:
    """TTL datetimes are stored as epoch seconds (DynamoDB TTL needs a number)."""
    if ttl is None:
        return {}
    a = attrs.fields_dict(cls).get(ttl)
    if a is None:
        return {}  # reported by _Roles
    tp = type_hints(cls).get(ttl, a.type)
    if tp is not datetime and datetime not in typing.get_args(tp):
        return {}
    opts = options_of(a)
    if opts.epoch is False:
        raise ValueError(
            f"{cls.__qualname__}.{ttl}: the TTL field must be stored as epoch seconds; "
            "remove epoch=False"
        )
    return {ttl: attrs.evolve(opts, epoch=True)}


class _Roles:
    """Checks that named fields exist and fit their role; remembers which are used."""

    def __init__(self, where: str, fields: dict[str, FieldMeta]) -> None:
        self.where = where
        self.fields = fields
        self.used: dict[str, str] = {}

    def get(self, name: str, role: str) -> FieldMeta:
        f = self.fields.get(name) if isinstance(name, str) else None
        if f is None:
            raise ValueError(
                f"{self.where}: {role}={name!r} is not a field; fields: {', '.join(self.fields)}"
            )
        return f

    def key(self, name: str, role: str, *, allow_optional: bool) -> KeyAttr:
        f = self.get(name, role)
        kt = f.key_type
        if kt is None:
            raise TypeError(
                f"{self.where}.{name}: {role} must be stored as a string, number or binary "
                f"(str, int, Decimal, bytes, UUID, datetime, date, Enum...), "
                f"not {f.codec.describe()}"
            )
        if f.optional and not allow_optional:
            raise TypeError(f"{self.where}.{name}: {role} cannot be Optional; a key is required")
        return KeyAttr(f.name, f.stored_name, kt)

    def special(
        self,
        name: str | None,
        role: str,
        codecs: tuple[type[Codec], ...],
        want: str,
        *,
        allow_optional: bool = True,
    ) -> FieldMeta | None:
        if name is None:
            return None
        f = self.get(name, role)
        if type(f.codec) not in codecs or (f.optional and not allow_optional):
            opt = "" if allow_optional else " (not Optional)"
            raise TypeError(
                f"{self.where}.{name}: the {role} field must be {want}{opt}, "
                f"not {f.codec.describe()}"
            )
        if name in self.used:
            raise ValueError(f"{self.where}.{name}: used as both {self.used[name]} and {role}")
        self.used[name] = role
        return f


def _indexes(
    where: str,
    decls: Sequence[GSI | LSI],
    roles: _Roles,
    hk: KeyAttr,
    rk: KeyAttr | None,
) -> dict[str, Index]:
    out: dict[str, Index] = {}
    projected = 0
    for d in decls:
        if not isinstance(d, GSI | LSI):
            raise TypeError(f"{where}: indexes takes GSI(...) and LSI(...), got {d!r}")
        w = f"{where} index {d.name!r}"
        if not re.match(r"^[A-Za-z0-9_.-]{3,255}$", d.name or ""):
            raise ValueError(f"{w}: index names need 3-255 characters from A-Z a-z 0-9 _ . -")
        if d.name in out:
            raise ValueError(f"{w}: declared twice")
        if isinstance(d, GSI):
            ih = roles.key(d.hash_key, f"GSI {d.name!r} hash_key", allow_optional=True)
            ir = (
                roles.key(d.range_key, f"GSI {d.name!r} range_key", allow_optional=True)
                if d.range_key
                else None
            )
            if ir is not None and ir.field_name == ih.field_name:
                raise ValueError(f"{w}: hash_key and range_key are the same field")
        else:
            if rk is None:
                raise ValueError(f"{w}: a local secondary index needs a table with a range_key")
            ih = hk
            ir = roles.key(d.range_key, f"LSI {d.name!r} range_key", allow_optional=True)
            if ir.field_name == rk.field_name:
                raise ValueError(f"{w}: its range_key must differ from the table's range_key")
        proj = Projection.parse(d.projection, w)
        keys = {hk.stored_name, ih.stored_name} | {k.stored_name for k in (rk, ir) if k}
        stored: list[str] = []
        for name in proj.non_key_attributes:
            s = roles.get(name, f"{w} projection").stored_name
            if s in keys:
                raise ValueError(f"{w}: {name!r} is a key attribute; keys are always projected")
            stored.append(s)
        projected += len(stored)
        out[d.name] = Index(
            d.name,
            "GSI" if isinstance(d, GSI) else "LSI",
            ih,
            ir,
            Projection(proj.type, tuple(stored)),
        )
    kinds = [i.kind for i in out.values()]
    if kinds.count("GSI") > _MAX_GSI or kinds.count("LSI") > _MAX_LSI:
        raise ValueError(f"{where}: DynamoDB allows {_MAX_GSI} GSIs and {_MAX_LSI} LSIs per table")
    if projected > _MAX_PROJECTED:
        raise ValueError(
            f"{where}: INCLUDE projections name {projected} attributes; "
            f"DynamoDB allows {_MAX_PROJECTED} across all indexes"
        )
    return out
