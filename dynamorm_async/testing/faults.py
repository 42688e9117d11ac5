"""A fault-injecting HTTP proxy for tests: a real local server between client and DynamoDB.

>>> async with FaultProxy(upstream_url) as proxy:
...     proxy.inject(Fault.throttle(), Fault.reset_after())
...     client = DynamoClient(endpoint_url=proxy.endpoint_url)

Each queued fault applies to one request, in order. A request with no queued fault is
then offered to the chaos rules (``proxy.chaos(rate=0.3, faults=[...], seed=1)``), each
of which injects one of its faults with its probability; anything else is forwarded
unchanged. ``proxy.requests`` counts every request per DynamoDB operation and
``proxy.forwarded`` counts what reached the upstream server, so a test can tell
"applied, then the answer was lost" from "never applied".

``Fault.unprocessed()`` forwards only part of a BatchWriteItem or BatchGetItem and
answers the rest as ``UnprocessedItems``/``UnprocessedKeys``: the held-back part is
never applied (``proxy.held_back`` counts it, per operation).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import zlib
from collections.abc import Callable, Iterable
from types import TracebackType

import aiohttp
import attrs
import orjson

from .faults_batch import BATCH_OPERATIONS, split_batch

__all__ = ["ChaosRule", "Fault", "FaultProxy", "all_faults"]


@attrs.frozen
class Fault:
    """One injected fault. Build with the class methods."""

    kind: str
    status: int = 0
    body: bytes = b""
    delay: float = 0.0
    only: str | None = None  # apply only to this operation (e.g. "PutItem")
    fraction: float = 0.5  # for ``unprocessed``: the share of entries held back

    def applies_to(self, operation: str) -> bool:
        """True if this fault can be injected into a request of ``operation``."""
        if self.only is not None and self.only != operation:
            return False
        return self.kind != "unprocessed" or operation in BATCH_OPERATIONS

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

    @classmethod
    def unprocessed(cls, fraction: float = 0.5, only: str | None = None) -> Fault:
        """Forward only part of a BatchWriteItem/BatchGetItem; answer the rest (at least
        one entry, about ``fraction`` of them) as unprocessed, without applying it.
        Applies to those two operations only."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], not {fraction}")
        return cls("unprocessed", fraction=fraction, only=only)


def all_faults(slow_delay: float = 0.01) -> tuple[Fault, ...]:
    """One fault of every kind (5xx, throttling, resets, slow, CRC, truncation, unprocessed)."""
    return (
        Fault.throttle(),
        Fault.server_error(),
        Fault.server_error(503),
        Fault.reset_before(),
        Fault.reset_after(),
        Fault.slow(slow_delay),
        Fault.bad_crc(),
        Fault.truncate(),
        Fault.unprocessed(),
    )


class ChaosRule:
    """Injects one of ``faults`` (picked uniformly among those that apply) into each
    request with probability ``rate``, from its own seeded random generator.

    ``only`` limits it to some operations. ``applied`` counts the faults it injected, by
    kind; ``seen`` counts the requests it was offered.
    """

    def __init__(
        self,
        rate: float,
        faults: Iterable[Fault],
        *,
        seed: int | None = None,
        only: Iterable[str] | None = None,
    ) -> None:
        if not 0 <= rate <= 1:
            raise ValueError(f"rate must be in [0, 1], not {rate}")
        self.rate = rate
        self.faults = tuple(faults)
        if not self.faults:
            raise ValueError("a chaos rule needs at least one fault")
        self.only = None if only is None else frozenset(only)
        self.rng = random.Random(seed)
        self.applied: collections.Counter[str] = collections.Counter()
        self.seen = 0

    def pick(self, operation: str) -> Fault | None:
        """The fault to inject into this request, or ``None``."""
        if self.only is not None and operation not in self.only:
            return None
        self.seen += 1
        if self.rng.random() >= self.rate:
            return None
        usable = [f for f in self.faults if f.applies_to(operation)]
        if not usable:
            return None
        fault = self.rng.choice(usable)
        self.applied[fault.kind] += 1
        return fault


class FaultProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 that forwards to ``upstream_url`` and injects faults."""

    def __init__(self, upstream_url: str, *, seed: int | None = 0) -> None:
        self.upstream_url = upstream_url.rstrip("/") + "/"
        self.requests: collections.Counter[str] = collections.Counter()
        self.forwarded: collections.Counter[str] = collections.Counter()
        #: Batch entries (write requests or keys) answered as unprocessed, per operation.
        self.held_back: collections.Counter[str] = collections.Counter()
        #: The chaos rules, consulted in order for requests with no queued fault.
        self.rules: list[ChaosRule] = []
        self._rng = random.Random(seed)
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

    def chaos(
        self,
        rate: float,
        faults: Iterable[Fault] | None = None,
        *,
        seed: int | None = None,
        only: Iterable[str] | None = None,
    ) -> ChaosRule:
        """Add a rule injecting one of ``faults`` (default: :func:`all_faults`) into each
        request with probability ``rate``, reproducibly with ``seed``; return it."""
        rule = ChaosRule(rate, all_faults() if faults is None else faults, seed=seed, only=only)
        self.rules.append(rule)
        return rule

    def calm(self) -> None:
        """Remove every chaos rule and queued fault."""
        self.rules.clear()
        self._faults.clear()

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
            if fault.applies_to(operation):
                del self._faults[i]
                return fault
        for rule in self.rules:
            picked = rule.pick(operation)
            if picked is not None:
                return picked
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
        if fault is not None and fault.kind == "unprocessed":
            await self._unprocessed(writer, operation, headers, body, fault.fraction)
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

    async def _unprocessed(
        self,
        writer: asyncio.StreamWriter,
        operation: str,
        headers: dict[str, str],
        body: bytes,
        fraction: float,
    ) -> None:
        split = split_batch(operation, body, fraction, self._rng)
        up_headers: dict[str, str] = {}
        if split.forward is None:
            status, up_body = 200, b"{}"
        else:
            status, up_headers, up_body = await self._forward(headers, split.forward)
            self.forwarded[operation] += 1
            if status != 200:  # an error answer of the forwarded part passes through
                await self._write(writer, status, up_headers, up_body)
                return
        answer = split.answer(up_body)
        self.held_back[operation] += split.held
        up_headers["x-amz-crc32"] = str(zlib.crc32(answer))
        await self._write(writer, 200, up_headers, answer)

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
