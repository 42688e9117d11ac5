"""Our SigV4 signer against botocore's ``SigV4Auth``: the resulting headers must be identical."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal
from unittest.mock import patch
from urllib.parse import quote

import botocore.auth
import botocore.credentials
import pytest
from botocore.awsrequest import AWSRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynamorm_async.errors import InvalidInput
from dynamorm_async.wire.credentials import Credentials
from dynamorm_async.wire.sigv4 import SigV4Signer, canonical_path, canonical_query

# --------------------------------------------------------------------------- reference


def botocore_sign(
    creds: Credentials,
    *,
    region: str,
    service: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    now: datetime,
    params: list[tuple[str, str]] | None = None,
) -> list[tuple[str, str]]:
    """Sign with botocore at the frozen time ``now``; return the final headers in order."""
    bc_creds = botocore.credentials.Credentials(
        creds.access_key_id, creds.secret_access_key, creds.session_token
    )
    request = AWSRequest(method=method, url=url, headers=headers, data=body, params=params)
    naive = now.astimezone(UTC).replace(tzinfo=None)
    with patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: naive):
        botocore.auth.SigV4Auth(bc_creds, service, region).add_auth(request)
    return list(request.headers.items())


def our_sign(
    creds: Credentials,
    *,
    region: str,
    service: str,
    method: str,
    host: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    now: datetime,
) -> list[tuple[str, str]]:
    signed = dict(headers)
    SigV4Signer(region, service).sign(
        creds, method=method, host=host, path=path, query=query, headers=signed, body=body, now=now
    )
    return list(signed.items())


# --------------------------------------------------------------------------- strategies

_NO_CS: tuple[Literal["Cs"]] = ("Cs",)  # no lone surrogates: they cannot be sent
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=_NO_CS, blacklist_characters="\r\n"),
    max_size=20,
)
_key_ids = st.text(string.ascii_uppercase + string.digits, min_size=4, max_size=20)
_secrets = st.text(alphabet=st.characters(blacklist_categories=_NO_CS), min_size=1, max_size=40)
_tokens = st.none() | st.text(string.ascii_letters + string.digits + "+/=", min_size=1, max_size=80)
_regions = st.sampled_from(
    ["us-east-1", "eu-west-3", "ap-southeast-2", "cn-north-1", "us-gov-west-1", "local"]
) | st.from_regex(r"[a-z]{2}-[a-z]{3,9}-[1-9]", fullmatch=True)
_services = st.sampled_from(["dynamodb", "sts", "kms", "execute-api", "lambda", "s3"])
_methods = st.sampled_from(["POST", "GET", "PUT", "delete", "Head"])
_times = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
) | st.datetimes(
    min_value=datetime(2001, 1, 2),
    max_value=datetime(2099, 12, 30),
    timezones=st.sampled_from(
        [timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
)
_bodies = (
    st.just(b"")
    | st.binary(max_size=300)
    | st.dictionaries(_TEXT, _TEXT, max_size=5).map(
        lambda d: repr({"TableName": "t-é", "Key": d}).encode("utf-8")
    )
    | st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass"))
)

_name_chars = string.ascii_letters + string.digits + "-_"
_plain_names = st.text(_name_chars, min_size=1, max_size=16)
_special_names = st.sampled_from(
    [
        "Content-Type",
        "X-Amz-Target",
        "User-Agent",
        "user-agent",
        "X-Amzn-Trace-Id",
        "Expect",
        "Transfer-Encoding",
        "Authorization",
        "X-Amz-Date",
        "x-amz-date",
        "X-Amz-Security-Token",
        "x-amz-security-token",
        "Accept-Encoding",
        "Content-Length",
        "X-Amz-Content-SHA256",
        "x-amz-meta-Thing",
    ]
)
_values = st.lists(st.sampled_from([*"ab Z09:;,/=+-_.*\"'\t é€字", "  ", " \t "]), max_size=20).map(
    "".join
)
_headers = st.dictionaries(_plain_names | _special_names, _values, max_size=8)

_seg_alphabet = st.sampled_from(
    [
        *(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@ é字%"),
        *("%20", "%2F", "%25", "%E2%82%AC", ".", ".."),
    ]
)
_segments = st.lists(
    st.lists(_seg_alphabet, max_size=6).map("".join) | st.sampled_from(["", ".", ".."]),
    max_size=5,
)
_paths = st.tuples(_segments, st.booleans()).map(
    lambda t: "/" + "/".join(t[0]) + ("/" if t[1] and t[0] else "")
)
_pair_text = st.text(
    alphabet=st.characters(blacklist_categories=_NO_CS, blacklist_characters="&=%#\r\n\t"),
    max_size=8,
)
_pairs = st.lists(st.tuples(_pair_text, _pair_text), max_size=5)


@st.composite
def _hosts(draw: st.DrawFn) -> tuple[str, str, str]:
    """(scheme, host as written in the URL, the Host header value we pass)."""
    scheme = draw(st.sampled_from(["https", "http"]))
    name = draw(
        st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}(\.[A-Za-z0-9-]{1,10}){0,3}", fullmatch=True)
    )
    port = draw(st.none() | st.sampled_from([80, 443, 8000, 4566]))
    in_url = name if port is None else f"{name}:{port}"
    default = 443 if scheme == "https" else 80
    header = name if port is None or port == default else f"{name}:{port}"
    return scheme, in_url, header


_COMMON = {
    "region": _regions,
    "service": _services,
    "method": _methods,
    "host": _hosts(),
    "path": _paths,
    "headers": _headers,
    "body": _bodies,
    "now": _times,
    "key_id": _key_ids,
    "secret": _secrets,
    "token": _tokens,
}

_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- properties


@_SETTINGS
@given(pairs=_pairs, encode=st.booleans(), **_COMMON)
def test_matches_botocore_with_query_params(
    region: str,
    service: str,
    method: str,
    host: tuple[str, str, str],
    path: str,
    headers: dict[str, str],
    body: bytes,
    now: datetime,
    key_id: str,
    secret: str,
    token: str | None,
    pairs: list[tuple[str, str]],
    encode: bool,
) -> None:
    """Random requests, query given to botocore as params: identical headers after signing."""
    scheme, in_url, host_header = host
    creds = Credentials(key_id, secret, token)
    if encode:
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    else:  # raw (unencoded) text on the wire: we must encode it as SigV4 says
        query = "&".join(f"{k}={v}" for k, v in pairs)
    expected = botocore_sign(
        creds,
        region=region,
        service=service,
        method=method,
        url=f"{scheme}://{in_url}{path}",
        headers=headers,
        body=body,
        now=now,
        params=pairs,
    )
    got = our_sign(
        creds,
        region=region,
        service=service,
        method=method,
        host=host_header,
        path=path,
        query=query,
        headers=headers,
        body=body,
        now=now,
    )
    assert got == expected


@_SETTINGS
@given(pairs=_pairs, **_COMMON)
def test_matches_botocore_with_query_in_url(
    region: str,
    service: str,
    method: str,
    host: tuple[str, str, str],
    path: str,
    headers: dict[str, str],
    body: bytes,
    now: datetime,
    key_id: str,
    secret: str,
    token: str | None,
    pairs: list[tuple[str, str]],
) -> None:
    """Random requests with an already canonical query string in the URL."""
    scheme, in_url, host_header = host
    creds = Credentials(key_id, secret, token)
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
    url = f"{scheme}://{in_url}{path}" + (f"?{query}" if query else "")
    expected = botocore_sign(
        creds,
        region=region,
        service=service,
        method=method,
        url=url,
        headers=headers,
        body=body,
        now=now,
    )
    got = our_sign(
        creds,
        region=region,
        service=service,
        method=method,
        host=host_header,
        path=path,
        query=query,
        headers=headers,
        body=body,
        now=now,
    )
    assert got == expected


@settings(max_examples=100, deadline=None)
@given(headers=_headers, body=_bodies, now=_times, token=_tokens)
def test_explicit_host_and_date_headers_match_botocore(
    headers: dict[str, str], body: bytes, now: datetime, token: str | None
) -> None:
    """A given Host header wins over the argument; a given Date header replaces X-Amz-Date."""
    creds = Credentials("AKIDEXAMPLE", "secret", token)
    headers = {**headers, "HOST": "Custom.Example:9000", "Date": "stale"}
    expected = botocore_sign(
        creds,
        region="us-east-1",
        service="dynamodb",
        method="POST",
        url="https://ignored.example/",
        headers=headers,
        body=body,
        now=now,
    )
    got = our_sign(
        creds,
        region="us-east-1",
        service="dynamodb",
        method="POST",
        host="ignored.example",
        path="/",
        query="",
        headers=headers,
        body=body,
        now=now,
    )
    assert got == expected
    assert dict(got)["Date"] != "stale"
    assert "X-Amz-Date" not in dict(got)


# --------------------------------------------------------------------------- fixed cases


def test_aws_test_suite_get_vanilla() -> None:
    """The ``get-vanilla`` case of AWS's published SigV4 test suite."""
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    headers: dict[str, str] = {}
    SigV4Signer("us-east-1", "service").sign(
        creds,
        method="GET",
        host="example.amazonaws.com",
        path="/",
        headers=headers,
        body=b"",
        now=datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
    )
    assert headers == {
        "X-Amz-Date": "20150830T123600Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
        "aws4_request, SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    }


def test_dynamodb_request_shape_and_resigning() -> None:
    """The client's request: token added, re-signing replaces (not duplicates) headers."""
    signer = SigV4Signer("eu-west-1")
    creds = Credentials("AKID", "SECRET", "TOKEN")
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.GetItem",
    }
    body = b'{"TableName":"t","Key":{"pk":{"S":"a"}}}'
    when = datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    expected = botocore_sign(
        creds,
        region="eu-west-1",
        service="dynamodb",
        method="POST",
        url="https://dynamodb.eu-west-1.amazonaws.com/",
        headers=headers,
        body=body,
        now=when,
    )
    signer.sign(
        creds,
        method="POST",
        host="dynamodb.eu-west-1.amazonaws.com",
        path="/",
        headers=headers,
        body=body,
        now=when,
    )
    assert list(headers.items()) == expected
    first = dict(headers)
    # A retry a day later with new credentials, on the already signed dict.
    later = when + timedelta(days=1)
    creds2 = Credentials("AKID2", "SECRET2")
    expected2 = botocore_sign(
        creds2,
        region="eu-west-1",
        service="dynamodb",
        method="POST",
        url="https://dynamodb.eu-west-1.amazonaws.com/",
        headers=headers,
        body=body,
        now=later,
    )
    signer.sign(
        creds2,
        method="POST",
        host="dynamodb.eu-west-1.amazonaws.com",
        path="/",
        headers=headers,
        body=body,
        now=later,
    )
    assert list(headers.items()) == expected2
    assert headers["Authorization"] != first["Authorization"]
    # Back to the first credentials and day: the cached signing key gives the same answer.
    headers3 = {k: v for k, v in first.items() if k in ("Content-Type", "X-Amz-Target")}
    signer.sign(
        creds,
        method="POST",
        host="dynamodb.eu-west-1.amazonaws.com",
        path="/",
        headers=headers3,
        body=body,
        now=when,
    )
    assert headers3 == first


