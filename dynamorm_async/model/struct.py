"""Codec of an attrs class (an entity, or a nested class stored as ``M``).

:meth:`StructCodec.compile` generates, once, Python source for the fast encoder and
decoder of the class and compiles it with ``exec``: one function per class, every
field's conversion inlined, no per-call type dispatch. The generated functions fall
back to the careful, path-aware implementation only when the fast code raises.

Field rules (also for nested classes):

* ``None`` in an Optional field is **omitted** on write; a missing (or ``NULL``)
  attribute reads back as ``None``;
* an empty set is omitted; a missing set attribute reads back as an empty set;
* a missing attribute of a field with a default reads back as the default;
* a missing required attribute is a :class:`~dynamorm_async.errors.DecodeError`.

Error paths use Python field names on encode and stored attribute names on decode.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from typing import Any

import attrs

from ..attrvalue import AttributeValue, Item
from ..errors import DecodeError, EncodeError
from .codec_base import Codec, Gen, join_path, single_tag
from .composite import SetCodec
from .fields import FieldOptions

__all__ = ["StructCodec", "StructField"]


@attrs.frozen
class StructField:
    """One stored field of an attrs class, as the codec sees it."""

    name: str  #: Python attribute name
    alias: str  #: ``__init__`` parameter name
    stored: str  #: stored attribute name
    codec: Codec  #: codec of the value (``None`` stripped from Optional)
    optional: bool  #: ``None`` allowed (and omitted on write)
    default: Any  #: attrs default (a value, an ``attrs.Factory``, or ``attrs.NOTHING``)
    init: bool  #: passed to ``__init__``
    in_dict: bool  #: value lives in the instance ``__dict__``
    annotation: Any  #: the declared type
    options: FieldOptions  #: dynamorm options from :func:`~dynamorm_async.model.field`

    @property
    def has_default(self) -> bool:
        """Whether attrs has a default or factory for the field."""
        return self.default is not attrs.NOTHING

    @property
    def is_set(self) -> bool:
        """Whether the value is a set (empty sets are omitted)."""
        return isinstance(self.codec, SetCodec)


class StructCodec(Codec):
    """An attrs class as ``M`` (nested) or as a whole item (entity)."""

    tags = frozenset({"M"})

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.fast_types = (cls,)
        self.fields: list[StructField] = []
        self.by_stored: dict[str, StructField] = {}
        self.source = ""
        #: Fast item encoder/decoder (raise anything on unexpected input).
        self.fenc: Callable[[Any], Item] = self._not_compiled
        self.fdec: Callable[[Any], Any] = self._not_compiled
        #: Item encoder/decoder with fallback to the careful path.
        self.encode_item: Callable[[Any], Item] = self._not_compiled
        self.decode_item: Callable[[Any], Any] = self._not_compiled

    def _not_compiled(self, _: Any) -> Any:
        raise RuntimeError(f"codec of {self.cls.__name__} used before compile()")

    def set_fields(self, fields: list[StructField]) -> None:
        """Install the fields (done once, before :meth:`compile`)."""
        self.fields = fields
        self.by_stored = {f.stored: f for f in fields}

    def describe(self) -> str:
        """The class name."""
        return self.cls.__name__

    # ------------------------------------------------------------------ careful

    def encode_careful(self, obj: Any, path: str | None) -> Item:
        """Encode an instance as an item, with precise errors."""
        if not isinstance(obj, self.cls):
            raise EncodeError(f"expected {self.cls.__name__}, got {type(obj).__name__}", path)
        item: Item = {}
        for f in self.fields:
            p = join_path(path, f.name)
            try:
                value = getattr(obj, f.name)
            except AttributeError:
                raise EncodeError("attribute is not set", p) from None
            if value is None:
                if f.optional:
                    continue
                raise EncodeError(
                    f"None is not a {f.codec.describe()}; declare the field Optional "
                    f"({f.codec.describe()} | None) to allow it",
                    p,
                )
            if f.is_set and isinstance(value, Set) and not value:
                continue
            item[f.stored] = f.codec.encode(value, p)
        return item

    def decode_careful(self, item: Any, path: str | None) -> Any:
        """Decode an item into an instance, with precise errors."""
        if not isinstance(item, dict):
            raise DecodeError(f"expected a map of attributes, got {type(item).__name__}", path)
        kw: dict[str, Any] = {}
        late: list[tuple[str, Any]] = []
        for f in self.fields:
            p = join_path(path, f.stored)
            av = item.get(f.stored)
            if av is None or (f.optional and _is_null(av)):
                if f.optional:
                    value = None
                elif f.is_set:
                    value = f.codec.empty()  # type: ignore[attr-defined]
                elif f.has_default:
                    continue
                else:
                    raise DecodeError("missing required attribute", p)
            else:
                value = f.codec.decode(av, p)
            if f.init:
                kw[f.alias] = value
            else:
                late.append((f.name, value))
        try:
            obj = self.cls(**kw)
        except Exception as exc:
            raise DecodeError(
                f"{self.cls.__name__}() rejected the stored values: {exc!r}", path
            ) from exc
        for name, value in late:
            object.__setattr__(obj, name, value)
        return obj

    def encode(self, value: Any, path: str | None) -> AttributeValue:
        """Careful encode as ``M``."""
        return {"M": self.encode_careful(value, path)}

    def decode(self, av: Any, path: str | None) -> Any:
        """Careful decode from ``M``."""
        tag, raw = single_tag(av, path)
        if tag != "M":
            raise DecodeError(f"expected M ({self.cls.__name__}), got {tag}", path)
        return self.decode_careful(raw, path)

    def child(self, key: str | int) -> Codec | None:
        """The codec of the field stored as ``key``."""
        f = self.by_stored.get(key) if isinstance(key, str) else None
        return f.codec if f is not None else None

    # ------------------------------------------------------------------ fast

    def enc(self, v: str, g: Gen) -> str:
        """Fast: nested ``M``."""
        me = g.ref(self, "S")
        return f'({{"M": {me}.fenc({v})}} if {v}.__class__ is {me}.cls else _fb())'

    def dec(self, x: str, g: Gen) -> str:
        """Fast: nested ``M``."""
        return f'{g.ref(self, "S")}.fdec({x}["M"])'

    def compile(self) -> None:
        """Generate and compile the fast functions (once)."""
        g = Gen()
        g.ns["_C"] = self.cls
        g.ns["_osa"] = object.__setattr__
        g.ns["_enc_careful"] = self.encode_careful
        g.ns["_dec_careful"] = self.decode_careful
        enc, dec = self._gen_encoder(g), self._gen_decoder(g)
        # fenc/fdec raise on anything unexpected (nested structs call them); the
        # public pair runs the same body and falls back to the careful path.
        src = ["def fenc(o):", *enc, "def fdec(item):", *dec]
        src += ["def encode_item(o):", "    try:", *("    " + ln for ln in enc)]
        src += ["    except Exception:", "        return _enc_careful(o, None)"]
        src += ["def decode_item(item):", "    try:", *("    " + ln for ln in dec)]
        src += ["    except Exception:", "        return _dec_careful(item, None)"]
        self.source = "\n".join(src) + "\n"
        code = compile(self.source, f"<dynamorm codec {self.cls.__qualname__}>", "exec")
        exec(code, g.ns)  # generated from declared types only; no user text is inlined raw
        self.fenc = g.ns["fenc"]
        self.fdec = g.ns["fdec"]
        self.encode_item = g.ns["encode_item"]
        self.decode_item = g.ns["decode_item"]

    def _gen_encoder(self, g: Gen) -> list[str]:
        # Attribute loads, not ``o.__dict__[...]``: reading ``__dict__`` would make
        # CPython materialise the instance dict of an object that keeps its values inline.
        lines = ["    if o.__class__ is not _C: _fb()"]
        names: dict[str, str] = {}
        for i, f in enumerate(self.fields):
            names[f.name] = v = f"v{i}"
            lines.append(f"    {v} = o.{f.name}")
        required = [f for f in self.fields if not (f.optional or f.is_set)]
        body = ", ".join(f"{f.stored!r}: {f.codec.enc(names[f.name], g)}" for f in required)
        lines.append(f"    item = {{{body}}}")
        for f in self.fields:
            if not (f.optional or f.is_set):
                continue
            v = names[f.name]
            store = f"item[{f.stored!r}] = {f.codec.enc(v, g)}"
            if f.is_set:
                lines.append(f"    if {v}: {store}")
                check = f"{v}.__class__ is not {g.ref(f.codec.fast_types[0], 'T')}"
                if f.optional:
                    check = f"{v} is not None and {check}"
                lines.append(f"    elif {check}: _fb()")
            else:
                lines.append(f"    if {v} is not None: {store}")
        lines.append("    return item")
        return lines

    def _gen_decoder(self, g: Gen) -> list[str]:
        plain = plain_construction(self.cls, self.fields)
        lines = ["    get = item.get"]
        kw: list[str] = []  # required __init__ arguments, as dict-literal entries
        extra: list[str] = []  # optional __init__ arguments
        late: list[str] = []  # statements after construction
        for i, f in enumerate(self.fields):
            a, x = f"a{i}", f"x{i}"
            dec = f.codec.dec(a, g)
            if _is_required(f):
                lines.append(f"    {a} = item[{f.stored!r}]")
                value = dec
            else:
                lines.append(f"    {a} = get({f.stored!r})")
                if f.optional:
                    value = f"None if {a} is None or 'NULL' in {a} else {dec}"
                elif f.is_set:
                    value = f"{g.ref(f.codec.fast_types[0], 'T')}() if {a} is None else {dec}"
                elif plain:
                    value = f"{_default_expr(f, g)} if {a} is None else {dec}"
                else:  # __init__ applies the default when the argument is left out
                    if f.init:
                        extra.append(f"    if {a} is not None: kw[{f.alias!r}] = {dec}")
                    else:
                        late.append(f"    if {a} is not None: _osa(o, {f.name!r}, {dec})")
                    continue
            lines.append(f"    {x} = {value}")
            if plain or f.init:
                kw.append(f"{(f.name if plain else f.alias)!r}: {x}")
            else:
                late.append(f"    _osa(o, {f.name!r}, {x})")
        if plain:  # attrs' __init__ would only assign these: skip it
            # Plain attribute stores keep CPython's inline instance values (replacing
            # ``__dict__`` would cost a dict build plus its materialisation).
            g.ns["_new"] = object.__new__
            direct = getattr(self.cls, "__setattr__", None) is object.__setattr__
            assign = [
                f"    o.{f.name} = x{i}" if direct else f"    _osa(o, {f.name!r}, x{i})"
                for i, f in enumerate(self.fields)
            ]
            return [*lines, "    o = _new(_C)", *assign, "    return o"]
        body = "{" + ", ".join(kw) + "}"
        return [*lines, f"    kw = {body}", *extra, "    o = _C(**kw)", *late, "    return o"]


def _default_expr(f: StructField, g: Gen) -> str:
    d = f.default
    if isinstance(d, attrs.Factory):  # type: ignore[arg-type]
        return f"{g.ref(d.factory, 'factory')}()"
    return g.ref(d, "default")


def plain_construction(cls: type, fields: list[StructField]) -> bool:
    """Whether attrs' ``__init__`` of ``cls`` would only assign the given values.

    Then the fast decoder creates the instance with ``object.__new__`` and assigns the
    fields itself. It requires an attrs-generated ``__init__`` on a dict class, no
    pre/post-init hooks, no hash cache, no custom ``__new__``, and fields without
    converters, validators, ``init=False`` or factories that take ``self``.
    """
    props = getattr(cls, "__attrs_props__", None)
    if props is None or not props.added_init or props.is_slotted:
        return False
    if props.hashability.value == "hashable_cache":
        return False
    init_code = getattr(getattr(cls, "__init__", None), "__code__", None)
    if init_code is None or not init_code.co_filename.startswith("<attrs generated"):
        return False
    if getattr(cls, "__new__", None) is not object.__new__:
        return False
    if hasattr(cls, "__attrs_pre_init__") or hasattr(cls, "__attrs_post_init__"):
        return False
    by_name = {a.name: a for a in attrs.fields(cls)}
    for f in fields:
        a = by_name[f.name]
        if not (f.init and f.in_dict) or a.converter is not None or a.validator is not None:
            return False
        if isinstance(a.default, attrs.Factory) and a.default.takes_self:  # type: ignore[arg-type]
            return False
    return True


def _is_required(f: StructField) -> bool:
    return not (f.optional or f.is_set or f.has_default)


def _is_null(av: Any) -> bool:
    return isinstance(av, dict) and "NULL" in av
