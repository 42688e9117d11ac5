"""Cold start hygiene: what importing the package (and the Lambda path) loads.

Each check runs in a fresh interpreter, since this test process has imported everything
already. Times are not asserted here (see ``benchmarks/cold_start.py``); what is loaded is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import dynamorm_async
from dynamorm_async.pool import HTTP_ENV

#: Never loaded by the cold path: the AWS SDK, crypto, and what only slow paths need.
HEAVY = ("botocore", "aiobotocore", "boto3", "cryptography", "cattrs", "tenacity")


def loaded_after(code: str, http_env: str | None = None) -> set[str]:
    """Top-level names of the modules loaded by running ``code`` in a fresh interpreter
    (with ``$DYNAMORM_HTTP`` set to ``http_env``, or unset)."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    env = {k: v for k, v in os.environ.items() if k != HTTP_ENV}
    if http_env is not None:
        env[HTTP_ENV] = http_env
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )
    return {name.split(".")[0] for name in json.loads(out.stdout.splitlines()[-1])}


def test_importing_the_package_loads_nothing_heavy() -> None:
    loaded = loaded_after("import dynamorm_async")
    assert not loaded & {*HEAVY, "aiohttp", "attrs", "attr", "orjson", "yarl", "ssl"}


def test_importtime_shows_no_botocore() -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import dynamorm_async"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "dynamorm_async" in out.stderr
    assert "botocore" not in out.stderr


@pytest.mark.parametrize(
    "code",
    [
        "from dynamorm_async import ClientPool, DynamoClient, RetryPolicy, deadline, errors",
        "import dynamorm_async.aws_lambda, dynamorm_async.streams",
        # The whole path of a handler's first GetItem through an entity repository.
        "from dynamorm_async import ClientPool\n"
        "from dynamorm_async.aws_lambda import lambda_handler\n"
        "from dynamorm_async.repository import Repository\n"
        "from dynamorm_async.model import entity\n"
        "ClientPool().client('http://127.0.0.1:1', 'us-east-1')",
    ],
    ids=["exports", "lambda-modules", "handler-path"],
)
def test_cold_paths_load_no_heavy_module(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "cold")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cold")
    assert not loaded_after(code) & set(HEAVY)


def test_the_lambda_runtime_module_needs_no_http_stack() -> None:
    loaded = loaded_after("import dynamorm_async.aws_lambda")
    assert not loaded & {*HEAVY, "aiohttp", "attrs", "attr", "orjson"}


def test_lazy_exports_are_the_real_objects() -> None:
    from dynamorm_async import ClientPool, DynamoClient, RetryPolicy, deadline, errors
    from dynamorm_async import client as client_module
    from dynamorm_async import deadlines as deadlines_module
    from dynamorm_async import pool as pool_module
    from dynamorm_async.wire import retry as retry_module

    assert ClientPool is pool_module.ClientPool
    assert DynamoClient is client_module.DynamoClient
    assert RetryPolicy is retry_module.RetryPolicy
    assert deadline is deadlines_module.deadline
    assert errors.DeadlineExceeded.__module__ == "dynamorm_async.errors"
    assert set(dynamorm_async.__all__) <= set(dir(dynamorm_async))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dynamorm_async.nope  # noqa: B018


def test_a_stdlib_pool_request_never_imports_aiohttp(dynamodb_endpoint: str) -> None:
    """``ClientPool(http="stdlib")``: import, build, send real requests, close; no aiohttp."""
    code = (
        "import asyncio\n"
        "from dynamorm_async import ClientPool\n"
        "async def main():\n"
        "    async with ClientPool(http='stdlib') as pool:\n"
        f"        out = await pool.client({dynamodb_endpoint!r}, 'us-east-1').list_tables()\n"
        "        assert 'TableNames' in out, out\n"
        "asyncio.run(main())\n"
    )
    loaded = loaded_after(code)
    assert "asyncio" in loaded  # the request did run
    assert not loaded & {*HEAVY, "aiohttp", "yarl", "multidict", "aiohappyeyeballs"}
    # The default pool still uses aiohttp (the same probe would load it)...
    default = code.replace("http='stdlib'", "")
    assert "aiohttp" in loaded_after(default)
    # ... unless $DYNAMORM_HTTP picks the stdlib stack (no code change, e.g. on Lambda).
    assert not loaded_after(default, http_env="stdlib") & {"aiohttp", "yarl", "multidict"}
    assert "aiohttp" in loaded_after(default, http_env="aiohttp")
