"""Partner contexts: per-partner AssumeRole credentials, endpoint and table prefix.

>>> registry = PartnerRegistry([
...     Partner("acme", "arn:aws:iam::111111111111:role/payments", table_prefix="acme-"),
...     Partner("globex", "arn:aws:iam::222222222222:role/payments", external_id="x-91"),
... ])
>>> payments = Repository(Payment, registry)        # or Database(registry).repository(...)
>>> async with registry.use("acme"):
...     await ensure_table(registry, Payment)       # creates acme-payments in acme's account
...     await payments.put(payment)                 # signed with acme's STS credentials

The registry is a :class:`~dynamorm_async.binding.BindingSource`: repositories,
batches, transactions and table management ask it for a binding on every operation, and
it answers with the current partner's pooled client and table prefix. The current
partner lives in a contextvar set by :meth:`PartnerRegistry.use`, so tasks created
inside a scope inherit it and concurrent tasks in different partners never mix. Outside
any scope, every partner-scoped call raises :class:`NoPartnerScope` before sending.
"""

from __future__ import annotations

import contextvars
import itertools
import random
import secrets
import time
from collections.abc import Callable, Iterable
from types import TracebackType

import attrs

from .binding import Binding
from .errors import InvalidInput
from .partners_config import (
    MAX_DURATION,
    MIN_DURATION,
    NoPartnerScope,
    Partner,
    PartnerCredentialsError,
    UnknownPartner,
)
from .partners_creds import CredentialCache, PartnerCredentials, PartnerStats, RefreshSettings
from .partners_sts import AssumeRole, StsAssumeRole
from .pool import ClientPool
from .wire.credentials import CredentialProvider

__all__ = [
    "MAX_DURATION",
    "MIN_DURATION",
    "AssumeRole",
    "NoPartnerScope",
    "Partner",
    "PartnerCredentials",
    "PartnerCredentialsError",
    "PartnerRegistry",
    "PartnerScope",
    "PartnerStats",
    "StsAssumeRole",
    "UnknownPartner",
]


@attrs.frozen
class _State:
    partner: Partner
    credentials: PartnerCredentials
    binding: Binding


class PartnerScope:
    """What :meth:`PartnerRegistry.use` returns: ``with`` or ``async with`` it.

    Entering sets the current partner (and returns its :class:`Partner`); leaving
    restores the previous one. Each scope object is entered at most once at a time.
    """

    __slots__ = ("_partner", "_token", "_var")

    def __init__(self, var: contextvars.ContextVar[str | None], partner: Partner) -> None:
        self._var = var
        self._partner = partner
        self._token: contextvars.Token[str | None] | None = None

    def __enter__(self) -> Partner:
        if self._token is not None:
            raise InvalidInput("this partner scope is already entered; call registry.use() again")
        self._token = self._var.set(self._partner.name)
        return self._partner

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            self._var.reset(token)

    async def __aenter__(self) -> Partner:
        return self.__enter__()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(et, e, tb)


