"""PaymentProcessor against the real backend: every transition (legal and illegal), the
records and audit chain each one writes, guards enforced on the server, idempotent
creates and refunds, listings with cursors, and customers' encrypted fields."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs
import pytest

from dynamorm_async import DynamoClient
from dynamorm_async.binding import Binding
from dynamorm_async.crypto import FieldEncryptor, LocalKeyring
from dynamorm_async.db import Database
from dynamorm_async.errors import AlreadyExists, InvalidCursor, InvalidInput
from dynamorm_async.hooks import observing
from dynamorm_async.payments import (
    BatchProgress,
    CaptureExceedsAuthorized,
    Event,
    IdempotencyKeyReused,
    IllegalTransition,
    InvalidPaymentRequest,
    LimitAuthorizer,
    MerchantUnavailable,
    Payment,
    PaymentNotFound,
    PaymentProcessor,
    PaymentRequest,
    PaymentStatus,
    RefundExceedsCaptured,
    ResultStatus,
    TxnKind,
    TxnOutcome,
    allowed_from,
    delete_payment_tables,
    ensure_payment_tables,
)

S = PaymentStatus
SECRET = b"payments-cursor-secret-0123456789"
BLOCKED = "c-blocked"


class Requests:
    """A request observer that counts what is sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def before(self, operation: str, request: Mapping[str, Any]) -> Mapping[str, Any]:
        self.sent.append(operation)
        return request

    def after(self, operation: str, request: Mapping[str, Any], response: Any) -> None:
        pass


@pytest.fixture
async def proc(dynamodb_endpoint: str, table_name: str) -> AsyncIterator[PaymentProcessor]:
    async with DynamoClient(endpoint_url=dynamodb_endpoint, region="us-east-1") as client:
        binding = Binding(client, table_name + "-")
        await ensure_payment_tables(binding)
        sealer = FieldEncryptor(LocalKeyring.generate(), blind_index_key=b"b" * 32)
        db = Database(binding, cursor_secret=SECRET, sealer=sealer)
        authorizer = LimitAuthorizer(max_amount=50_000, blocked_customers=[BLOCKED])
        processor = PaymentProcessor(db, authorizer=authorizer, audit_secret=b"a" * 32)
        await processor.accounts.add_merchant("m-1", "Corner Shop")
        yield processor
        await delete_payment_tables(binding)


def request(key: str = "order-1", amount: int = 1999, **kw: Any) -> PaymentRequest:
    fields: dict[str, Any] = {"merchant_id": "m-1", "customer_id": "c-1", "currency": "EUR"}
    fields.update(kw)
    return PaymentRequest(amount=amount, idempotency_key=key, **fields)


async def in_status(proc: PaymentProcessor, status: PaymentStatus, key: str) -> Payment:
    """A payment brought to ``status`` through the processor."""
    customer = BLOCKED if status is S.FAILED else "c-1"
    p = (await proc.create(request(key, 10_000, customer_id=customer))).payment
    if status is S.PENDING:
        return p
    if status is S.VOIDED:
        return await proc.void(p)
    p = await proc.authorize(p)
    if status in (S.AUTHORIZED, S.FAILED):
        return p
    p = await proc.capture(p)
    if status is S.PARTIALLY_REFUNDED:
        return await proc.refund(p, 2_500)
    if status is S.REFUNDED:
        return await proc.refund(p, 10_000)
    return p


async def attempt(proc: PaymentProcessor, event: Event, p: Payment | str) -> Payment:
    if event is Event.AUTHORIZE:
        return await proc.authorize(p)
    if event is Event.CAPTURE:
        return await proc.capture(p)
    if event is Event.REFUND:
        return await proc.refund(p, 100)
    if event is Event.VOID:
        return await proc.void(p)
    raise AssertionError(event)


async def test_full_lifecycle_records_and_audit_chain(proc: PaymentProcessor) -> None:
    created = await proc.create(request(description="two books"))
    p = created.payment
    assert not created.duplicate
    assert (p.status, p.version, p.amount, p.currency) == (S.PENDING, 1, 1999, "EUR")
    assert p.merchant_status == "m-1#pending" and p.expires_at is not None  # abandoned: TTL
    p = await proc.authorize(p)
    assert (p.status, p.authorized_amount, p.expires_at) == (S.AUTHORIZED, 1999, None)
    assert p.auth_code
    p = await proc.capture(p, 1500)  # partial capture
    assert (p.status, p.captured_amount, p.refundable_amount) == (S.CAPTURED, 1500, 1500)
    p = await proc.refund(p, 500, refund_key="rma-1", reason="damaged")
    assert (p.status, p.refunded_amount, p.refundable_amount) == (S.PARTIALLY_REFUNDED, 500, 1000)
    p = await proc.refund(p.payment_id, 1000)  # by id: read first
    assert (p.status, p.refunded_amount, p.refundable_amount) == (S.REFUNDED, 1500, 0)
    assert p.version == 5

    stored = await proc.get(p.payment_id)
    assert stored == p  # what the processor returns is what is stored
    records = {r.txn_id: r for r in await proc.records(p.payment_id)}
    assert [r.kind for r in records.values()].count(TxnKind.REFUND) == 2
    assert records["authorize"].outcome is TxnOutcome.APPROVED
    assert records["capture"].amount == 1500
    refund = next(r for r in records.values() if r.reference == "rma-1")
    assert (refund.amount, refund.reason) == (500, "damaged")

    history = await proc.history(p.payment_id)
    assert [e.action for e in history] == ["create", "authorize", "capture", "refund", "refund"]
    assert history[3].request_id == "rma-1"
    assert history[2].changed()["status"] == ({"S": "authorized"}, {"S": "captured"})
    report = await proc.verify(p.payment_id)
    assert report.ok and report.length == 5


