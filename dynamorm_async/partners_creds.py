"""Per-partner temporary credentials: cached, refreshed ahead of expiry, evicted LRU.

:class:`PartnerCredentials` is the credential provider of one registered partner. It is
stable for the life of the registration, so the pooled client that signs with it is
too: a rotation swaps the credentials underneath, never the client or its connections.
Inside, a :class:`~dynamorm_async.wire.credentials.RefreshableCredentials` does the
single-flight refresh:

* more than ``advance`` seconds before expiry (``refresh_margin`` plus a random share
  of ``refresh_jitter``, drawn once per provider so many partners do not refresh
  together): the cached credentials are served;
* from then on one caller refreshes while the others keep the current credentials; if
  the refresh fails they are still served and it is retried after ``retry_interval``;
* within ``expiry_margin`` seconds of expiry the credentials count as expired: callers
  wait for the refresh and get :class:`PartnerCredentialsError` if it fails.

:class:`CredentialCache` bounds how many partners hold credentials at once; the least
recently used one forgets its credentials (its next use assumes the role again).
"""

from __future__ import annotations

import collections
import random
import time
from collections.abc import Callable

import attrs

from .errors import InvalidInput
from .partners_config import Partner, PartnerCredentialsError
from .partners_sts import AssumeRole
from .wire.credentials import CredentialProvider, Credentials, NoCredentials, RefreshableCredentials

__all__ = ["CredentialCache", "PartnerCredentials", "PartnerStats", "RefreshSettings"]


@attrs.define
class PartnerStats:
    """Counters of one partner's credentials (they survive eviction, not removal).

    * ``sts_calls``: AssumeRole calls made (successful or not);
    * ``cache_hits``: credential requests served the credentials already cached;
    * ``refreshes``: successful AssumeRole calls that replaced held credentials;
    * ``refresh_failures``: AssumeRole calls that failed;
    * ``evictions``: times the cache dropped the partner's credentials.
    """

    sts_calls: int = 0
    cache_hits: int = 0
    refreshes: int = 0
    refresh_failures: int = 0
    evictions: int = 0


def _non_negative(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise InvalidInput(f"{attribute.name} must be >= 0, not {value!r}")


@attrs.frozen
class RefreshSettings:
    """When partner credentials are refreshed (seconds; see the module docstring)."""

    refresh_margin: float = attrs.field(default=300.0, validator=_non_negative)
    refresh_jitter: float = attrs.field(default=60.0, validator=_non_negative)
    expiry_margin: float = attrs.field(default=10.0, validator=_non_negative)
    retry_interval: float = attrs.field(default=10.0, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.expiry_margin > self.refresh_margin:
            raise InvalidInput(
                f"expiry_margin ({self.expiry_margin}) must not exceed "
                f"refresh_margin ({self.refresh_margin})"
            )

    def check(self, partner: Partner) -> None:
        """Refuse a session so short that it would be refreshed as soon as it is issued."""
        latest = self.refresh_margin + self.refresh_jitter
        if partner.duration <= latest:
            raise InvalidInput(
                f"partner {partner.name!r}: duration {partner.duration} s must exceed "
                f"refresh_margin + refresh_jitter ({latest:g} s)"
            )


class PartnerCredentials(CredentialProvider):
    """The credential provider of one registered partner (see the module docstring).

    ``identity`` keys the pooled client; it is unique per registration. ``on_use`` is
    called with this provider on every ``get()`` (the registry's LRU bookkeeping).
    """

    def __init__(
        self,
        partner: Partner,
        assume_role: AssumeRole,
        *,
        identity: str,
        settings: RefreshSettings,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_use: Callable[[PartnerCredentials], None] | None = None,
    ) -> None:
        self.partner = partner
        self.stats = PartnerStats()
        self._assume = assume_role
        self._identity = identity
        self._settings = settings
        self._clock = clock
        jitter = (rng or random.Random()).uniform(0.0, settings.refresh_jitter)
        self.advance: float = settings.refresh_margin + jitter
        self._on_use = on_use
        self._inner = self._new_inner()

    @property
    def identity(self) -> str:
        """Unique per registration: the partner, its role and the registry."""
        return self._identity

    @property
    def current(self) -> Credentials | None:
        """The cached credentials (``None`` before the first use and after eviction)."""
        return self._inner.current

    async def get(self) -> Credentials:
        """Valid credentials for the partner, assuming the role first when needed."""
        if self._on_use is not None:
            self._on_use(self)
        inner = self._inner
        held = inner.current
        try:
            creds = await inner.get()
        except PartnerCredentialsError:
            raise
        except NoCredentials as exc:
            raise PartnerCredentialsError(self.partner.name, None, str(exc)) from exc
        if creds is held:
            self.stats.cache_hits += 1
        return creds

    def forget(self) -> None:
        """Drop the cached credentials (eviction); the next ``get()`` assumes the role."""
        self._inner = self._new_inner()

    def _new_inner(self) -> RefreshableCredentials:
        inner: RefreshableCredentials | None = None

        async def fetch() -> Credentials:
            stats = self.stats
            stats.sts_calls += 1
            try:
                creds = await self._assume(self.partner)
            except Exception:
                stats.refresh_failures += 1
                raise
            if inner is not None and inner.current is not None:
                stats.refreshes += 1
            return creds

        s = self._settings
        inner = RefreshableCredentials(
            fetch,
            identity=self._identity,
            advance=self.advance,
            mandatory=s.expiry_margin,
            retry_interval=s.retry_interval,
            clock=self._clock,
        )
        return inner

    def __repr__(self) -> str:
        return f"PartnerCredentials(partner={self.partner.name!r}, current={self.current!r})"


class CredentialCache:
    """The partners holding credentials, least recently used first, at most ``max_size``."""

    def __init__(self, max_size: int) -> None:
        if type(max_size) is not int or max_size < 1:
            raise InvalidInput(f"max_cached must be an int >= 1, not {max_size!r}")
        self.max_size = max_size
        self._lru: collections.OrderedDict[PartnerCredentials, None] = collections.OrderedDict()

    def touch(self, creds: PartnerCredentials) -> None:
        """Mark ``creds`` as just used; evict the least recently used beyond the limit."""
        lru = self._lru
        if creds in lru:
            lru.move_to_end(creds)
            return
        lru[creds] = None
        while len(lru) > self.max_size:
            evicted, _ = lru.popitem(last=False)
            evicted.forget()
            evicted.stats.evictions += 1

    def discard(self, creds: PartnerCredentials) -> None:
        """Forget ``creds`` (its partner was removed)."""
        self._lru.pop(creds, None)

    def names(self) -> list[str]:
        """Names of the partners holding credentials, least recently used first."""
        return [c.partner.name for c in self._lru]

    def __len__(self) -> int:
        return len(self._lru)
