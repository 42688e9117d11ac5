"""Run async handlers on AWS Lambda: one event loop per environment, deadlines from context.

>>> pool = ClientPool()                     # module level: survives across invocations
>>> @lambda_handler(init=warm_up, safety_margin=0.5)
... async def handler(event, context):
...     client = pool.client()
...     return await client.get_item(TableName="t", Key={"pk": {"S": event["id"]}})

Lambda calls ``handler(event, context)`` synchronously. :func:`lambda_handler` runs the
coroutine on the environment's single event loop (a :class:`LambdaRuntime`), which is
kept between invocations, so pooled keep-alive connections stay warm instead of dying
with an ``asyncio.run`` loop ("Event loop is closed"). Each invocation runs in a fresh
copy of the context, under a deadline of ``context.get_remaining_time_in_millis()``
minus ``safety_margin`` (:mod:`dynamorm_async.deadlines`): every DynamoDB call, retry
sleep and batch then raises :class:`~dynamorm_async.errors.DeadlineExceeded` before
Lambda would kill the process.

Freeze/thaw: a keep-alive connection that the server closed while the environment was
frozen fails on reuse with a connection error, which the client's retry policy retries
on a fresh connection; aiohttp never reuses a connection idle for longer than the
pool's ``keepalive_timeout``.

This module imports only the standard library, :mod:`~dynamorm_async.deadlines` and
:mod:`~dynamorm_async.sizing`, so importing it costs nothing at cold start.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, Protocol, TypeVar, overload

from .deadlines import deadline
from .sizing import lambda_memory_mb

__all__ = [
    "DEFAULT_SAFETY_MARGIN",
    "LambdaHandler",
    "LambdaRuntime",
    "LocalLambdaContext",
    "RemainingTime",
    "default_runtime",
    "invocation_budget",
    "lambda_handler",
]

E = TypeVar("E")
C = TypeVar("C")
R = TypeVar("R")
T = TypeVar("T")

#: Seconds kept in reserve between our deadline and Lambda's timeout, by default.
DEFAULT_SAFETY_MARGIN = 0.5


class RemainingTime(Protocol):
    """What the handler needs of the Lambda context object."""

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before Lambda stops the invocation."""
        ...


class LambdaRuntime:
    """One execution environment: one event loop, reused by every invocation.

    ``run(coro)`` runs ``coro`` to completion on that loop, in a fresh copy of the
    caller's context (contextvars set by one invocation never leak into the next).
    Between invocations the loop is idle, exactly like a frozen environment. The loop
    is created on first use and recreated only if something closed it.
    """

    def __init__(self) -> None:
        self._runner: asyncio.Runner | None = None
        #: Invocations run so far (``run`` calls).
        self.runs = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The environment's event loop (created on first access)."""
        return self._ensure().get_loop()

    def _ensure(self) -> asyncio.Runner:
        runner = self._runner
        if runner is not None and runner.get_loop().is_closed():
            runner = None  # someone closed the loop: nothing left to clean up on it
        if runner is None:
            runner = self._runner = asyncio.Runner()
        return runner

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the environment's loop and return its result."""
        runner = self._ensure()
        self.runs += 1
        return runner.run(coro, context=contextvars.copy_context())

    def close(self) -> None:
        """Cancel leftover tasks and close the loop (a later ``run`` makes a new one)."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            runner.close()

    def __enter__(self) -> LambdaRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_DEFAULT_RUNTIME: LambdaRuntime | None = None


def default_runtime() -> LambdaRuntime:
    """The process's runtime, used by handlers not given one (one environment = one process)."""
    global _DEFAULT_RUNTIME
    if _DEFAULT_RUNTIME is None:
        _DEFAULT_RUNTIME = LambdaRuntime()
    return _DEFAULT_RUNTIME


def invocation_budget(
    context: object, safety_margin: float = DEFAULT_SAFETY_MARGIN
) -> float | None:
    """Seconds this invocation may use: remaining time minus ``safety_margin``.

    ``None`` when ``context`` has no ``get_remaining_time_in_millis`` (a local call with
    ``context=None``): no deadline is set then. The result may be zero or negative when
    the margin eats the whole remaining time; every call then fails fast.
    """
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    ms = remaining()
    if not isinstance(ms, int | float):
        raise TypeError(f"context.get_remaining_time_in_millis() returned {ms!r}, not a number")
    return ms / 1000.0 - safety_margin