async def test_decline_and_void(proc: PaymentProcessor) -> None:
    declined = await proc.authorize((await proc.create(request("o-big", 60_000))).payment)
    assert declined.status is S.FAILED and declined.decline_reason == "amount_over_limit"
    (record,) = await proc.records(declined.payment_id)
    assert (record.kind, record.outcome) == (TxnKind.AUTHORIZE, TxnOutcome.DECLINED)
    blocked = await proc.authorize(
        (await proc.create(request("o-blocked", customer_id=BLOCKED))).payment
    )
    assert blocked.decline_reason == "customer_blocked"

    pending = (await proc.create(request("o-void-1"))).payment
    voided = await proc.void(pending, reason="customer left")
    assert voided.status is S.VOIDED and voided.expires_at is None
    authorized = await proc.authorize((await proc.create(request("o-void-2"))).payment)
    voided = await proc.void(authorized)
    assert voided.status is S.VOIDED
    (_, void) = sorted(await proc.records(voided.payment_id), key=lambda r: r.txn_id)
    assert (void.kind, void.amount) == (TxnKind.VOID, 1999)
    assert (await proc.verify(voided.payment_id)).length == 3


@pytest.mark.parametrize("status", [s for s in PaymentStatus])
async def test_illegal_transitions_raise_and_change_nothing(
    proc: PaymentProcessor, status: PaymentStatus
) -> None:
    p = await in_status(proc, status, f"o-{status.value}")
    assert p.status is status
    illegal = [e for e in (Event.AUTHORIZE, Event.CAPTURE, Event.REFUND, Event.VOID)]
    illegal = [e for e in illegal if status not in allowed_from(e)]
    for event in illegal:
        with pytest.raises(IllegalTransition) as info:
            await attempt(proc, event, p)
        assert (info.value.current, info.value.event) == (status, event)
        assert info.value.payment_id == p.payment_id
    assert await proc.get(p.payment_id) == p
    assert (await proc.verify(p.payment_id)).ok


async def test_stale_payment_is_caught_on_the_server(proc: PaymentProcessor) -> None:
    """A transition planned from an old read is refused by the version/status condition,
    and the error comes from the state DynamoDB returned (no extra read)."""
    pending = (await proc.create(request())).payment
    authorized = await proc.authorize(pending)
    await proc.capture(authorized)
    with pytest.raises(IllegalTransition) as info:
        await proc.void(authorized)  # stale: it is captured by now
    assert info.value.current is S.CAPTURED
    with pytest.raises(IllegalTransition):
        await proc.capture(authorized)
    # a stale but still legal transition is planned again from the fresh state
    p = await proc.refund(authorized.payment_id, 100)
    again = await proc.refund(attrs.evolve(p, version=p.version - 1), 100)
    assert again.refunded_amount == 200 and again.version == p.version + 1


async def test_guards_hold_on_the_server_whatever_was_read(proc: PaymentProcessor) -> None:
    """A read that lies about the amounts (same version) cannot over-refund or over-capture:
    the conditions ``refundable_amount >= amount`` and ``authorized_amount >= amount`` are
    evaluated by DynamoDB."""
    p = await proc.authorize((await proc.create(request(amount=1000))).payment)
    with pytest.raises(CaptureExceedsAuthorized):
        await proc.capture(attrs.evolve(p, authorized_amount=5000), 5000)
    p = await proc.capture(p)
    with pytest.raises(RefundExceedsCaptured) as info:
        await proc.refund(attrs.evolve(p, refundable_amount=10**6), 1001)
    assert (info.value.requested, info.value.refundable) == (1001, 1000)
    assert await proc.get(p.payment_id) == p


