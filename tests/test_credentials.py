"""Credentials and providers: environment, refresh windows, single-flight, event loops, and
real resolution through aiobotocore's chain (profiles, credential_process)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dynamorm_async.errors import InvalidInput
from dynamorm_async.wire.credentials import (
    BotocoreChainCredentials,
    CredentialRefreshFailed,
    Credentials,
    EnvironmentCredentials,
    NoCredentials,
    RefreshableCredentials,
    StaticCredentials,
    default_credentials,
)

# --------------------------------------------------------------------------- Credentials


def test_repr_hides_secret_and_token() -> None:
    """Neither the secret key nor the token appear in any repr."""
    creds = Credentials("AKIAEXAMPLE", "s3cr3t-value", "t0ken-value")
    static = StaticCredentials("AKIAEXAMPLE", "s3cr3t-value", "t0ken-value")
    for text in (repr(creds), str(creds), repr(static)):
        assert "s3cr3t-value" not in text
        assert "t0ken-value" not in text
        assert "AKIAEXAMPLE" in text
    assert "session_token=None" in repr(Credentials("A", "S"))


def test_credentials_validation_and_expiry() -> None:
    """Empty keys and naive expiry times are rejected; ``expired`` honours the margin."""
    with pytest.raises(InvalidInput):
        Credentials("", "S")
    with pytest.raises(InvalidInput):
        Credentials("A", "")
    with pytest.raises(InvalidInput):
        Credentials("A", "S", expiry=datetime(2030, 1, 1))
    assert not Credentials("A", "S").expired(margin=10**9)
    soon = Credentials("A", "S", expiry=datetime.now(UTC) + timedelta(seconds=100))
    assert not soon.expired()
    assert soon.expired(margin=200)
    assert Credentials("A", "S", expiry=datetime.now(UTC) - timedelta(seconds=1)).expired()


# --------------------------------------------------------------------------- environment


def test_from_env_reads_keys_and_tokens() -> None:
    """Key pair, session token, legacy token, precedence, empty values."""
    base = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET"}
    plain = EnvironmentCredentials.from_env(base)
    assert plain is not None
    assert plain.credentials == Credentials("AKID", "SECRET")
    assert plain.identity == "AKID"
    with_token = EnvironmentCredentials.from_env({**base, "AWS_SESSION_TOKEN": "TOK"})
    assert with_token is not None and with_token.credentials.session_token == "TOK"
    legacy = EnvironmentCredentials.from_env({**base, "AWS_SECURITY_TOKEN": "OLD"})
    assert legacy is not None and legacy.credentials.session_token == "OLD"
    both = EnvironmentCredentials.from_env(
        {**base, "AWS_SESSION_TOKEN": "NEW", "AWS_SECURITY_TOKEN": "OLD"}
    )
    assert both is not None and both.credentials.session_token == "NEW"
    empty_token = EnvironmentCredentials.from_env({**base, "AWS_SESSION_TOKEN": ""})
    assert empty_token is not None and empty_token.credentials.session_token is None
    assert EnvironmentCredentials.from_env({}) is None
    assert EnvironmentCredentials.from_env({"AWS_ACCESS_KEY_ID": ""}) is None


@pytest.mark.parametrize(
    "env", [{"AWS_ACCESS_KEY_ID": "AKID"}, {"AWS_SECRET_ACCESS_KEY": "SECRET"}]
)
def test_from_env_partial_raises(env: dict[str, str]) -> None:
    """Half a key pair is a configuration error, not 'no credentials'."""
    with pytest.raises(NoCredentials, match="partial"):
        EnvironmentCredentials.from_env(env)


async def test_static_provider_and_default_with_env() -> None:
    """default_credentials prefers the environment."""
    provider = default_credentials({"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET"})
    assert isinstance(provider, StaticCredentials)
    assert await provider.get() == Credentials("AKID", "SECRET")
    chain = default_credentials({"AWS_PROFILE": "ops"})
    assert isinstance(chain, BotocoreChainCredentials)
    assert chain.identity == "botocore-chain:ops"
    assert chain.method is None


def test_no_botocore_import_for_env_credentials() -> None:
    """Importing the module and using env credentials never imports (aio)botocore."""
    code = textwrap.dedent(
        """
        import sys, asyncio
        from dynamorm_async.wire.credentials import default_credentials
        env = {"AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S"}
        asyncio.run(default_credentials(env).get())
        default_credentials({})  # the chain provider is built, not resolved
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("botocore", "aiobotocore"))
        assert not bad, bad
        print("clean")
        """
    )
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "clean"
    assert "botocore" not in out.stderr  # the -X importtime listing


# --------------------------------------------------------------------------- refreshing


class Source:
    """A credential source counting its fetches, on a controllable clock."""

    def __init__(self, lifetime: float = 3600.0, delay: float = 0.0) -> None:
        self.now = 1_700_000_000.0
        self.lifetime = lifetime
        self.delay = delay
        self.calls = 0
        self.fail: Exception | None = None

    def clock(self) -> float:
        return self.now

    async def fetch(self) -> Credentials:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        expiry = datetime.fromtimestamp(self.now + self.lifetime, UTC)
        return Credentials(f"AKID{self.calls}", f"SECRET{self.calls}", "TOKEN", expiry)

    def provider(self, **kwargs: float) -> RefreshableCredentials:
        return RefreshableCredentials(
            self.fetch, identity="arn:aws:iam::123:role/r", clock=self.clock, **kwargs
        )


async def test_cached_until_advisory_window_then_refreshed() -> None:
    """No fetch while fresh; one fetch once inside ``advance`` seconds of expiry."""
    src = Source(lifetime=3600)
    provider = src.provider(advance=300, mandatory=60)
    assert provider.identity == "arn:aws:iam::123:role/r"
    first = await provider.get()
    assert first.access_key_id == "AKID1"
    src.now += 3600 - 301
    assert await provider.get() is first
    assert src.calls == 1
    src.now += 2  # 299 s left: advisory window
    second = await provider.get()
    assert second.access_key_id == "AKID2"
    assert src.calls == 2
    assert await provider.get() is second


async def test_single_flight_cold_start_100_callers() -> None:
    """100 concurrent get() on a cold provider cause exactly one fetch."""
    src = Source(delay=0.01)
    provider = src.provider()
    results = await asyncio.gather(*(provider.get() for _ in range(100)))
    assert src.calls == 1
    assert all(r is results[0] for r in results)


async def test_single_flight_mandatory_window_100_callers() -> None:
    """Inside the mandatory window all callers wait for one shared refresh."""
    src = Source(delay=0.01)
    provider = src.provider(advance=300, mandatory=60)
    await provider.get()
    src.now += 3600 - 30
    results = await asyncio.gather(*(provider.get() for _ in range(100)))
    assert src.calls == 2
    assert {r.access_key_id for r in results} == {"AKID2"}


async def test_advisory_window_only_one_caller_waits() -> None:
    """In the advisory window one caller refreshes; the others keep the current creds."""
    src = Source(delay=0.01)
    provider = src.provider(advance=300, mandatory=60)
    old = await provider.get()
    src.now += 3600 - 200
    results = await asyncio.gather(*(provider.get() for _ in range(100)))
    assert src.calls == 2
    keys = [r.access_key_id for r in results]
    assert keys[0] == "AKID2"  # the caller that started the refresh
    assert keys[1:] == [old.access_key_id] * 99


async def test_advisory_failure_keeps_serving_then_retries() -> None:
    """A failed advisory refresh returns the old creds and retries after retry_interval."""
    src = Source()
    provider = src.provider(advance=300, mandatory=60, retry_interval=10)
    old = await provider.get()
    src.now += 3600 - 200
    src.fail = OSError("metadata service down")
    assert await provider.get() is old
    assert src.calls == 2
    src.now += 5
    assert await provider.get() is old  # held: no new attempt yet
    assert src.calls == 2
    src.now += 6
    src.fail = None
    fresh = await provider.get()
    assert src.calls == 3
    assert fresh.access_key_id == "AKID3"


async def test_failure_in_mandatory_window_raises() -> None:
    """Inside ``mandatory`` seconds of expiry a failed refresh is an error, every time."""
    src = Source()
    provider = src.provider(advance=300, mandatory=60)
    await provider.get()
    src.now += 3600 - 30
    src.fail = OSError("sts unreachable")
    for expected_calls in (2, 3):
        with pytest.raises(CredentialRefreshFailed) as info:
            await provider.get()
        assert isinstance(info.value.__cause__, OSError)
        assert src.calls == expected_calls


async def test_failure_after_expiry_raises() -> None:
    """Expired credentials are never served when the refresh fails."""
    src = Source()
    provider = src.provider(advance=300, mandatory=60)
    await provider.get()
    src.now += 4000
    src.fail = OSError("sts unreachable")
    with pytest.raises(CredentialRefreshFailed):
        await provider.get()


async def test_cold_failure_and_bad_results_raise() -> None:
    """A first fetch that fails, returns expired creds, or returns junk, raises typed errors."""
    src = Source()
    src.fail = RuntimeError("boom")
    with pytest.raises(CredentialRefreshFailed):
        await src.provider().get()
    src.fail = None
    src.lifetime = -10
    with pytest.raises(CredentialRefreshFailed, match="expired"):
        await src.provider().get()

    async def junk() -> Credentials:
        return "not credentials"  # type: ignore[return-value]

    with pytest.raises(CredentialRefreshFailed, match="str"):
        await RefreshableCredentials(junk, identity="x").get()


async def test_short_lived_credentials_do_not_cause_a_fetch_per_call() -> None:
    """Credentials already inside the advisory window when fetched are reused for a while."""
    src = Source(lifetime=120)
    provider = src.provider(advance=300, mandatory=60, retry_interval=10)
    first = await provider.get()
    for _ in range(20):
        assert await provider.get() is first
    assert src.calls == 1
    src.now += 11
    assert (await provider.get()).access_key_id == "AKID2"


async def test_cancelled_starter_does_not_cancel_the_shared_refresh() -> None:
    """The caller that started a refresh may be cancelled; the others still get the result."""
    src = Source(delay=0.05)
    provider = src.provider()
    starter = asyncio.ensure_future(provider.get())
    await asyncio.sleep(0)
    follower = asyncio.ensure_future(provider.get())
    await asyncio.sleep(0)
    starter.cancel()
    creds = await follower
    assert creds.access_key_id == "AKID1"
    assert src.calls == 1
    assert starter.cancelled()


def test_bad_construction() -> None:
    """Window sizes out of order and an empty identity are rejected."""
    src = Source()
    with pytest.raises(InvalidInput):
        RefreshableCredentials(src.fetch, identity="")
    with pytest.raises(InvalidInput):
        RefreshableCredentials(src.fetch, identity="x", advance=10, mandatory=20)


def test_works_across_event_loops() -> None:
    """A provider keeps working in a new loop, even if a fetch was cut off with the old one."""
    src = Source()
    provider = src.provider(advance=300, mandatory=60)

    async def use() -> Credentials:
        lock = asyncio.Lock()  # loop-bound primitives inside fetch work per loop
        async with lock:
            return await provider.get()

    first = asyncio.run(use())
    src.now += 3600 - 30  # mandatory window: the next loop must refresh
    second = asyncio.run(use())
    assert (first.access_key_id, second.access_key_id) == ("AKID1", "AKID2")

    # A refresh left hanging when its loop was torn down must not block the next loop.
    slow = Source(delay=30)
    stuck = slow.provider()

    async def abandon() -> None:
        task = asyncio.ensure_future(stuck.get())
        await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(abandon())
    slow.delay = 0
    creds = asyncio.run(stuck.get())
    assert creds.access_key_id == "AKID2"
    assert slow.calls == 2

    # A loop closed without cancelling its tasks leaves a refresh pending forever.
    frozen = Source(delay=30)
    provider3 = frozen.provider()
    old_loop = asyncio.new_event_loop()
    try:

        async def start_and_leave() -> None:
            task = asyncio.ensure_future(provider3.get())
            await asyncio.sleep(0.01)
            task.cancel()

        old_loop.run_until_complete(start_and_leave())
    finally:
        old_loop.close()
    frozen.delay = 0
    assert asyncio.run(provider3.get()).access_key_id == "AKID2"


# --------------------------------------------------------------------------- botocore chain


@pytest.fixture
def aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """An environment with no AWS credentials except the files written by the returned function."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    creds_file = tmp_path / "credentials"
    config_file = tmp_path / "config"
    creds_file.write_text("")
    config_file.write_text("")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds_file))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))

    def write(credentials: str, config: str) -> None:
        creds_file.write_text(textwrap.dedent(credentials))
        config_file.write_text(textwrap.dedent(config))

    return write


