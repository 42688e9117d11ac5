"""Partner contexts: config, registration, scopes, and STS credentials on the wire.

STS is a real moto server (the session's when the backend is moto, else one started for
this module); DynamoDB is the session backend. Proxies in front of both show what went
over the wire. The helpers and fixtures here are shared with the other partner tests.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from dynamorm_async.errors import InvalidInput
from dynamorm_async.model import entity
from dynamorm_async.partners import (
    NoPartnerScope,
    Partner,
    PartnerRegistry,
    UnknownPartner,
)
from dynamorm_async.repository import Repository
from dynamorm_async.tables import delete_table, ensure_table
from dynamorm_async.testing import MotoServer
from dynamorm_async.testing.recorder import RecordingProxy
from dynamorm_async.wire.credentials import StaticCredentials

BASE = StaticCredentials("testing", "testing")
STS_DENIED = (
    b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
    b"<Type>Sender</Type><Code>AccessDenied</Code>"
    b"<Message>not authorized to perform sts:AssumeRole</Message></Error>"
    b"<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)


@entity(table="notes", hash_key="owner", range_key="note_id")
class Note:
    owner: str
    note_id: str
    text: str = ""


class Clock:
    """Real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def role(i: int) -> str:
    return f"arn:aws:iam::{100000000000 + i:012d}:role/dynamorm-partner"


def partner(name: str, i: int, endpoint: str, **kw: Any) -> Partner:
    return Partner(name, role(i), endpoint_url=endpoint, region="us-east-1", **kw)


@pytest.fixture(scope="module")
def sts_endpoint(dynamodb_backend: str, dynamodb_endpoint: str) -> Iterator[str]:
    """moto's STS: the session server on the moto backend, else one for this module."""
    if dynamodb_backend == "moto":
        yield dynamodb_endpoint
        return
    with MotoServer() as moto:
        yield moto.endpoint_url


@pytest.fixture
async def sts(sts_endpoint: str) -> AsyncIterator[RecordingProxy]:
    async with RecordingProxy(sts_endpoint) as proxy:
        yield proxy


@pytest.fixture
async def ddb(dynamodb_endpoint: str) -> AsyncIterator[RecordingProxy]:
    async with RecordingProxy(dynamodb_endpoint) as proxy:
        yield proxy


def issued_keys(sts: RecordingProxy) -> list[str]:
    """The access key ids STS issued, in order, read from its answers on the wire."""
    keys = []
    for ex in sts.by_operation("AssumeRole"):
        text = ex.response.decode()
        if ex.status == 200:
            keys.append(text.split("<AccessKeyId>")[1].split("</AccessKeyId>")[0])
    return keys


# --------------------------------------------------------------------------- config


def test_partner_validation() -> None:
    """Every field is checked when the config is built; defaults are sensible."""
    p = Partner("acme", role(1))
    assert p.session_name == "dynamorm-acme"
    assert p.duration == 3600 and p.external_id is None and p.table_prefix == ""
    assert p.account_id == "100000000001"
    assert "secret-ext" not in repr(Partner("acme", role(1), external_id="secret-ext"))
    bad: list[dict[str, Any]] = [
        {"name": ""},
        {"name": "has space"},
        {"role_arn": "arn:aws:iam::123:role/x"},
        {"role_arn": "arn:aws:s3:::bucket"},
        {"external_id": "x"},
        {"external_id": "bad id"},
        {"session_name": "a"},
        {"session_name": "no spaces please"},
        {"duration": 899},
        {"duration": 43_201},
        {"duration": 3600.0},
        {"table_prefix": "bad prefix/"},
        {"region": ""},
        {"endpoint_url": ""},
    ]
    for change in bad:
        args: dict[str, Any] = {"name": "acme", "role_arn": role(1), **change}
        with pytest.raises(InvalidInput):
            Partner(**args)


def test_registry_settings_and_registration() -> None:
    """Register/replace/remove at runtime; settings that cannot work are refused."""
    with pytest.raises(InvalidInput):
        PartnerRegistry(refresh_margin=10, expiry_margin=20)
    with pytest.raises(InvalidInput):
        PartnerRegistry(max_cached=0)
    with pytest.raises(InvalidInput):
        PartnerRegistry(refresh_margin=-1)
    reg = PartnerRegistry(refresh_margin=900, refresh_jitter=100)
    with pytest.raises(InvalidInput, match="duration"):
        reg.register(Partner("short", role(1), duration=1000))
    a = Partner("a", role(1), endpoint_url="http://127.0.0.1:1")
    reg.register(a)
    assert "a" in reg and len(reg) == 1 and reg.get("a") is a and reg.partners == [a]
    with pytest.raises(InvalidInput, match="already registered"):
        reg.register(a)
    creds = reg.credentials("a")
    reg.register(Partner("a", role(1), endpoint_url="http://127.0.0.1:1"), replace=True)
    assert reg.credentials("a") is creds  # an equal config keeps its credentials
    reg.register(Partner("a", role(2), endpoint_url="http://127.0.0.1:1"), replace=True)
    assert reg.credentials("a") is not creds
    assert reg.credentials("a").identity != creds.identity
    assert reg.remove("a").role_arn == role(2)
    assert "a" not in reg
    with pytest.raises(UnknownPartner):
        reg.remove("a")
    with pytest.raises(UnknownPartner):
        reg.use("a")
    with pytest.raises(UnknownPartner):
        reg.stats("a")


