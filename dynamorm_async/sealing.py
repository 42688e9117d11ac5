"""The seam for item-level transforms that need I/O, such as field encryption.

The entity codec is synchronous and generated once. Fields declared
``encrypted=True`` need keys (KMS calls, caches), so a repository runs an
:class:`ItemSealer` after encoding and before decoding. :mod:`dynamorm_async.crypto`
provides the implementation; this module only defines the contract, so the
repository, batch and transaction layers do not depend on cryptography.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from .attrvalue import Item
from .errors import InvalidInput
from .model import EntityMeta

__all__ = ["ItemSealer", "MissingSealer", "needs_sealer"]


class MissingSealer(InvalidInput):
    """An entity has encrypted fields but no sealer (key provider) was configured."""


class ItemSealer(Protocol):
    """Seals (e.g. encrypts) the marked fields of items on write and unseals them on read."""

    async def seal(self, meta: EntityMeta[Any], table: str, item: Item) -> Item:
        """The item to store for plaintext ``item`` of ``meta`` in ``table``."""
        ...

    async def unseal(self, meta: EntityMeta[Any], table: str, items: Sequence[Item]) -> list[Item]:
        """The plaintext items for stored ``items`` (same order)."""
        ...


def needs_sealer(meta: EntityMeta[Any]) -> bool:
    """True if ``meta`` declares any encrypted field."""
    return any(f.encrypted for f in meta.fields.values())
