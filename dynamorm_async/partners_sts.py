"""STS AssumeRole through aiobotocore's STS client, imported on first use.

:class:`StsAssumeRole` turns a :class:`~dynamorm_async.partners_config.Partner` into
temporary :class:`~dynamorm_async.wire.credentials.Credentials`, signing the STS call
with the base credentials (by default the environment or the AWS credential chain).

An aiobotocore client costs tens of milliseconds to build (it loads the CA bundle), so
one client per region is kept per event loop and base credentials. When the base
credentials rotate, a new client is opened and the old one is closed once its in-flight
calls are done. The clients of a loop are closed when ``asyncio.run`` shuts it down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs

from .partners_config import Partner, PartnerCredentialsError
from .wire.credentials import CredentialProvider, Credentials, default_credentials
from .wire.endpoints import resolve_region

__all__ = ["AssumeRole", "StsAssumeRole"]

_log = logging.getLogger(__name__)


class AssumeRole(Protocol):
    """Obtains temporary credentials for a partner (raise :class:`PartnerCredentialsError`)."""

    async def __call__(self, partner: Partner) -> Credentials:
        """Fresh credentials for ``partner``."""
        ...


@attrs.define(eq=False)
class _Client:
    loop: asyncio.AbstractEventLoop
    key: tuple[str, str, str | None]
    client: Any
    stack: contextlib.AsyncExitStack
    users: int = 0
    retired: bool = False


class StsAssumeRole:
    """Calls ``sts:AssumeRole`` for a partner with aiobotocore.

    ``base_credentials`` sign the STS calls (default: environment variables, else the
    AWS chain). ``endpoint_url`` overrides the STS endpoint (a local moto server in
    tests); ``region`` is the STS region (default: the partner's region, else the
    environment's, else ``us-east-1``). ``max_attempts`` bounds botocore's own retries
    of throttling and 5xx answers; the timeouts bound each attempt.

    Every failure becomes :class:`PartnerCredentialsError` naming the partner and the
    STS error code.
    """

    def __init__(
        self,
        base_credentials: CredentialProvider | None = None,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        max_attempts: int = 3,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        max_connections: int = 32,
    ) -> None:
        self._base = base_credentials
        self.endpoint_url = endpoint_url
        self.region = region
        self._config_args: dict[str, Any] = {
            "retries": {"max_attempts": max_attempts, "mode": "standard"},
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_pool_connections": max_connections,
        }
        self._session: Any = None
        self._clients: dict[str, _Client] = {}
        self._opening: dict[str, asyncio.Task[_Client]] = {}
        self._entries: list[_Client] = []
        self._guards: dict[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = {}
        self.clients_opened = 0

    async def __call__(self, partner: Partner) -> Credentials:
        """AssumeRole for ``partner``; returns the temporary credentials STS issued."""
        try:
            if self._base is None:
                self._base = default_credentials()
            base = await self._base.get()
        except Exception as exc:
            raise PartnerCredentialsError(
                partner.name, None, f"no base credentials to call STS with: {exc}"
            ) from exc
        region = self.region or partner.region or resolve_region(None) or "us-east-1"
        entry = await self._client(partner, region, base)
        entry.users += 1
        try:
            answer = await entry.client.assume_role(**_params(partner))
        except Exception as exc:
            raise _translate(partner, exc) from exc
        finally:
            entry.users -= 1
            if entry.retired and entry.users == 0:
                await self._close(entry)
        return _credentials(partner, answer)

    # ------------------------------------------------------------------ clients

    async def _client(self, partner: Partner, region: str, base: Credentials) -> _Client:
        loop = asyncio.get_running_loop()
        key = (base.access_key_id, base.secret_access_key, base.session_token)
        entry = self._clients.get(region)
        if entry is not None and entry.loop is loop and entry.key == key:
            return entry
        task = self._opening.get(region)
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._open(region, key))
            self._opening[region] = task
        try:
            return await asyncio.shield(task)
        except Exception as exc:
            raise PartnerCredentialsError(
                partner.name, None, f"cannot open an STS client: {exc!r}"
            ) from exc

    async def _open(self, region: str, key: tuple[str, str, str | None]) -> _Client:
        try:
            return await self._open_client(region, key)
        finally:
            if self._opening.get(region) is asyncio.current_task():
                del self._opening[region]

    async def _open_client(self, region: str, key: tuple[str, str, str | None]) -> _Client:
        from aiobotocore.config import AioConfig  # lazy: aiobotocore costs ~0.2 s to import
        from aiobotocore.session import AioSession

        if self._session is None:
            self._session = AioSession()
        loop = asyncio.get_running_loop()
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(
            self._session.create_client(
                "sts",
                region_name=region,
                endpoint_url=self.endpoint_url,
                aws_access_key_id=key[0],
                aws_secret_access_key=key[1],
                aws_session_token=key[2],
                config=AioConfig(**self._config_args),
            )
        )
        self.clients_opened += 1
        entry = _Client(loop, key, client, stack)
        self._entries.append(entry)
        old = self._clients.get(region)
        self._clients[region] = entry
        await self._guard(loop)
        if old is not None:
            old.retired = True
            if old.loop is loop and old.users == 0:
                await self._close(old)
        return entry

    async def _close(self, entry: _Client) -> None:
        if entry in self._entries:
            self._entries.remove(entry)
        try:
            await entry.stack.aclose()
        except Exception:
            _log.warning("closing an STS client failed", exc_info=True)

    async def _close_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        for region, entry in list(self._clients.items()):
            if entry.loop is loop:
                del self._clients[region]
        for entry in [e for e in self._entries if e.loop is loop]:
            await self._close(entry)

    # A client must be closed on its own loop, and nothing says when a loop ends, except
    # this: asyncio.run (and asyncio.Runner) finalize the async generators still alive
    # while the loop still runs. One such generator per loop closes that loop's clients.

    async def _guard(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop in self._guards:
            return
        for gone in [lp for lp in self._guards if lp.is_closed()]:
            del self._guards[gone]  # closed without finalizing: nothing can be awaited there
        guard = self._loop_guard(loop)
        self._guards[loop] = guard
        await anext(guard)

    async def _loop_guard(self, loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            self._guards.pop(loop, None)
            await self._close_loop(loop)

    async def aclose(self) -> None:
        """Close the STS clients of the running loop (those of other loops are closed when
        their loop shuts down)."""
        loop = asyncio.get_running_loop()
        for region, task in list(self._opening.items()):
            if task.get_loop() is loop:
                task.cancel()
                del self._opening[region]
        guard = self._guards.pop(loop, None)
        if guard is not None:
            await guard.aclose()
        await self._close_loop(loop)


def _params(partner: Partner) -> dict[str, Any]:
    params: dict[str, Any] = {
        "RoleArn": partner.role_arn,
        "RoleSessionName": partner.session_name,
        "DurationSeconds": partner.duration,
    }
    if partner.external_id is not None:
        params["ExternalId"] = partner.external_id
    return params


def _translate(partner: Partner, exc: Exception) -> PartnerCredentialsError:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error") or {}
        code = str(error.get("Code") or "") or None
        return PartnerCredentialsError(partner.name, code, str(error.get("Message") or exc))
    return PartnerCredentialsError(partner.name, None, f"{type(exc).__name__}: {exc}")


def _credentials(partner: Partner, answer: Any) -> Credentials:
    try:
        raw = answer["Credentials"]
        expiry = raw["Expiration"]
        if not isinstance(expiry, datetime) or expiry.utcoffset() is None:
            raise TypeError(f"Expiration is {expiry!r}")
        return Credentials(
            raw["AccessKeyId"], raw["SecretAccessKey"], raw["SessionToken"], expiry.astimezone(UTC)
        )
    except Exception as exc:
        raise PartnerCredentialsError(
            partner.name, None, f"STS answered without usable credentials ({exc!r})"
        ) from exc
