"""Context-scoped request observers: how upper layers (cost metering, tracing) see every
request without the client importing them.

>>> with observing(meter):          # meter implements RequestObserver
...     await repo.get(...)         # meter.before/after see the GetItem
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

__all__ = ["RequestObserver", "current_observer", "observing"]


class RequestObserver(Protocol):
    """Sees each DynamoDB request made in its scope (on every attempt's success)."""

    def before(self, operation: str, request: Mapping[str, Any]) -> Mapping[str, Any]:
        """Return the request to send (e.g. with ``ReturnConsumedCapacity`` added)."""
        ...

    def after(
        self, operation: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        """Called with each successful response."""
        ...


_OBSERVER: ContextVar[RequestObserver | None] = ContextVar("dynamorm_observer", default=None)


def current_observer() -> RequestObserver | None:
    """The observer of the current context, if any."""
    return _OBSERVER.get()


@contextmanager
def observing(observer: RequestObserver) -> Iterator[RequestObserver]:
    """Install ``observer`` for the block (tasks created inside inherit it)."""
    token = _OBSERVER.set(observer)
    try:
        yield observer
    finally:
        _OBSERVER.reset(token)
