"""Field-level encryption: :class:`FieldEncryptor`, the :class:`~dynamorm_async.sealing.ItemSealer`
for fields declared ``encrypted=True``.

>>> @entity(table="customers", hash_key="customer_id", indexes=[GSI("by_email", "email_idx")])
... class Customer:
...     customer_id: str
...     email: str = field(encrypted=True, blind_index="email_idx")
...     email_idx: str | None = None
>>> sealer = FieldEncryptor(KmsKeyProvider("alias/payments"), blind_index_key=SECRET)
>>> repo = Repository(Customer, client, sealer=sealer)
>>> found = repo.query(Customer.email_idx == sealer.blind_index(Customer, "email", "a@b.c"),
...                    index="by_email")

Each encrypted attribute is stored as binary (``B``)::

    version (1) | key id length (2) | key id | wrapped key length (2) | wrapped data key
    | nonce (12) | AES-256-GCM ciphertext and tag of the attribute's JSON AttributeValue

so every field type round-trips (strings, numbers, sets, maps, nested classes...). The
associated data binds the header, the table, the item's primary key and the attribute
name: a ciphertext copied to another item, attribute or table fails with
:class:`~dynamorm_async.crypto_keys.DecryptionError`. The master key id travels with
the ciphertext, so after a rotation old items still decrypt. Data keys come from a
:class:`~dynamorm_async.crypto_keys.DataKeyCache` (bounded by age and uses).

Blind indexes are HMAC-SHA256 of the value under a key derived from
``blind_index_key``, the entity's table and the attribute; they reveal equality (which
values repeat) and nothing else. Encrypted fields cannot be keys or index keys.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import os
import struct
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import orjson

from .attrvalue import AttributeValue, Item
from .crypto_keys import (
    DataKey,
    DataKeyCache,
    DecryptionError,
    KeyProvider,
    KeyUnavailable,
    KmsKeyProvider,
    LocalKeyring,
    aesgcm,
)
from .errors import InvalidInput
from .model import EntityMeta, meta_of

__all__ = [
    "DataKeyCache",
    "DecryptionError",
    "FieldEncryptor",
    "KeyProvider",
    "KeyUnavailable",
    "KmsKeyProvider",
    "LocalKeyring",
]

_VERSION = 1
_NONCE = 12
_TAG = 16


@attrs.frozen
class _Plan:
    """What to seal in one entity: encrypted stored names and blind index pairs."""

    encrypted: tuple[str, ...]
    blind: tuple[tuple[str, str, bytes], ...]  # (source stored, target stored, field salt)


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _canonical_av(av: AttributeValue) -> AttributeValue:
    """Key and blind-index values in DynamoDB's canonical form (numbers normalised, binary
    re-encoded), so what is sent and what is read back give the same bytes."""
    if "N" in av:
        try:
            d = Decimal(av["N"])
        except InvalidOperation:
            return av
        return {"N": "0" if d == 0 else format(d.normalize(), "f")}
    if "B" in av:
        try:
            return {"B": base64.b64encode(base64.b64decode(av["B"])).decode("ascii")}
        except (binascii.Error, TypeError, ValueError):
            return av
    for tag in ("SS", "NS", "BS"):
        if tag in av:
            return {tag: sorted(av[tag])}
    return av


class FieldEncryptor:
    """Encrypts the ``encrypted=True`` fields of items (AES-256-GCM envelopes).

    ``keys``: a :class:`KeyProvider` (``KmsKeyProvider``, ``LocalKeyring``) or a
    :class:`DataKeyCache` around one (else one is made with ``max_age``/``max_uses``).
    ``blind_index_key``: the secret (>= 32 bytes) that keys blind indexes; required
    only by entities declaring ``blind_index``. Pass the encryptor as ``sealer=`` to
    repositories or :class:`~dynamorm_async.db.Database`.
    """

    def __init__(
        self,
        keys: KeyProvider | DataKeyCache,
        *,
        blind_index_key: bytes | None = None,
        max_age: float = 300.0,
        max_uses: int = 10_000,
    ) -> None:
        self.keys = (
            keys
            if isinstance(keys, DataKeyCache)
            else DataKeyCache(keys, max_age=max_age, max_uses=max_uses)
        )
        if blind_index_key is not None and len(blind_index_key) < 32:
            raise InvalidInput("blind_index_key must be at least 32 bytes of secret")
        self._blind_key = blind_index_key
        self._plans: dict[type, _Plan] = {}

    # ------------------------------------------------------------------ plans

    def _plan(self, meta: EntityMeta[Any]) -> _Plan:
        plan = self._plans.get(meta.cls)
        if plan is None:
            plan = self._plans[meta.cls] = self._make_plan(meta)
        return plan

    def _make_plan(self, meta: EntityMeta[Any]) -> _Plan:
        name = meta.cls.__name__
        keys = {k.stored_name for k in meta.key_attrs}
        keys |= {k.stored_name for i in meta.indexes.values() for k in i.keys}
        encrypted: list[str] = []
        blind: list[tuple[str, str, bytes]] = []
        for f in meta.fields.values():
            if not f.encrypted:
                continue
            if f.stored_name in keys:
                raise InvalidInput(
                    f"{name}.{f.name} is encrypted and a table or index key; keys are "
                    "looked up by value, so they cannot be encrypted (use a blind index)"
                )
            encrypted.append(f.stored_name)
            if f.options.blind_index is not None:
                if self._blind_key is None:
                    raise InvalidInput(
                        f"{name}.{f.name} has a blind index; pass blind_index_key= to "
                        "FieldEncryptor"
                    )
                target = meta.fields[f.options.blind_index].stored_name
                salt = hmac.digest(
                    self._blind_key,
                    b"dynamorm-blind-index\x00" + _lp(meta.table.encode()) + f.stored_name.encode(),
                    "sha256",
                )
                blind.append((f.stored_name, target, salt))
        return _Plan(tuple(encrypted), tuple(blind))

    # ------------------------------------------------------------------ blind indexes

    def blind_index(self, entity: type[Any], field_name: str, value: Any) -> str:
        """The blind index of ``value`` for ``entity.field_name``: compare it with the
        index field (``repo.query(Customer.email_idx == enc.blind_index(...), ...)``)."""
        meta = meta_of(entity)
        f = meta.fields.get(field_name)
        if f is None or f.options.blind_index is None:
            raise InvalidInput(f"{entity.__name__}.{field_name} declares no blind_index")
        plan = self._plan(meta)
        salt = next(s for src, _, s in plan.blind if src == f.stored_name)
        return _blind(salt, f.encode_value(value))

    # ------------------------------------------------------------------ seal

    async def seal(self, meta: EntityMeta[Any], table: str, item: Item) -> Item:
        """The item with its encrypted fields replaced by ciphertext (a new dict)."""
        plan = self._plan(meta)
        present = [n for n in plan.encrypted if n in item]
        if not present and not plan.blind:
            return item
        out = dict(item)
        for src, target, salt in plan.blind:
            av = item.get(src)
            if av is None or av.get("NULL") is True:
                out.pop(target, None)
            else:
                out[target] = {"S": _blind(salt, av)}
        if not present:
            return out
        data_key = await self.keys.encryption_key()
        key_bytes = _key_bytes(meta, item)
        header = _header(data_key)
        cipher = aesgcm(data_key.plaintext)
        for name in present:
            nonce = os.urandom(_NONCE)
            aad = _aad(header, table, key_bytes, name)
            ct = cipher.encrypt(nonce, orjson.dumps(item[name]), aad)
            out[name] = {"B": base64.b64encode(header + nonce + ct).decode("ascii")}
        return out

    # ------------------------------------------------------------------ unseal

    async def unseal(self, meta: EntityMeta[Any], table: str, items: Sequence[Item]) -> list[Item]:
        """The items with their encrypted fields decrypted (same order)."""
        plan = self._plan(meta)
        if not plan.encrypted:
            return list(items)
        parsed: list[tuple[Item, list[tuple[str, _Envelope]]]] = []
        wanted: dict[tuple[str, bytes], None] = {}
        for item in items:
            envs = []
            for name in plan.encrypted:
                av = item.get(name)
                if av is None:
                    continue
                env = _parse(av, meta, item, name, table)
                envs.append((name, env))
                wanted[(env.key_id, env.wrapped)] = None
            parsed.append((item, envs))
        keys = dict(
            zip(
                wanted,
                await asyncio.gather(*(self._unwrap(k, w, table) for k, w in wanted)),
                strict=True,
            )
        )
        return [self._open(meta, table, item, envs, keys) for item, envs in parsed]

    async def _unwrap(self, key_id: str, wrapped: bytes, table: str) -> bytes:
        try:
            return await self.keys.decryption_key(key_id, wrapped)
        except DecryptionError as exc:
            raise DecryptionError(f"table {table}: {exc}") from exc

    def _open(
        self,
        meta: EntityMeta[Any],
        table: str,
        item: Item,
        envs: list[tuple[str, _Envelope]],
        keys: dict[tuple[str, bytes], bytes],
    ) -> Item:
        if not envs:
            return item
        from cryptography.exceptions import InvalidTag

        out = dict(item)
        key_bytes = _key_bytes(meta, item)
        for name, env in envs:
            cipher = aesgcm(keys[(env.key_id, env.wrapped)])
            try:
                plain = cipher.decrypt(
                    env.nonce, env.ciphertext, _aad(env.header, table, key_bytes, name)
                )
            except InvalidTag:
                raise DecryptionError(
                    f"{meta.cls.__name__}.{name} in table {table}, key {meta.key_from_item(item)}: "
                    "the ciphertext was altered, or belongs to another item, attribute or table",
                    name,
                ) from None
            out[name] = orjson.loads(plain)
        return out


@attrs.frozen
class _Envelope:
    header: bytes
    key_id: str
    wrapped: bytes
    nonce: bytes
    ciphertext: bytes


def _header(key: DataKey) -> bytes:
    kid = key.key_id.encode()
    return (
        bytes([_VERSION])
        + struct.pack(">H", len(kid))
        + kid
        + struct.pack(">H", len(key.wrapped))
        + key.wrapped
    )


def _parse(
    av: AttributeValue, meta: EntityMeta[Any], item: Item, name: str, table: str
) -> _Envelope:
    where = f"{meta.cls.__name__}.{name} in table {table}"
    raw_b64 = av.get("B")
    if not isinstance(raw_b64, str):
        raise DecryptionError(
            f"{where} is stored as {next(iter(av), '?')}, not as ciphertext: refusing to "
            "read an encrypted field in plaintext",
            name,
        )
    try:
        raw = base64.b64decode(raw_b64)
        if raw[0] != _VERSION:
            raise ValueError(f"unknown envelope version {raw[0]}")
        (klen,) = struct.unpack_from(">H", raw, 1)
        kid_end = 3 + klen
        (wlen,) = struct.unpack_from(">H", raw, kid_end)
        w_end = kid_end + 2 + wlen
        if len(raw) < w_end + _NONCE + _TAG:
            raise ValueError("truncated")
        return _Envelope(
            header=raw[:w_end],
            key_id=raw[3:kid_end].decode(),
            wrapped=raw[kid_end + 2 : w_end],
            nonce=raw[w_end : w_end + _NONCE],
            ciphertext=raw[w_end + _NONCE :],
        )
    except (ValueError, IndexError, struct.error, binascii.Error, UnicodeDecodeError) as exc:
        raise DecryptionError(f"{where}: not a dynamorm envelope ({exc})", name) from None


def _key_bytes(meta: EntityMeta[Any], item: Item) -> bytes:
    key = {k: _canonical_av(v) for k, v in meta.key_from_item(item).items()}
    return orjson.dumps(key, option=orjson.OPT_SORT_KEYS)


def _aad(header: bytes, table: str, key: bytes, name: str) -> bytes:
    return header + _lp(table.encode()) + _lp(key) + _lp(name.encode())


def _blind(salt: bytes, av: AttributeValue) -> str:
    data = orjson.dumps(_canonical_av(av), option=orjson.OPT_SORT_KEYS)
    return base64.urlsafe_b64encode(hmac.digest(salt, data, "sha256")).decode("ascii").rstrip("=")
