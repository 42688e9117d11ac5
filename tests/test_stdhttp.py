"""The stdlib HTTP/1.1 transport (``ClientPool(http="stdlib")``) against real servers.

DynamoDB requests go to the test backend (directly, through a connection-counting TCP
relay, or through the fault proxy). Answers DynamoDB never gives (chunked, read to EOF,
malformed, TLS) come from tiny asyncio servers started by the tests themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import warnings
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from dynamorm_async import ClientPool, DynamoClient, RetryPolicy, errors
from dynamorm_async.attrvalue import to_item
from dynamorm_async.deadlines import deadline
from dynamorm_async.repository import Repository
from dynamorm_async.tables import create_table
from dynamorm_async.testing.faults import Fault, FaultProxy
from dynamorm_async.wire.http import _Timeout
from dynamorm_async.wire.stdhttp import StdlibTransport

from .entities import Payment

FAST = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01)
NO_RETRY = RetryPolicy(max_attempts=1)


class Relay:
    """A TCP relay on 127.0.0.1 to ``upstream``: counts client connections, can drop them."""

    def __init__(self, upstream: str) -> None:
        host_port = upstream.split("://", 1)[1].rstrip("/")
        host, _, port = host_port.rpartition(":")
        self.upstream = (host, int(port))
        self.accepted = 0
        self.active = 0
        self.max_active = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.drop_all()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def drop_all(self) -> None:
        """Close every client connection (as a server closing idle keep-alive ones); the
        FIN is sent before this returns, not on the next loop iteration."""
        for writer in list(self._writers):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self._writers.add(writer)
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        pumps = [
            asyncio.create_task(_pump(reader, up_writer)),
            asyncio.create_task(_pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        self._tasks.difference_update(pumps)
        for w in (writer, up_writer):
            w.close()
        self._writers.discard(writer)
        self.active -= 1


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass


Responder = Callable[[bytes], Awaitable[tuple[bytes, bool]]]


class TinyServer:
    """An HTTP/1.1 server answering each request with ``respond(body) -> (raw, close)``."""

    def __init__(self, respond: Responder, ssl_ctx: ssl.SSLContext | None = None) -> None:
        self.respond = respond
        self.ssl_ctx = ssl_ctx
        self.connections = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.url = ""

    async def __aenter__(self) -> TinyServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ssl_ctx)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self.ssl_ctx else 'http'}://127.0.0.1:{port}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                raw, close = await self.respond(body)
                writer.write(raw)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


def answer(body: bytes, extra: str = "") -> bytes:
    """A complete ``Content-Length`` answer (``extra``: more header lines)."""
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nx-amz-crc32: {zlib.crc32(body)}"
    return f"{head}\r\n{extra}\r\n".encode() + body


def chunked(body: bytes, size: int = 5) -> bytes:
    """A chunked answer of ``body``: ``size``-byte chunks, a chunk extension, a trailer."""
    out = (
        f"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Amz-Crc32: {zlib.crc32(body)}\r\n\r\n"
    )
    raw = out.encode()
    for i in range(0, len(body), size):
        part = body[i : i + size]
        raw += f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n"
    return raw + b"0\r\nX-Trailer: yes\r\n\r\n"


async def _kv_table(client: DynamoClient, name: str) -> None:
    keys = (("pk", "S", "HASH"), ("sk", "N", "RANGE"))
    await client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": t} for k, t, _ in keys],
        KeySchema=[{"AttributeName": k, "KeyType": kt} for k, _, kt in keys],
        BillingMode="PAY_PER_REQUEST",
    )
    await client.wait_for_table_active(name)


# --------------------------------------------------------------------------- DynamoDB


async def test_repository_and_paginated_query(dynamodb_endpoint: str, table_name: str) -> None:
    async with ClientPool(http="stdlib", retry=FAST) as pool:
        await _crud_and_query(pool, dynamodb_endpoint, table_name)
    with pytest.raises(ValueError, match="http must be"):
        ClientPool(http="curl")  # type: ignore[arg-type]


async def _crud_and_query(pool: ClientPool, dynamodb_endpoint: str, table_name: str) -> None:
    client = pool.client(dynamodb_endpoint, "us-east-1")
    assert isinstance(pool.transport(client.endpoint.url), StdlibTransport)
    prefix = table_name + "-"
    await create_table(client, Payment, prefix=prefix)
    repo = Repository(Payment, client, table_prefix=prefix)
    stored = await repo.create(
        Payment("c#1", "p#1", Decimal("9.5"), expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    )
    assert await repo.get(customer="c#1", payment_id="p#1", consistent=True) == stored

    await _kv_table(client, table_name)
    for i in range(25):
        await client.put_item(TableName=table_name, Item=to_item({"pk": "a", "sk": i, "x": "y"}))
    seen: list[int] = []
    pages = 0
    start: dict[str, object] | None = None
    while True:
        extra = {"ExclusiveStartKey": start} if start else {}
        page = await client.query(
            TableName=table_name,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "a"}},
            Limit=7,
            **extra,
        )
        pages += 1
        seen += [int(item["sk"]["N"]) for item in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert seen == list(range(25))
    assert pages >= 4
    with pytest.raises(errors.ResourceNotFound):
        await client.get_item(TableName=table_name + "-nope", Key=to_item({"pk": "a", "sk": 1}))


@pytest.fixture
async def front(dynamodb_endpoint: str) -> AsyncIterator[str]:
    """A keep-alive HTTP/1.1 front for the backend (moto's server closes every connection)."""
    async with FaultProxy(dynamodb_endpoint) as proxy:
        yield proxy.endpoint_url


async def test_keep_alive_reuses_one_connection(front: str) -> None:
    async with Relay(front) as relay, ClientPool(http="stdlib") as pool:
        client = pool.client(relay.url, "us-east-1")
        for _ in range(20):
            await client.list_tables()
        transport = pool.transport(client.endpoint.url)
        assert isinstance(transport, StdlibTransport)
        assert relay.accepted == 1
        assert transport.connections_opened == 1
        assert transport.open_connections == 1


async def test_concurrency_is_capped_by_the_limit(front: str, table_name: str) -> None:
    async with (
        Relay(front) as relay,
        ClientPool(http="stdlib", connection_limit=8) as pool,
    ):
        client = pool.client(relay.url, "us-east-1")
        await _kv_table(client, table_name)
        await client.put_item(TableName=table_name, Item=to_item({"pk": "a", "sk": 1}))
        key = to_item({"pk": "a", "sk": 1})
        gets = [client.get_item(TableName=table_name, Key=key) for _ in range(50)]
        outs = await asyncio.gather(*gets)
        assert all(out["Item"]["pk"] == {"S": "a"} for out in outs)
        assert 1 < relay.accepted <= 8
        assert relay.max_active <= 8
        before = relay.accepted
        await asyncio.gather(*[client.list_tables() for _ in range(16)])
        assert relay.accepted == before  # the idle connections were reused


async def test_server_closing_idle_connections(front: str) -> None:
    async with Relay(front) as relay, ClientPool(http="stdlib", retry=NO_RETRY) as pool:
        client = pool.client(relay.url, "us-east-1")
        await client.list_tables()
        await client.list_tables()
        assert relay.accepted == 1
        relay.drop_all()  # the server closes the idle keep-alive connection
        await asyncio.sleep(0.05)
        await client.list_tables()  # no retry policy: the transport opened a new one
        assert relay.accepted == 2


async def test_a_request_is_never_sent_twice_by_the_transport(dynamodb_endpoint: str) -> None:
    """A reset on a reused connection is the retry policy's to handle, not resent blindly:
    the server may have applied the request."""
    async with (
        FaultProxy(dynamodb_endpoint) as proxy,
        ClientPool(http="stdlib", retry=NO_RETRY) as pool,
    ):
        client = pool.client(proxy.endpoint_url, "us-east-1")
        await client.list_tables()  # opens the connection that is reused next
        proxy.inject(Fault.reset_before())
        with pytest.raises(errors.TransportError):
            await client.list_tables()
        assert proxy.requests["ListTables"] == 2
    async with (
        FaultProxy(dynamodb_endpoint) as proxy,
        ClientPool(http="stdlib", retry=FAST) as pool,
    ):
        client = pool.client(proxy.endpoint_url, "us-east-1")
        await client.list_tables()
        proxy.inject(Fault.reset_before())
        await client.list_tables()  # the policy retried, on a fresh connection
        assert proxy.requests["ListTables"] == 3


async def test_a_connection_closed_during_a_long_idle_is_not_reused(front: str) -> None:
    """The server closed the connection while the process was frozen (the loop has not
    seen the end-of-stream yet): a long-idle connection is re-checked before reuse.

    The request goes to the transport directly, so nothing else yields to the event loop
    between the close and the reuse decision."""
    async with Relay(front) as relay, ClientPool(http="stdlib", retry=NO_RETRY) as pool:
        client = pool.client(relay.url, "us-east-1")
        await client.list_tables()
        transport = pool.transport(client.endpoint.url)
        assert isinstance(transport, StdlibTransport)
        for conns in transport._idle.values():
            for conn in conns:
                conn.idle_since -= 5  # as if frozen for 5 s (within the keep-alive time)
        relay.drop_all()  # no await between this and the request: the EOF is unseen
        headers = {"X-Amz-Target": "DynamoDB_20120810.ListTables"}
        answer = await transport.post(client.endpoint.url, headers, b"{}", 10.0)
        assert answer.status < 500  # an answer (the server may refuse the unsigned call)
        assert relay.accepted == 2


async def test_reset_on_a_fresh_connection_is_left_to_the_retry_policy(
    dynamodb_endpoint: str,
) -> None:
    async with FaultProxy(dynamodb_endpoint) as proxy:
        proxy.inject(Fault.reset_before())
        async with ClientPool(http="stdlib", retry=NO_RETRY) as pool:
            with pytest.raises(errors.TransportError):
                await pool.client(proxy.endpoint_url, "us-east-1").list_tables()
        proxy.inject(Fault.reset_before())
        async with ClientPool(http="stdlib", retry=FAST) as pool:
            await pool.client(proxy.endpoint_url, "us-east-1").list_tables()
        assert proxy.requests["ListTables"] == 3


@pytest.mark.parametrize("fault", [Fault.truncate(), Fault.bad_crc()], ids=["truncate", "crc"])
async def test_truncated_or_corrupt_answers_are_retried(
    dynamodb_endpoint: str, table_name: str, fault: Fault
) -> None:
    async with (
        FaultProxy(dynamodb_endpoint) as proxy,
        ClientPool(http="stdlib", retry=FAST) as pool,
    ):
        client = pool.client(proxy.endpoint_url, "us-east-1")
        await _kv_table(client, table_name)
        await client.put_item(TableName=table_name, Item=to_item({"pk": "a", "sk": 1, "v": 7}))
        proxy.inject(fault, fault)
        got = await client.get_item(TableName=table_name, Key=to_item({"pk": "a", "sk": 1}))
        assert got["Item"]["v"] == {"N": "7"}
        assert proxy.requests["GetItem"] == 3
        proxy.inject(fault)
        async with ClientPool(http="stdlib", retry=NO_RETRY) as once:
            expected = errors.ChecksumMismatch if fault.kind == "bad_crc" else errors.TransportError
            with pytest.raises(expected):
                await once.client(proxy.endpoint_url, "us-east-1").get_item(
                    TableName=table_name, Key=to_item({"pk": "a", "sk": 1})
                )


async def test_timeouts(dynamodb_endpoint: str) -> None:
    async with FaultProxy(dynamodb_endpoint) as proxy:
        async with ClientPool(http="stdlib", retry=NO_RETRY) as pool:
            client = pool.client(proxy.endpoint_url, "us-east-1")
            proxy.inject(Fault.slow(1.0))
            with deadline(seconds=0.2), pytest.raises(errors.DeadlineExceeded) as ei:
                await client.list_tables()
            assert isinstance(ei.value.__cause__, _Timeout)
        async with StdlibTransport(timeout=0.2) as transport:
            proxy.inject(Fault.slow(1.0))
            with pytest.raises(_Timeout) as te:
                await transport.post(
                    proxy.endpoint_url, {"X-Amz-Target": "x.ListTables"}, b"{}", None
                )
            assert isinstance(te.value, errors.TransportError)
            assert transport.open_connections == 0  # a timed-out connection is never reused


def test_a_new_event_loop_per_asyncio_run(dynamodb_endpoint: str) -> None:
    pool = ClientPool(http="stdlib")
    transports = []

    async def one() -> None:
        client = pool.client(dynamodb_endpoint, "us-east-1")
        await client.list_tables()
        transports.append(pool.transport(client.endpoint.url))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(one())
        asyncio.run(one())  # the first loop is closed: its connection is dropped
        asyncio.run(pool.aclose())
        gc.collect()
    assert transports[0] is not transports[1]
    assert all(isinstance(t, StdlibTransport) and t.closed for t in transports)
    assert not [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_aclose_leaves_no_resource_warning(dynamodb_endpoint: str) -> None:
    """In a fresh interpreter in asyncio debug mode, where any unclosed socket, transport
    or pending task is reported (and ResourceWarning is an error)."""
    code = (
        "import asyncio, gc, sys\n"
        "from dynamorm_async import ClientPool\n"
        "async def main():\n"
        "    pool = ClientPool(http='stdlib', connection_limit=4)\n"
        "    c = pool.client(sys.argv[1], 'us-east-1')\n"
        "    await asyncio.gather(*[c.list_tables() for _ in range(10)])\n"
        "    await pool.aclose()\n"
        "asyncio.run(main())\n"
        "gc.collect()\n"
        "print('ok')\n"
    )
    strict = ("-X", "dev", "-W", "error::ResourceWarning")
    out = subprocess.run(
        [sys.executable, *strict, "-c", code, dynamodb_endpoint],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONASYNCIODEBUG": "1"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert "Warning" not in out.stderr and "unclosed" not in out.stderr.lower(), out.stderr


# --------------------------------------------------------------------------- tiny servers


async def test_chunked_eof_and_connection_close_answers() -> None:
    body = b'{"TableNames": ["a", "b", "c"]}'
    kinds = iter(["chunked", "chunked", "close", "eof", "chunked"])

    async def respond(_: bytes) -> tuple[bytes, bool]:
        kind = next(kinds)
        if kind == "chunked":
            return chunked(body), False
        if kind == "close":
            return answer(body, "Connection: close\r\n"), True
        head = f"HTTP/1.1 200 OK\r\nx-amz-crc32: {zlib.crc32(body)}\r\n\r\n"
        return head.encode() + body, True  # no length: the body ends at EOF

    async with TinyServer(respond) as server, ClientPool(http="stdlib", retry=NO_RETRY) as pool:
        client = pool.client(server.url, "us-east-1")
        for _ in range(5):
            assert (await client.list_tables())["TableNames"] == ["a", "b", "c"]
        # chunked, chunked on one connection; close; EOF; chunked on a third one.
        assert server.connections == 3
        head = server.requests[0].split(b"\r\n\r\n")[0].decode()
        port = server.url.rsplit(":", 1)[1].rstrip("/")
        assert f"\r\nHost: 127.0.0.1:{port}\r\n" in head
        assert "\r\nContent-Length: 2\r\n" in head


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"NOPE\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
    ],
    ids=["status", "status-line", "header", "chunk-size", "short-body"],
)
async def test_malformed_answers_are_transport_errors(raw: bytes) -> None:
    async def respond(_: bytes) -> tuple[bytes, bool]:
        return raw, True

    async with TinyServer(respond) as server, StdlibTransport() as transport:
        with pytest.raises(errors.TransportError) as ei:
            await transport.post(server.url, {}, b"{}", 5.0)
        assert not isinstance(ei.value, _Timeout)
        assert transport.open_connections == 0


async def test_connection_refused_is_a_transport_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with StdlibTransport() as transport:
        with pytest.raises(errors.TransportError, match="cannot connect"):
            await transport.post(f"http://127.0.0.1:{port}/", {}, b"{}", 5.0)


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(pem := serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


async def test_https_against_a_local_tls_server(tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_file, key_file)
    body = b'{"TableNames": ["tls"]}'

    async def respond(_: bytes) -> tuple[bytes, bool]:
        return answer(body), False

    async with TinyServer(respond, server_ctx) as server:
        client_ctx = ssl.create_default_context(cafile=str(cert_file))
        async with ClientPool(http="stdlib", ssl_context=client_ctx, retry=NO_RETRY) as pool:
            client = pool.client(server.url, "us-east-1")
            for _ in range(3):
                assert (await client.list_tables())["TableNames"] == ["tls"]
        assert server.connections == 1
        async with StdlibTransport(cafile=str(cert_file)) as transport:
            resp = await transport.post(server.url, {}, b"{}", 5.0)
            assert (resp.status, resp.body) == (200, body)
            assert resp.headers["X-AMZ-CRC32"] == str(zlib.crc32(body))
        async with StdlibTransport() as untrusted:  # the system CAs do not know this cert
            with pytest.raises(errors.TransportError):
                await untrusted.post(server.url, {}, b"{}", 5.0)


def test_the_environment_picks_the_default_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DYNAMORM_HTTP", raising=False)
    assert ClientPool().http == "aiohttp"
    monkeypatch.setenv("DYNAMORM_HTTP", "stdlib")
    assert ClientPool().http == "stdlib"
    assert ClientPool(http="aiohttp").http == "aiohttp"  # the argument wins
    monkeypatch.setenv("DYNAMORM_HTTP", "curl")
    with pytest.raises(ValueError, match="DYNAMORM_HTTP"):
        ClientPool()
