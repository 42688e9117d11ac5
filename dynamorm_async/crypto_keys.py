"""Key management for field encryption: key providers and the data-key cache.

Envelope encryption: every ciphertext is made with a 256-bit *data key*; the data key
is stored next to it *wrapped* (encrypted) by a master key, with the master key's id.
A :class:`KeyProvider` makes and unwraps data keys:

* :class:`KmsKeyProvider`: AWS KMS ``GenerateDataKey`` / ``Decrypt`` through aiobotocore
  (imported on first use);
* :class:`LocalKeyring`: master keys held in memory (development and tests), wrapped
  with AES-256-GCM.

:class:`DataKeyCache` keeps KMS calls off the hot path: the current encryption key is
reused for at most ``max_uses`` encryptions and ``max_age`` seconds; unwrapped keys are
kept for ``max_age`` seconds (at most ``max_keys`` of them). Concurrent misses for one
key make one provider call.

The ``cryptography`` package is an optional extra (``dynamorm-async[crypto]``); it is
imported only when a key is used.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any, Protocol

import attrs

from .errors import DecodeError, DynamormError, InvalidInput
from .wire.credentials import CredentialProvider, Credentials

__all__ = [
    "DataKey",
    "DataKeyCache",
    "DecryptionError",
    "KeyProvider",
    "KeyUnavailable",
    "KmsKeyProvider",
    "LocalKeyring",
    "aesgcm",
]

_DATA_KEY_BYTES = 32


class DecryptionError(DecodeError):
    """A ciphertext cannot be decrypted: altered, or moved to another table, item or
    attribute (the AAD binds all three), or wrapped by an unknown key."""


class KeyUnavailable(DynamormError):
    """The key provider could not make or unwrap a data key (KMS error, unknown key)."""


def aesgcm(key: bytes) -> Any:
    """An ``AESGCM`` cipher for ``key``, importing ``cryptography`` lazily."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise InvalidInput(
            "field encryption needs the 'cryptography' package: "
            "pip install 'dynamorm-async[crypto]'"
        ) from exc
    return AESGCM(key)


def _invalid_tag() -> type[Exception]:
    from cryptography.exceptions import InvalidTag

    return InvalidTag


@attrs.frozen
class DataKey:
    """A data key: the master ``key_id`` that wraps it, the key and its wrapped form."""

    key_id: str
    plaintext: bytes = attrs.field(repr=False)
    wrapped: bytes = attrs.field(repr=False)


class KeyProvider(Protocol):
    """Makes data keys and unwraps them (the master keys never leave the provider)."""

    async def generate_data_key(self) -> DataKey:
        """A fresh 256-bit data key wrapped by the current master key."""
        ...

    async def decrypt_data_key(self, key_id: str, wrapped: bytes) -> bytes:
        """The data key that ``key_id`` wrapped as ``wrapped``."""
        ...


