"""Field encryption with a local keyring against the real test backend: every field type
round-trips, ciphertext moved to another item/attribute/table fails, rotation, blind
indexes, and the data-key cache bounds."""

# ruff: noqa: RUF009  (field() is dynamorm's attrs field helper, not a dataclass default call)

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import enum
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, Literal

import attrs
import pytest

from dynamorm_async import DynamoClient
from dynamorm_async.crypto import (
    DataKeyCache,
    DecryptionError,
    FieldEncryptor,
    KeyUnavailable,
    LocalKeyring,
)
from dynamorm_async.crypto_keys import DataKey
from dynamorm_async.errors import InvalidInput
from dynamorm_async.model import GSI, entity, field, meta_of
from dynamorm_async.repository import Repository
from dynamorm_async.sealing import MissingSealer
from dynamorm_async.tables import create_table, delete_table

BLIND_KEY = b"blind-index-secret-0123456789abcdef"


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.define
class Address:
    city: str
    lines: list[str] = attrs.Factory(list)
    zip: str | None = None


@entity(
    table="vault",
    hash_key="owner",
    range_key="n",
    indexes=[GSI("by_email", hash_key="email_idx")],
)
@attrs.define(slots=False)
class Vault:
    owner: str
    n: int
    email: str = field(encrypted=True, blind_index="email_idx")
    email_idx: str | None = None
    s: str = field(encrypted=True, default="")
    i: int = field(encrypted=True, default=0)
    d: Decimal = field(encrypted=True, default=Decimal(0))
    f: float = field(encrypted=True, default=0.0)
    b: bool = field(encrypted=True, default=False)
    raw: bytes = field(encrypted=True, default=b"")
    when: dt.datetime = field(encrypted=True, default=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    epoch: dt.datetime | None = field(encrypted=True, epoch=True, default=None)
    day: dt.date = field(encrypted=True, default=dt.date(2000, 1, 1))
    uid: uuid.UUID = field(encrypted=True, factory=uuid.uuid4)
    color: Color = field(encrypted=True, default=Color.RED)
    lit: Literal["a", "b"] = field(encrypted=True, default="a")
    tags: set[str] = field(encrypted=True, factory=set)
    nums: frozenset[int] = field(encrypted=True, factory=frozenset)
    blobs: set[bytes] = field(encrypted=True, factory=set)
    seq: list[int] = field(encrypted=True, factory=list)
    pair: tuple[str, int] = field(encrypted=True, default=("x", 1))
    meta: dict[str, Any] = field(encrypted=True, factory=dict)
    addr: Address | None = field(encrypted=True, default=None)
    maybe: str | None = field(encrypted=True, default=None)
    either: int | str = field(encrypted=True, default=0)
    note: str = "plain"  # not encrypted


@entity(table="badkeys", hash_key="secret")
@attrs.define(slots=False)
class EncryptedKey:
    secret: str = field(encrypted=True)


def full(n: int, email: str = "ada@example.com") -> Vault:
    return Vault(
        owner="o#1",
        n=n,
        email=email,
        s="héllo ✓",
        i=-(10**20),
        d=Decimal("12345.6789"),
        f=0.1,
        b=True,
        raw=b"\x00\xff binary",
        when=dt.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=dt.UTC),
        epoch=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        day=dt.date(1999, 12, 31),
        uid=uuid.UUID(int=n),
        color=Color.BLUE,
        lit="b",
        tags={"x", "y"},
        nums=frozenset({1, 2, 3}),
        blobs={b"a", b"\x01"},
        seq=[3, 1, 2],
        pair=("p", 7),
        meta={"ip": "10.0.0.1", "n": Decimal(3), "deep": {"l": [1, "two", None]}},
        addr=Address("London", ["221B"], None),
        maybe=None,
        either="text",
    )


@pytest.fixture
async def client(dynamodb_endpoint: str) -> AsyncIterator[DynamoClient]:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as c:
        yield c


@pytest.fixture
async def prefix(client: DynamoClient, table_name: str) -> AsyncIterator[str]:
    p = table_name + "-"
    await create_table(client, Vault, prefix=p)
    yield p
    await delete_table(client, Vault, prefix=p)


