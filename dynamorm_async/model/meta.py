"""``EntityMeta``: everything the upper layers need to know about an entity, compiled once."""

from __future__ import annotations

import binascii
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import attrs

from ..attrvalue import AttributeValue, Item
from ..errors import EncodeError, ExpressionError, InvalidInput, KeyError_
from .codec_base import Codec
from .fields import FieldOptions
from .scalars import Scalar
from .struct import StructCodec

if TYPE_CHECKING:
    from ..expr.path import Path

__all__ = ["EntityMeta", "FieldMeta", "Index", "KeyAttr", "KeyType", "Projection"]

T = TypeVar("T")
KeyType = Literal["S", "N", "B"]
ProjectionType = Literal["ALL", "KEYS_ONLY", "INCLUDE"]

#: DynamoDB's size limits of key values, in bytes.
HASH_KEY_MAX_BYTES = 2048
RANGE_KEY_MAX_BYTES = 1024


@attrs.frozen
class KeyAttr:
    """A key attribute: Python field name, stored attribute name and scalar type."""

    field_name: str
    stored_name: str
    type: KeyType


@attrs.frozen
class Projection:
    """An index projection: ``ALL``, ``KEYS_ONLY`` or ``INCLUDE`` with non-key attributes.

    Declarations name fields; the compiled :class:`Index` holds stored names.
    """

    type: ProjectionType = "ALL"
    non_key_attributes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: Any, where: str) -> Projection:
        """Accept ``"ALL"``, ``"KEYS_ONLY"``, ``("INCLUDE", [names])`` or a Projection."""
        if isinstance(value, Projection):
            proj = value
        elif value in ("ALL", "KEYS_ONLY"):
            proj = cls(value)
        elif (
            isinstance(value, tuple | list)
            and len(value) == 2
            and value[0] == "INCLUDE"
            and isinstance(value[1], Iterable)
            and not isinstance(value[1], str)
        ):
            proj = cls("INCLUDE", tuple(value[1]))
        else:
            raise ValueError(
                f"{where}: projection must be 'ALL', 'KEYS_ONLY' or ('INCLUDE', [fields]), "
                f"got {value!r}"
            )
        if proj.type == "INCLUDE" and not proj.non_key_attributes:
            raise ValueError(f"{where}: an INCLUDE projection needs at least one attribute")
        if proj.type != "INCLUDE" and proj.non_key_attributes:
            raise ValueError(f"{where}: only INCLUDE projections list attributes")
        return proj

    def to_dict(self) -> dict[str, Any]:
        """The DynamoDB ``Projection`` structure."""
        out: dict[str, Any] = {"ProjectionType": self.type}
        if self.non_key_attributes:
            out["NonKeyAttributes"] = list(self.non_key_attributes)
        return out


@attrs.frozen
class Index:
    """A compiled secondary index (stored names throughout)."""

    name: str
    kind: Literal["GSI", "LSI"]
    hash_key: KeyAttr
    range_key: KeyAttr | None
    projection: Projection

    @property
    def keys(self) -> tuple[KeyAttr, ...]:
        """The index key attributes (hash, then range)."""
        return (self.hash_key,) if self.range_key is None else (self.hash_key, self.range_key)

    def key_schema(self) -> list[dict[str, str]]:
        """The DynamoDB ``KeySchema`` of the index."""
        return _key_schema(self.hash_key, self.range_key)

    def definition(self) -> dict[str, Any]:
        """``IndexName``, ``KeySchema`` and ``Projection`` (throughput is the caller's)."""
        return {
            "IndexName": self.name,
            "KeySchema": self.key_schema(),
            "Projection": self.projection.to_dict(),
        }


def _key_schema(hash_key: KeyAttr, range_key: KeyAttr | None) -> list[dict[str, str]]:
    out = [{"AttributeName": hash_key.stored_name, "KeyType": "HASH"}]
    if range_key is not None:
        out.append({"AttributeName": range_key.stored_name, "KeyType": "RANGE"})
    return out


