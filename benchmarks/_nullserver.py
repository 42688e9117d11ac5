"""A null DynamoDB server: answers every request with one fixed body, in its own process.

Benchmarks measure client CPU with ``getrusage(RUSAGE_SELF)``, so the server must not
run in the measured process. :class:`NullServer` starts this file as a child process of
``sys.executable``, hands it the canned body on stdin, reads the port it bound from its
stdout and stops it by PID.

The child is a raw ``asyncio.Protocol`` HTTP/1.1 server (stdlib only, so it starts in
tens of milliseconds). It parses ``Content-Length`` and chunked request bodies, answers
pipelined requests in order, keeps connections alive (HTTP/1.1 default, or HTTP/1.0 with
``Connection: keep-alive``) and closes them when asked. Every answer carries
``Content-Type: application/x-amz-json-1.0``, a correct ``x-amz-crc32`` and an
``x-amzn-RequestId``.

``GET /__stats`` answers ``{"requests": N}``: how many other requests were answered.
Benchmarks compare it with the number of calls they made, so a client that skipped the
network (a cache, a short circuit) cannot produce a result.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import signal
import subprocess
import sys
import urllib.request
import zlib
from pathlib import Path
from types import TracebackType
from typing import IO, Self

__all__ = ["NullServer", "http_response"]

_MAX_HEAD = 64 * 1024
_STATS_PATH = b"/__stats"
_STARTUP_TIMEOUT = 15.0

# Never route requests to the local server through an HTTP(S)_PROXY from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_response(body: bytes, status: str = "200 OK") -> bytes:
    """The whole HTTP/1.1 answer (status line, headers, body) a DynamoDB endpoint would send."""
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: application/x-amz-json-1.0\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"x-amz-crc32: {zlib.crc32(body)}\r\n"
        "x-amzn-RequestId: NULLSERVER0000000000000000000000000000000000000000000\r\n"
        "Connection: keep-alive\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


# ---------------------------------------------------------------------------- child side


class _Incomplete(Exception):
    """The buffer does not hold a whole request yet."""


class _BadRequest(Exception):
    """The bytes received are not an HTTP/1.x request."""


def _chunked_end(buf: bytearray, start: int) -> int:
    """The offset just past a chunked body that begins at ``start`` (trailers included)."""
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            raise _Incomplete
        size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise _BadRequest(f"bad chunk size {size_text!r}") from exc
        pos = eol + 2
        if size == 0:
            while True:  # trailer lines, then an empty line
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    raise _Incomplete
                if eol == pos:
                    return eol + 2
                pos = eol + 2
        pos += size + 2
        if pos > len(buf):
            raise _Incomplete


class _Counter:
    __slots__ = ("requests",)

    def __init__(self) -> None:
        self.requests = 0


class _NullProtocol(asyncio.Protocol):
    """One connection: parse requests as they arrive, answer each with the canned reply."""

    def __init__(self, reply: bytes, counter: _Counter) -> None:
        self._reply = reply
        self._counter = counter
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        buf = self._buf
        buf += data
        out: list[bytes] = []
        close = False
        while buf:
            try:
                used, reply, close = self._one(buf)
            except _Incomplete:
                if len(buf) > _MAX_HEAD and buf.find(b"\r\n\r\n") < 0:
                    out.append(http_response(b'{"message":"header too large"}', "431 Too Large"))
                    close = True
                break
            except _BadRequest as exc:
                msg = json.dumps({"message": str(exc)}).encode()
                out.append(http_response(msg, "400 Bad Request"))
                close = True
                break
            del buf[:used]
            out.append(reply)
            if close:
                break
        if out:
            transport.write(b"".join(out) if len(out) > 1 else out[0])
        if close:
            transport.close()

    def _one(self, buf: bytearray) -> tuple[int, bytes, bool]:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            raise _Incomplete
        lines = bytes(buf[:end]).split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise _BadRequest(f"bad request line {lines[0][:100]!r}")
        method, target, version = parts
        length = 0
        chunked = False
        conn = b""
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise _BadRequest(f"bad header line {line[:100]!r}")
            low = name.strip().lower()
            if low == b"content-length":
                try:
                    length = int(value)
                except ValueError as exc:
                    raise _BadRequest(f"bad Content-Length {value!r}") from exc
            elif low == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif low == b"connection":
                conn = value.strip().lower()
        body_start = end + 4
        if chunked:
            used = _chunked_end(buf, body_start)
        else:
            used = body_start + length
            if len(buf) < used:
                raise _Incomplete
        if version == b"HTTP/1.0":
            close = conn != b"keep-alive"
        else:
            close = conn == b"close"
        if method == b"GET" and target == _STATS_PATH:
            stats = json.dumps({"requests": self._counter.requests}).encode()
            return used, http_response(stats), close
        self._counter.requests += 1
        return used, self._reply, close


async def _serve(body: bytes, host: str, out: IO[str]) -> None:
    reply = http_response(body)
    counter = _Counter()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _NullProtocol(reply, counter), host, 0, backlog=1024, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    out.write(f"{port}\n")
    out.flush()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def _child_main() -> None:
    body = sys.stdin.buffer.read()
    asyncio.run(_serve(body, "127.0.0.1", sys.stdout))


# ---------------------------------------------------------------------------- parent side


class NullServer:
    """Runs the null server in a child process. Use as a (sync) context manager.

    >>> with NullServer(b'{"Item": {}}') as server:
    ...     server.url  # 'http://127.0.0.1:PORT/'
    """

    def __init__(self, body: bytes) -> None:
        if not isinstance(body, bytes):
            raise TypeError("NullServer body must be bytes")
        self.body = body
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0

    @property
    def port(self) -> int:
        """The TCP port the server listens on (127.0.0.1)."""
        if self._proc is None:
            raise RuntimeError("NullServer is not running")
        return self._port

    @property
    def url(self) -> str:
        """The endpoint URL, ``http://127.0.0.1:PORT/``."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int | None:
        """The child's PID while it runs."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> Self:
        """Launch the child, hand it the body and wait for its port."""
        if self._proc is not None:
            return self
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._proc = proc
        atexit.register(self.stop)
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(self.body)
            proc.stdin.close()
            line = _read_line(proc.stdout, _STARTUP_TIMEOUT)
            self._port = int(line)
        except BaseException:
            self.stop()
            raise
        return self

    def requests(self) -> int:
        """How many requests (other than stats queries) the server has answered."""
        with _OPENER.open(f"{self.url}__stats", timeout=10) as resp:
            count: int = json.loads(resp.read())["requests"]
        return count

    def stop(self) -> None:
        """Stop the child by its PID (SIGTERM, then SIGKILL after 5 s)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _read_line(stream: IO[bytes], timeout: float) -> str:
    """Read the first line the child prints, or fail after ``timeout`` seconds."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise TimeoutError(f"null server printed no port within {timeout} s")
    line = stream.readline().decode().strip()
    if not line.isdigit():
        raise RuntimeError(f"null server failed to start (printed {line!r})")
    return line


if __name__ == "__main__":
    _child_main()