def encryptor(keyring: LocalKeyring | None = None) -> FieldEncryptor:
    return FieldEncryptor(keyring or LocalKeyring.generate(), blind_index_key=BLIND_KEY)


async def raw_item(client: DynamoClient, table: str, n: int) -> dict[str, Any]:
    out = await client.get_item(
        TableName=table, Key={"owner": {"S": "o#1"}, "n": {"N": str(n)}}, ConsistentRead=True
    )
    item: dict[str, Any] = out["Item"]
    return item


async def test_every_field_type_round_trips(client: DynamoClient, prefix: str) -> None:
    enc = encryptor()
    repo = Repository(Vault, client, table_prefix=prefix, sealer=enc)
    minimal = Vault("o#1", 2, email="b@example.com")
    for v in (full(1), minimal):
        await repo.create(v)
    got1 = await repo.get(owner="o#1", n=1, consistent=True)
    assert got1 == attrs.evolve(
        full(1), email_idx=enc.blind_index(Vault, "email", "ada@example.com")
    )
    got2 = await repo.get(owner="o#1", n=2, consistent=True)
    assert got2 is not None and attrs.evolve(got2, email_idx=None, uid=minimal.uid) == minimal
    # query and scan decrypt too
    assert [v.n for v in await repo.query(Vault.owner == "o#1").to_list()] == [1, 2]
    assert {v.s for v in await repo.scan().to_list()} == {"héllo ✓", ""}
    # on the wire every encrypted field is binary and the plaintext appears nowhere
    stored = await raw_item(client, repo.table_name, 1)
    encrypted = {f.stored_name for f in meta_of(Vault).fields.values() if f.encrypted}
    assert encrypted - {"maybe"} <= set(stored)  # None is omitted
    for name in encrypted & set(stored):
        assert set(stored[name]) == {"B"}, name
    blob = b"".join(base64.b64decode(stored[n]["B"]) for n in encrypted & set(stored))
    for secret in (b"ada@example.com", "héllo".encode(), b"London", b"12345.6789", b"10.0.0.1"):
        assert secret not in blob
    assert stored["note"] == {"S": "plain"}


async def test_moved_or_altered_ciphertext_fails(
    client: DynamoClient, prefix: str, table_name: str
) -> None:
    enc = encryptor()
    repo = Repository(Vault, client, table_prefix=prefix, sealer=enc)
    await repo.create(full(1, "one@example.com"))
    await repo.create(full(2, "two@example.com"))
    table = repo.table_name
    one = await raw_item(client, table, 1)

    async def put_raw(item: dict[str, Any]) -> None:
        await client.put_item(TableName=table, Item=item)

    # the email ciphertext of item 1 copied into item 2
    two = await raw_item(client, table, 2)
    await put_raw({**two, "email": one["email"]})
    with pytest.raises(DecryptionError, match="another item, attribute or table") as info:
        await repo.get(owner="o#1", n=2, consistent=True)
    assert info.value.path == "email"
    # item 1's own "s" ciphertext moved into its "email" attribute
    await put_raw({**one, "email": one["s"]})
    with pytest.raises(DecryptionError):
        await repo.get(owner="o#1", n=1, consistent=True)
    # one flipped bit
    raw = bytearray(base64.b64decode(one["s"]["B"]))
    raw[-1] ^= 1
    await put_raw({**one, "s": {"B": base64.b64encode(bytes(raw)).decode()}})
    with pytest.raises(DecryptionError):
        await repo.get(owner="o#1", n=1, consistent=True)
    # plaintext where ciphertext belongs is refused, never returned
    await put_raw({**one, "s": {"S": "sneaky"}})
    with pytest.raises(DecryptionError, match="plaintext"):
        await repo.get(owner="o#1", n=1, consistent=True)
    await put_raw({**one, "s": {"B": base64.b64encode(b"\x07garbage").decode()}})
    with pytest.raises(DecryptionError, match="envelope"):
        await repo.get(owner="o#1", n=1, consistent=True)
    # the whole, untouched item copied into another table (same key) fails too
    other = table_name + "-copy-"
    await create_table(client, Vault, prefix=other)
    try:
        copy = Repository(Vault, client, table_prefix=other, sealer=enc)
        await client.put_item(TableName=copy.table_name, Item=one)
        with pytest.raises(DecryptionError):
            await copy.get(owner="o#1", n=1, consistent=True)
    finally:
        await delete_table(client, Vault, prefix=other)