class LocalKeyring:
    """Master keys in memory: ``LocalKeyring({"k1": key32, "k2": key32}, active="k2")``.

    New data keys are wrapped by ``active``; every listed key still unwraps, so rotating
    is adding a key and making it active (see :meth:`rotated`). For development and
    tests: the master keys are only as safe as the process memory and config holding them.
    """

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if active not in keys:
            raise InvalidInput(f"active key {active!r} is not in the keyring")
        for kid, key in keys.items():
            if not kid or len(kid.encode()) > 255:
                raise InvalidInput(f"key id {kid!r} must be 1-255 bytes")
            if not isinstance(key, bytes) or len(key) != _DATA_KEY_BYTES:
                raise InvalidInput(f"master key {kid!r} must be 32 bytes (AES-256)")
        self._keys = dict(keys)
        self.active = active

    @classmethod
    def generate(cls, key_id: str = "local-1") -> LocalKeyring:
        """A keyring with one random master key."""
        return cls({key_id: os.urandom(_DATA_KEY_BYTES)}, key_id)

    def rotated(self, key_id: str, key: bytes | None = None) -> LocalKeyring:
        """A keyring with ``key_id`` (random unless given) added and active."""
        if key_id in self._keys:
            raise InvalidInput(f"key id {key_id!r} is already in the keyring")
        return LocalKeyring({**self._keys, key_id: key or os.urandom(_DATA_KEY_BYTES)}, key_id)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of every master key held."""
        return tuple(self._keys)

    async def generate_data_key(self) -> DataKey:
        """A random data key wrapped with AES-256-GCM by the active master key."""
        plaintext = os.urandom(_DATA_KEY_BYTES)
        nonce = os.urandom(12)
        aad = b"dynamorm-data-key\x00" + self.active.encode()
        wrapped = nonce + aesgcm(self._keys[self.active]).encrypt(nonce, plaintext, aad)
        return DataKey(self.active, plaintext, wrapped)

    async def decrypt_data_key(self, key_id: str, wrapped: bytes) -> bytes:
        """Unwrap with the master key ``key_id``."""
        master = self._keys.get(key_id)
        if master is None:
            raise KeyUnavailable(f"master key {key_id!r} is not in the keyring")
        aad = b"dynamorm-data-key\x00" + key_id.encode()
        try:
            plaintext: bytes = aesgcm(master).decrypt(wrapped[:12], wrapped[12:], aad)
        except _invalid_tag() as exc:
            raise DecryptionError(f"the data key wrapped by {key_id!r} was altered") from exc
        return plaintext

    def __repr__(self) -> str:
        return f"LocalKeyring(keys={list(self._keys)}, active={self.active!r})"


class KmsKeyProvider:
    """Data keys from AWS KMS (``GenerateDataKey`` with ``AES_256``, ``Decrypt``).

    ``key_id``: the KMS key (id, ARN or alias) that wraps new data keys. Old data keys
    are unwrapped with the key id stored beside them, so rotating to a new ``key_id``
    keeps old items readable. ``encryption_context`` is passed to both calls (KMS binds
    it to the wrapped key). ``credentials``: a dynamorm credential provider (default:
    aiobotocore's own chain). The aiobotocore client is made on first use, per event
    loop and per credentials; :meth:`aclose` closes it.
    """

    def __init__(
        self,
        key_id: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        encryption_context: Mapping[str, str] | None = None,
        credentials: CredentialProvider | None = None,
    ) -> None:
        if not key_id:
            raise InvalidInput("KmsKeyProvider needs a KMS key id, ARN or alias")
        self.key_id = key_id
        self.region = region
        self.endpoint_url = endpoint_url
        self.encryption_context = dict(encryption_context or {})
        self._credentials = credentials
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._made_for: tuple[asyncio.AbstractEventLoop, Credentials | None] | None = None

    async def _kms(self) -> Any:
        creds = None if self._credentials is None else await self._credentials.get()
        want = (asyncio.get_running_loop(), creds)
        if self._client is not None and self._made_for == want:
            return self._client
        await self.aclose()
        from aiobotocore.session import get_session  # lazy: ~0.2 s of import

        options: dict[str, Any] = {"region_name": self.region, "endpoint_url": self.endpoint_url}
        if creds is not None:
            options.update(
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=creds.secret_access_key,
                aws_session_token=creds.session_token,
            )
        stack = AsyncExitStack()
        self._client = await stack.enter_async_context(
            get_session().create_client("kms", **options)
        )
        self._stack, self._made_for = stack, want
        return self._client

    async def _call(self, what: str, fn: Callable[[Any], Awaitable[dict[str, Any]]]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await fn(await self._kms())
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "InvalidCiphertextException":
                raise DecryptionError(f"KMS {what}: the wrapped data key was altered") from exc
            raise KeyUnavailable(f"KMS {what} failed: {code or exc}") from exc
        except BotoCoreError as exc:
            raise KeyUnavailable(f"KMS {what} failed: {exc}") from exc

    async def generate_data_key(self) -> DataKey:
        """``GenerateDataKey(KeySpec=AES_256)``; the key id is the ARN KMS reports."""
        out = await self._call(
            "GenerateDataKey",
            lambda kms: kms.generate_data_key(
                KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=self.encryption_context
            ),
        )
        return DataKey(str(out["KeyId"]), bytes(out["Plaintext"]), bytes(out["CiphertextBlob"]))

    async def decrypt_data_key(self, key_id: str, wrapped: bytes) -> bytes:
        """``Decrypt`` with the stored key id."""
        out = await self._call(
            "Decrypt",
            lambda kms: kms.decrypt(
                CiphertextBlob=wrapped, KeyId=key_id, EncryptionContext=self.encryption_context
            ),
        )
        return bytes(out["Plaintext"])

    async def aclose(self) -> None:
        """Close the aiobotocore client, if one is open."""
        stack, self._stack, self._client, self._made_for = self._stack, None, None, None
        if stack is not None:
            try:
                await stack.aclose()
            except RuntimeError:  # made on an event loop that is gone
                pass

    def __repr__(self) -> str:
        return f"KmsKeyProvider(key_id={self.key_id!r}, region={self.region!r})"


@attrs.define
class _Current:
    key: DataKey
    born: float
    uses: int = 0


class DataKeyCache:
    """Caches data keys of ``provider``, bounded by age and by uses (see module doc).

    ``clock`` is monotonic seconds (tests drive it). Counters ``generated`` and
    ``unwrapped`` tell how many provider calls were made.
    """

    def __init__(
        self,
        provider: KeyProvider,
        *,
        max_age: float = 300.0,
        max_uses: int = 10_000,
        max_keys: int = 1_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age <= 0 or max_uses < 1 or max_keys < 1:
            raise InvalidInput("max_age must be > 0, max_uses and max_keys >= 1")
        self.provider = provider
        self.max_age = max_age
        self.max_uses = max_uses
        self.max_keys = max_keys
        self._clock = clock
        self._current: _Current | None = None
        self._keys: OrderedDict[tuple[str, bytes], tuple[bytes, float]] = OrderedDict()
        self._pending: dict[Any, asyncio.Future[Any]] = {}
        self.generated = 0
        self.unwrapped = 0

    async def encryption_key(self) -> DataKey:
        """The data key for the next encryption (a new one past its age or uses)."""
        while True:
            cur = self._current
            if (
                cur is not None
                and cur.uses < self.max_uses
                and self._clock() - cur.born < self.max_age
            ):
                cur.uses += 1
                return cur.key
            await self._once("generate", self._generate)

    async def _generate(self) -> None:
        key = await self.provider.generate_data_key()
        if not isinstance(key.plaintext, bytes) or len(key.plaintext) != _DATA_KEY_BYTES:
            raise KeyUnavailable(f"{self.provider!r} returned a data key that is not 32 bytes")
        self.generated += 1
        self._remember(key.key_id, key.wrapped, key.plaintext)
        self._current = _Current(key, self._clock())

    async def decryption_key(self, key_id: str, wrapped: bytes) -> bytes:
        """The unwrapped data key (from the cache while younger than ``max_age``)."""
        found = self._keys.get((key_id, wrapped))
        if found is not None and self._clock() - found[1] < self.max_age:
            self._keys.move_to_end((key_id, wrapped))
            return found[0]

        async def unwrap() -> bytes:
            plaintext = await self.provider.decrypt_data_key(key_id, wrapped)
            self.unwrapped += 1
            self._remember(key_id, wrapped, plaintext)
            return plaintext

        result: bytes = await self._once((key_id, wrapped), unwrap)
        return result

    def _remember(self, key_id: str, wrapped: bytes, plaintext: bytes) -> None:
        self._keys[(key_id, wrapped)] = (plaintext, self._clock())
        self._keys.move_to_end((key_id, wrapped))
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)

    async def _once(self, what: Any, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``fn`` once for concurrent callers asking for the same ``what``."""
        loop = asyncio.get_running_loop()
        while True:
            pending = self._pending.get(what)
            if pending is None or pending.get_loop() is not loop or pending.done():
                break
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
                # the caller doing the work was cancelled, not us: try again
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending[what] = fut
        try:
            value = await fn()
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        else:
            fut.set_result(value)
            return value
        finally:
            if self._pending.get(what) is fut:
                del self._pending[what]

    def clear(self) -> None:
        """Forget every cached key (e.g. after revoking a master key)."""
        self._current = None
        self._keys.clear()
