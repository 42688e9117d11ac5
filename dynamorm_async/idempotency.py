"""Async idempotency: run a function once per payload, replay its stored response after.

>>> store = DynamoDBIdempotencyStore(client)            # table "idempotency", TTL on
>>> @idempotent(store, key="request.order_id", expires_after=3600)
... async def charge(request: ChargeRequest) -> Receipt: ...
>>> async with idempotent_call(store, "refund", key=refund_id, payload=body) as call:
...     if not call.replayed:
...         call.result = await do_refund(body)
>>> receipt = call.result

One call of a decorated function:

1. hashes the selected payload fields (``key``) into the record key, prefixed with the
   function name, and the whole payload into a validation hash;
2. claims the key with **one** conditional PutItem carrying a fresh random claim token
   (see :mod:`dynamorm_async.idempotency_store`). The in-progress expiry comes from the
   current deadline (:func:`dynamorm_async.deadlines.remaining`, which the Lambda
   adapter sets from the remaining time) or ``in_progress_timeout``;
3. if the claim fails, the record in the way came back with the failure:
   ``COMPLETED`` returns its stored response, decoded to the declared return type;
   ``INPROGRESS`` raises :class:`IdempotencyInProgress` (retryable); a different
   validation hash raises :class:`IdempotencyPayloadMismatch`;
4. runs the function. An exception (or cancellation) deletes the record, so a retry
   runs again; a result is stored with one UpdateItem.

An optional local LRU cache (``cache_size``) answers repeats of completed calls
without a request. Time comes from ``clock`` (epoch seconds), so tests can drive it.

Failure modes lean towards "not twice". If the answer to a successful claim is lost,
the client's retry finds a claim with the call's own token and succeeds: the function
runs once, with no wait. Completion and release are conditioned on the token, so a call
whose claim expired and was taken over cannot store or delete over the new owner. If
every attempt of the claim fails (the call raises) and one of them was applied, the
next call (a new token) gets :class:`IdempotencyInProgress` until the in-progress
expiry; a response that cannot be stored raises :class:`IdempotencyPersistenceError`
and leaves the claim in place likewise.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import time
import typing
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import attrs

from . import deadlines
from .errors import InvalidInput
from .idempotency_codec import (
    JsonCodec,
    KeySpec,
    ResultCodec,
    Selector,
    binder,
    canonical,
    codec_for_type,
    selector,
)
from .idempotency_store import (
    COMPLETED,
    INPROGRESS,
    DynamoDBIdempotencyStore,
    IdempotencyError,
    IdempotencyInProgress,
    IdempotencyKeyError,
    IdempotencyPayloadMismatch,
    IdempotencyPersistenceError,
    IdempotencyRecord,
    IdempotencyStore,
    new_claim_token,
)

__all__ = [
    "DynamoDBIdempotencyStore",
    "Idempotency",
    "IdempotencyError",
    "IdempotencyInProgress",
    "IdempotencyKeyError",
    "IdempotencyPayloadMismatch",
    "IdempotencyPersistenceError",
    "IdempotencyStore",
    "IdempotentCall",
    "JsonCodec",
    "LocalCache",
    "ResultCodec",
    "idempotent",
    "idempotent_call",
]

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class LocalCache:
    """A bounded in-process LRU of completed records (key -> record)."""

    def __init__(self, maxsize: int = 256) -> None:
        if maxsize < 1:
            raise InvalidInput("LocalCache maxsize must be >= 1")
        self.maxsize = maxsize
        self._items: OrderedDict[str, IdempotencyRecord] = OrderedDict()

    def get(self, key: str, now: float) -> IdempotencyRecord | None:
        """The live record for ``key``, or ``None`` (expired records are dropped)."""
        rec = self._items.get(key)
        if rec is None:
            return None
        if rec.is_expired(now):
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return rec

    def put(self, record: IdempotencyRecord) -> None:
        """Remember a completed record, evicting the least recently used."""
        self._items[record.key] = record
        self._items.move_to_end(record.key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def discard(self, key: str) -> None:
        """Forget ``key``."""
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


@attrs.frozen
class Idempotency:
    """The policy shared by the calls of one function or block.

    ``expires_after``: seconds a completed response is replayed. ``in_progress_timeout``:
    seconds a claim lasts when no deadline is set. ``clock``: epoch seconds.
    ``cache``: the local cache of completed records, or ``None``.
    """

    store: IdempotencyStore
    expires_after: float = 3600.0
    in_progress_timeout: float = 60.0
    clock: Callable[[], float] = time.time
    cache: LocalCache | None = None

    def __attrs_post_init__(self) -> None:
        if self.expires_after <= 0 or self.in_progress_timeout <= 0:
            raise InvalidInput("expires_after and in_progress_timeout must be > 0")


def _hash(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


class IdempotentCall:
    """One idempotent execution, as an async context manager.

    On entry the key is claimed or a stored response is found: then ``replayed`` is
    true and ``result`` holds the decoded response. Otherwise the block must set
    ``result``; on a clean exit it is stored, on an exception the claim is released.
    """

    __slots__ = ("_claim", "_result", "codec", "key", "policy", "replayed", "validation")

    def __init__(
        self, policy: Idempotency, key: str, validation: str | None, codec: ResultCodec
    ) -> None:
        self.policy = policy
        self.key = key
        self.validation = validation
        self.codec = codec
        self.replayed = False
        self._claim: IdempotencyRecord | None = None
        self._result: Any = _UNSET

    @property
    def result(self) -> Any:
        """The replayed response, or the one the block set."""
        if self._result is _UNSET:
            raise InvalidInput("no result yet: set call.result inside the block")
        return self._result

    @result.setter
    def result(self, value: Any) -> None:
        if self.replayed:
            raise InvalidInput("this call replayed a stored response; its result is fixed")
        self._result = value

    def _replay(self, record: IdempotencyRecord) -> IdempotentCall:
        if record.validation != self.validation:
            raise IdempotencyPayloadMismatch(self.key)
        self.replayed = True
        self._result = self.codec.decode(record.data or {"NULL": True})
        return self

    async def __aenter__(self) -> IdempotentCall:
        policy = self.policy
        now = policy.clock()
        cache = policy.cache
        if cache is not None:
            hit = cache.get(self.key, now)
            if hit is not None:
                return self._replay(hit)
        left = deadlines.remaining()
        in_progress = policy.in_progress_timeout if left is None else max(left, 0.0)
        claim = IdempotencyRecord(
            key=self.key,
            status=INPROGRESS,
            expiration=int(now + policy.expires_after),
            in_progress_expiration=int((now + in_progress) * 1000),
            validation=self.validation,
            token=new_claim_token(),
        )
        old = await policy.store.claim(claim, now)
        if old is None:
            self._claim = claim
            return self
        if old.status == INPROGRESS:
            if old.validation != self.validation:
                raise IdempotencyPayloadMismatch(self.key)
            ipe = old.in_progress_expiration
            raise IdempotencyInProgress(self.key, None if ipe is None else ipe / 1000)
        if cache is not None:
            cache.put(old)
        return self._replay(old)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        claim = self._claim
        if claim is None:
            return
        self._claim = None
        if exc is None and self._result is _UNSET:
            await self._release(claim)
            raise InvalidInput("the idempotent block ended without setting call.result")
        if exc is not None:
            try:
                await self._release(claim)
            except Exception as release_error:
                exc.add_note(f"releasing idempotency key {self.key} failed: {release_error!r}")
            return
        await self._complete(claim)

    async def _release(self, claim: IdempotencyRecord) -> None:
        if not await self.policy.store.release(claim):
            log.warning("idempotency key %s: the claim was taken over before release", self.key)

    async def _complete(self, claim: IdempotencyRecord) -> None:
        policy = self.policy
        try:
            done = IdempotencyRecord(
                claim.key,
                COMPLETED,
                int(policy.clock() + policy.expires_after),
                None,
                self.codec.encode(self._result),
                claim.validation,
                claim.token,
            )
            owned = await policy.store.complete(claim, done)
        except Exception as exc:
            raise IdempotencyPersistenceError(
                f"idempotency key {self.key}: the call ran but its response was not stored ({exc})"
            ) from exc
        if not owned:
            log.warning(
                "idempotency key %s: the call outlived its in-progress expiry and another "
                "call claimed the key; this response was not stored",
                self.key,
            )
        elif policy.cache is not None:
            policy.cache.put(done)


_UNSET: Any = object()


def idempotent_call(
    store: IdempotencyStore | Idempotency,
    name: str,
    *,
    key: Any,
    payload: Any = None,
    result_type: Any = Any,
    codec: ResultCodec | None = None,
) -> IdempotentCall:
    """The context-manager form: ``async with idempotent_call(store, "op", key=...) as c``.

    ``key`` is the value whose hash identifies the call (prefixed with ``name``);
    ``payload`` the value checked for a mismatch (``None``: no check). The response is
    stored with ``codec``, or one built for ``result_type``.
    """
    policy = store if isinstance(store, Idempotency) else Idempotency(store)
    if key is None:
        raise IdempotencyKeyError(f"{name}: the idempotency key is None")
    validation = None if payload is None else _hash(payload)
    return IdempotentCall(
        policy,
        f"{name}#{_hash(key)}",
        validation,
        codec if codec is not None else codec_for_type(result_type, name),
    )


def idempotent(
    store: IdempotencyStore | Idempotency,
    *,
    key: KeySpec = None,
    validate: KeySpec | bool = True,
    name: str | None = None,
    expires_after: float = 3600.0,
    in_progress_timeout: float = 60.0,
    codec: ResultCodec | None = None,
    cache_size: int = 0,
    clock: Callable[[], float] = time.time,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Make an async function idempotent (see the module doc).

    ``key``: which arguments identify a call: a parameter name or dotted path
    (``"request.order_id"``), a list of them, a function of the arguments, or ``None``
    for all of them. ``validate``: the same kinds, ``True`` (all arguments) or
    ``False``: what must match when a key is reused. ``name``: the key prefix (default
    ``module.qualname``). The response is stored with ``codec``, by default one built
    from the return annotation (entities use their own codec). ``cache_size`` > 0 keeps
    that many completed records in a local LRU. Passing an :class:`Idempotency` as
    ``store`` uses its policy and ignores ``expires_after``, ``in_progress_timeout``,
    ``cache_size`` and ``clock``.
    """

    def decorate(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@idempotent decorates async functions; {fn!r} is not one")
        policy = (
            store
            if isinstance(store, Idempotency)
            else Idempotency(
                store,
                expires_after=expires_after,
                in_progress_timeout=in_progress_timeout,
                clock=clock,
                cache=LocalCache(cache_size) if cache_size > 0 else None,
            )
        )
        prefix = (name or f"{fn.__module__}.{fn.__qualname__}") + "#"
        select_key = selector(fn, key, "key")
        select_val: Selector | None = None
        if validate is True:
            select_val = None if key is None else selector(fn, None, "validate")
        elif validate is not False:
            select_val = selector(fn, validate, "validate")
        result_codec = codec or codec_for_type(_return_type(fn), fn.__qualname__)

        bind = binder(fn)

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            arguments = bind(args, kwargs)
            k = prefix + _hash(select_key(arguments, args, kwargs))
            v = None if select_val is None else _hash(select_val(arguments, args, kwargs))
            call = IdempotentCall(policy, k, v, result_codec)
            async with call:
                if not call.replayed:
                    call.result = await fn(*args, **kwargs)
            result: R = call.result
            return result

        wrapper.idempotency = policy  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _return_type(fn: Callable[..., Any]) -> Any:
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:
        raise TypeError(
            f"{fn.__qualname__}: cannot resolve its return annotation ({exc}); "
            "pass codec= to @idempotent"
        ) from exc
    return hints.get("return", Any)