class PartnerRegistry:
    """The registered partners, their credentials, and the current partner scope.

    * ``pool``: where partner clients come from (default: a pool owned by the registry,
      closed by :meth:`aclose`). Each registration gets one client, keyed by an identity
      unique to it, whose credentials rotate underneath; removing or replacing the
      partner discards that client from the pool.
    * ``assume_role``: how credentials are obtained; default :class:`StsAssumeRole` built
      from ``base_credentials``, ``sts_endpoint_url`` and ``sts_region``.
    * ``max_cached``: how many partners may hold credentials at once (LRU eviction).
    * ``refresh_margin``, ``refresh_jitter``, ``expiry_margin``, ``retry_interval``: see
      :mod:`dynamorm_async.partners_creds`.
    * ``clock`` (seconds since the epoch) and ``rng`` (for the jitter) exist for tests.
    """

    def __init__(
        self,
        partners: Iterable[Partner] = (),
        *,
        pool: ClientPool | None = None,
        base_credentials: CredentialProvider | None = None,
        sts_endpoint_url: str | None = None,
        sts_region: str | None = None,
        assume_role: AssumeRole | None = None,
        max_cached: int = 256,
        refresh_margin: float = 300.0,
        refresh_jitter: float = 60.0,
        expiry_margin: float = 10.0,
        retry_interval: float = 10.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = RefreshSettings(
            refresh_margin, refresh_jitter, expiry_margin, retry_interval
        )
        self._sts: StsAssumeRole | None = None
        if assume_role is None:
            self._sts = StsAssumeRole(
                base_credentials, endpoint_url=sts_endpoint_url, region=sts_region
            )
            assume_role = self._sts
        elif base_credentials is not None or sts_endpoint_url or sts_region:
            raise InvalidInput(
                "base_credentials, sts_endpoint_url and sts_region configure the default "
                "StsAssumeRole; configure your assume_role instead"
            )
        self._assume: AssumeRole = assume_role
        self._owns_pool = pool is None
        self.pool = pool if pool is not None else ClientPool()
        self._cache = CredentialCache(max_cached)
        self._clock = clock
        self._rng = rng
        self._token = secrets.token_hex(4)
        self._generations = itertools.count(1)
        self._scope: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"dynamorm_partner_{self._token}", default=None
        )
        self._states: dict[str, _State] = {}
        for partner in partners:
            self.register(partner)

    # ------------------------------------------------------------------ registration

    def register(self, partner: Partner, *, replace: bool = False) -> None:
        """Add ``partner``; with ``replace=True`` an existing one of that name is replaced.

        Replacing with an equal config keeps the cached credentials; a changed config
        starts afresh (scopes already open switch to it on their next operation).
        """
        if not isinstance(partner, Partner):
            raise InvalidInput(f"expected a Partner, got {type(partner).__name__}")
        old = self._states.get(partner.name)
        if old is not None:
            if not replace:
                raise InvalidInput(
                    f"partner {partner.name!r} is already registered; pass replace=True"
                )
            if old.partner == partner:
                return
        self._settings.check(partner)
        identity = (
            f"partner:{partner.name}#{next(self._generations)}@{self._token}:{partner.role_arn}"
        )
        creds = PartnerCredentials(
            partner,
            self._assume,
            identity=identity,
            settings=self._settings,
            clock=self._clock,
            rng=self._rng,
            on_use=self._cache.touch,
        )
        client = self.pool.client(partner.endpoint_url, partner.region, creds)
        self._states[partner.name] = _State(partner, creds, Binding(client, partner.table_prefix))
        if old is not None:
            self._drop(old)

    def remove(self, name: str) -> Partner:
        """Remove a partner, forget its credentials and discard its client from the pool
        (:meth:`ClientPool.discard`); open scopes fail from now on."""
        state = self._states.pop(name, None)
        if state is None:
            raise UnknownPartner(f"no partner {name!r} is registered")
        self._drop(state)
        return state.partner

    def _drop(self, state: _State) -> None:
        self._cache.discard(state.credentials)
        state.credentials.forget()
        self.pool.discard(state.binding.client)

    def get(self, name: str) -> Partner:
        """The registered partner called ``name``."""
        return self._state(name).partner

    def _state(self, name: str) -> _State:
        state = self._states.get(name)
        if state is None:
            raise UnknownPartner(f"no partner {name!r} is registered")
        return state

    @property
    def partners(self) -> list[Partner]:
        """Every registered partner, in registration order."""
        return [s.partner for s in self._states.values()]

    def __contains__(self, name: object) -> bool:
        return name in self._states

    def __len__(self) -> int:
        return len(self._states)

    # ------------------------------------------------------------------ scope

    def use(self, name: str) -> PartnerScope:
        """A scope in which every operation acts as partner ``name``.

        ``async with registry.use("acme"):`` (or ``with``). Tasks created inside inherit
        the partner. Raises :class:`UnknownPartner` for an unregistered name.
        """
        return PartnerScope(self._scope, self._state(name).partner)

    def current(self) -> Partner | None:
        """The partner of the current scope, or ``None`` outside any scope."""
        name = self._scope.get()
        state = self._states.get(name) if name is not None else None
        return state.partner if state is not None else None

    def binding(self) -> Binding:
        """The current partner's client and table prefix (the ``BindingSource`` protocol).

        Raises :class:`NoPartnerScope` outside any scope and :class:`UnknownPartner` if
        the scope's partner was removed.
        """
        name = self._scope.get()
        if name is None:
            raise NoPartnerScope(
                "this call is partner-scoped: wrap it in `async with registry.use(name):`"
            )
        state = self._states.get(name)
        if state is None:
            raise UnknownPartner(f"partner {name!r} was removed while its scope was open")
        return state.binding

    # ------------------------------------------------------------------ credentials

    def credentials(self, name: str | None = None) -> PartnerCredentials:
        """The credential provider of ``name`` (default: the current partner), e.g. to
        call other AWS services as the partner."""
        if name is None:
            name = self._scope.get()
            if name is None:
                raise NoPartnerScope("no partner given and no partner scope is open")
        return self._state(name).credentials

    def stats(self, name: str) -> PartnerStats:
        """A snapshot of the counters of partner ``name``."""
        return attrs.evolve(self._state(name).credentials.stats)

    def all_stats(self) -> dict[str, PartnerStats]:
        """Snapshots of every partner's counters."""
        return {n: attrs.evolve(s.credentials.stats) for n, s in self._states.items()}

    @property
    def cached_partners(self) -> list[str]:
        """Partners that may hold credentials, least recently used first."""
        return self._cache.names()

    @property
    def max_cached(self) -> int:
        """The credential cache's size limit."""
        return self._cache.max_size

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close the STS clients and, if the registry created it, the client pool."""
        if self._sts is not None:
            await self._sts.aclose()
        if self._owns_pool:
            await self.pool.aclose()

    async def __aenter__(self) -> PartnerRegistry:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"PartnerRegistry({len(self._states)} partners, max_cached={self.max_cached})"