async def test_rotation_keeps_old_items_readable(client: DynamoClient, prefix: str) -> None:
    ring1 = LocalKeyring.generate("k1")
    old = Repository(Vault, client, table_prefix=prefix, sealer=encryptor(ring1))
    await old.create(full(1))
    ring2 = ring1.rotated("k2")
    assert ring2.active == "k2" and ring2.key_ids == ("k1", "k2")
    new = Repository(Vault, client, table_prefix=prefix, sealer=encryptor(ring2))
    await new.create(full(2))
    assert [v.n for v in await new.query(Vault.owner == "o#1").to_list()] == [1, 2]
    stored = await raw_item(client, new.table_name, 2)
    assert b"\x00\x02k2" in base64.b64decode(stored["s"]["B"])[:8]  # key id in the header
    # a keyring that lost k1 cannot read the old item: a clear error, not garbage
    only2 = LocalKeyring({"k2": ring2._keys["k2"]}, "k2")
    lost = Repository(Vault, client, table_prefix=prefix, sealer=encryptor(only2))
    assert (await lost.get(owner="o#1", n=2, consistent=True)) is not None
    with pytest.raises(KeyUnavailable, match="k1"):
        await lost.get(owner="o#1", n=1, consistent=True)


async def test_blind_index_lookup(client: DynamoClient, prefix: str) -> None:
    enc = encryptor()
    repo = Repository(Vault, client, table_prefix=prefix, sealer=enc)
    for n, email in enumerate(["a@x.com", "b@x.com", "a@x.com", "c@x.com"]):
        await repo.create(Vault("o#1", n, email=email))
    await repo.create(Vault("o#1", 9, email="z@x.com", maybe="m"))
    probe = enc.blind_index(Vault, "email", "a@x.com")
    found = await repo.query(Vault.email_idx == probe, index="by_email").to_list()
    assert sorted(v.n for v in found) == [0, 2]
    assert all(v.email == "a@x.com" for v in found)
    assert (
        await repo.query(
            Vault.email_idx == enc.blind_index(Vault, "email", "nobody@x.com"), index="by_email"
        ).to_list()
        == []
    )
    # another blind-index key gives other values: indexes do not match across secrets
    other = FieldEncryptor(LocalKeyring.generate(), blind_index_key=b"x" * 32)
    assert other.blind_index(Vault, "email", "a@x.com") != probe
    with pytest.raises(InvalidInput, match="no blind_index"):
        enc.blind_index(Vault, "s", "x")


async def test_missing_keys_are_errors_at_use(client: DynamoClient, prefix: str) -> None:
    with pytest.raises(MissingSealer):
        Repository(Vault, client, table_prefix=prefix)
    no_blind = Repository(
        Vault, client, table_prefix=prefix, sealer=FieldEncryptor(LocalKeyring.generate())
    )
    with pytest.raises(InvalidInput, match="blind_index_key"):
        await no_blind.create(full(1))
    with pytest.raises(InvalidInput, match="at least 32"):
        FieldEncryptor(LocalKeyring.generate(), blind_index_key=b"short")
    keyed = Repository(EncryptedKey, client, sealer=encryptor())
    with pytest.raises(InvalidInput, match="cannot be encrypted"):
        await keyed.put(EncryptedKey("s"))
    with pytest.raises(ValueError, match="blind_index"):
        field(blind_index="x")  # only on encrypted fields
    with pytest.raises(ValueError, match="another field"):

        @entity(table="bad", hash_key="k")
        class Bad:
            k: str
            e: str = field(encrypted=True, blind_index="nope")

    with pytest.raises(TypeError, match="unencrypted str"):

        @entity(table="bad", hash_key="k")
        class Bad2:
            k: str
            e: str = field(encrypted=True, blind_index="h")
            h: int = 0


