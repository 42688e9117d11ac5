"""Stream events decoded into entities, from a real stream and from AWS's documented shapes.

The main events are real: a table with a stream is written through a repository, the
records are read back with the Streams API (``GetRecords``) of the test backend, and
each gets the ``eventSourceARN`` that Lambda's event source mapping adds. TTL
deletions cannot be produced locally, so that record follows AWS's documented shape.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest
from cryptography.fernet import Fernet

from dynamorm_async import DynamoClient, errors
from dynamorm_async.attrvalue import Item
from dynamorm_async.model import EntityMeta, entity, field
from dynamorm_async.repository import Repository
from dynamorm_async.sealing import MissingSealer
from dynamorm_async.streams import (
    InvalidStreamEvent,
    StreamRecord,
    batch_item_failures,
    decode_stream_records,
    decode_stream_records_sealed,
    process_stream_records,
    stream_table_name,
)
from dynamorm_async.tables import StreamView, create_table, delete_table
from dynamorm_async.wire.sigv4 import SigV4Signer

REGION = "us-east-1"


class Kind(enum.Enum):
    CARD = "card"
    ACH = "ach"


@entity(table="ledger", hash_key="account", range_key="entry", ttl="expires_at", version="v")
class Entry:
    account: str
    entry: str
    amount: Decimal
    kind: Kind = Kind.CARD
    blob: bytes = b""
    tags: set[str] = field(factory=set)
    expires_at: dt.datetime | None = field(default=None, epoch=True)
    v: int = 0


@entity(table="secrets", hash_key="sid")
class Secret:
    sid: str
    pan: str = field(default="", encrypted=True)


class FernetSealer:
    """A real :class:`~dynamorm_async.sealing.ItemSealer`: Fernet-encrypts marked fields."""

    def __init__(self) -> None:
        self.fernet = Fernet(Fernet.generate_key())
        self.unseal_calls = 0

    async def seal(self, meta: EntityMeta[Any], table: str, item: Item) -> Item:
        out = dict(item)
        for f in meta.fields.values():
            if f.encrypted and f.stored_name in out:
                token = self.fernet.encrypt(orjson.dumps(out[f.stored_name]))
                out[f.stored_name] = {"B": base64.b64encode(token).decode()}
        return out

    async def unseal(self, meta: EntityMeta[Any], table: str, items: Sequence[Item]) -> list[Item]:
        self.unseal_calls += 1
        plain = []
        for item in items:
            out = dict(item)
            for f in meta.fields.values():
                if f.encrypted and f.stored_name in out:
                    token = base64.b64decode(out[f.stored_name]["B"])
                    out[f.stored_name] = orjson.loads(self.fernet.decrypt(token))
            plain.append(out)
        return plain


async def streams_call(client: DynamoClient, operation: str, request: dict[str, Any]) -> Any:
    """One DynamoDB Streams API call, signed with our signer."""
    body = orjson.dumps(request)
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": f"DynamoDBStreams_20120810.{operation}",
    }
    url = client.endpoint.url
    SigV4Signer(REGION, "dynamodb").sign(
        await client.credentials.get(),
        method="POST",
        host=urlsplit(url).netloc,
        path="/",
        headers=headers,
        body=body,
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as resp,
    ):
        data = await resp.read()
    assert resp.status == 200, data
    return orjson.loads(data)


async def lambda_event(client: DynamoClient, stream_arn: str) -> dict[str, Any]:
    """Every record of the stream, shaped as Lambda delivers them."""
    shards = (await streams_call(client, "DescribeStream", {"StreamArn": stream_arn}))[
        "StreamDescription"
    ]["Shards"]
    records: list[dict[str, Any]] = []
    for shard in shards:
        it = (
            await streams_call(
                client,
                "GetShardIterator",
                {
                    "StreamArn": stream_arn,
                    "ShardId": shard["ShardId"],
                    "ShardIteratorType": "TRIM_HORIZON",
                },
            )
        )["ShardIterator"]
        out = await streams_call(client, "GetRecords", {"ShardIterator": it})
        records += [{**r, "eventSourceARN": stream_arn} for r in out["Records"]]
    return {"Records": records}


class Stream:
    """A table with a stream of the given view type, and its repository."""

    def __init__(self, client: DynamoClient, prefix: str, arn: str, repo: Repository[Any]) -> None:
        self.client, self.prefix, self.arn, self.repo = client, prefix, arn, repo

    async def event(self) -> dict[str, Any]:
        return await lambda_event(self.client, self.arn)


@pytest.fixture
async def client(dynamodb_endpoint: str) -> AsyncIterator[DynamoClient]:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region=REGION) as c:
        yield c


async def open_stream(
    client: DynamoClient, prefix: str, cls: type[Any], view: StreamView, **repo_kw: Any
) -> Stream:
    table = await create_table(client, cls, prefix=prefix, stream=view)
    repo = Repository(cls, client, table_prefix=prefix, **repo_kw)
    return Stream(client, prefix, table["LatestStreamArn"], repo)


@pytest.fixture
async def ledger(client: DynamoClient, table_name: str) -> AsyncIterator[Stream]:
    s = await open_stream(client, table_name + "-", Entry, "NEW_AND_OLD_IMAGES")
    yield s
    await delete_table(client, Entry, prefix=s.prefix)


def entry(**kw: Any) -> Entry:
    base: dict[str, Any] = {"account": "acct#1", "entry": "e#1", "amount": Decimal("9.50")}
    return Entry(**{**base, **kw})


# --------------------------------------------------------------------------- real stream


async def test_insert_modify_remove_from_a_real_stream(ledger: Stream) -> None:
    repo = ledger.repo
    created = await repo.create(entry(blob=b"\x00\x01\xfe", tags={"a", "b"}, kind=Kind.ACH))
    updated = await repo.update(created, Entry.amount.set(Decimal("12.25")))  # type: ignore[attr-defined]
    await repo.delete(updated)
    event = await ledger.event()

    records = decode_stream_records(event, {repo.table_name: Entry})
    assert [tuple(r) for r in records] == [
        ("INSERT", None, created),
        ("MODIFY", created, updated),
        ("REMOVE", updated, None),
    ]
    assert records[0].new is not None and records[0].new.blob == b"\x00\x01\xfe"  # B as base64
    first = records[0]
    assert first.table == repo.table_name and first.entity is Entry
    assert first.keys == {"account": {"S": "acct#1"}, "entry": {"S": "e#1"}}
    assert first.view_type == "NEW_AND_OLD_IMAGES" and not first.removed_by_ttl
    assert first.created_at is not None and first.created_at.tzinfo is dt.UTC
    assert records[2].item == updated
    seqs = [int(r.sequence_number) for r in records]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    # A list of entities with the table prefix maps the same way.
    again = decode_stream_records(event, [Entry], table_prefix=ledger.prefix)
    assert [tuple(r) for r in again] == [tuple(r) for r in records]


@pytest.mark.parametrize("view", ["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE"])
async def test_view_types_carry_only_their_images(
    client: DynamoClient, table_name: str, view: StreamView
) -> None:
    s = await open_stream(client, table_name + "-", Entry, view)
    try:
        created = await s.repo.create(entry())
        await s.repo.delete(created)
        records = decode_stream_records(await s.event(), [Entry], table_prefix=s.prefix)
    finally:
        await delete_table(client, Entry, prefix=s.prefix)
    assert [r.event_name for r in records] == ["INSERT", "REMOVE"]
    expect = {
        "KEYS_ONLY": [(None, None), (None, None)],
        "NEW_IMAGE": [(None, created), (None, None)],
        "OLD_IMAGE": [(None, None), (created, None)],
    }[view]
    assert [(r.old, r.new) for r in records] == expect
    assert all(r.keys == {"account": {"S": "acct#1"}, "entry": {"S": "e#1"}} for r in records)


async def test_sealed_images_need_the_sealer(client: DynamoClient, table_name: str) -> None:
    sealer = FernetSealer()
    s = await open_stream(client, table_name + "-", Secret, "NEW_AND_OLD_IMAGES", sealer=sealer)
    try:
        first = await s.repo.put(Secret("s1", "4111111111111111"))
        second = await s.repo.put(Secret("s1", "5500000000000004"))
        event = await s.event()
    finally:
        await delete_table(client, Secret, prefix=s.prefix)
    image = event["Records"][0]["dynamodb"]["NewImage"]
    assert "4111" not in orjson.dumps(image).decode()  # the stream carries ciphertext
    with pytest.raises(MissingSealer):
        decode_stream_records(event, [Secret], table_prefix=s.prefix)
    records = await decode_stream_records_sealed(event, [Secret], sealer, table_prefix=s.prefix)
    assert [tuple(r) for r in records] == [("INSERT", None, first), ("MODIFY", first, second)]
    assert sealer.unseal_calls == 1  # one call per table for the whole batch
    seen: list[Any] = []

    async def handle(record: StreamRecord[Secret]) -> None:
        seen.append(record.new)

    out = await process_stream_records(
        event, [Secret], handle, table_prefix=s.prefix, sealer=sealer
    )
    assert out == {"batchItemFailures": []} and seen == [first, second]


# --------------------------------------------------------------------------- documented shapes

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/ledger/stream/2024-01-01T00:00:00.000"


def record(name: str, seq: str, *, old: Item | None = None, new: Item | None = None) -> Any:
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": 1704067200,
        "Keys": {"account": {"S": "acct#1"}, "entry": {"S": "e#1"}},
        "SequenceNumber": seq,
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if old is not None:
        body["OldImage"] = old
    if new is not None:
        body["NewImage"] = new
    return {
        "eventID": f"id-{seq}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": body,
        "eventSourceARN": ARN,
    }


IMAGE: Item = {
    "account": {"S": "acct#1"},
    "entry": {"S": "e#1"},
    "amount": {"N": "9.5"},
    "kind": {"S": "card"},
    "blob": {"B": "AAH+"},
    "expires_at": {"N": "1704067200"},
    "v": {"N": "3"},
}


def test_ttl_deletion_is_marked() -> None:
    ttl = record("REMOVE", "300", old=IMAGE)
    ttl["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    user = record("REMOVE", "301", old=IMAGE)
    (by_ttl, by_user) = decode_stream_records({"Records": [ttl, user]}, {"ledger": Entry})
    assert by_ttl.removed_by_ttl and not by_user.removed_by_ttl
    assert by_ttl.old is not None and by_ttl.old.blob == b"\x00\x01\xfe"
    assert by_ttl.old.expires_at == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert by_ttl.created_at == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    # A service principal other than TTL's is not a TTL deletion.
    other = record("REMOVE", "302", old=IMAGE)
    other["userIdentity"] = {"type": "Service", "principalId": "other.amazonaws.com"}
    assert not decode_stream_records({"Records": [other]}, {"ledger": Entry})[0].removed_by_ttl


def test_bad_events_raise_typed_errors() -> None:
    ok = record("INSERT", "1", new=IMAGE)
    with pytest.raises(InvalidStreamEvent, match="Records"):
        decode_stream_records({"body": "x"}, {"ledger": Entry})
    sqs = {"Records": [{"messageId": "m", "eventSource": "aws:sqs", "body": "{}"}]}
    with pytest.raises(InvalidStreamEvent, match="aws:sqs"):
        decode_stream_records(sqs, {"ledger": Entry})
    with pytest.raises(InvalidStreamEvent, match="malformed"):
        decode_stream_records({"Records": [{**ok, "eventName": "UPSERT"}]}, {"ledger": Entry})
    with pytest.raises(InvalidStreamEvent, match="has no entity"):
        decode_stream_records({"Records": [ok]}, {"other": Entry})
    assert decode_stream_records({"Records": [ok]}, {"other": Entry}, unknown="skip") == []
    with pytest.raises(InvalidStreamEvent, match="ARN"):
        decode_stream_records({"Records": [{**ok, "eventSourceARN": "nope"}]}, {"x": Entry})
    with pytest.raises(errors.InvalidInput):
        decode_stream_records({"Records": [ok]}, {"ledger": Entry}, table_prefix="p-")
    bad = record("INSERT", "2", new={**IMAGE, "amount": {"S": "lots"}})
    with pytest.raises(errors.DecodeError) as info:
        decode_stream_records({"Records": [ok, bad]}, {"ledger": Entry})
    assert any("id-2" in note for note in info.value.__notes__)


def test_stream_table_name() -> None:
    assert stream_table_name(ARN) == "ledger"
    assert stream_table_name("arn:aws-cn:dynamodb:cn-north-1:1:table/a.b-c_d/stream/x") == "a.b-c_d"
    with pytest.raises(InvalidStreamEvent):
        stream_table_name("arn:aws:sqs:us-east-1:1:queue")


# --------------------------------------------------------------------------- partial batches


def batch_event() -> dict[str, Any]:
    return {
        "Records": [
            record("INSERT", "10", new=IMAGE),
            record("MODIFY", "11", old=IMAGE, new={**IMAGE, "amount": {"S": "bad"}}),
            record("MODIFY", "12", old=IMAGE, new={**IMAGE, "v": {"N": "4"}}),
            record("REMOVE", "13", old=IMAGE),
        ]
    }


async def test_process_stops_at_the_first_failure() -> None:
    seen: list[str] = []

    async def handle(r: StreamRecord[Entry]) -> None:
        seen.append(r.sequence_number)

    out = await process_stream_records(batch_event(), {"ledger": Entry}, handle)
    assert out == {"batchItemFailures": [{"itemIdentifier": "11"}]}  # undecodable record
    assert seen == ["10"]  # nothing after it ran: Lambda retries from "11"


async def test_process_all_reports_every_failure() -> None:
    seen: list[str] = []

    async def handle(r: StreamRecord[Entry]) -> None:
        if r.event_name == "REMOVE":
            raise RuntimeError("downstream said no")
        seen.append(r.sequence_number)

    out = await process_stream_records(
        batch_event(), {"ledger": Entry}, handle, stop_on_failure=False
    )
    assert out == batch_item_failures(["11", "13"])
    assert seen == ["10", "12"]


async def test_process_success_and_deployment_errors() -> None:
    async def handle(r: StreamRecord[Entry]) -> None:
        return None

    ok = {"Records": [record("INSERT", "1", new=IMAGE)]}
    assert await process_stream_records(ok, {"ledger": Entry}, handle) == {"batchItemFailures": []}
    with pytest.raises(InvalidStreamEvent):  # an unmapped table is not a bad record
        await process_stream_records(ok, {"other": Entry}, handle)
    assert batch_item_failures([]) == {"batchItemFailures": []}
