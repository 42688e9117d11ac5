"""``ClientPool``: shared HTTP connections and clients, safe across event loops.

One pool per process is the intended use (create it at module level in a Lambda
handler, or in a FastAPI lifespan). It keeps:

* one ``aiohttp.ClientSession`` (and so one connector) per endpoint URL, with a
  configurable connection limit and keep-alive; or, with ``http="stdlib"``, one
  :class:`~dynamorm_async.wire.stdhttp.StdlibTransport` per endpoint URL (asyncio
  streams only: aiohttp is then never imported, which shortens a Lambda cold start);
* one :class:`~dynamorm_async.client.DynamoClient` per (endpoint, region, credential
  identity), until :meth:`ClientPool.discard` removes it (the partner registry does when
  a partner is removed or replaced). The session of an endpoint no pooled client uses
  any more is closed then.

A session is bound to the event loop that created it. When the pool is used from a
new loop (``asyncio.run`` per call, a test per loop, Lambda freeze/thaw), it drops the
old sessions without touching the dead loop and builds new ones, so "Event loop is
closed" never surfaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from .sizing import default_connection_limit
from .wire.credentials import CredentialProvider, default_credentials
from .wire.endpoints import resolve_endpoint
from .wire.http import AiohttpTransport, Transport, close_transport_now
from .wire.retry import RetryPolicy
from .wire.stdhttp import StdlibTransport

if TYPE_CHECKING:
    import ssl

    import aiohttp

    from .client import DynamoClient

__all__ = ["HTTP_ENV", "ClientPool"]

#: The environment variable that picks the default HTTP stack (``aiohttp`` or ``stdlib``).
HTTP_ENV = "DYNAMORM_HTTP"

#: The default request timeouts (seconds): ``aiohttp.ClientTimeout(total=60, connect=10)``.
_TOTAL_TIMEOUT = 60.0
_CONNECT_TIMEOUT = 10.0

#: What owns an endpoint's connections: an aiohttp session or a stdlib transport.
_Owner: TypeAlias = "aiohttp.ClientSession | StdlibTransport"


class ClientPool:
    """Shares HTTP connections and clients.

    ``connection_limit`` caps open connections per endpoint (default from
    :mod:`dynamorm_async.sizing`: 64, or sized from the Lambda memory setting);
    ``keepalive_timeout`` is how long an idle connection is kept (default 30 s);
    ``retry`` is the default retry policy of the pool's clients; ``timeout`` the
    request timeouts (default ``aiohttp.ClientTimeout(total=60, connect=10)``).

    ``http`` picks the HTTP stack: ``"aiohttp"`` or ``"stdlib"``
    (:class:`~dynamorm_async.wire.stdhttp.StdlibTransport`: asyncio streams, no aiohttp
    import, for a shorter Lambda cold start). Left out, it is the environment variable
    ``DYNAMORM_HTTP`` if set (so a Lambda function can switch without a code change),
    else ``"aiohttp"``. ``ssl_context`` (stdlib only) verifies https endpoints (default:
    ``ssl.create_default_context()``).
    """

    def __init__(
        self,
        *,
        connection_limit: int | None = None,
        keepalive_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        http: Literal["aiohttp", "stdlib"] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if http is None:
            http = os.environ.get(HTTP_ENV) or "aiohttp"  # type: ignore[assignment]
        if connection_limit is None:
            connection_limit = default_connection_limit()
        if connection_limit < 1:
            raise ValueError("connection_limit must be >= 1")
        if http not in ("aiohttp", "stdlib"):
            raise ValueError(
                f"http must be 'aiohttp' or 'stdlib', not {http!r} (argument or ${HTTP_ENV})"
            )
        self.http = http
        self.connection_limit = connection_limit
        self.keepalive_timeout = keepalive_timeout
        self.retry = retry or RetryPolicy()
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transports: dict[str, tuple[_Owner, Transport]] = {}
        self._clients: dict[tuple[str, str, str], DynamoClient] = {}
        self._default_credentials: CredentialProvider | None = None

    # ------------------------------------------------------------------ clients

    def client(
        self,
        endpoint_url: str | None = None,
        region: str | None = None,
        credentials: CredentialProvider | None = None,
    ) -> DynamoClient:
        """The shared client for (endpoint, region, credential identity); created once."""
        from .client import DynamoClient

        endpoint = resolve_endpoint(region, endpoint_url)
        if credentials is None:
            if self._default_credentials is None:
                self._default_credentials = default_credentials()
            credentials = self._default_credentials
        key = (endpoint.url, endpoint.region, credentials.identity)
        found = self._clients.get(key)
        if found is not None:
            return found
        made = DynamoClient(endpoint.url, endpoint.region, credentials, pool=self)
        self._clients[key] = made
        return made

    def discard(self, client: DynamoClient) -> bool:
        """Remove ``client`` from the pool; the next :meth:`client` call for its key
        creates a fresh client. Returns ``False`` (and does nothing) if ``client`` is not
        the pool's client for its key (never pooled, or already discarded).

        The session of its endpoint stays while another pooled client uses that
        endpoint. If none does, the session was the removed client's alone and is closed
        now (without awaiting): requests still in flight on it fail with a retryable
        :class:`~dynamorm_async.errors.TransportError`, and a client built directly on
        this pool for that endpoint gets a new session on its next request.
        """
        key = (client.endpoint.url, client.endpoint.region, client.credentials.identity)
        if self._clients.get(key) is not client:
            return False
        del self._clients[key]
        url = key[0]
        if any(k[0] == url for k in self._clients):
            return True
        entry = self._transports.pop(url, None)
        if entry is not None:
            _close_now(entry[0])
        return True

    @property
    def client_count(self) -> int:
        """How many distinct clients the pool holds."""
        return len(self._clients)

    # ------------------------------------------------------------------ transports

    def transport(self, endpoint_url: str) -> Transport:
        """The transport for ``endpoint_url`` on the running loop (rebuilt on a new loop)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._abandon()
            self._loop = loop
        entry = self._transports.get(endpoint_url)
        if entry is None or entry[0].closed:
            if self.http == "stdlib":
                std = self._new_stdlib()
                entry = (std, std)
            else:
                session = self._new_session()
                entry = (session, AiohttpTransport(session))
            self._transports[endpoint_url] = entry
        return entry[1]

    def _new_stdlib(self) -> StdlibTransport:
        total: float | None = _TOTAL_TIMEOUT
        connect: float | None = _CONNECT_TIMEOUT
        if self._timeout is not None:
            total, connect = self._timeout.total, self._timeout.connect
        return StdlibTransport(
            limit=self.connection_limit,
            keepalive_timeout=self.keepalive_timeout,
            timeout=total,
            connect_timeout=connect,
            ssl_context=self._ssl_context,
        )

    def _new_session(self) -> aiohttp.ClientSession:
        import aiohttp

        timeout = self._timeout
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=_TOTAL_TIMEOUT, connect=_CONNECT_TIMEOUT)
        connector = aiohttp.TCPConnector(
            limit=self.connection_limit,
            limit_per_host=self.connection_limit,
            keepalive_timeout=self.keepalive_timeout,
            ttl_dns_cache=300,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            skip_auto_headers=("Accept-Encoding",),
            auto_decompress=False,
            raise_for_status=False,
        )

    def _abandon(self) -> None:
        """Forget sessions bound to another loop without awaiting on that loop.

        When that loop is closed (``asyncio.run`` returned), asyncio can no longer close
        the transports, so their sockets are closed directly; otherwise the connector
        closes them through the old loop. Either way nothing is awaited on a dead loop.
        """
        for session, _ in self._transports.values():
            _close_now(session)
        self._transports.clear()
        self._loop = None

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close every session. Leaves no open connection and no pending task."""
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            self._abandon()
            return
        sessions = [s for s, _ in self._transports.values()]
        self._transports.clear()
        self._loop = None
        for session in sessions:
            if isinstance(session, StdlibTransport):
                await session.aclose()
            else:
                await session.close()
        if sessions:
            await asyncio.sleep(0)  # let transports finish closing

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _close_now(session: _Owner) -> None:
    """Close ``session`` and its connections without awaiting (its loop may be closed,
    or not the running one), leaving it in the closed state (no "Unclosed" warning)."""
    if isinstance(session, StdlibTransport):
        session.close_now()
        return
    connector = session.connector
    if connector is not None:
        _close_sockets(connector)
        close_now = getattr(connector, "_close", None)  # the sync half of close()
        if callable(close_now):
            with contextlib.suppress(Exception):
                close_now()
    session.detach()


def _close_sockets(connector: aiohttp.BaseConnector) -> None:
    """Close the raw sockets of a connector whose event loop is already closed.

    This reaches into aiohttp's connection bookkeeping (``_conns``, ``_acquired``)
    because no public API closes a connector without its loop; on any surprise it
    leaves the sockets to the garbage collector.
    """
    loop = getattr(connector, "_loop", None)
    if loop is None or not loop.is_closed():
        return
    with contextlib.suppress(Exception):
        conns: Any = connector._conns
        protocols: list[Any] = [p for entries in conns.values() for p, _ in entries]
        protocols += list(connector._acquired)
        for proto in protocols:
            close_transport_now(proto.transport)