async def test_chain_resolves_a_profile(
    aws_files: Callable[[str, str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_PROFILE selects a profile of the shared credentials file."""
    aws_files(
        """
        [default]
        aws_access_key_id = AKIADEFAULT
        aws_secret_access_key = default-secret
        [payments]
        aws_access_key_id = AKIAPAYMENTS
        aws_secret_access_key = payments-secret
        aws_session_token = payments-token
        """,
        "",
    )
    monkeypatch.setenv("AWS_PROFILE", "payments")
    provider = default_credentials()
    assert isinstance(provider, BotocoreChainCredentials)
    assert provider.identity == "botocore-chain:payments"
    creds = await provider.get()
    assert creds == Credentials("AKIAPAYMENTS", "payments-secret", "payments-token")
    assert provider.method == "shared-credentials-file"
    assert await provider.get() is creds
    explicit = BotocoreChainCredentials("default")
    assert (await explicit.get()).access_key_id == "AKIADEFAULT"
    assert explicit.identity == "botocore-chain:default"


async def test_chain_with_nothing_raises_no_credentials(
    aws_files: Callable[[str, str], None],
) -> None:
    """Empty files, no env, no metadata service: a typed NoCredentials."""
    with pytest.raises(NoCredentials, match="no AWS credentials"):
        await BotocoreChainCredentials().get()


async def test_chain_with_unknown_profile_raises_no_credentials(
    aws_files: Callable[[str, str], None],
) -> None:
    """A profile that does not exist is reported as NoCredentials (botocore's error chained)."""
    with pytest.raises(NoCredentials) as info:
        await BotocoreChainCredentials("nope").get()
    assert info.value.__cause__ is not None


_PROCESS = """
import json, sys, datetime
counter = sys.argv[1]
n = int(open(counter).read() or 0) + 1
open(counter, "w").write(str(n))
now = datetime.datetime.now(datetime.timezone.utc)
expiry = now + datetime.timedelta(seconds=float(sys.argv[2]))
print(json.dumps({"Version": 1, "AccessKeyId": f"ASIAPROC{n}", "SecretAccessKey": f"secret{n}",
                  "SessionToken": f"token{n}", "Expiration": expiry.isoformat()}))
"""


async def test_chain_refreshes_credential_process_credentials(
    aws_files: Callable[[str, str], None], tmp_path: Path
) -> None:
    """credential_process creds carry an expiry; refreshing goes back through botocore."""
    script = tmp_path / "creds.py"
    script.write_text(_PROCESS)
    counter = tmp_path / "count"
    counter.write_text("0")
    aws_files(
        "",
        f"""
        [profile proc]
        credential_process = {sys.executable} {script} {counter} 200
        """,
    )
    provider = BotocoreChainCredentials("proc", advance=300, mandatory=60, retry_interval=0)
    first = await provider.get()
    runs = int(counter.read_text())  # botocore itself may refresh such short-lived creds
    assert first.access_key_id == f"ASIAPROC{runs}"
    assert first.session_token == f"token{runs}"
    assert first.expiry is not None
    assert 150 < (first.expiry - datetime.now(UTC)).total_seconds() <= 200
    assert provider.method == "custom-process"
    # 200 s left is inside our 300 s advisory window (and botocore's own): the next call
    # refreshes through botocore, which runs the process again.
    second = await provider.get()
    assert second.access_key_id == f"ASIAPROC{runs + 1}"
    assert json.loads(counter.read_text()) == runs + 1