def test_clock_used_when_now_is_omitted() -> None:
    """Without ``now`` the current UTC time is stamped."""
    headers: dict[str, str] = {}
    before = datetime.now(UTC).replace(microsecond=0)
    SigV4Signer("us-east-1").sign(
        Credentials("A", "S"), method="POST", host="h", path="/", headers=headers, body=b""
    )
    after = datetime.now(UTC)
    stamped = datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= stamped <= after
    assert f"/{stamped:%Y%m%d}/us-east-1/dynamodb/aws4_request" in headers["Authorization"]


def test_canonical_helpers() -> None:
    """Path normalisation and query canonicalisation follow SigV4."""
    assert canonical_path("") == "/"
    assert canonical_path("/a/./b/../c//d/") == "/a/c/d/"
    assert canonical_path("/a b/%20/€") == "/a%20b/%2520/%E2%82%AC"
    assert canonical_path("/../..") == "/"
    assert canonical_query("") == ""
    assert canonical_query("b=2&a=3&a=1&c") == "a=1&a=3&b=2&c="
    assert canonical_query("k=a b+c%7E~") == "k=a%20b%2Bc~~"
    assert canonical_query("k=%FF") == "k=%FF"


@pytest.mark.parametrize(
    ("headers", "host"),
    [({"Bad Name": "x"}, "h"), ({"X:Y": "x"}, "h"), ({"": "x"}, "h"), ({}, "")],
)
def test_bad_input_is_rejected(headers: dict[str, str], host: str) -> None:
    """Header names that cannot be sent, and a missing host, raise InvalidInput."""
    with pytest.raises(InvalidInput):
        SigV4Signer("us-east-1").sign(
            Credentials("A", "S"),
            method="POST",
            host=host,
            path="/",
            headers=headers,
            body=b"",
        )


@pytest.mark.parametrize("region", ["", "us east", "a/b", "ü"])
def test_bad_region_is_rejected(region: str) -> None:
    """A region that cannot appear in a credential scope raises InvalidInput."""
    with pytest.raises(InvalidInput):
        SigV4Signer(region)


def test_unencodable_header_value_raises_invalid_input() -> None:
    """A lone surrogate cannot be UTF-8 encoded: a typed error, not UnicodeEncodeError."""
    with pytest.raises(InvalidInput):
        SigV4Signer("us-east-1").sign(
            Credentials("A", "S"),
            method="POST",
            host="h",
            path="/",
            headers={"X-Thing": "\udc80"},
            body=b"",
        )