async def test_amount_rules(proc: PaymentProcessor) -> None:
    p = await proc.authorize((await proc.create(request(amount=1000))).payment)
    with pytest.raises(CaptureExceedsAuthorized):
        await proc.capture(p, 1001)
    p = await proc.capture(p, 800)
    with pytest.raises(RefundExceedsCaptured):
        await proc.refund(p, 801)
    p = await proc.refund(p, 800)
    assert p.status is S.REFUNDED
    for bad in (0, -1, 10**14):
        with pytest.raises(InvalidPaymentRequest):
            await proc.refund(p, bad)


async def test_refund_key_refunds_once(proc: PaymentProcessor) -> None:
    p = await proc.capture(await proc.authorize((await proc.create(request())).payment))
    first = await proc.refund(p, 300, refund_key="rma-9")
    again = await proc.refund(p, 300, refund_key="rma-9")  # a retry of the same refund
    assert again == first and again.refunded_amount == 300
    assert (await proc.verify(p.payment_id)).length == 4


async def test_create_is_idempotent_by_key(proc: PaymentProcessor) -> None:
    first = await proc.create(request())
    again = await proc.create(request())
    assert again.duplicate and again.payment == first.payment
    other = await proc.create(request(merchant_id="m-1", key="order-2"))
    assert other.payment.payment_id != first.payment.payment_id
    with pytest.raises(IdempotencyKeyReused) as info:
        await proc.create(request(amount=2000))  # same key, another payment
    assert info.value.payment_id == first.payment.payment_id
    assert (await proc.verify(first.payment.payment_id)).length == 1


async def test_merchant_must_exist_and_be_active(proc: PaymentProcessor) -> None:
    with pytest.raises(MerchantUnavailable):
        await proc.create(request(merchant_id="m-nobody"))
    await proc.accounts.add_merchant("m-2", "Closed Shop", active=False)
    with pytest.raises(MerchantUnavailable):
        await proc.create(request(merchant_id="m-2"))
    await proc.accounts.set_merchant_active("m-2", True)
    created = await proc.create(request(merchant_id="m-2"))
    assert not created.duplicate
    await proc.accounts.set_merchant_active("m-2", False)
    replay = await proc.create(request(merchant_id="m-2"))  # a replay still gets its payment
    assert replay.duplicate and replay.payment == created.payment
    with pytest.raises(MerchantUnavailable):
        await proc.create(request("order-2", merchant_id="m-2"))
    with pytest.raises(AlreadyExists):
        await proc.accounts.add_merchant("m-2", "again")


async def test_bad_input_is_refused_before_sending(proc: PaymentProcessor) -> None:
    seen = Requests()
    with observing(seen):
        for bad in (request(amount=0), request(currency="euro"), request(key="")):
            with pytest.raises(InvalidPaymentRequest):
                await proc.create(bad)
        with pytest.raises(InvalidInput):
            await proc.accounts.add_customer("c-9", "Bob", "4111111111111112")  # Luhn
        with pytest.raises(InvalidInput):
            await proc.list_by_customer("c-1", cursor="not-a-cursor")
    assert seen.sent == []
    with pytest.raises(PaymentNotFound):
        await proc.authorize("pay_missing")


async def test_listings_by_merchant_status_and_customer(proc: PaymentProcessor) -> None:
    ids = []
    for i in range(23):
        p = (await proc.create(request(f"o-{i:02d}", 100 + i, customer_id=f"c-{i % 2}"))).payment
        if i % 3 == 0:
            p = await proc.capture(await proc.authorize(p))
        ids.append(p.payment_id)
    captured = {ids[i] for i in range(23) if i % 3 == 0}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await proc.list_by_merchant("m-1", S.CAPTURED, limit=3, cursor=cursor)
        seen += [p.payment_id for p in page.items]
        assert all(p.status is S.CAPTURED for p in page.items)
        pages += 1
        cursor = page.cursor
        if cursor is None:
            break
    assert set(seen) == captured and len(seen) == len(captured) and pages >= 3
    pending = await proc.list_by_merchant("m-1", S.PENDING, limit=100)
    assert len(pending.items) == 23 - len(captured) and pending.cursor is None
    first = await proc.list_by_customer("c-1", limit=5)
    rest = await proc.list_by_customer("c-1", limit=5, cursor=first.cursor)
    assert {p.customer_id for p in first.items + rest.items} == {"c-1"}
    assert not {p.payment_id for p in first.items} & {p.payment_id for p in rest.items}
    with pytest.raises(InvalidCursor):
        await proc.list_by_customer("c-0", limit=5, cursor=first.cursor)  # another query