def test_jitter_spreads_refresh_points() -> None:
    """Each partner refreshes at margin + a random share of the jitter."""
    reg = PartnerRegistry(refresh_margin=300, refresh_jitter=100, rng=random.Random(7))
    for i in range(20):
        reg.register(Partner(f"p{i}", role(i), endpoint_url="http://127.0.0.1:1"))
    advances = [reg.credentials(f"p{i}").advance for i in range(20)]
    assert all(300 <= a <= 400 for a in advances)
    assert len(set(advances)) == 20
    still = PartnerRegistry(refresh_margin=300, refresh_jitter=0)
    still.register(Partner("p", role(1), endpoint_url="http://127.0.0.1:1"))
    assert still.credentials("p").advance == 300


# --------------------------------------------------------------------------- scopes


async def test_scope_outside_nested_inherited_and_concurrent(sts: RecordingProxy) -> None:
    """No scope -> typed error before anything is sent; nesting restores; tasks inherit;
    concurrent tasks in different partners keep their own."""
    reg = PartnerRegistry(
        [partner(f"p{i}", i, "http://127.0.0.1:1", table_prefix=f"pre{i}-") for i in range(4)],
        sts_endpoint_url=sts.endpoint_url,
        base_credentials=BASE,
    )
    repo = Repository(Note, reg)
    with pytest.raises(NoPartnerScope):
        reg.binding()
    with pytest.raises(NoPartnerScope):
        await repo.get(owner="x", note_id="y")
    with pytest.raises(NoPartnerScope):
        reg.credentials()
    assert sts.exchanges == []  # nothing reached STS
    assert reg.current() is None
    async with reg.use("p0") as p0:
        assert p0.name == "p0" and reg.current() == p0
        assert repo.table_name == "pre0-notes"
        with reg.use("p1"):
            assert reg.binding().table_prefix == "pre1-"
        assert reg.binding().table_prefix == "pre0-"
        child = asyncio.create_task(asyncio.sleep(0.01, result=None))
        inherited = asyncio.create_task(_current_after(reg, 0.02))
    assert reg.current() is None
    await child
    assert await inherited == "p0"  # created in p0's scope, ran after it closed

    async def worker(i: int) -> list[str]:
        seen = []
        async with reg.use(f"p{i % 4}"):
            for _ in range(5):
                await asyncio.sleep(random.random() / 500)
                seen.append(f"{reg.current().name}:{repo.table_name}")  # type: ignore[union-attr]
        return seen

    results = await asyncio.gather(*(worker(i) for i in range(40)))
    for i, seen in enumerate(results):
        assert set(seen) == {f"p{i % 4}:pre{i % 4}-notes"}
    scope = reg.use("p2")
    with scope, pytest.raises(InvalidInput):
        scope.__enter__()
    await reg.aclose()


async def _current_after(reg: PartnerRegistry, delay: float) -> str | None:
    await asyncio.sleep(delay)
    current = reg.current()
    return current.name if current else None


async def test_removed_partner_fails_in_open_scope(sts: RecordingProxy) -> None:
    """A partner removed at runtime cannot be used by a scope that is still open."""
    reg = PartnerRegistry(
        [partner("gone", 1, "http://127.0.0.1:1")],
        sts_endpoint_url=sts.endpoint_url,
        base_credentials=BASE,
    )
    async with reg.use("gone"):
        reg.remove("gone")
        with pytest.raises(UnknownPartner):
            reg.binding()
        assert reg.current() is None


# --------------------------------------------------------------------------- credentials


async def test_sts_credentials_sign_dynamodb_requests(
    sts: RecordingProxy, ddb: RecordingProxy, table_name: str
) -> None:
    """Each partner's requests carry the key STS issued to it; ExternalId only when set;
    ensure_table creates the prefixed table; a rotation keeps the one pooled client."""
    reg = PartnerRegistry(
        [
            partner("a", 1, ddb.endpoint_url, table_prefix=f"{table_name}-a-", external_id="ext-a"),
            partner("b", 2, ddb.endpoint_url, table_prefix=f"{table_name}-b-", duration=900),
        ],
        sts_endpoint_url=sts.endpoint_url,
        base_credentials=BASE,
    )
    repo = Repository(Note, reg)
    for name in ("a", "b"):
        async with reg.use(name):
            report = await ensure_table(reg, Note)
            assert report.created and report.name == f"{table_name}-{name}-notes"
            await repo.put(Note(name, "n1", f"from {name}"))
            got = await repo.get(owner=name, note_id="n1")
            assert got is not None and got.text == f"from {name}"
            await delete_table(reg, Note)
    forms = [ex.form for ex in sts.by_operation("AssumeRole")]
    assert [f["RoleArn"] for f in forms] == [role(1), role(2)]
    assert forms[0]["ExternalId"] == "ext-a" and "ExternalId" not in forms[1]
    assert [f["RoleSessionName"] for f in forms] == ["dynamorm-a", "dynamorm-b"]
    assert [f["DurationSeconds"] for f in forms] == ["3600", "900"]
    assert all(ex.access_key == "testing" for ex in sts.exchanges)  # signed with the base
    key_a, key_b = issued_keys(sts)
    assert key_a != key_b
    for ex in ddb.exchanges:
        (table,) = ex.tables
        owner = "a" if table.startswith(f"{table_name}-a-") else "b"
        assert ex.access_key == (key_a if owner == "a" else key_b), ex.operation
        assert ex.headers["x-amz-security-token"]
    assert len(ddb.exchanges) >= 10
    assert reg.stats("a").sts_calls == 1 and reg.stats("a").cache_hits >= 4
    await reg.aclose()
