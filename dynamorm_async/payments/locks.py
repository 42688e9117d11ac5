"""Per-key asyncio locks: one processor serialises its own transitions of one payment.

Correctness never depends on them: every transition is conditioned on the payment's
version and status on the server, so concurrent writers in other processes are caught
there. The locks only stop a process from racing *itself* into version conflicts (200
concurrent refunds of one payment in one process would otherwise retry each other
quadratically). Locks are created on demand and dropped when nobody holds or waits for
them, so memory stays bounded by the number of payments in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["KeyedLocks"]


class KeyedLocks:
    """A lock per key, created when first needed and dropped when unused."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        """How many keys are held or waited for."""
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lock of ``key`` for the block (released on error and cancellation)."""
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
