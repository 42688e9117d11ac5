"""The transport seam: one POST, bytes in, status + headers + bytes out.

Everything above this module speaks DynamoDB JSON; everything below is aiohttp
(:class:`AiohttpTransport`) or asyncio streams (:mod:`dynamorm_async.wire.stdhttp`).
This module imports aiohttp only when an :class:`AiohttpTransport` is used, so the
stdlib transport's cold start never loads it. Keeping the seam this small lets tests
put a fault-injecting proxy or a null server behind it without touching the client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..errors import TransportError

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AiohttpTransport", "HttpResponse", "Transport", "close_transport_now"]


class HttpResponse(NamedTuple):
    """A raw HTTP answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """Sends one HTTP POST and returns the whole answer."""

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout: float | None
    ) -> HttpResponse:
        """POST ``body`` to ``url``; raise :class:`TransportError` on connection failure."""
        ...


class AiohttpTransport:
    """:class:`Transport` over one ``aiohttp.ClientSession`` (owned by a pool)."""

    __slots__ = ("_session",)

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout: float | None
    ) -> HttpResponse:
        """POST through aiohttp, mapping connection failures to :class:`TransportError`."""
        import aiohttp  # loaded already: the session's owner imported it

        try:
            if timeout is None:
                resp_cm = self._session.post(url, data=body, headers=headers)
            else:
                resp_cm = self._session.post(
                    url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
                )
            async with resp_cm as resp:
                data = await resp.read()
                return HttpResponse(resp.status, resp.headers, data)
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}", url) from exc
        except TimeoutError as exc:
            raise _Timeout(f"no answer within {timeout} s", url) from exc


class _Timeout(TransportError):
    """The request timed out (DeadlineExceeded when the deadline set the timeout).

    Raised by every transport (aiohttp and stdlib) for the request timeout.
    """


def close_transport_now(transport: Any) -> None:
    """Close the socket under an asyncio transport whose event loop is closed.

    Nothing can be awaited then, and no public API closes a transport without its loop,
    so this reaches into asyncio's transports (``_sock``; for TLS the inner transport of
    ``_ssl_protocol``) and marks them closed as their own ``close()`` would, so no
    "unclosed transport" warning follows. On any surprise the socket is left to the
    garbage collector. Shared by both transports' dead-loop clean-up.
    """
    with contextlib.suppress(Exception):
        inner = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
        if inner is not None:
            transport._closed = True
            transport = inner
        sock = getattr(transport, "_sock", None)
        if sock is not None:
            sock.close()
            transport._sock = None
        transport._closing = True
