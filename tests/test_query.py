"""Query, scan, pagination with cursors, indexes and parallel scan on the real backend."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from dynamorm_async import DynamoClient, errors
from dynamorm_async.model import meta_of
from dynamorm_async.repository import Repository
from dynamorm_async.tables import create_table, delete_table

from .entities import Payment, Status

SECRET = b"test-cursor-secret-0123456789"
N = 1100
FAR = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
async def client(dynamodb_endpoint: str) -> AsyncIterator[DynamoClient]:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as c:
        yield c


@pytest.fixture
async def repo(client: DynamoClient, table_name: str) -> AsyncIterator[Repository[Payment]]:
    prefix = table_name + "-"
    await create_table(client, Payment, prefix=prefix)
    r = Repository(Payment, client, table_prefix=prefix, cursor_secret=SECRET)
    await _load(r)
    yield r
    await delete_table(client, Payment, prefix=prefix)


def _payment(i: int) -> Payment:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return Payment(
        customer="c#big" if i < N else f"c#{i % 3}",
        payment_id=f"p#{i:05d}",
        amount=Decimal(i % 100),
        merchant=f"m-{i % 7}",
        status=Status.PAID if i % 2 else Status.PENDING,
        created_at=base + dt.timedelta(minutes=i),
        updated_at=base,
        expires_at=FAR,  # DynamoDB Local really deletes expired items
    )


async def _load(repo: Repository[Payment]) -> None:
    """Load N + 30 items with raw BatchWriteItem (the batch executor is a later layer)."""
    meta = meta_of(Payment)
    items = [meta.encode(_payment(i)) for i in range(N + 30)]
    sem = asyncio.Semaphore(8)

    async def write(chunk: list[dict[str, object]]) -> None:
        async with sem:
            req = {repo.table_name: [{"PutRequest": {"Item": it}} for it in chunk]}
            while req:
                out = await repo.client.batch_write_item(RequestItems=req)
                req = out.get("UnprocessedItems") or {}

    await asyncio.gather(*(write(items[i : i + 25]) for i in range(0, len(items), 25)))


async def test_pagination_through_1000_plus_items_with_cursors(
    repo: Repository[Payment], client: DynamoClient
) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        # A new repository each time: cursors survive across instances with the same secret.
        fresh = Repository(
            Payment, client, table_prefix=repo.table_name[: -len("payments")], cursor_secret=SECRET
        )
        q = fresh.query(Payment.customer == "c#big", page_size=97, limit=250, cursor=cursor)
        got = [p.payment_id async for p in q]
        seen += got
        pages += 1
        page_list = [
            pg
            async for pg in fresh.query(
                Payment.customer == "c#big", page_size=97, limit=250, cursor=cursor
            ).pages()
        ]
        cursor = page_list[-1].cursor
        if cursor is None:
            break
    assert seen == [f"p#{i:05d}" for i in range(N)]
    assert pages == 5


async def test_query_range_conditions_reverse_filter_first_count(
    repo: Repository[Payment],
) -> None:
    q = repo.query(
        (Payment.customer == "c#big") & Payment.payment_id.between("p#00010", "p#00019"),
        reverse=True,
    )
    ids = [p.payment_id async for p in q]
    assert ids == [f"p#{i:05d}" for i in range(19, 9, -1)]
    first = await repo.query(
        (Payment.customer == "c#big") & Payment.payment_id.begins_with("p#0002")
    ).first()
    assert first is not None and first.payment_id == "p#00020"
    paid = repo.query(Payment.customer == "c#big", filter=Payment.status == Status.PAID)
    assert await paid.count() == N // 2
    assert await repo.count(Payment.customer == "c#big") == N
    assert len(await paid.to_list()) == N // 2


async def test_gsi_and_lsi_queries(repo: Repository[Payment]) -> None:
    since = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=N)
    recent = repo.query(
        (Payment.status == Status.PENDING) & (Payment.created_at >= since), index="by_status"
    )
    got = await recent.to_list()
    assert {p.payment_id for p in got} == {f"p#{i:05d}" for i in range(N, N + 30) if i % 2 == 0}
    assert [p.created_at for p in got] == sorted(p.created_at for p in got)  # type: ignore[type-var]

    keys_only = repo.query(Payment.merchant == "m-3", index="by_merchant", projection=[])
    rows = await keys_only.to_list()
    assert rows and all(set(r) == {"customer", "payment_id", "merchant"} for r in rows)

    cheap = repo.query(
        (Payment.customer == "c#big") & (Payment.amount < 2),
        index="by_amount",
        projection=["status"],
    )
    rows = await cheap.to_list()
    assert len(rows) == 22 and all(r["amount"] < 2 for r in rows)
    assert set(rows[0]) == {"customer", "payment_id", "amount", "status"}


async def test_projection_and_index_errors(repo: Repository[Payment]) -> None:
    with pytest.raises(errors.InvalidInput):
        repo.query(Payment.merchant == "m-3", index="by_merchant")  # KEYS_ONLY needs projection
    with pytest.raises(errors.InvalidInput):
        repo.query(Payment.status == Status.PAID, index="by_status", consistent=True)
    with pytest.raises(errors.InvalidInput):
        repo.query(Payment.customer == "c", index="nope")
    with pytest.raises(errors.ExpressionError):
        repo.query(Payment.amount == 1)  # not a key of the table
    with pytest.raises(errors.ExpressionError):
        repo.query((Payment.customer == "c") | (Payment.customer == "d"))
    with pytest.raises(errors.ExpressionError):
        repo.query((Payment.customer == "c") & Payment.payment_id.contains("x"))


async def test_tampered_and_foreign_cursors_fail_before_any_request(
    repo: Repository[Payment],
) -> None:
    q = repo.query(Payment.customer == "c#big", page_size=10)
    page = await q.pages().__anext__()
    assert page.cursor is not None
    body, sig = page.cursor.split(".")
    tampered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + sig
    for bad in (tampered, page.cursor[:-3], "garbage", page.cursor + "x", ""):
        with pytest.raises(errors.InvalidCursor):
            repo.query(Payment.customer == "c#big", page_size=10, cursor=bad)
    with pytest.raises(errors.InvalidCursor):  # foreign: another query's cursor
        repo.query(Payment.customer == "c#0", cursor=page.cursor)
    other = Repository(
        Payment,
        repo.client,
        table_prefix=repo.table_name[: -len("payments")],
        cursor_secret=b"another-secret-0123456789",
    )
    with pytest.raises(errors.InvalidCursor):  # signed with another secret
        other.query(Payment.customer == "c#big", page_size=10, cursor=page.cursor)


async def test_scan_and_parallel_scan(repo: Repository[Payment]) -> None:
    total = N + 30
    plain = [p.payment_id async for p in repo.scan(page_size=200)]
    assert len(plain) == total
    parallel = [p.payment_id async for p in repo.scan(segments=4, page_size=100)]
    assert sorted(parallel) == sorted(plain)
    assert await repo.scan(segments=3).count() == total
    assert await repo.count() == total
    limited = await repo.scan(segments=4, limit=50, page_size=30).to_list()
    assert len(limited) == 50
    filtered = repo.scan(filter=Payment.merchant == "m-0", segments=2)
    assert {p.merchant async for p in filtered} == {"m-0"}


async def test_parallel_scan_resumes_per_segment(repo: Repository[Payment]) -> None:
    scan = repo.scan(segments=3, page_size=150)
    cursors: dict[int, str | None] = {}
    seen: list[str] = []
    async for page in scan.pages():  # type: ignore[union-attr]
        seen += [p.payment_id for p in page.items]
        assert page.segment is not None
        cursors[page.segment] = page.cursor
        if len(seen) >= 300:
            break
    resumed = repo.scan(segments=3, page_size=150, cursors=cursors)
    rest = [p.payment_id async for p in resumed]
    assert sorted(seen + rest) == sorted([p.payment_id async for p in repo.scan()])
    with pytest.raises(errors.InvalidCursor):
        repo.scan(segments=2, cursors={5: None})


async def test_ttl_attribute_is_epoch_seconds(repo: Repository[Payment]) -> None:
    out = await repo.client.get_item(
        TableName=repo.table_name,
        Key={"customer": {"S": f"c#{N % 3}"}, "payment_id": {"S": f"p#{N:05d}"}},
    )
    expires = out["Item"]["expires_at"]
    assert expires == {"N": str(int(FAR.timestamp()))}
