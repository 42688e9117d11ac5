"""Default connection limits and batch concurrency, sized from the Lambda memory setting.

Lambda gives CPU in proportion to memory (one full vCPU at 1,769 MB), so more
memory can drive more concurrent requests. Outside Lambda the defaults suit a
typical service. Explicit settings always win over these.

| ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` (MB) | connections | batch concurrency |
|---|---|---|
| ≤ 512 | 16 | 4 |
| ≤ 1,024 | 32 | 8 |
| ≤ 2,048 | 64 | 16 |
| ≤ 4,096 | 96 | 24 |
| more | 128 | 32 |
| not on Lambda | 64 | 16 |
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = [
    "SIZING_TABLE",
    "default_batch_concurrency",
    "default_connection_limit",
    "lambda_memory_mb",
]

#: (memory upper bound in MB, connections, batch concurrency), ascending.
SIZING_TABLE: tuple[tuple[int, int, int], ...] = (
    (512, 16, 4),
    (1024, 32, 8),
    (2048, 64, 16),
    (4096, 96, 24),
)
_LARGEST = (128, 32)
_NOT_LAMBDA = (64, 16)


def lambda_memory_mb(environ: Mapping[str, str] | None = None) -> int | None:
    """The function's memory size in MB when running on Lambda, else ``None``."""
    raw = (os.environ if environ is None else environ).get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _row(environ: Mapping[str, str] | None) -> tuple[int, int]:
    mb = lambda_memory_mb(environ)
    if mb is None:
        return _NOT_LAMBDA
    for bound, conns, batch in SIZING_TABLE:
        if mb <= bound:
            return conns, batch
    return _LARGEST


def default_connection_limit(environ: Mapping[str, str] | None = None) -> int:
    """Connections per endpoint for a new :class:`~dynamorm_async.pool.ClientPool`."""
    return _row(environ)[0]


def default_batch_concurrency(environ: Mapping[str, str] | None = None) -> int:
    """Concurrent chunk requests for a batch executor."""
    return _row(environ)[1]