class CountingRing(LocalKeyring):
    """A keyring that counts and can slow down its calls (a real provider, instrumented)."""

    delay = 0.0
    calls = 0

    async def generate_data_key(self) -> DataKey:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return await super().generate_data_key()

    async def decrypt_data_key(self, key_id: str, wrapped: bytes) -> bytes:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return await super().decrypt_data_key(key_id, wrapped)


async def test_data_key_cache_bounds() -> None:
    now = [0.0]
    ring = CountingRing({"k": b"k" * 32}, "k")
    cache = DataKeyCache(ring, max_age=10, max_uses=3, clock=lambda: now[0])
    keys = [await cache.encryption_key() for _ in range(7)]
    assert [k is keys[0] for k in keys[:4]] == [True, True, True, False]
    assert cache.generated == 3  # uses 3 + 3 + 1
    # a key we made is unwrapped from the cache, not the provider
    assert await cache.decryption_key("k", keys[0].wrapped) == keys[0].plaintext
    assert cache.unwrapped == 0
    now[0] += 10
    assert await cache.encryption_key() is not keys[-1]  # too old
    assert cache.generated == 4
    assert await cache.decryption_key("k", keys[0].wrapped) == keys[0].plaintext
    assert cache.unwrapped == 1  # too old as well: unwrapped again


async def test_data_key_cache_single_flight() -> None:
    ring = CountingRing({"k": b"k" * 32}, "k")
    ring.delay = 0.05
    cache = DataKeyCache(ring)
    got = await asyncio.gather(*(cache.encryption_key() for _ in range(50)))
    assert ring.calls == 1 and all(k is got[0] for k in got)
    other = await LocalKeyring({"k": b"k" * 32}, "k").generate_data_key()
    plain = await asyncio.gather(*(cache.decryption_key("k", other.wrapped) for _ in range(50)))
    assert ring.calls == 2 and set(plain) == {other.plaintext}
    # a cancelled first caller does not strand the others
    ring.delay = 0.2
    cache.clear()
    first = asyncio.create_task(cache.encryption_key())
    await asyncio.sleep(0.05)
    second = asyncio.create_task(cache.encryption_key())
    await asyncio.sleep(0.01)
    first.cancel()
    assert isinstance(await second, DataKey)
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_local_keyring_rejects_bad_keys() -> None:
    with pytest.raises(InvalidInput):
        LocalKeyring({"k": b"short"}, "k")
    with pytest.raises(InvalidInput):
        LocalKeyring({"k": b"k" * 32}, "other")
    ring = LocalKeyring.generate()
    key = await ring.generate_data_key()
    with pytest.raises(DecryptionError):
        await ring.decrypt_data_key(key.key_id, key.wrapped[:-1] + bytes([key.wrapped[-1] ^ 1]))
    assert "plaintext" not in repr(key) and key.plaintext.hex() not in repr(key)


async def test_update_actions_cannot_write_encrypted_fields(
    client: DynamoClient, prefix: str
) -> None:
    from dynamorm_async.db import Database

    enc = encryptor()
    repo = Repository(Vault, client, table_prefix=prefix, sealer=enc)
    await repo.create(full(1))
    with pytest.raises(InvalidInput, match="encrypted fields"):
        await repo.update({"owner": "o#1", "n": 1}, Vault.s.set("plain!"))  # type: ignore[attr-defined]
    db = Database(client, table_prefix=prefix, sealer=enc)
    with pytest.raises(InvalidInput, match="encrypted fields"):
        async with db.transaction() as tx:
            tx.update(full(1), Vault.meta["ip"].set("1.1.1.1"))  # type: ignore[attr-defined]
    # other fields still update through actions, and the item still decrypts
    got = await repo.update({"owner": "o#1", "n": 1}, Vault.note.set("changed"))  # type: ignore[attr-defined]
    assert got.note == "changed" and got.s == "héllo ✓"
    assert (await raw_item(client, repo.table_name, 1))["s"].keys() == {"B"}
