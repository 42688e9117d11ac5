"""Test support: local DynamoDB backends and a pytest plugin.

* :class:`DynamoDBLocal` and :class:`MotoServer` start a real local server in a
  child process (sync or async context managers) and expose ``endpoint_url``.
* The pytest plugin (:mod:`dynamorm_async.testing.plugin`, registered as the
  ``dynamorm_async`` entry point) provides the ``dynamodb_endpoint``,
  ``dynamodb_backend`` and ``table_name`` fixtures and the ``xfail_moto``,
  ``ddblocal_only`` and ``moto_only`` markers.

This package imports only the standard library (and :mod:`dynamorm_async.errors`).
"""

from __future__ import annotations

from .launchers import (
    BACKENDS,
    DDB_LOCAL_VERSION,
    BackendStartError,
    BackendStartTimeout,
    BackendUnavailable,
    DynamoDBLocal,
    MotoServer,
    ServerProcess,
    cache_dir,
    ensure_dynamodb_local,
    find_java,
    free_port,
    launcher_for,
    pid_alive,
    probe,
)

__all__ = [
    "BACKENDS",
    "DDB_LOCAL_VERSION",
    "BackendStartError",
    "BackendStartTimeout",
    "BackendUnavailable",
    "DynamoDBLocal",
    "MotoServer",
    "ServerProcess",
    "cache_dir",
    "ensure_dynamodb_local",
    "find_java",
    "free_port",
    "launcher_for",
    "pid_alive",
    "probe",
]
