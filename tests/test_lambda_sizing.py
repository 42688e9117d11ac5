"""Sizing from ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``: the documented table, and who uses it."""

from __future__ import annotations

import pytest

from dynamorm_async import ClientPool
from dynamorm_async.aws_lambda import LocalLambdaContext
from dynamorm_async.sizing import (
    SIZING_TABLE,
    default_batch_concurrency,
    default_connection_limit,
    lambda_memory_mb,
)

MEMORY = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"


@pytest.mark.parametrize(
    ("memory", "connections", "batch"),
    [
        ("128", 16, 4),
        ("512", 16, 4),
        ("513", 32, 8),
        ("1024", 32, 8),
        ("1769", 64, 16),
        ("2048", 64, 16),
        ("4096", 96, 24),
        ("10240", 128, 32),
        (None, 64, 16),  # not on Lambda
        ("", 64, 16),
        ("lots", 64, 16),  # unreadable: treated as not on Lambda
    ],
)
def test_documented_table(memory: str | None, connections: int, batch: int) -> None:
    env = {} if memory is None else {MEMORY: memory}
    assert default_connection_limit(env) == connections
    assert default_batch_concurrency(env) == batch


def test_table_is_ascending_and_in_the_docstring() -> None:
    bounds = [b for b, _, _ in SIZING_TABLE]
    assert bounds == sorted(bounds)
    import dynamorm_async.sizing as sizing

    assert sizing.__doc__ is not None
    for bound, conns, batch in SIZING_TABLE:
        assert f"| ≤ {bound:,} | {conns} | {batch} |" in sizing.__doc__
    assert lambda_memory_mb({MEMORY: "3008"}) == 3008
    assert lambda_memory_mb({}) is None


def test_pool_default_follows_the_environment_and_explicit_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(MEMORY, "256")
    assert ClientPool().connection_limit == 16
    assert ClientPool(connection_limit=200).connection_limit == 200
    assert LocalLambdaContext().memory_limit_in_mb == 256
    monkeypatch.setenv(MEMORY, "3008")
    assert ClientPool().connection_limit == 96
    monkeypatch.delenv(MEMORY)
    assert ClientPool().connection_limit == 64
    assert LocalLambdaContext().memory_limit_in_mb == 128
    with pytest.raises(ValueError):
        ClientPool(connection_limit=0)


def test_batch_default_concurrency_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dynamorm_async.batch import BatchExecutor
    from dynamorm_async.db import Database
    from dynamorm_async.pool import ClientPool as Pool

    db = Database(Pool().client("http://127.0.0.1:1", "us-east-1"))
    monkeypatch.setenv(MEMORY, "1024")
    assert BatchExecutor(db).concurrency == 8
    assert BatchExecutor(db, concurrency=3).concurrency == 3
    monkeypatch.setenv(MEMORY, "128")
    assert BatchExecutor(db).concurrency == 4
