"""A local server run as a child process: start, wait until it answers, stop by PID.

:class:`ServerProcess` is the common base of the launchers in
:mod:`dynamorm_async.testing.launchers`. It only needs the standard library, so
importing it (and the pytest plugin built on it) stays cheap.
"""

from __future__ import annotations

import abc
import asyncio
import atexit
import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from ..errors import DynamormError, InvalidInput

__all__ = [
    "BackendStartError",
    "BackendStartTimeout",
    "BackendUnavailable",
    "ServerProcess",
    "free_port",
    "pid_alive",
    "probe",
]

#: How much of the server's output an error message quotes.
_TAIL_BYTES = 4000

_PROBE_HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "X-Amz-Date": "20200101T000000Z",
    # Local servers require a SigV4-shaped header (they route and key data by its
    # credential scope) but do not verify the signature.
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=testing/20200101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64
    ),
}

# Never route probes of a local server through an HTTP(S)_PROXY from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BackendUnavailable(DynamormError):
    """A local test backend cannot be used: a tool is missing, or it is not running."""


class BackendStartError(BackendUnavailable):
    """A local test backend was launched but did not become ready.

    ``returncode`` is the exit status if the process died (else ``None``) and
    ``output`` the tail of what it printed.
    """

    def __init__(self, message: str, *, returncode: int | None, output: str) -> None:
        self.returncode = returncode
        self.output = output
        detail = output.strip() or "(no output)"
        super().__init__(f"{message}\n--- last output of the server ---\n{detail}")


class BackendStartTimeout(BackendStartError, TimeoutError):
    """A local test backend did not answer within its startup timeout (it was killed)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (found by binding port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (a reaped child no longer does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def probe(endpoint_url: str, timeout: float = 1.0) -> bool:
    """True if ``endpoint_url`` answers a DynamoDB ``ListTables`` request with a table list."""
    request = urllib.request.Request(
        endpoint_url.rstrip("/") + "/", data=b"{}", headers=_PROBE_HEADERS, method="POST"
    )
    try:
        with _OPENER.open(request, timeout=max(timeout, 0.01)) as response:
            body = response.read()
    except (OSError, http.client.HTTPException):  # URLError and socket timeouts are OSError
        return False
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("TableNames"), list)


class ServerProcess(abc.ABC):
    """A DynamoDB-compatible server in a child process, usable as a (async) context manager.

    ``start()`` picks a free port (unless ``port`` is given), launches the process,
    and polls it with real ``ListTables`` requests until it answers or
    ``startup_timeout`` seconds pass. ``stop()`` terminates the process by PID,
    waits, and kills it if needed; it is idempotent and also runs at interpreter
    exit. The server's output goes to a log file (``log_path``), so a chatty
    server can never block on a full pipe.
    """

    #: Backend name, as used by ``DYNAMORM_TEST_BACKEND``.
    name: ClassVar[str]
    #: The interface the server binds; used to check that a chosen port is free.
    bind_host: ClassVar[str] = "127.0.0.1"

    def __init__(
        self, *, port: int | None = None, startup_timeout: float = 30.0, stop_timeout: float = 5.0
    ) -> None:
        if port is not None and not 0 < port < 65536:
            raise InvalidInput(f"port must be in 1..65535, got {port}")
        if startup_timeout < 0 or stop_timeout < 0:
            raise InvalidInput("startup_timeout and stop_timeout must not be negative")
        self._requested_port = port
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._workdir: Path | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ subclass hooks

    def _prepare(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Check tools and install what is missing; raise :class:`BackendUnavailable`."""

    @abc.abstractmethod
    def _command(self, port: int) -> list[str]:
        """The argv that serves DynamoDB on ``port``."""

    def _child_env(self, port: int) -> dict[str, str]:
        """The environment of the child process."""
        return dict(os.environ)

    # ------------------------------------------------------------------ state

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's PID while it runs, else ``None``."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def port(self) -> int:
        """The TCP port the server listens on (raises :class:`BackendUnavailable` if stopped)."""
        if self._port is None or not self.running:
            raise BackendUnavailable(f"{self.name} server is not running; call start() first")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``, the URL to give a DynamoDB client."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path | None:
        """The file receiving the server's stdout and stderr, while it runs."""
        return self._workdir / "server.log" if self._workdir is not None else None

    def __repr__(self) -> str:
        state = f"running pid={self.pid} port={self._port}" if self.running else "stopped"
        return f"<{type(self).__name__} {state}>"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Launch the server and block until it answers; no-op if it already runs."""
        with self._lock:
            if self.running:
                return self
            self._prepare()
            attempts = 1 if self._requested_port is not None else 3
            for attempt in range(1, attempts + 1):
                port = self._requested_port or free_port(self.bind_host)
                try:
                    self._launch(port)
                except BackendStartError as exc:
                    # Another process may have grabbed the free port we picked before the
                    # server bound it: retry with a new one, but only if the port is taken.
                    lost_race = exc.returncode is not None and _port_taken(self.bind_host, port)
                    if attempt < attempts and lost_race:
                        continue
                    raise
                return self
            raise AssertionError("unreachable")  # pragma: no cover

    def _launch(self, port: int) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix=f"dynamorm-{self.name}-"))
        log_path = self._workdir / "server.log"
        with open(log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self._command(port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._workdir,
                env=self._child_env(port),
            )
        self._port = port
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://127.0.0.1:{port}"
        while True:
            returncode = self._proc.poll()
            if returncode is not None:
                output = self._tail(log_path)
                self._cleanup()
                raise BackendStartError(
                    f"{self.name} server exited with status {returncode} during startup "
                    f"(port {port})",
                    returncode=returncode,
                    output=output,
                )
            left = deadline - time.monotonic()
            if probe(url, timeout=min(1.0, left)):
                return
            if time.monotonic() >= deadline:
                output = self._tail(log_path)
                self.stop()
                raise BackendStartTimeout(
                    f"{self.name} server did not answer ListTables on {url} within "
                    f"{self.startup_timeout:g} s; it was stopped",
                    returncode=None,
                    output=output,
                )
            time.sleep(min(0.05, max(deadline - time.monotonic(), 0.0)))

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``stop_timeout``) and reap it.

        Idempotent: stopping a stopped server does nothing.
        """
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self._cleanup()

    def _cleanup(self) -> None:
        if self._proc is not None:
            self._proc.wait()  # the process is gone here; reap it so its PID is freed
        atexit.unregister(self.stop)
        self._proc = None
        self._port = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    @staticmethod
    def _tail(path: Path) -> str:
        with contextlib.suppress(OSError), open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _TAIL_BYTES))
            return f.read().decode("utf-8", errors="replace")
        return ""

    # ------------------------------------------------------------------ context managers

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def astart(self) -> Self:
        """:meth:`start` without blocking the event loop (runs in a worker thread)."""
        return await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        """:meth:`stop` without blocking the event loop (runs in a worker thread)."""
        await asyncio.to_thread(self.stop)

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()