class LambdaHandler(Generic[E, C, R]):
    """The sync callable Lambda invokes; made by :func:`lambda_handler`.

    ``handler(event, context)`` runs the async function on :attr:`runtime` under the
    invocation deadline. ``initialize()`` runs the ``init`` coroutine now (call it at
    module level to use Lambda's init phase); otherwise it runs once, before the first
    invocation, under that invocation's deadline. A failed ``init`` is retried by the
    next invocation.
    """

    __name__: str
    __qualname__: str
    __wrapped__: Callable[[E, C], Awaitable[R]]

    def __init__(
        self,
        fn: Callable[[E, C], Awaitable[R]],
        *,
        init: Callable[[], Awaitable[object]] | None,
        safety_margin: float,
        runtime: LambdaRuntime | None,
    ) -> None:
        if inspect.isfunction(fn) and not inspect.iscoroutinefunction(fn):
            raise TypeError(f"lambda_handler needs an async def function, got {fn!r}")
        if safety_margin < 0:
            raise ValueError(f"safety_margin must be >= 0, got {safety_margin}")
        self.fn = fn
        self.init = init
        self.safety_margin = float(safety_margin)
        self._runtime = runtime
        self.initialized = init is None
        #: Completed and failed invocations of this handler.
        self.invocations = 0
        functools.update_wrapper(self, fn)

    @property
    def runtime(self) -> LambdaRuntime:
        """The runtime this handler runs on (the process default unless one was given)."""
        if self._runtime is None:
            self._runtime = default_runtime()
        return self._runtime

    def __call__(self, event: E, context: C) -> R:
        """Lambda's entry point: run one invocation to completion."""
        self.invocations += 1
        return self.runtime.run(self._invoke(event, context))

    def initialize(self, timeout: float | None = None) -> None:
        """Run ``init`` now (once), optionally bounded by ``timeout`` seconds."""
        if not self.initialized:
            self.runtime.run(self._initialize_within(timeout))

    async def _initialize_within(self, timeout: float | None) -> None:
        if timeout is None:
            await self._initialize()
        else:
            with deadline(seconds=timeout):
                await self._initialize()

    async def _initialize(self) -> None:
        if self.init is not None and not self.initialized:
            await self.init()
            self.initialized = True

    async def _invoke(self, event: E, context: C) -> R:
        budget = invocation_budget(context, self.safety_margin)
        if budget is None:
            await self._initialize()
            return await self.fn(event, context)
        with deadline(seconds=budget):
            await self._initialize()
            return await self.fn(event, context)

    def __repr__(self) -> str:
        return f"LambdaHandler({getattr(self.fn, '__qualname__', self.fn)!r})"


@overload
def lambda_handler(fn: Callable[[E, C], Awaitable[R]], /) -> LambdaHandler[E, C, R]: ...


@overload
def lambda_handler(
    *,
    init: Callable[[], Awaitable[object]] | None = None,
    safety_margin: float = DEFAULT_SAFETY_MARGIN,
    runtime: LambdaRuntime | None = None,
) -> Callable[[Callable[[E, C], Awaitable[R]]], LambdaHandler[E, C, R]]: ...


def lambda_handler(
    fn: Callable[[E, C], Awaitable[R]] | None = None,
    /,
    *,
    init: Callable[[], Awaitable[object]] | None = None,
    safety_margin: float = DEFAULT_SAFETY_MARGIN,
    runtime: LambdaRuntime | None = None,
) -> LambdaHandler[E, C, R] | Callable[[Callable[[E, C], Awaitable[R]]], LambdaHandler[E, C, R]]:
    """Turn ``async def handler(event, context)`` into the sync handler Lambda calls.

    Use bare (``@lambda_handler``) or with options: ``init`` is a coroutine function run
    once per environment before the first invocation (``ensure_table``, warming a
    client); ``safety_margin`` is the seconds kept between the deadline and Lambda's
    timeout (default 0.5); ``runtime`` is the environment's :class:`LambdaRuntime`
    (default: one per process).
    """
    if safety_margin < 0:
        raise ValueError(f"safety_margin must be >= 0, got {safety_margin}")

    def wrap(f: Callable[[E, C], Awaitable[R]]) -> LambdaHandler[E, C, R]:
        return LambdaHandler(f, init=init, safety_margin=safety_margin, runtime=runtime)

    return wrap if fn is None else wrap(fn)


class LocalLambdaContext:
    """A Lambda context for local runs and tests, with a real countdown.

    ``get_remaining_time_in_millis()`` counts down from ``timeout`` seconds from
    construction, as Lambda's does from the invocation start. The other attributes
    mirror the real context object's.
    """

    def __init__(
        self,
        timeout: float = 3.0,
        *,
        function_name: str = "local-function",
        memory_limit_in_mb: int | None = None,
        aws_request_id: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        self._deadline = time.monotonic() + timeout
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb or lambda_memory_mb() or 128
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self.identity: object = None
        self.client_context: object = None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left (never negative)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))