@attrs.frozen
class FieldMeta:
    """One field of an entity: names, declared type, options and value conversion."""

    name: str  #: Python field name
    stored_name: str  #: stored attribute name
    python_type: Any  #: the declared annotation
    optional: bool  #: ``None`` allowed (omitted on write)
    has_default: bool  #: has an attrs default or factory
    encrypted: bool  #: marked for client-side encryption
    options: FieldOptions
    codec: Codec = attrs.field(repr=False, eq=False)

    @property
    def key_type(self) -> KeyType | None:
        """``'S'``, ``'N'`` or ``'B'`` if the field can be a key attribute."""
        kt = self.codec.key_type if isinstance(self.codec, Scalar) else None
        return kt  # type: ignore[return-value]

    def encode_value(self, value: Any) -> AttributeValue:
        """A Python value of this field as a wire AttributeValue (``None`` as ``NULL``)."""
        if value is None:
            if self.optional:
                return {"NULL": True}
            raise EncodeError(f"None is not a {self.codec.describe()}", self.name)
        return self.codec.encode(value, self.name)

    def decode_value(self, av: Any) -> Any:
        """A wire AttributeValue of this field as a Python value."""
        if self.optional and isinstance(av, dict) and "NULL" in av:
            return None
        return self.codec.decode(av, self.stored_name)


