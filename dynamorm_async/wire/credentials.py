"""AWS credentials and the providers that hand them to the signer.

* :class:`StaticCredentials` and :class:`EnvironmentCredentials` never import botocore.
* :class:`RefreshableCredentials` refreshes temporary credentials ahead of their expiry,
  single-flight, and works from any event loop (one after another, as in Lambda or tests).
* :class:`BotocoreChainCredentials` imports aiobotocore lazily, on the first ``get()``,
  to reach everything else in the AWS chain: profiles, ``credential_process``, SSO,
  web identity, container and instance metadata.

The fast path of :meth:`RefreshableCredentials.get` is one clock read and one comparison.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from ..errors import DynamormError, InvalidInput

__all__ = [
    "BotocoreChainCredentials",
    "CredentialProvider",
    "CredentialRefreshFailed",
    "Credentials",
    "EnvironmentCredentials",
    "NoCredentials",
    "RefreshableCredentials",
    "StaticCredentials",
    "default_credentials",
]

_log = logging.getLogger(__name__)
_INF = float("inf")


class NoCredentials(DynamormError):
    """No AWS credentials could be found, or the ones configured are incomplete."""


class CredentialRefreshFailed(NoCredentials):
    """Temporary credentials are (about to be) expired and fetching new ones failed.

    The original error is chained as ``__cause__``.
    """


def _non_empty(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"Credentials.{attribute.name} must be a non-empty string")


def _aware(_inst: object, _attribute: object, value: datetime | None) -> None:
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise InvalidInput("Credentials.expiry must be a timezone-aware datetime (UTC)")


def _hide(value: object) -> str:
    return "None" if value is None else "'***'"


@attrs.frozen
class Credentials:
    """One set of AWS credentials. ``expiry`` (tz-aware) is ``None`` for long-lived keys.

    ``repr`` never shows the secret key or the session token.
    """

    access_key_id: str = attrs.field(validator=_non_empty)
    secret_access_key: str = attrs.field(validator=_non_empty, repr=_hide)
    session_token: str | None = attrs.field(default=None, repr=_hide)
    expiry: datetime | None = attrs.field(default=None, validator=_aware)

    def expired(self, margin: float = 0) -> bool:
        """True if these credentials expire within ``margin`` seconds from now."""
        if self.expiry is None:
            return False
        return datetime.now(UTC) + timedelta(seconds=margin) >= self.expiry


class CredentialProvider(abc.ABC):
    """Hands out currently valid :class:`Credentials`."""

    @abc.abstractmethod
    async def get(self) -> Credentials:
        """Return currently valid credentials, refreshing them first if needed."""

    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """A stable string naming the principal, used to key pooled clients."""


class StaticCredentials(CredentialProvider):
    """Fixed, long-lived credentials (an access key pair, optionally with a session token)."""

    __slots__ = ("_credentials",)

    def __init__(
        self, access_key_id: str, secret_access_key: str, session_token: str | None = None
    ) -> None:
        self._credentials = Credentials(access_key_id, secret_access_key, session_token or None)

    @property
    def credentials(self) -> Credentials:
        """The credentials this provider always returns."""
        return self._credentials

    async def get(self) -> Credentials:
        """Return the fixed credentials."""
        return self._credentials

    @property
    def identity(self) -> str:
        """The access key id."""
        return self._credentials.access_key_id

    def __repr__(self) -> str:
        return f"StaticCredentials(access_key_id={self._credentials.access_key_id!r})"


class EnvironmentCredentials:
    """Reads ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` and the optional session token."""

    @staticmethod
    def from_env(environ: Mapping[str, str] = os.environ) -> StaticCredentials | None:
        """Credentials from ``environ``, or ``None`` when no access key is set there.

        The token comes from ``AWS_SESSION_TOKEN``, or else the legacy ``AWS_SECURITY_TOKEN``.
        Empty variables count as unset. Raises :class:`NoCredentials` when only one of the
        key id and the secret is set.
        """
        key = environ.get("AWS_ACCESS_KEY_ID", "")
        secret = environ.get("AWS_SECRET_ACCESS_KEY", "")
        if not key and not secret:
            return None
        if not key or not secret:
            missing = "AWS_SECRET_ACCESS_KEY" if key else "AWS_ACCESS_KEY_ID"
            raise NoCredentials(f"partial credentials in the environment: {missing} is not set")
        token = environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN") or None
        return StaticCredentials(key, secret, token)


class RefreshableCredentials(CredentialProvider):
    """Temporary credentials from ``fetch()``, refreshed ahead of their expiry.

    * More than ``advance`` seconds before expiry: the cached credentials are returned.
    * Advisory window (``advance`` to ``mandatory`` seconds before expiry): one caller
      refreshes; the others keep the current credentials meanwhile. If the refresh fails,
      the current credentials are still served (and no new attempt is made for
      ``retry_interval`` seconds).
    * Mandatory window (less than ``mandatory`` seconds left, or nothing fetched yet): every
      caller waits for the refresh; if it fails they get :class:`CredentialRefreshFailed`.

    Credentials that are already inside a window when fetched are reused for
    ``retry_interval`` seconds (never past their expiry) rather than refetched per call.

    Refreshes are single-flight: concurrent callers share one ``fetch()``, and a cancelled
    caller does not cancel it. The shared task belongs to the running loop; a call from a
    new loop never waits on a dead loop's task (no loop-bound lock is kept). Meant for one
    thread at a time. ``clock`` (seconds since the epoch) exists for tests.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Credentials]],
        *,
        identity: str,
        advance: float = 300.0,
        mandatory: float = 60.0,
        retry_interval: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not identity:
            raise InvalidInput("RefreshableCredentials needs a non-empty identity")
        if not 0 <= mandatory <= advance:
            raise InvalidInput(f"need 0 <= mandatory ({mandatory}) <= advance ({advance})")
        if not retry_interval >= 0:
            raise InvalidInput(f"retry_interval must be >= 0, not {retry_interval}")
        self._fetch = fetch
        self._identity = identity
        self._advance = float(advance)
        self._mandatory = float(mandatory)
        self._retry_interval = float(retry_interval)
        self._clock = clock
        self._current: Credentials | None = None
        self._advisory_at = -_INF  # refresh wanted from this time on
        self._mandatory_at = -_INF  # refresh required from this time on
        self._expires_at = -_INF
        self._hold_until = -_INF  # no optional attempt before this time
        self._task: asyncio.Task[Credentials] | None = None

    @property
    def identity(self) -> str:
        """The identity given at construction (e.g. a role ARN)."""
        return self._identity

    @property
    def current(self) -> Credentials | None:
        """The cached credentials, without refreshing (``None`` before the first fetch)."""
        return self._current

    async def get(self) -> Credentials:
        """Return valid credentials, refreshing them as described in the class docstring."""
        current = self._current
        now = self._clock()
        if current is not None and now < self._advisory_at:
            return current
        return await self._slow_get(current, now)

    async def _slow_get(self, current: Credentials | None, now: float) -> Credentials:
        loop = asyncio.get_running_loop()
        task = self._task
        if task is not None and (task.done() or task.get_loop() is not loop):
            task = self._task = None
        if current is not None and now < self._hold_until and now < self._expires_at:
            return current
        if current is not None and now < self._mandatory_at:
            # Advisory window: only the caller that starts the refresh waits for it.
            if task is not None:
                return current
            task = self._start(loop)
            try:
                return await asyncio.shield(task)
            except Exception:
                _log.warning(
                    "advisory credential refresh failed for %s; keeping the current ones",
                    self._identity,
                    exc_info=True,
                )
                return current
        if task is None:
            task = self._start(loop)
        try:
            return await asyncio.shield(task)
        except NoCredentials:
            raise
        except Exception as exc:
            raise CredentialRefreshFailed(
                f"could not refresh credentials for {self._identity}: {exc!r}"
            ) from exc

    def _start(self, loop: asyncio.AbstractEventLoop) -> asyncio.Task[Credentials]:
        task = loop.create_task(self._refresh())
        task.add_done_callback(self._finished)
        self._task = task
        return task

    def _finished(self, task: asyncio.Task[Credentials]) -> None:
        if self._task is task:
            self._task = None
        if not task.cancelled():
            task.exception()  # mark retrieved: callers that left early must not cause warnings

    async def _refresh(self) -> Credentials:
        try:
            fresh = await self._fetch()
        except Exception:
            now = self._clock()
            if now < self._mandatory_at:  # advisory failure: keep serving, retry later
                self._hold_until = now + self._retry_interval
            raise
        if not isinstance(fresh, Credentials):
            raise CredentialRefreshFailed(
                f"credential fetch for {self._identity} returned {type(fresh).__name__}, "
                "not Credentials"
            )
        if fresh.expiry is not None and fresh.expiry.timestamp() <= self._clock():
            raise CredentialRefreshFailed(
                f"credential fetch for {self._identity} returned credentials that expired "
                f"at {fresh.expiry}"
            )
        self._install(fresh)
        return fresh

    def _install(self, fresh: Credentials) -> None:
        now = self._clock()
        if fresh.expiry is None:
            self._advisory_at = self._mandatory_at = self._expires_at = _INF
        else:
            expires = fresh.expiry.timestamp()
            self._expires_at = expires
            self._advisory_at = expires - self._advance
            self._mandatory_at = expires - self._mandatory
        # Credentials fetched already inside a window would otherwise cause a fetch per call.
        self._hold_until = now + self._retry_interval if now >= self._advisory_at else -_INF
        self._current = fresh

    def __repr__(self) -> str:
        return f"RefreshableCredentials(identity={self._identity!r}, current={self._current!r})"


class BotocoreChainCredentials(CredentialProvider):
    """Credentials from aiobotocore's provider chain, imported on the first ``get()``.

    Covers profiles (``AWS_PROFILE`` or ``profile``), ``credential_process``, SSO, web
    identity, ECS/EKS container credentials and EC2 instance metadata. Temporary
    credentials are refreshed through :class:`RefreshableCredentials` (botocore does the
    actual renewal when asked). The chain is resolved once per provider.
    Raises :class:`NoCredentials` when the chain finds nothing.
    """

    def __init__(
        self,
        profile: str | None = None,
        *,
        advance: float = 300.0,
        mandatory: float = 60.0,
        retry_interval: float = 10.0,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self._profile = profile
        name = profile or environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE")
        self._identity = f"botocore-chain:{name or 'default'}"
        self._source: Any = None
        self._recheck = timedelta(seconds=advance + 120)
        self._refreshable = RefreshableCredentials(
            self._fetch,
            identity=self._identity,
            advance=advance,
            mandatory=mandatory,
            retry_interval=retry_interval,
        )

    @property
    def identity(self) -> str:
        """``botocore-chain:<profile>``; the principal behind a profile is not known ahead."""
        return self._identity

    @property
    def method(self) -> str | None:
        """The botocore provider that supplied the credentials (e.g. ``shared-credentials-file``),
        or ``None`` before the chain was resolved."""
        if self._source is None:
            return None
        method = getattr(self._source, "method", None)
        return method if isinstance(method, str) else None

    async def get(self) -> Credentials:
        """Return valid credentials from the chain, resolving it on first use."""
        return await self._refreshable.get()

    async def _resolve(self) -> Any:
        from aiobotocore.session import AioSession  # lazy: costs ~0.2 s of import

        session = AioSession(profile=self._profile)
        try:
            source = await session.get_credentials()
        except Exception as exc:  # botocore raises for broken profiles, missing SSO cache...
            raise NoCredentials(f"the AWS credential chain failed: {exc}") from exc
        if source is None:
            raise NoCredentials(
                "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE, or run where a container or instance role is available"
            )
        return source

    async def _fetch(self) -> Credentials:
        if self._source is None:
            self._source = await self._resolve()
        source = self._source
        frozen = await source.get_frozen_credentials()  # refreshes if botocore thinks so
        expiry = getattr(source, "_expiry_time", None)
        if expiry is not None:
            if not isinstance(expiry, datetime) or expiry.utcoffset() is None:
                # Unknown shape: ask botocore again soon; it refreshes when it must.
                expiry = datetime.now(UTC) + self._recheck
            else:
                expiry = expiry.astimezone(UTC)
        elif hasattr(source, "refresh_needed"):  # refreshable, expiry not exposed
            expiry = datetime.now(UTC) + self._recheck
        if not frozen.access_key or not frozen.secret_key:
            raise NoCredentials(
                f"the AWS credential chain returned incomplete credentials (method {self.method})"
            )
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token or None, expiry)

    def __repr__(self) -> str:
        return f"BotocoreChainCredentials(identity={self._identity!r}, method={self.method!r})"


def default_credentials(environ: Mapping[str, str] = os.environ) -> CredentialProvider:
    """Environment credentials when set (no botocore import), else the botocore chain."""
    static = EnvironmentCredentials.from_env(environ)
    if static is not None:
        return static
    return BotocoreChainCredentials(environ=environ)
