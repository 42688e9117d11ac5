"""pytest plugin of dynamorm-async (entry point ``dynamorm_async``).

Environment:

* ``DYNAMORM_TEST_BACKEND``: ``ddblocal`` (default) or ``moto``.
* ``DYNAMORM_TEST_ENDPOINT``: use this running endpoint instead of starting a server
  (``DYNAMORM_TEST_BACKEND`` still says what it is, for the markers).

Fixtures: ``dynamodb_backend`` (name), ``dynamodb_endpoint`` (URL; the server is
started on first use, once per session), ``dynamodb_launcher`` (the launcher or
``None``), ``aws_test_credentials`` (dummy AWS env credentials for the session)
and ``table_name`` (unique per test).

Markers: ``xfail_moto(reason)`` (strict xfail on moto only, for moto's known
gaps), ``ddblocal_only`` and ``moto_only`` (skip on the other backend).

The plugin imports no AWS SDK; it starts nothing until a fixture asks for it.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator

import pytest

from ..errors import InvalidInput
from .launchers import BACKENDS, BackendUnavailable, ServerProcess, launcher_for, probe

__all__ = [
    "DUMMY_AWS_ENV",
    "ENV_BACKEND",
    "ENV_ENDPOINT",
    "aws_test_credentials",
    "dynamodb_backend",
    "dynamodb_endpoint",
    "dynamodb_launcher",
    "table_name",
    "unique_table_name",
]

#: Environment variable choosing the backend.
ENV_BACKEND = "DYNAMORM_TEST_BACKEND"
#: Environment variable naming an already running endpoint.
ENV_ENDPOINT = "DYNAMORM_TEST_ENDPOINT"
#: Dummy credentials set for the session when the variable is not already set.
DUMMY_AWS_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

_MARKERS = (
    "xfail_moto(reason, raises=None): strict xfail when DYNAMORM_TEST_BACKEND=moto "
    "(a known gap of moto); runs normally on DynamoDB Local",
    "ddblocal_only: skip unless DYNAMORM_TEST_BACKEND=ddblocal",
    "moto_only: skip unless DYNAMORM_TEST_BACKEND=moto",
)
_BACKEND_KEY = pytest.StashKey[str]()
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def unique_table_name(hint: str, *, prefix: str = "t_", max_hint: int = 48) -> str:
    """A fresh valid DynamoDB table name: ``<prefix><sanitized hint>_<8 hex digits>``.

    Characters outside ``[A-Za-z0-9_.-]`` become ``_`` and the hint is cut to
    ``max_hint`` characters, so the result is 3..255 characters long.
    """
    if _UNSAFE.search(prefix) or len(prefix) > 200:
        raise InvalidInput(f"table name prefix {prefix!r} is not valid in a table name")
    cleaned = _UNSAFE.sub("_", hint).strip("_")[: max(0, max_hint)]
    parts = [p for p in (cleaned, secrets.token_hex(4)) if p]
    return prefix + "_".join(parts)


def _backend_from_env() -> str:
    backend = os.environ.get(ENV_BACKEND, "").strip() or "ddblocal"
    if backend not in BACKENDS:
        raise pytest.UsageError(
            f"{ENV_BACKEND}={backend!r} is not a known backend; use one of {', '.join(BACKENDS)}"
        )
    return backend


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers and read the backend choice."""
    for line in _MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[_BACKEND_KEY] = _backend_from_env()


def pytest_report_header(config: pytest.Config) -> str:
    """Say which backend the session runs against."""
    backend = config.stash.get(_BACKEND_KEY, "ddblocal")
    endpoint = os.environ.get(ENV_ENDPOINT)
    where = f"endpoint {endpoint}" if endpoint else "started on first use"
    return f"dynamorm_async test backend: {backend} ({where})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Turn the backend markers into xfail/skip markers for the chosen backend."""
    backend = config.stash[_BACKEND_KEY]
    for item in items:
        gap = item.get_closest_marker("xfail_moto")
        if gap is not None and backend == "moto":
            reason = gap.kwargs.get("reason", gap.args[0] if gap.args else None)
            if not reason:
                raise pytest.UsageError(f"{item.nodeid}: xfail_moto needs a reason")
            raises = gap.kwargs.get("raises")
            item.add_marker(
                pytest.mark.xfail(strict=True, reason=f"moto gap: {reason}", raises=raises)
            )
        if item.get_closest_marker("ddblocal_only") is not None and backend != "ddblocal":
            item.add_marker(pytest.mark.skip(reason=f"DynamoDB Local only (backend: {backend})"))
        if item.get_closest_marker("moto_only") is not None and backend != "moto":
            item.add_marker(pytest.mark.skip(reason=f"moto only (backend: {backend})"))


@pytest.fixture(scope="session")
def dynamodb_backend(pytestconfig: pytest.Config) -> str:
    """The backend name, ``"ddblocal"`` or ``"moto"`` (from ``DYNAMORM_TEST_BACKEND``)."""
    return pytestconfig.stash[_BACKEND_KEY]


@pytest.fixture(scope="session")
def aws_test_credentials() -> Iterator[dict[str, str]]:
    """Set dummy AWS credentials and region in the environment for the session.

    Variables already set are left alone; all are restored at the end. Yields the
    values in effect.
    """
    patch = pytest.MonkeyPatch()
    try:
        for key, value in DUMMY_AWS_ENV.items():
            if key not in os.environ:
                patch.setenv(key, value)
        yield {key: os.environ[key] for key in DUMMY_AWS_ENV}
    finally:
        patch.undo()


@pytest.fixture(scope="session")
def dynamodb_launcher(
    dynamodb_backend: str, aws_test_credentials: dict[str, str]
) -> Iterator[ServerProcess | None]:
    """The session's running launcher, or ``None`` when ``DYNAMORM_TEST_ENDPOINT`` is set."""
    if os.environ.get(ENV_ENDPOINT):
        yield None
        return
    launcher = launcher_for(dynamodb_backend)
    launcher.start()
    try:
        yield launcher
    finally:
        launcher.stop()


@pytest.fixture(scope="session")
def dynamodb_endpoint(
    dynamodb_launcher: ServerProcess | None, aws_test_credentials: dict[str, str]
) -> str:
    """The endpoint URL of the session's DynamoDB backend."""
    if dynamodb_launcher is not None:
        return dynamodb_launcher.endpoint_url
    endpoint = os.environ.get(ENV_ENDPOINT, "").rstrip("/")
    if not probe(endpoint, timeout=5.0):
        raise BackendUnavailable(
            f"{ENV_ENDPOINT}={endpoint!r} does not answer a DynamoDB ListTables request"
        )
    return endpoint


@pytest.fixture
def table_name(request: pytest.FixtureRequest) -> str:
    """A table name unique to this test: ``t_<test name>_<random hex>``."""
    return unique_table_name(request.node.name)