@attrs.define(slots=True, eq=False, frozen=True)
class EntityMeta(Generic[T]):
    """An entity's compiled description; get it with :func:`~dynamorm_async.model.meta_of`.

    ``encode(obj)`` and ``decode(item)`` are the generated codec functions (plain
    attributes, so calling them costs no method binding): ``encode`` returns the
    whole item in wire format, ``decode`` an instance. ``fields`` maps Python field
    names to :class:`FieldMeta`; ``indexes`` maps index names to :class:`Index`.
    """

    cls: type[T]
    table: str
    hash_key: KeyAttr
    range_key: KeyAttr | None
    indexes: Mapping[str, Index]
    ttl: FieldMeta | None
    version: FieldMeta | None
    created_at: FieldMeta | None
    updated_at: FieldMeta | None
    fields: Mapping[str, FieldMeta]
    codec: StructCodec = attrs.field(repr=False)
    encode: Callable[[T], Item] = attrs.field(repr=False)
    decode: Callable[[Mapping[str, Any]], T] = attrs.field(repr=False)
    _by_stored: dict[str, FieldMeta] = attrs.field(repr=False, factory=dict)
    _paths: dict[str, Path] = attrs.field(repr=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self._by_stored.update({f.stored_name: f for f in self.fields.values()})

    # ------------------------------------------------------------------ names

    @property
    def key_attrs(self) -> tuple[KeyAttr, ...]:
        """The table key attributes (hash, then range)."""
        return (self.hash_key,) if self.range_key is None else (self.hash_key, self.range_key)

    def stored_name(self, field_name: str) -> str:
        """The stored attribute name of a field (``ExpressionError`` if unknown)."""
        return self._field(field_name).stored_name

    def field_for_stored(self, stored_name: str) -> FieldMeta | None:
        """The field stored as ``stored_name``, or ``None`` (items may hold other attributes)."""
        return self._by_stored.get(stored_name)

    def _field(self, name: str) -> FieldMeta:
        f = self.fields.get(name)
        if f is None:
            hint = ""
            by_stored = self._by_stored.get(name)
            if by_stored is not None:
                hint = f" (it is the stored name of field {by_stored.name!r})"
            raise ExpressionError(
                f"{self.cls.__name__} has no field {name!r}{hint}; fields: {', '.join(self.fields)}"
            )
        return f

    def index(self, name: str) -> Index:
        """The index called ``name`` (``InvalidInput`` if there is none)."""
        idx = self.indexes.get(name)
        if idx is None:
            known = ", ".join(self.indexes) or "none"
            raise InvalidInput(
                f"{self.cls.__name__} (table {self.table!r}) has no index {name!r}; "
                f"indexes: {known}"
            )
        return idx

    def path(self, field_name: str) -> Path:
        """The expression :class:`~dynamorm_async.expr.path.Path` of a field (cached)."""
        p = self._paths.get(field_name)
        if p is None:
            from ..expr.path import Path  # layer above; imported when first used

            f = self._field(field_name)
            codec = f.codec

            def child_encoder(key: str | int) -> Callable[[Any], AttributeValue] | None:
                c = codec.child(key)
                return None if c is None else (lambda v: c.encode(v, None))

            p = Path(
                (f.stored_name,),
                encoder=f.encode_value,
                owner=self.cls,
                field_name=f.name,
                child_encoder=child_encoder,
            )
            self._paths[field_name] = p
        return p

    # ------------------------------------------------------------------ keys

    def _key_value(self, ka: KeyAttr, value: Any, role: str) -> AttributeValue:
        name = f"{self.cls.__name__}.{ka.field_name}"
        if value is None:
            raise KeyError_(f"{role} key {name} is missing (None); a key needs a value")
        try:
            av = self.fields[ka.field_name].codec.encode(value, ka.field_name)
        except EncodeError as exc:
            raise KeyError_(f"{role} key {name}: {exc}") from None
        raw = av[ka.type]
        if not raw:
            raise KeyError_(
                f"{role} key {name} is empty; DynamoDB rejects empty strings and "
                "binary values in keys"
            )
        if ka.type != "N" and len(raw) > 255:
            limit = HASH_KEY_MAX_BYTES if role == "partition" else RANGE_KEY_MAX_BYTES
            size = len(raw.encode("utf-8")) if ka.type == "S" else len(binascii.a2b_base64(raw))
            if size > limit:
                raise KeyError_(f"{role} key {name} is {size} bytes; DynamoDB allows {limit}")
        return av

    def encode_key(self, obj: T) -> Item:
        """The item key (wire format) of an instance."""
        key = {
            self.hash_key.stored_name: self._key_value(
                self.hash_key, getattr(obj, self.hash_key.field_name, None), "partition"
            )
        }
        rk = self.range_key
        if rk is not None:
            key[rk.stored_name] = self._key_value(rk, getattr(obj, rk.field_name, None), "sort")
        return key

    def key_from_kwargs(self, **kw: Any) -> Item:
        """The item key from field-name keyword arguments: ``key_from_kwargs(pk=..., sk=...)``."""
        hk, rk = self.hash_key, self.range_key
        names = [hk.field_name] if rk is None else [hk.field_name, rk.field_name]
        if len(kw) != len(names) or any(n not in kw for n in names):
            self._bad_key_kwargs(kw, names)
        key = {hk.stored_name: self._key_value(hk, kw[hk.field_name], "partition")}
        if rk is not None:
            key[rk.stored_name] = self._key_value(rk, kw[rk.field_name], "sort")
        return key

    def _bad_key_kwargs(self, kw: Mapping[str, Any], names: list[str]) -> None:
        cls = self.cls.__name__
        want = " and ".join(names)
        for k in kw:
            if k in names:
                continue
            if k in self.fields:
                raise KeyError_(f"{cls}: {k!r} is not part of the key; the key is {want}")
            f = self._by_stored.get(k)
            if f is not None and f.name in names:
                raise KeyError_(f"{cls}: use the field name {f.name!r}, not the stored name {k!r}")
            raise KeyError_(f"{cls} has no key attribute {k!r}; the key is {want}")
        missing = [n for n in names if n not in kw]
        raise KeyError_(f"{cls}: key part {', '.join(missing)} is missing; the key is {want}")

    def key_from_item(self, item: Mapping[str, Any]) -> Item:
        """The table key attributes of a stored item (wire format)."""
        return self._pick(self.key_attrs, item, "table")

    def index_key_from_item(self, index_name: str, item: Mapping[str, Any]) -> Item:
        """The index key plus the table key of a stored item (an index's LastEvaluatedKey)."""
        idx = self.index(index_name)
        attrs_ = {ka.stored_name: ka for ka in (*idx.keys, *self.key_attrs)}
        return self._pick(tuple(attrs_.values()), item, f"index {index_name!r}")

    def _pick(self, keys: tuple[KeyAttr, ...], item: Mapping[str, Any], what: str) -> Item:
        out: Item = {}
        for ka in keys:
            av = item.get(ka.stored_name)
            if not isinstance(av, dict) or ka.type not in av:
                raise KeyError_(
                    f"{self.cls.__name__}: the item has no {ka.type} attribute "
                    f"{ka.stored_name!r} ({what} key)"
                )
            out[ka.stored_name] = av
        return out

    # ------------------------------------------------------------------ table schema

    def key_schema(self) -> list[dict[str, str]]:
        """The table's DynamoDB ``KeySchema``."""
        return _key_schema(self.hash_key, self.range_key)

    def attribute_definitions(
        self, index_names: Iterable[str] | None = None
    ) -> list[dict[str, str]]:
        """``AttributeDefinitions`` for the table key and the indexes (all if ``None``)."""
        chosen = self.indexes.values() if index_names is None else map(self.index, index_names)
        defs: dict[str, str] = {ka.stored_name: ka.type for ka in self.key_attrs}
        for idx in chosen:
            for ka in idx.keys:
                defs.setdefault(ka.stored_name, ka.type)
        return [{"AttributeName": n, "AttributeType": t} for n, t in defs.items()]
