"""Retry policy: exponential backoff with full jitter, bounded by attempts and deadline.

The first attempt runs without tenacity (no allocation on the hot path). Only when it
fails with a retryable error does a tenacity ``AsyncRetrying`` loop take over; tenacity
is imported then, not at cold start.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NoReturn, TypeVar

import attrs

from .. import deadlines as _deadline
from ..errors import DeadlineExceeded, DynamormError

if TYPE_CHECKING:
    import tenacity

__all__ = ["RetryPolicy", "is_retryable"]

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 5xx, CRC mismatches and connection errors are retryable."""
    return isinstance(exc, DynamormError) and exc.retryable


@attrs.frozen
class RetryPolicy:
    """How to retry a failed request.

    ``max_attempts`` counts the first try. The sleep before attempt *n + 1* is uniform in
    ``[0, min(max_delay, base_delay * 2**(n-1))]`` (full jitter). A retry whose sleep
    would end past the current deadline is not attempted: :class:`DeadlineExceeded` is
    raised, chained to the last error.
    """

    max_attempts: int = attrs.field(default=10, validator=attrs.validators.ge(1))
    base_delay: float = attrs.field(default=0.025, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))

    async def call(self, fn: Callable[[], Awaitable[T]], what: str = "request") -> T:
        """Run ``fn`` under this policy."""
        try:
            return await fn()
        except DynamormError as exc:
            if self.max_attempts == 1 or not exc.retryable:
                raise
            first = exc
        return await self._retry(fn, first, what)

    def _deadline_error(self, exc: BaseException, attempts: int, what: str) -> NoReturn:
        raise DeadlineExceeded(
            f"deadline reached while retrying {what} after {attempts} attempt(s); last error: {exc}"
        ) from exc

    async def _retry(self, fn: Callable[[], Awaitable[T]], first: DynamormError, what: str) -> T:
        import tenacity  # lazily: only a failed first attempt needs it

        # Attempt 1 (ours) failed; tenacity's attempt k is our attempt k + 1.
        sleep = random.uniform(0, min(self.max_delay, self.base_delay))
        left = _deadline.remaining()
        if left is not None and left <= sleep:
            self._deadline_error(first, 1, what)
        await asyncio.sleep(sleep)

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number + 1 >= self.max_attempts:
                return True
            left = _deadline.remaining()
            return left is not None and left <= state.upcoming_sleep

        def give_up(state: tenacity.RetryCallState) -> T:
            assert state.outcome is not None
            exc = state.outcome.exception()
            assert exc is not None
            if state.attempt_number + 1 < self.max_attempts:
                self._deadline_error(exc, state.attempt_number + 1, what)
            raise exc

        retrying = tenacity.AsyncRetrying(
            stop=stop,
            wait=tenacity.wait_random_exponential(
                multiplier=2 * self.base_delay, max=self.max_delay
            ),
            retry=tenacity.retry_if_exception(is_retryable),
            retry_error_callback=give_up,
        )

        async def attempt() -> T:  # tenacity awaits only coroutine functions
            return await fn()

        result: T = await retrying(attempt)
        return result
