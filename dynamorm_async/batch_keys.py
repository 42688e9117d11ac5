"""Typed references to items by key, shared by batches and transactions.

A batch or transaction mixes entity types, so a bare mapping cannot say which entity
(and so which table and key schema) it is the key of. :func:`key` names both:

>>> key(Payment, customer="c#1", payment_id="p#1")       # an EntityKey[Payment]

Everywhere a key is accepted, an entity instance works too (its key is used).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from decimal import Decimal
from typing import Any, Generic, TypeVar

import attrs

from .attrvalue import Item
from .errors import InvalidInput
from .model import EntityMeta, meta_of

__all__ = ["EntityKey", "KeyRef", "canonical_key", "entity_meta", "key", "resolve_key"]

T = TypeVar("T")


@attrs.frozen
class EntityKey(Generic[T]):
    """The key of one ``entity`` item, as field-name values (``key(Payment, customer=...)``)."""

    entity: type[T]
    fields: Mapping[str, Any]

    def wire(self) -> Item:
        """The validated wire-format key (``KeyError_`` when a part is missing or bad)."""
        return meta_of(self.entity).key_from_kwargs(**self.fields)


def key(entity: type[T], /, **fields: Any) -> EntityKey[T]:
    """The key of an ``entity`` item from its key fields: ``key(Payment, customer="c#1", ...)``."""
    entity_meta(entity, "key()")  # a clear error now if ``entity`` is not an entity class
    return EntityKey(entity, dict(fields))


def entity_meta(cls: type[T], what: str) -> EntityMeta[T]:
    """``meta_of(cls)``, raising :class:`InvalidInput` (not ``TypeError``) for a non-entity."""
    try:
        return meta_of(cls)
    except TypeError as exc:
        raise InvalidInput(f"{what}: {exc}") from None


#: An entity instance (its key is used) or an :class:`EntityKey`.
KeyRef = Any


def resolve_key(ref: KeyRef, what: str = "key") -> tuple[EntityMeta[Any], Item]:
    """The entity description and wire key of ``ref`` (an EntityKey or an entity instance)."""
    if isinstance(ref, EntityKey):
        return meta_of(ref.entity), ref.wire()
    try:
        meta = meta_of(type(ref))
    except TypeError:
        raise InvalidInput(
            f"{what}: expected an entity instance or key(Entity, **key_fields), "
            f"got {type(ref).__name__}"
        ) from None
    return meta, meta.encode_key(ref)


def canonical_key(table: str, wire_key: Mapping[str, Mapping[str, Any]]) -> tuple[Hashable, ...]:
    """A hashable identity of an item: its table and key values.

    Numbers compare as ``Decimal`` (DynamoDB treats ``1.50`` and ``1.5`` as one key and
    answers with its own spelling), so keys sent and keys returned match.
    """
    out: list[Hashable] = [table]
    for name, av in wire_key.items():
        for tag, raw in av.items():
            out.append((name, tag, Decimal(raw) if tag == "N" else raw))
    return tuple(out)
