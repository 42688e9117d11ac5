"""A fault-injecting HTTP proxy for tests: a real local server between client and DynamoDB.

>>> async with FaultProxy(upstream_url) as proxy:
...     proxy.inject(Fault.throttle(), Fault.reset_after())
...     client = DynamoClient(endpoint_url=proxy.endpoint_url)

Each queued fault applies to one request, in order; requests with no queued fault are
forwarded unchanged. ``proxy.requests`` counts every request per DynamoDB operation and
``proxy.forwarded`` counts what reached the upstream server, so a test can tell
"applied, then the answer was lost" from "never applied".
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from types import TracebackType

import aiohttp
import attrs
import orjson

__all__ = ["Fault", "FaultProxy"]


@attrs.frozen
class Fault:
    """One injected fault. Build with the class methods."""

    kind: str
    status: int = 0
    body: bytes = b""
    delay: float = 0.0
    only: str | None = None  # apply only to this operation (e.g. "PutItem")

    @classmethod
    def throttle(cls, only: str | None = None) -> Fault:
        """Answer 400 ThrottlingException without forwarding."""
        body = orjson.dumps(
            {"__type": "com.amazon.coral.availability#ThrottlingException", "message": "slow down"}
        )
        return cls("answer", 400, body, only=only)

    @classmethod
    def server_error(cls, status: int = 500, only: str | None = None) -> Fault:
        """Answer a 5xx InternalServerError without forwarding."""
        body = orjson.dumps(
            {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "boom"}
        )
        return cls("answer", status, body, only=only)

    @classmethod
    def answer(cls, status: int, body: bytes, only: str | None = None) -> Fault:
        """Answer exactly ``status`` and ``body`` without forwarding."""
        return cls("answer", status, body, only=only)

    @classmethod
    def reset_before(cls, only: str | None = None) -> Fault:
        """Close the connection without forwarding: the request was never applied."""
        return cls("reset_before", only=only)

    @classmethod
    def reset_after(cls, only: str | None = None) -> Fault:
        """Forward (the request IS applied), then close the connection without answering."""
        return cls("reset_after", only=only)

    @classmethod
    def slow(cls, delay: float, only: str | None = None) -> Fault:
        """Forward, then wait ``delay`` seconds before answering."""
        return cls("slow", delay=delay, only=only)

    @classmethod
    def bad_crc(cls, only: str | None = None) -> Fault:
        """Forward, then answer with a wrong ``x-amz-crc32``."""
        return cls("bad_crc", only=only)

    @classmethod
    def truncate(cls, only: str | None = None) -> Fault:
        """Forward, then send half the body and close the connection."""
        return cls("truncate", only=only)


class FaultProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 that forwards to ``upstream_url`` and injects faults."""

    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = upstream_url.rstrip("/") + "/"
        self.requests: collections.Counter[str] = collections.Counter()
        self.forwarded: collections.Counter[str] = collections.Counter()
        self._faults: collections.deque[Fault] = collections.deque()
        self._server: asyncio.Server | None = None
        self._session: aiohttp.ClientSession | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self.port = 0
        self.on_request: Callable[[str], None] | None = None

    @property
    def endpoint_url(self) -> str:
        """The proxy's URL, to give to a client as ``endpoint_url``."""
        return f"http://127.0.0.1:{self.port}"

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each applies to one matching request, in order."""
        self._faults.extend(faults)

    @property
    def pending(self) -> int:
        """Faults not yet used."""
        return len(self._faults)

    async def start(self) -> FaultProxy:
        """Start listening on a free port."""
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening, drop open connections, close the upstream session."""
        if self._server is not None:
            self._server.close()
            for task in list(self._conns):
                task.cancel()
            await asyncio.gather(*self._conns, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _next_fault(self, operation: str) -> Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.only is None or fault.only == operation:
                del self._faults[i]
                return fault
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip()] = v.strip()
        lower = {k.lower(): v for k, v in headers.items()}
        body = await reader.readexactly(int(lower.get("content-length", "0")))
        operation = lower.get("x-amz-target", "").rpartition(".")[2]
        self.requests[operation] += 1
        if self.on_request is not None:
            self.on_request(operation)
        fault = self._next_fault(operation)
        if fault is not None and fault.kind == "reset_before":
            writer.transport.abort()
            return False
        if fault is not None and fault.kind == "answer":
            await self._write(writer, fault.status, {}, fault.body)
            return True
        status, up_headers, up_body = await self._forward(headers, body)
        self.forwarded[operation] += 1
        if fault is None:
            await self._write(writer, status, up_headers, up_body)
            return True
        if fault.kind == "reset_after":
            writer.transport.abort()
            return False
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            await self._write(writer, status, up_headers, up_body)
            return True
        if fault.kind == "bad_crc":
            up_headers["x-amz-crc32"] = "12345"
            await self._write(writer, status, up_headers, up_body)
            return True
        # truncate: promise the whole body, send half, then close.
        await self._write(writer, status, up_headers, up_body, send=len(up_body) // 2)
        writer.transport.abort()
        return False

    async def _forward(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        fwd = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.post(self.upstream_url, data=body, headers=fwd) as resp:
            data = await resp.read()
            keep = {
                k: v
                for k, v in resp.headers.items()
                if k.lower() in ("x-amz-crc32", "x-amzn-requestid", "content-type")
            }
            return resp.status, keep, data

    @staticmethod
    async def _write(
        writer: asyncio.StreamWriter,
        status: int,
        headers: dict[str, str],
        body: bytes,
        send: int | None = None,
    ) -> None:
        lines = [f"HTTP/1.1 {status} X"]
        headers = {**headers, "Content-Length": str(len(body))}
        headers.setdefault("Content-Type", "application/x-amz-json-1.0")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        writer.write(body if send is None else body[:send])
        await writer.drain()
