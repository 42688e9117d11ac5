"""The Lambda runtime emulated: one environment, sequential invocations, freeze/thaw.

Handlers are sync callables, as Lambda calls them, so these tests are plain ``def``
tests. The DynamoDB backend sits behind :class:`Relay`, a real keep-alive HTTP proxy in its
own thread that counts the connections it accepts and can drop every open one while
the environment's loop is idle (a frozen environment whose keep-alive connections the
server closed).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from dynamorm_async import ClientPool, RetryPolicy, deadlines, errors
from dynamorm_async.aws_lambda import (
    LambdaHandler,
    LambdaRuntime,
    LocalLambdaContext,
    default_runtime,
    invocation_budget,
    lambda_handler,
)
from dynamorm_async.model import entity
from dynamorm_async.tables import create_table, delete_table
from dynamorm_async.testing.faults import FaultProxy

REGION = "us-east-1"
T = TypeVar("T")


@entity(table="counters", hash_key="name")
class Counter:
    name: str
    hits: Decimal = Decimal(0)


class _CountingProxy(FaultProxy):
    """A :class:`FaultProxy` that counts the client connections it accepts and can drop them."""

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        self.accepted = 0
        self.clients: set[asyncio.StreamWriter] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.clients.add(writer)
        try:
            await super()._handle(reader, writer)
        finally:
            self.clients.discard(writer)


class Relay:
    """A keep-alive HTTP proxy to ``upstream`` on its own loop and thread.

    It keeps client connections open across requests (even when the upstream server,
    like moto's, closes its own after each answer), counts them, and can drop them all
    while the client is idle: a server closing keep-alive connections of a frozen
    environment.
    """

    def __init__(self, upstream: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._proxy = _CountingProxy(upstream)
        self._call(self._proxy.start())

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    @property
    def url(self) -> str:
        return self._proxy.endpoint_url

    @property
    def accepted(self) -> int:
        """Client connections accepted so far."""
        return self._proxy.accepted

    @property
    def requests(self) -> int:
        """Requests received so far."""
        return sum(self._proxy.requests.values())

    async def _drop(self, reset: bool) -> int:
        clients = list(self._proxy.clients)
        for w in clients:
            if reset:
                sock = w.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                w.transport.abort()
            else:
                w.close()
        await asyncio.sleep(0.05)  # let the FIN/RST reach the (idle) client side
        return len(clients)

    def drop_all(self, *, reset: bool) -> int:
        """Close every client connection: with a FIN, or with an RST when ``reset``."""
        return self._call(self._drop(reset))

    def close(self) -> None:
        self._call(self._proxy.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def relay(dynamodb_endpoint: str) -> Iterator[Relay]:
    r = Relay(dynamodb_endpoint)
    yield r
    r.close()


@pytest.fixture
def runtime() -> Iterator[LambdaRuntime]:
    with LambdaRuntime() as rt:
        yield rt


@pytest.fixture
def counters_table(
    runtime: LambdaRuntime, dynamodb_endpoint: str, table_name: str
) -> Iterator[str]:
    """Create the Counter table (through a separate pool) and yield its prefix."""
    prefix = table_name + "-"

    async def run(create: bool) -> None:
        async with ClientPool() as pool:
            client = pool.client(dynamodb_endpoint, REGION)
            if create:
                await create_table(client, Counter, prefix=prefix)
            else:
                await delete_table(client, Counter, prefix=prefix)

    asyncio.run(run(True))
    yield prefix
    asyncio.run(run(False))


Handler = LambdaHandler[dict[str, Any], LocalLambdaContext, dict[str, Any]]
MakeHandler = Callable[..., tuple[Handler, ClientPool]]


@pytest.fixture
def make_handler(runtime: LambdaRuntime, counters_table: str) -> Iterator[MakeHandler]:
    """Build counting handlers on ``runtime``; their pools are closed on that loop afterwards."""
    pools: list[ClientPool] = []

    def make(url: str, retry: RetryPolicy | None = None) -> tuple[Handler, ClientPool]:
        pool = ClientPool(retry=retry)  # module-level state of the "function"
        pools.append(pool)

        @lambda_handler(runtime=runtime)
        async def handler(event: dict[str, Any], context: LocalLambdaContext) -> dict[str, Any]:
            client = pool.client(url, REGION)
            out = await client.update_item(
                TableName=counters_table + "counters",
                Key={"name": {"S": event["name"]}},
                UpdateExpression="ADD hits :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
            return {
                "hits": int(out["Attributes"]["hits"]["N"]),
                "transport": id(pool.transport(client.endpoint.url)),
                "loop": id(asyncio.get_running_loop()),
                "left": deadlines.remaining(),
            }

        return handler, pool

    yield make
    for pool in pools:
        runtime.run(pool.aclose())


# --------------------------------------------------------------------------- context


def test_local_context_counts_down_in_real_time() -> None:
    ctx = LocalLambdaContext(timeout=1.0)
    first = ctx.get_remaining_time_in_millis()
    assert 900 < first <= 1000
    time.sleep(0.2)
    second = ctx.get_remaining_time_in_millis()
    assert first - second >= 190
    budget = invocation_budget(ctx, 0.3)
    third = ctx.get_remaining_time_in_millis()
    assert budget is not None and third / 1000 - 0.3 <= budget <= second / 1000 - 0.3
    assert invocation_budget(None) is None
    with pytest.raises(ValueError):
        LocalLambdaContext(timeout=0)


def test_deadline_set_from_context_for_the_invocation(runtime: LambdaRuntime) -> None:
    seen: list[float | None] = []

    @lambda_handler(runtime=runtime, safety_margin=0.25)
    async def handler(event: None, context: Any) -> None:
        seen.append(deadlines.remaining())

    handler(None, LocalLambdaContext(timeout=2.0))
    handler(None, None)  # no context: no deadline
    assert seen[0] is not None and 1.0 < seen[0] <= 1.75  # 2 s left, minus the margin
    assert seen[1] is None
    assert deadlines.remaining() is None  # nothing leaks out of the invocation


def test_margin_larger_than_remaining_time_fails_fast(runtime: LambdaRuntime) -> None:
    @lambda_handler(runtime=runtime, safety_margin=5.0)
    async def handler(event: None, context: Any) -> float | None:
        return deadlines.check("GetItem")

    with pytest.raises(errors.DeadlineExceeded):
        handler(None, LocalLambdaContext(timeout=1.0))


def test_init_runs_once_and_a_failed_init_is_retried(runtime: LambdaRuntime) -> None:
    calls: list[str] = []

    async def init() -> None:
        calls.append("init")
        if len(calls) == 1:
            raise errors.TransportError("cold start hiccup", "http://x")

    @lambda_handler(init=init, runtime=runtime)
    async def handler(event: int, context: Any) -> int:
        calls.append(f"run{event}")
        return event * 2

    with pytest.raises(errors.TransportError):
        handler(1, LocalLambdaContext())
    assert handler(2, LocalLambdaContext()) == 4
    assert handler(3, LocalLambdaContext()) == 6
    handler.initialize()  # already done: no-op
    assert calls == ["init", "init", "run2", "run3"]


def test_initialize_in_the_init_phase_with_its_own_deadline(runtime: LambdaRuntime) -> None:
    seen: list[float | None] = []

    async def init() -> None:
        seen.append(deadlines.remaining())
        await asyncio.sleep(0.3)
        deadlines.check("init")

    @lambda_handler(init=init, runtime=runtime)
    async def handler(event: None, context: Any) -> str:
        return "ok"

    with pytest.raises(errors.DeadlineExceeded):
        handler.initialize(timeout=0.2)
    assert not handler.initialized
    handler.initialize(timeout=5.0)
    assert handler.initialized
    assert handler(None, LocalLambdaContext()) == "ok"
    assert len(seen) == 2 and seen[0] is not None and 0.1 < seen[0] <= 0.2


def test_bare_decorator_uses_the_process_runtime() -> None:
    @lambda_handler
    async def handler(event: None, context: Any) -> int:
        return id(asyncio.get_running_loop())

    try:
        assert handler(None, None) == handler(None, None)
        assert handler.runtime is default_runtime()
        assert handler.__name__ == "handler"
    finally:
        default_runtime().close()


def test_contextvars_do_not_leak_between_invocations(runtime: LambdaRuntime) -> None:
    import contextvars

    var: contextvars.ContextVar[int] = contextvars.ContextVar("v", default=0)

    @lambda_handler(runtime=runtime)
    async def handler(event: int, context: Any) -> int:
        before = var.get()
        var.set(event)
        return before

    assert [handler(i, None) for i in (1, 2, 3)] == [0, 0, 0]


def test_sync_function_is_refused() -> None:
    def not_async(event: Any, context: Any) -> None:
        return None

    with pytest.raises(TypeError, match="async def"):
        lambda_handler(not_async)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        lambda_handler(safety_margin=-1)


def test_a_closed_loop_is_replaced(runtime: LambdaRuntime) -> None:
    @lambda_handler(runtime=runtime)
    async def handler(event: None, context: Any) -> int:
        return id(asyncio.get_running_loop())

    first = handler(None, None)
    runtime.loop.close()
    assert handler(None, None) != first


# --------------------------------------------------------------------------- warm reuse


def test_fifty_invocations_share_one_loop_one_connector_one_connection(
    runtime: LambdaRuntime, relay: Relay, make_handler: MakeHandler
) -> None:
    handler, pool = make_handler(relay.url)
    # A generous timeout: the deadline is not what this test is about.
    outs = [handler({"name": "warm"}, LocalLambdaContext(timeout=30.0)) for _ in range(50)]
    seen = f"requests {relay.requests}, connections {relay.accepted}"
    assert [o["hits"] for o in outs] == list(range(1, 51)), seen
    assert relay.requests == 50, seen  # no retry happened
    assert len({o["loop"] for o in outs}) == 1
    assert len({o["transport"] for o in outs}) == 1  # the same session and connector
    assert pool.client_count == 1
    assert relay.accepted == 1, seen  # one keep-alive connection served all 50
    assert runtime.runs == 50 and handler.invocations == 50
    assert all(o["left"] is not None and 0 < o["left"] <= 29.5 for o in outs)


# --------------------------------------------------------------------------- freeze/thaw


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_connection_dropped_while_frozen_is_retried_transparently(
    relay: Relay, make_handler: MakeHandler, reset: bool
) -> None:
    handler, _ = make_handler(relay.url)
    first = handler({"name": "thaw"}, LocalLambdaContext(timeout=30.0))
    for n in (2, 3):
        assert relay.drop_all(reset=reset) == 1  # the server closes the idle connection
        out = handler({"name": "thaw"}, LocalLambdaContext(timeout=30.0))
        assert out["hits"] == n  # applied exactly once
        assert out["transport"] == first["transport"]
    assert relay.accepted == 3  # one fresh connection per thaw
    assert relay.requests == 3  # the write on the dead connection never reached a server


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_without_retries_the_stale_connection_fails(
    relay: Relay, make_handler: MakeHandler, reset: bool
) -> None:
    """The control: the dropped connection really is reused and really fails."""
    handler, _ = make_handler(relay.url, RetryPolicy(max_attempts=1))
    handler({"name": "stale"}, LocalLambdaContext())
    relay.drop_all(reset=reset)
    with pytest.raises(errors.TransportError):
        handler({"name": "stale"}, LocalLambdaContext())
    assert handler({"name": "stale"}, LocalLambdaContext())["hits"] == 2