async def test_customers_are_encrypted_and_found_by_email(proc: PaymentProcessor) -> None:
    accounts = proc.accounts
    ann = await accounts.add_customer("c-1", "Ann", "4111111111111111", email="Ann@Example.com")
    assert (ann.last4, ann.email) == ("1111", "ann@example.com")
    tok = await accounts.add_customer("c-2", "Bo", "tok_9f8e7d6c5b4a", email="bo@example.com")
    assert tok.last4 == ""
    client, table = accounts.customers._bound()
    raw = (
        await client.call("GetItem", {"TableName": table, "Key": {"customer_id": {"S": "c-1"}}})
    )["Item"]
    assert "B" in raw["card"] and b"4111" not in repr(raw["card"]).encode()
    assert "B" in raw["email"] and raw["last4"] == {"S": "1111"}
    assert raw["email_index"]["S"] and "example" not in raw["email_index"]["S"]
    found = await accounts.find_customer_by_email("ANN@example.com ")
    assert found is not None and found.customer_id == "c-1" and found.card == "4111111111111111"
    assert await accounts.find_customer_by_email("nobody@example.com") is None


async def test_settlement_covers_each_captured_payment_once(proc: PaymentProcessor) -> None:
    async def captured(key: str, amount: int, currency: str = "EUR") -> Payment:
        created = await proc.create(request(key, amount, currency=currency))
        return await proc.capture(await proc.authorize(created.payment))

    eur = [await captured(f"s-{i}", 1000 * (i + 1)) for i in range(4)]
    eur[1] = await proc.refund(eur[1], 500)
    eur[2] = await proc.refund(eur[2], 3000)  # fully refunded: still settled (net 0)
    await proc.authorize((await proc.create(request("s-auth-only"))).payment)  # not captured
    usd = await captured("s-usd", 700, "USD")

    s = await proc.settle("m-1", "EUR")
    assert s is not None and s.currency == "EUR"
    assert sorted(s.payment_ids) == sorted(p.payment_id for p in eur)
    assert (s.payment_count, s.gross_amount, s.refunded_amount) == (4, 10_000, 3_500)
    assert s.net_amount == 6_500
    for p in eur:
        stored = await proc.get_or_raise(p.payment_id)
        assert stored.settlement_id == s.settlement_id and stored.version == p.version + 1
        assert (await proc.history(p.payment_id))[-1].action == "settle"
        assert (await proc.verify(p.payment_id)).ok
    assert await proc.settle("m-1", "EUR") is None  # nothing is settled twice
    other = await proc.settle("m-1", "USD")
    assert other is not None and other.payment_ids == [usd.payment_id]

    more = [await captured(f"s-more-{i}", 100) for i in range(3)]
    first = await proc.settle("m-1", "EUR", limit=2)
    second = await proc.settle("m-1", "EUR", limit=2)
    assert first is not None and second is not None
    assert (first.payment_count, second.payment_count) == (2, 1)
    assert set(first.payment_ids) | set(second.payment_ids) == {p.payment_id for p in more}
    listed = await proc.settlements("m-1")
    assert [x.settlement_id for x in listed] == sorted(
        x.settlement_id for x in (s, other, first, second)
    )


async def test_process_batch_results_progress_and_cost(
    proc: PaymentProcessor, dynamodb_backend: str
) -> None:
    # One at a time: the exact request counts below (and which of the two "b-twice"
    # requests creates and which replays) are only deterministic sequentially; duplicate
    # creates under concurrency are tested in test_payments_concurrency.py. (moto's
    # transactions are not isolated either.)
    concurrency = 1
    reqs = [
        request("b-ok-1"),
        request("b-ok-2", capture=False),
        request("b-declined", 60_000),
        request("b-bad", currency="eu"),
        request("b-nomerchant", merchant_id="m-none"),
        request("b-twice"),
        request("b-twice"),
    ]
    seen: list[BatchProgress] = []
    result = await proc.process_batch(reqs, concurrency=concurrency, progress=seen.append)
    assert [p.done for p in seen] == list(range(1, len(reqs) + 1))
    assert seen[-1].counts == result.counts
    assert result.counts == {"ok": 3, "duplicate": 1, "declined": 1, "error": 2}
    by_index = {r.index: r for r in result.results}
    assert by_index[0].payment is not None and by_index[0].payment.status is S.CAPTURED
    assert by_index[1].payment is not None and by_index[1].payment.status is S.AUTHORIZED
    assert by_index[2].status is ResultStatus.DECLINED
    assert isinstance(by_index[3].error, InvalidPaymentRequest)
    assert isinstance(by_index[4].error, MerchantUnavailable)
    assert {by_index[5].status, by_index[6].status} == {ResultStatus.OK, ResultStatus.DUPLICATE}
    assert by_index[5].payment == by_index[6].payment
    usage = result.cost.by("operation")
    assert usage["TransactWriteItems"].requests == 3 + 2 + 2 + 3  # creates + steps
    assert "ok 3" in result.summary() and proc.payments.table_name in result.summary()
    again = await proc.process(request("b-ok-1"))
    assert again.status is ResultStatus.DUPLICATE and not again.resumed
