"""Deadlines carried in a context variable.

Every DynamoDB call, retry sleep and batch consults :func:`remaining` and raises
:class:`~dynamorm_async.errors.DeadlineExceeded` instead of running past it.
Tasks created inside a ``with deadline(...)`` block inherit it (contextvars).

>>> with deadline(seconds=2.5):
...     ...  # every call made here is bounded by 2.5 s
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .errors import DeadlineExceeded

__all__ = ["check", "current", "deadline", "remaining"]

_DEADLINE: ContextVar[float | None] = ContextVar("dynamorm_async_deadline", default=None)


def current() -> float | None:
    """The current deadline as a ``time.monotonic()`` instant, or ``None``."""
    return _DEADLINE.get()


def remaining() -> float | None:
    """Seconds left before the current deadline (may be negative), or ``None``."""
    d = _DEADLINE.get()
    return None if d is None else d - time.monotonic()


def check(what: str = "operation") -> float | None:
    """Raise :class:`DeadlineExceeded` if the deadline has passed; return seconds left."""
    left = remaining()
    if left is not None and left <= 0:
        raise DeadlineExceeded(f"deadline exceeded before {what}")
    return left


@contextmanager
def deadline(seconds: float | None = None, *, at: float | None = None) -> Iterator[float]:
    """Bound everything inside the block by ``seconds`` from now (or the monotonic ``at``).

    A nested deadline never extends an outer, earlier one. Yields the effective
    monotonic deadline.
    """
    if (seconds is None) == (at is None):
        raise ValueError("give exactly one of seconds= or at=")
    target = at if at is not None else time.monotonic() + float(seconds)  # type: ignore[arg-type]
    outer = _DEADLINE.get()
    if outer is not None and outer < target:
        target = outer
    token = _DEADLINE.set(target)
    try:
        yield target
    finally:
        _DEADLINE.reset(token)
