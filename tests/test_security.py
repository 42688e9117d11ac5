"""Security review, as tests: no credential, key or plaintext card data in logs (DEBUG on
the ``dynamorm_async`` logger), reprs, exception texts or load-test output; cursors and
audit chains use keyed HMAC, compared in constant time, and detect tampering."""

from __future__ import annotations

import base64
import inspect
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamorm_async import DynamoClient, RetryPolicy, errors
from dynamorm_async.audit import AuditTrail
from dynamorm_async.binding import Binding
from dynamorm_async.crypto import FieldEncryptor, LocalKeyring
from dynamorm_async.cursor import CursorCodec
from dynamorm_async.db import Database
from dynamorm_async.payments import Customer, ensure_payment_tables
from dynamorm_async.testing.faults import Fault, FaultProxy
from dynamorm_async.wire.credentials import Credentials, StaticCredentials

SECRET_KEY = "wJalrXUtnFEMI-SECRET-KEY-do-not-log-0001"
TOKEN = "FwoGZXIvYXdzEJr-SESSION-TOKEN-do-not-log-0002"
PAN = "4111111111111111"
EMAIL = "alice.secret@example.com"
BLIND_KEY = b"blind-index-key-0123456789abcdef"
SECRETS = (SECRET_KEY, TOKEN, PAN, EMAIL, "do-not-log")


def assert_clean(text: str, where: str) -> None:
    for s in SECRETS:
        assert s not in text, f"{s!r} leaked into {where}"


@pytest.fixture
async def setup(
    dynamodb_endpoint: str, table_name: str
) -> AsyncIterator[tuple[DynamoClient, FaultProxy, Database, LocalKeyring]]:
    creds = StaticCredentials("AKIDSECURITYTEST", SECRET_KEY, TOKEN)
    async with (
        FaultProxy(dynamodb_endpoint) as proxy,
        DynamoClient(
            endpoint_url=proxy.endpoint_url,
            region="us-east-1",
            credentials=creds,
            retry=RetryPolicy(max_attempts=5, base_delay=0.001),
        ) as client,
    ):
        binding = Binding(client, table_name + "-")
        await ensure_payment_tables(binding)
        keyring = LocalKeyring.generate()
        sealer = FieldEncryptor(keyring, blind_index_key=BLIND_KEY)
        yield client, proxy, Database(binding, cursor_secret=b"c" * 32, sealer=sealer), keyring


async def test_nothing_secret_in_logs_reprs_or_errors(
    setup: tuple[DynamoClient, FaultProxy, Database, LocalKeyring],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, proxy, db, keyring = setup
    caplog.set_level(logging.DEBUG, logger="dynamorm_async")
    logging.getLogger("dynamorm_async").setLevel(logging.DEBUG)
    customers = db.repository(Customer)
    texts: list[str] = []
    # writes and reads through retried faults
    proxy.inject(Fault.throttle(), Fault.bad_crc(), Fault.reset_after())
    stored = await customers.put(Customer("cu-1", "Alice", card=PAN, last4="1111", email=EMAIL))
    got = await customers.get_or_raise(customer_id="cu-1")
    assert got.card == PAN  # decrypted for the caller, but never shown
    raw = await client.get_item(TableName=customers.table_name, Key={"customer_id": {"S": "cu-1"}})
    assert_clean(repr(raw), "the stored item")  # encrypted at rest
    texts += [repr(stored), str(stored), repr(got), repr(customers), repr(db)]
    texts += [repr(client), repr(client.credentials), repr(await client.credentials.get())]
    texts += [repr(keyring), repr(db.sealer)]
    # errors: conflict (with the old item), exhausted retries, a server validation error
    caught: list[BaseException] = []
    for work in (
        lambda: customers.create(Customer("cu-1", "Alice", card=PAN, email=EMAIL)),
        lambda: customers.update(stored, condition=Customer.name == "Bob"),
        lambda: client.get_item(TableName="no-such-table", Key={"x": {"S": PAN}}),
    ):
        try:
            await work()
        except errors.DynamormError as exc:
            caught.append(exc)
    proxy.inject(*[Fault.throttle()] * 5)
    try:
        await customers.get(customer_id="cu-1")
    except errors.Throttled as exc:
        caught.append(exc)
    assert len(caught) == 4
    for exc in caught:
        texts += [str(exc), repr(exc), repr(getattr(exc, "current", None))]
        texts += [str(n) for n in getattr(exc, "__notes__", [])]
    for i, text in enumerate(texts):
        assert_clean(text, f"repr/str #{i}: {text[:80]}")
    assert_clean(caplog.text, "the DEBUG log")
    for record in caplog.records:
        assert_clean(repr(record.args), "log arguments")


def test_credentials_repr_hides_secrets() -> None:
    c = Credentials("AKID", SECRET_KEY, TOKEN)
    assert_clean(repr(c), "Credentials repr")
    assert_clean(str(c), "Credentials str")
    assert_clean(repr(StaticCredentials("AKID", SECRET_KEY, TOKEN)), "StaticCredentials repr")


# --------------------------------------------------------------------------- HMAC


def test_cursor_and_audit_compare_in_constant_time() -> None:
    """The code review, kept honest: verification uses hmac.compare_digest, never ==."""
    decode = inspect.getsource(CursorCodec.decode)
    assert "hmac.compare_digest" in decode
    verify = inspect.getsource(AuditTrail.verify_chain)
    assert "hmac.compare_digest" in verify
    sign = inspect.getsource(CursorCodec._sign)
    assert "hmac.new" in sign and "sha256" in sign


@settings(max_examples=300, deadline=None)
@given(
    key=st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.builds(lambda s: {"S": s}, st.text(max_size=20)),
        min_size=1,
        max_size=3,
    ),
    position=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_bit_flip_in_a_cursor_is_detected(key: dict[str, Any], position: int, bit: int) -> None:
    codec = CursorCodec(b"k" * 32)
    cursor = codec.encode(key, "fp")
    body, sig = cursor.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[position % len(raw)] ^= 1 << bit
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode() + "." + sig
    with pytest.raises(errors.InvalidCursor):
        codec.decode(forged, "fp")
    with pytest.raises(errors.InvalidCursor):  # another secret
        CursorCodec(b"j" * 32).decode(cursor, "fp")
    with pytest.raises(errors.InvalidCursor):  # another query
        codec.decode(cursor, "other")
    assert codec.decode(cursor, "fp") == key


def test_blind_index_is_keyed() -> None:
    """The same email under two blind-index keys gives unrelated indexes (keyed
    HMAC-SHA256), and the index does not contain the email."""
    ring = LocalKeyring.generate()
    a = FieldEncryptor(ring, blind_index_key=BLIND_KEY).blind_index(Customer, "email", EMAIL)
    other = FieldEncryptor(ring, blind_index_key=b"another-blind-index-key-01234567")
    b = other.blind_index(Customer, "email", EMAIL)
    assert a != b and EMAIL not in a and len(base64.urlsafe_b64decode(a + "=")) == 32
    assert a == FieldEncryptor(ring, blind_index_key=BLIND_KEY).blind_index(
        Customer, "email", EMAIL
    )
