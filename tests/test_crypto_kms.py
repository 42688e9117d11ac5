"""Field encryption with AWS KMS data keys (moto server provides KMS, whatever the
DynamoDB backend): round trip, rotation to a new KMS key, the data-key cache keeping
KMS calls rare, and KMS errors as typed errors."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import pytest

from dynamorm_async import DynamoClient
from dynamorm_async.crypto import DecryptionError, FieldEncryptor, KeyUnavailable, KmsKeyProvider
from dynamorm_async.model import entity, field
from dynamorm_async.repository import Repository
from dynamorm_async.tables import create_table, delete_table
from dynamorm_async.testing import MotoServer


@entity(table="cards", hash_key="card_id")
@attrs.define(slots=False)
class Card:
    card_id: str
    pan: str = field(encrypted=True)
    holder: dict[str, Any] = field(encrypted=True, factory=dict)  # noqa: RUF009
    brand: str = "visa"


@pytest.fixture(scope="module")
def kms_endpoint(aws_test_credentials: dict[str, str]) -> Iterator[str]:
    with MotoServer() as moto:
        yield moto.endpoint_url


async def new_kms_key(endpoint: str) -> str:
    from aiobotocore.session import get_session

    async with get_session().create_client(
        "kms", region_name="us-east-1", endpoint_url=endpoint
    ) as kms:
        out = await kms.create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")
        return str(out["KeyMetadata"]["Arn"])


@pytest.fixture
async def client(dynamodb_endpoint: str, table_name: str) -> AsyncIterator[DynamoClient]:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as c:
        await create_table(c, Card, prefix=table_name + "-")
        yield c
        await delete_table(c, Card, prefix=table_name + "-")


async def test_kms_round_trip_rotation_and_cache(
    client: DynamoClient, table_name: str, kms_endpoint: str
) -> None:
    key1 = await new_kms_key(kms_endpoint)
    kms1 = KmsKeyProvider(key1, region="us-east-1", endpoint_url=kms_endpoint)
    enc1 = FieldEncryptor(kms1, max_uses=50)
    repo1 = Repository(Card, client, table_prefix=table_name + "-", sealer=enc1)
    try:
        for i in range(120):
            await repo1.create(Card(f"c{i:03d}", f"4111-{i:04d}", {"name": f"n{i}"}))
        assert enc1.keys.generated == 3  # 120 encryptions of 2 fields, 50 uses per key
        cards = await repo1.scan().to_list()
        assert sorted(c.pan for c in cards) == [f"4111-{i:04d}" for i in range(120)]
        assert enc1.keys.unwrapped == 0  # the keys it made are cached
        # the stored key id is the KMS key ARN
        raw = await client.get_item(TableName=repo1.table_name, Key={"card_id": {"S": "c000"}})
        assert key1.encode() in base64.b64decode(raw["Item"]["pan"]["B"])

        # rotation: a new KMS key for new items; old items still decrypt
        key2 = await new_kms_key(kms_endpoint)
        kms2 = KmsKeyProvider(key2, region="us-east-1", endpoint_url=kms_endpoint)
        enc2 = FieldEncryptor(kms2)
        repo2 = Repository(Card, client, table_prefix=table_name + "-", sealer=enc2)
        try:
            await repo2.create(Card("new", "5500-0000", {"name": "rotated"}))
            got = {c.card_id: c for c in await repo2.scan().to_list()}
            assert len(got) == 121 and got["c007"].pan == "4111-0007"
            assert got["new"].holder == {"name": "rotated"}
            assert enc2.keys.unwrapped == 3  # one KMS Decrypt per old data key, not per item
            old = await repo1.get(card_id="new", consistent=True)
            assert old is not None and old.pan == "5500-0000"  # key1's reader unwraps key2's
        finally:
            await kms2.aclose()
    finally:
        await kms1.aclose()


async def test_kms_errors_are_typed(
    client: DynamoClient, table_name: str, kms_endpoint: str
) -> None:
    missing = KmsKeyProvider(
        "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
        region="us-east-1",
        endpoint_url=kms_endpoint,
    )
    try:
        repo = Repository(
            Card, client, table_prefix=table_name + "-", sealer=FieldEncryptor(missing)
        )
        with pytest.raises(KeyUnavailable, match="GenerateDataKey"):
            await repo.create(Card("x", "1"))
    finally:
        await missing.aclose()
    kms = KmsKeyProvider(
        await new_kms_key(kms_endpoint), region="us-east-1", endpoint_url=kms_endpoint
    )
    try:
        key = await kms.generate_data_key()
        assert len(key.plaintext) == 32
        assert await kms.decrypt_data_key(key.key_id, key.wrapped) == key.plaintext
        bad = key.wrapped[:-1] + bytes([key.wrapped[-1] ^ 1])
        with pytest.raises(DecryptionError):
            await kms.decrypt_data_key(key.key_id, bad)
    finally:
        await kms.aclose()
