"""``StdlibTransport``: the :class:`~dynamorm_async.wire.http.Transport` over asyncio streams.

An opt-in alternative to aiohttp for cold start (``ClientPool(http="stdlib")``): it
imports only the standard library (``ssl`` lazily, on the first https request), so a
Lambda handler skips aiohttp's import cost. It speaks just what DynamoDB needs of
HTTP/1.1: one POST per exchange, keep-alive with a small idle-connection pool per
(scheme, host, port), a cap on open connections, bodies by ``Content-Length``,
``Transfer-Encoding: chunked`` or read to EOF.

Errors follow the aiohttp transport: every connection failure, reset or malformed
answer is a retryable :class:`~dynamorm_async.errors.TransportError`, the request
timeout is the same ``_Timeout``. A connection is reused only after a complete,
well-formed exchange. The transport never sends a request twice: a request that was
written may have been applied, so every failure is left to the retry policy (which
the caller controls and which stops at the deadline). To avoid writing onto a
connection the server closed while it sat idle (a Lambda environment thawed after a
long freeze), a connection idle for more than a second is re-checked after letting the
event loop deliver any pending end-of-stream.

Connections belong to the event loop that opened them: on another loop the transport
drops them without awaiting on the old loop and opens new ones.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import TransportError
from .http import HttpResponse, _Timeout, close_transport_now

if TYPE_CHECKING:
    import ssl

__all__ = ["StdlibTransport"]

_Key = tuple[str, str, int]  # (scheme, host, port)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SKIP_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding"})
_MAX_HEAD = 64 * 1024
#: Seconds of idleness after which a connection is re-checked before reuse.
_RECHECK_IDLE = 1.0


class _Headers(Mapping[str, str]):
    """Response headers, looked up case-insensitively (repeated headers joined by ``,``)."""

    __slots__ = ("_items",)

    def __init__(self, items: dict[str, str]) -> None:
        self._items = items  # lower-cased names

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()]

    def get(self, key: str, default: Any = None) -> Any:
        """The header ``key`` (any case), or ``default``."""
        return self._items.get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"_Headers({self._items!r})"


class _Stale(Exception):
    """The connection failed before any byte of the answer arrived."""


class _Conn:
    """One open connection: its streams and when it was last returned idle."""

    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float, keepalive: float) -> bool:
        """True if the idle connection can carry another request."""
        return (
            now - self.idle_since < keepalive
            and not self.reader.at_eof()
            and not self.writer.transport.is_closing()
        )

    def abort(self) -> None:
        """Drop the connection now, without awaiting (the loop must not be closed)."""
        with contextlib.suppress(Exception):
            self.writer.transport.abort()

    def close_dead_loop(self) -> None:
        """Close the socket of a connection whose event loop is closed (nothing to await)."""
        close_transport_now(self.writer.transport)


class StdlibTransport:
    """HTTP/1.1 keep-alive :class:`~dynamorm_async.wire.http.Transport` on asyncio streams.

    ``limit``: open connections at most (requests beyond it wait); ``keepalive_timeout``:
    seconds an idle connection is kept; ``timeout``: request timeout in seconds when
    ``post`` gets none (``None``: no limit); ``connect_timeout``: seconds to open a
    connection (a retryable :class:`TransportError` past it); ``ssl_context`` or
    ``cafile``: how https servers are verified (default: ``ssl.create_default_context()``,
    made on first https use).
    """

    def __init__(
        self,
        *,
        limit: int = 64,
        keepalive_timeout: float = 30.0,
        timeout: float | None = 60.0,
        connect_timeout: float | None = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        cafile: str | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.keepalive_timeout = keepalive_timeout
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._ssl = ssl_context
        self._cafile = cafile
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore | None = None
        self._idle: dict[_Key, collections.deque[_Conn]] = {}
        self._open: set[_Conn] = set()
        self._urls: dict[str, tuple[_Key, str, str]] = {}
        self._closed = False
        #: Connections opened so far (for tests and metrics).
        self.connections_opened = 0

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` or :meth:`close_now` ran."""
        return self._closed

    @property
    def open_connections(self) -> int:
        """Connections open now (idle or carrying a request)."""
        return len(self._open)

    # ------------------------------------------------------------------ requests

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout: float | None
    ) -> HttpResponse:
        """POST ``body`` to ``url``; raise :class:`TransportError` on connection failure."""
        if self._closed:
            raise TransportError("the transport is closed", url)
        sem = self._semaphore()
        key, host, path = self._target(url)
        request = _request_head(host, path, headers, len(body))
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                async with sem:
                    return await self._exchange(key, request, body, url)
        except TimeoutError as exc:
            raise _Timeout(f"no answer within {limit} s", url) from exc

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._sem is None:
            if self._loop is not None:
                self._drop_all()
            self._loop = loop
            self._sem = asyncio.Semaphore(self.limit)
        return self._sem

    def _target(self, url: str) -> tuple[_Key, str, str]:
        found = self._urls.get(url)
        if found is None:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            if scheme not in _DEFAULT_PORTS or not parts.hostname:
                raise TransportError("only http(s)://host[:port] URLs are supported", url)
            try:
                port = parts.port or _DEFAULT_PORTS[scheme]
            except ValueError as exc:
                raise TransportError(f"bad port: {exc}", url) from exc
            host = parts.netloc.rpartition("@")[2]
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            found = ((scheme, parts.hostname, port), host, path)
            self._urls[url] = found
        return found

    async def _exchange(self, key: _Key, head: bytes, body: bytes, url: str) -> HttpResponse:
        conn = await self._take_idle(key)
        if conn is None:
            conn = await self._connect(key, url)
        try:
            resp, keep = await _roundtrip(conn, head, body)
        except _Stale as exc:
            self._discard(conn)
            cause = exc.__cause__ or exc
            raise TransportError(
                f"connection closed before an answer: {type(cause).__name__}: {cause}", url
            ) from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            self._discard(conn)
            raise TransportError(f"{type(exc).__name__}: {exc}", url) from exc
        except ValueError as exc:
            self._discard(conn)
            raise TransportError(f"malformed HTTP answer: {exc}", url) from exc
        except BaseException:
            self._discard(conn)
            raise
        if keep and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(key, collections.deque()).append(conn)
        else:
            self._discard(conn, graceful=True)
        return resp

    async def _take_idle(self, key: _Key) -> _Conn | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()  # the most recently used one is the least likely stale
            now = time.monotonic()
            if conn.usable(now, self.keepalive_timeout):
                if now - conn.idle_since <= _RECHECK_IDLE:
                    return conn
                # Two loop iterations: the first polls the socket, the second runs the
                # protocol callbacks that record an end-of-stream the server sent.
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                if conn.usable(time.monotonic(), self.keepalive_timeout):
                    return conn
            self._discard(conn)
        return None

    async def _connect(self, key: _Key, url: str) -> _Conn:
        scheme, host, port = key
        ctx = self._ssl_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=ctx, server_hostname=host if ctx is not None else None
                )
        except TimeoutError as exc:  # the connect timeout (the request's own propagates)
            raise TransportError(f"no connection within {self.connect_timeout} s", url) from exc
        except OSError as exc:
            raise TransportError(f"cannot connect: {type(exc).__name__}: {exc}", url) from exc
        conn = _Conn(reader, writer)
        self._open.add(conn)
        self.connections_opened += 1
        return conn

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            import ssl

            self._ssl = ssl.create_default_context(cafile=self._cafile)
        return self._ssl

    def _discard(self, conn: _Conn, *, graceful: bool = False) -> None:
        self._open.discard(conn)
        if graceful:
            with contextlib.suppress(Exception):
                conn.writer.close()
        else:
            conn.abort()

    # ------------------------------------------------------------------ lifecycle

    def _drop_all(self) -> None:
        """Forget every connection of the previous loop, without awaiting on it."""
        dead = self._loop is None or self._loop.is_closed()
        for conn in self._open:
            if dead:
                conn.close_dead_loop()
            else:
                conn.abort()
        self._open.clear()
        self._idle.clear()
        self._sem = None

    def close_now(self) -> None:
        """Close every connection without awaiting (the loop may be closed or another
        one); requests in flight fail with a retryable :class:`TransportError`."""
        self._closed = True
        self._drop_all()
        self._loop = None

    async def aclose(self) -> None:
        """Close every connection: idle ones gracefully, ones in flight at once."""
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            self.close_now()
            return
        self._closed = True
        idle = {conn for conns in self._idle.values() for conn in conns}
        self._idle.clear()
        writers = []
        for conn in list(self._open):
            if conn in idle:
                conn.writer.close()
                writers.append(conn.writer)
            else:
                conn.abort()
        self._open.clear()
        for writer in writers:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
        await asyncio.sleep(0)  # let aborted transports finish closing

    async def __aenter__(self) -> StdlibTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _request_head(host: str, path: str, headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {length}"]
    for name, value in headers.items():
        if name.lower() in _SKIP_HEADERS:
            if name.lower() == "host":
                lines[1] = f"Host: {value}"
            continue
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise TransportError(f"header {name!r} has a line break", host)
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


async def _roundtrip(conn: _Conn, head: bytes, body: bytes) -> tuple[HttpResponse, bool]:
    """Send one request, read one answer; returns it and whether the connection stays."""
    reader, writer = conn.reader, conn.writer
    try:
        if len(body) < 65536:
            writer.write(head + body)
        else:
            writer.write(head)
            writer.write(body)
        await writer.drain()
        first = await reader.read(1)
    except ConnectionError as exc:
        raise _Stale(str(exc)) from exc
    if not first:
        raise _Stale("EOF before the answer")
    try:
        raw = first + await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise ValueError("answer head too long") from exc
    status, version, headers = _parse_head(raw)
    while 100 <= status < 200:  # interim answers (100 Continue) carry no body
        raw = await reader.readuntil(b"\r\n\r\n")
        status, version, headers = _parse_head(raw)
    connection = headers.get("connection", "").lower()
    keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    if status in (204, 304):
        return HttpResponse(status, _Headers(headers), b""), keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        data = await _read_chunked(reader)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if length < 0:
            raise ValueError(f"negative Content-Length {length}")
        data = await reader.readexactly(length)
    else:
        data = await reader.read()
        keep = False
    return HttpResponse(status, _Headers(headers), data), keep


def _parse_head(raw: bytes) -> tuple[int, str, dict[str, str]]:
    """Status, HTTP version and lower-cased headers of an answer head (ValueError if bad)."""
    lines = raw.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest.partition(" ")[0]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ValueError(f"bad status line {lines[0][:100]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ValueError(f"bad header line {line[:100]!r}")
        name, value = name.lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return int(code), version, headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size < 0:
            raise ValueError("negative chunk size")
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
