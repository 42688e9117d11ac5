"""``field()``: an ``attrs.field`` carrying dynamorm options (stored name, epoch, encryption).

The options live in the attrs field's ``metadata`` under :data:`METADATA_KEY`, so a
class declared with :func:`field` stays a normal attrs class.

For type checkers :func:`field` is a PEP 681 field specifier of ``@entity`` (see
:func:`dynamorm_async.model.entity`): its overloads return the field's value type, so
``amount: Decimal = field(default=Decimal(0))`` type-checks and the generated
``__init__`` makes ``amount`` optional.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

import attrs

__all__ = ["METADATA_KEY", "FieldOptions", "field", "options_of"]

#: The key under which :func:`field` stores its :class:`FieldOptions` in attrs metadata.
METADATA_KEY = "dynamorm"


@attrs.frozen
class FieldOptions:
    """The dynamorm options of one field.

    ``name`` is the stored attribute name (``None``: same as the Python name);
    ``epoch`` stores datetimes as epoch seconds (``N``) instead of ISO-8601 text
    (``None``: the default, which is ISO text except for the TTL field);
    ``encrypted`` marks the field for client-side encryption; ``blind_index`` names
    another (``str``) field that stores a keyed hash of this encrypted field's value, for
    equality lookups.
    """

    name: str | None = None
    epoch: bool | None = None
    encrypted: bool = False
    blind_index: str | None = None


_DEFAULT_OPTIONS = FieldOptions()

T = TypeVar("T")
_Repr = bool | Callable[[Any], str]


def options_of(attribute: attrs.Attribute[Any]) -> FieldOptions:
    """The :class:`FieldOptions` of an attrs attribute (defaults if it has none)."""
    opts = attribute.metadata.get(METADATA_KEY)
    return opts if isinstance(opts, FieldOptions) else _DEFAULT_OPTIONS


# The overloads only type the call (PEP 681 reads ``default``/``factory``/``init``/
# ``kw_only``/``alias`` from it): a converter takes any default; otherwise ``default``
# or ``factory`` fixes the value type; with neither, the field is required (``Any``).
@overload
def field(
    name: str | None = None,
    *,
    converter: Callable[..., Any],
    default: Any = ...,
    factory: Callable[[], Any] | None = None,
    epoch: bool | None = None,
    encrypted: bool = False,
    blind_index: str | None = None,
    validator: Any = None,
    kw_only: bool | None = None,
    repr: _Repr = True,
    eq: bool | None = None,
    order: bool | None = None,
    hash: bool | None = None,
    init: bool = True,
    alias: str | None = None,
    metadata: Mapping[Any, Any] | None = None,
) -> Any: ...
@overload
def field(
    name: str | None = None,
    *,
    default: T,
    epoch: bool | None = None,
    encrypted: bool = False,
    blind_index: str | None = None,
    validator: Any = None,
    converter: None = None,
    kw_only: bool | None = None,
    repr: _Repr = True,
    eq: bool | None = None,
    order: bool | None = None,
    hash: bool | None = None,
    init: bool = True,
    alias: str | None = None,
    metadata: Mapping[Any, Any] | None = None,
) -> T: ...
@overload
def field(
    name: str | None = None,
    *,
    factory: Callable[[], T],
    epoch: bool | None = None,
    encrypted: bool = False,
    blind_index: str | None = None,
    validator: Any = None,
    converter: None = None,
    kw_only: bool | None = None,
    repr: _Repr = True,
    eq: bool | None = None,
    order: bool | None = None,
    hash: bool | None = None,
    init: bool = True,
    alias: str | None = None,
    metadata: Mapping[Any, Any] | None = None,
) -> T: ...
@overload
def field(
    name: str | None = None,
    *,
    epoch: bool | None = None,
    encrypted: bool = False,
    blind_index: str | None = None,
    validator: Any = None,
    converter: None = None,
    kw_only: bool | None = None,
    repr: _Repr = True,
    eq: bool | None = None,
    order: bool | None = None,
    hash: bool | None = None,
    init: bool = True,
    alias: str | None = None,
    metadata: Mapping[Any, Any] | None = None,
) -> Any: ...
def field(
    name: str | None = None,
    *,
    default: Any = attrs.NOTHING,
    factory: Callable[[], Any] | None = None,
    epoch: bool | None = None,
    encrypted: bool = False,
    blind_index: str | None = None,
    validator: Any = None,
    converter: Any = None,
    kw_only: bool | None = None,
    repr: _Repr = True,
    eq: bool | None = None,
    order: bool | None = None,
    hash: bool | None = None,
    init: bool = True,
    alias: str | None = None,
    metadata: Mapping[Any, Any] | None = None,
) -> Any:
    """Declare an entity field: ``attrs.field`` plus dynamorm options.

    * ``name``: the attribute name stored in DynamoDB (default: the Python name).
    * ``default`` / ``factory``: as in attrs (give at most one).
    * ``epoch``: store a ``datetime`` as epoch seconds (``N``, microseconds kept)
      instead of ISO-8601 UTC text.
    * ``encrypted``: mark the field for client-side encryption (recorded here; a
      repository encrypts it with its sealer, :mod:`dynamorm_async.crypto`).
    * ``blind_index``: for an encrypted field, the name of a ``str`` field that the
      sealer fills with a keyed hash (HMAC) of the value, so equal values can be found
      through an index on that field without decrypting.
    * ``validator``, ``converter``, ``kw_only``, ``repr``, ``eq``, ``order``,
      ``hash``, ``init``, ``alias``, ``metadata``: passed to ``attrs.field``. An
      encrypted field shows as ``'***'`` in the entity's repr (plaintext never lands in
      logs or tracebacks) unless ``repr`` is given as a callable.

    attrs names the ``__init__`` argument of a private field ``_x`` as ``x``, while type
    checkers (PEP 681) expect ``_x``; give ``alias="x"`` to make both agree.
    """
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"field(name=...) must be a non-empty str, got {name!r}")
    if default is not attrs.NOTHING and factory is not None:
        raise ValueError("field() takes default= or factory=, not both")
    if blind_index is not None and (not encrypted or not isinstance(blind_index, str)):
        raise ValueError("field(blind_index=...) names a str field, on an encrypted=True field")
    meta = dict(metadata or {})
    meta[METADATA_KEY] = FieldOptions(
        name=name, epoch=epoch, encrypted=bool(encrypted), blind_index=blind_index
    )
    kwargs: dict[str, Any] = {
        "validator": validator,
        "converter": converter,
        "repr": _masked if encrypted and repr is True else repr,
        "eq": eq,
        "order": order,
        "hash": hash,
        "init": init,
        "metadata": meta,
        "alias": alias,
    }
    if kw_only is not None:
        kwargs["kw_only"] = kw_only
    if factory is not None:
        kwargs["factory"] = factory
    else:
        kwargs["default"] = default
    return attrs.field(**kwargs)


def _masked(value: Any) -> str:
    """The repr of an encrypted field's value: never the plaintext."""
    return "None" if value is None else "'***'"
