"""AWS Signature Version 4, with the standard library only.

:class:`SigV4Signer` produces the same ``Authorization``, ``X-Amz-Date`` and
``X-Amz-Security-Token`` headers as botocore's ``SigV4Auth`` (tests prove it byte for
byte). The header rules, mirrored from botocore:

* Header names are compared case-insensitively. Existing ``Authorization`` and
  ``X-Amz-Date`` headers are replaced, and so is ``X-Amz-Security-Token`` when the
  credentials carry a session token (without one, a given token header is signed as is).
* A given ``Date`` header is re-stamped with the signing time and then replaces
  ``X-Amz-Date`` (botocore's rule; our client never sends ``Date``).
* Every other header is signed, except ``expect``, ``transfer-encoding``, ``user-agent``
  and ``x-amzn-trace-id`` (proxies and tracers may change those). ``host`` is always
  signed: the ``Host`` header if given, else the ``host`` argument (lower-cased).
* Values are trimmed and runs of whitespace collapse to one space. Case variants of the
  same name are joined with ``,`` in their order.
* A given ``X-Amz-Content-SHA256`` header is used as the payload hash; otherwise the
  body's SHA-256 is (``x-amz-content-sha256`` is never added, as botocore does not add it
  for DynamoDB).

The derived signing key is cached per (secret, date); the ``X-Amz-Date`` stamp per second.
"""

from __future__ import annotations

import hmac
from calendar import timegm
from datetime import UTC, datetime
from email.utils import formatdate
from hashlib import sha256
from operator import itemgetter
from time import gmtime, time
from typing import Any
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

from ..errors import InvalidInput
from .credentials import Credentials

__all__ = ["SigV4Signer", "canonical_path", "canonical_query"]

_ALGORITHM = "AWS4-HMAC-SHA256"
_UNSIGNED = frozenset(("expect", "transfer-encoding", "user-agent", "x-amzn-trace-id"))
# Names that need more than "sign it as given".
_SPECIAL = frozenset(
    ("authorization", "x-amz-date", "date", "x-amz-security-token", "x-amz-content-sha256")
)
_MAX_CACHE = 64
_FIRST = itemgetter(0)
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, also collapsing empty segments (``//``) as AWS requires."""
    out: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if out:
                out.pop()
        elif seg and seg != ".":
            out.append(seg)
    lead = "/" if path[0] == "/" else ""
    trail = "/" if path[-1] == "/" and out else ""
    return lead + "/".join(out) + trail


def canonical_path(path: str) -> str:
    """The SigV4 canonical URI of ``path`` as sent on the wire (already percent-encoded).

    Dot segments and empty segments are removed, then the path is URI-encoded once more
    (``/`` and ``~`` kept), as AWS does for every service but S3.
    """
    if path == "/" or not path:
        return "/"
    return quote(_remove_dot_segments(path), safe="/~")


def _encode_component(raw: str) -> str:
    return quote_from_bytes(unquote_to_bytes(raw), safe="-_.~")


def canonical_query(query: str) -> str:
    """The SigV4 canonical query string of ``query`` (as it appears in the URL, no ``?``).

    Each name and value is percent-decoded then encoded per SigV4 (only ``A-Za-z0-9-_.~``
    left as is); the pairs are sorted by name, then value. A pair without ``=`` gets an
    empty value.
    """
    if not query:
        return ""
    pairs = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        pairs.append((_encode_component(name), _encode_component(value)))
    pairs.sort()
    return "&".join([f"{k}={v}" for k, v in pairs])


def _check_name(region_or_service: str, what: str) -> str:
    if (
        not isinstance(region_or_service, str)
        or not region_or_service
        or not region_or_service.isascii()
        or any(c in region_or_service for c in "/ \t\r\n")
    ):
        raise InvalidInput(f"SigV4Signer: invalid {what} {region_or_service!r}")
    return region_or_service


class SigV4Signer:
    """Signs requests for one region and service with AWS Signature Version 4."""

    __slots__ = (
        "_keys",
        "_last_date",
        "_last_key",
        "_last_secret",
        "_lower",
        "_scope_tail",
        "_stamp",
        "_stamp_second",
        "region",
        "service",
    )

    def __init__(self, region: str, service: str = "dynamodb") -> None:
        self.region: str = _check_name(region, "region")
        self.service: str = _check_name(service, "service")
        self._scope_tail = f"/{region}/{service}/aws4_request"
        self._keys: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._last_secret: str | None = None
        self._last_date = ""
        self._last_key: tuple[Any, Any] = (None, None)
        self._stamp_second = -1
        self._stamp = ""
        self._lower: dict[str, str] = {}

    # ------------------------------------------------------------------ helpers

    def _amz_date(self, now: datetime | None) -> str:
        if now is None:
            second = int(time())
            if second != self._stamp_second:
                t = gmtime(second)
                self._stamp = (
                    f"{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}"
                    f"T{t.tm_hour:02d}{t.tm_min:02d}{t.tm_sec:02d}Z"
                )
                self._stamp_second = second
            return self._stamp
        if not isinstance(now, datetime):
            raise InvalidInput(f"SigV4Signer.sign: now must be a datetime, not {now!r}")
        if now.tzinfo is not None:
            now = now.astimezone(UTC)
        return now.strftime("%Y%m%dT%H%M%SZ")

    def _signing_key(self, secret: str, date: str) -> tuple[Any, Any]:
        """The HMAC-SHA256 inner and outer hash states keyed with the derived signing key."""
        if secret is self._last_secret and date == self._last_date:
            return self._last_key
        key = self._keys.get((secret, date))
        if key is None:
            k = hmac.digest(f"AWS4{secret}".encode(), date.encode(), "sha256")
            k = hmac.digest(k, self.region.encode(), "sha256")
            k = hmac.digest(k, self.service.encode(), "sha256")
            k = hmac.digest(k, b"aws4_request", "sha256").ljust(64, b"\0")  # 64: SHA-256 block
            # RFC 2104 with the padded key's hash states kept: copying them per request costs
            # less than half of a fresh hmac.new()/hmac.digest() (measured with OpenSSL 3.0).
            key = (sha256(k.translate(_IPAD)), sha256(k.translate(_OPAD)))
            if len(self._keys) >= _MAX_CACHE:
                self._keys.clear()
            self._keys[(secret, date)] = key
        self._last_secret, self._last_date, self._last_key = secret, date, key
        return key

    def _lowered(self, name: str) -> str:
        low = self._lower.get(name)
        if low is None:
            if not isinstance(name, str) or not name or any(c in name for c in ": \t\r\n"):
                raise InvalidInput(f"SigV4Signer.sign: invalid header name {name!r}")
            low = name.lower()
            if len(self._lower) >= _MAX_CACHE:
                self._lower.clear()
            self._lower[name] = low
        return low

    # ------------------------------------------------------------------ signing

    def sign(
        self,
        credentials: Credentials,
        *,
        method: str,
        host: str,
        path: str,
        query: str = "",
        headers: dict[str, str],
        body: bytes,
        now: datetime | None = None,
    ) -> None:
        """Sign a request by adding ``X-Amz-Date``, ``X-Amz-Security-Token`` (with a session
        token) and ``Authorization`` to ``headers`` (in place).

        ``host`` is the ``Host`` header value (port included only when not the scheme's
        default); ``path`` and ``query`` are as sent on the wire (percent-encoded, no ``?``).
        ``now`` (naive means UTC) overrides the clock.
        """
        amz_date = self._amz_date(now)
        token = credentials.session_token
        signed: list[tuple[str, str]] = []
        drop: list[str] = []
        payload_hash: str | None = None
        has_date = False
        has_host = False
        for name, value in headers.items():
            low = self._lowered(name)
            if low in _UNSIGNED:
                continue
            if low in _SPECIAL:
                if low == "x-amz-content-sha256":
                    if payload_hash is None:
                        payload_hash = value
                elif low == "date":
                    has_date = True
                    drop.append(name)
                    continue
                elif low != "x-amz-security-token" or token is not None:
                    drop.append(name)  # authorization, x-amz-date, replaced token
                    continue
            elif low == "host":
                has_host = True
            signed.append((low, value))
        for name in drop:
            del headers[name]
        if has_date:
            stamp = formatdate(timegm(datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").timetuple()))
            headers["Date"] = stamp
            signed.append(("date", stamp))
        else:
            headers["X-Amz-Date"] = amz_date
            signed.append(("x-amz-date", amz_date))
        if token is not None:
            headers["X-Amz-Security-Token"] = token
            signed.append(("x-amz-security-token", token))
        if not has_host:
            if not host:
                raise InvalidInput("SigV4Signer.sign: host is empty and no Host header is given")
            signed.append(("host", host.lower()))
        signed.sort(key=_FIRST)

        lines: list[str] = []
        names: list[str] = []
        prev = ""
        for low, value in signed:
            value = " ".join(value.split())
            if low == prev:
                lines[-1] += "," + value
            else:
                lines.append(f"{low}:{value}")
                names.append(low)
                prev = low
        signed_names = ";".join(names)
        if payload_hash is None:
            payload_hash = sha256(body).hexdigest()
        canonical = (
            f"{method.upper()}\n{canonical_path(path)}\n{canonical_query(query)}\n"
            f"{chr(10).join(lines)}\n\n{signed_names}\n{payload_hash}"
        )
        date = amz_date[:8]
        try:
            digest = sha256(canonical.encode()).hexdigest()
            to_sign = f"{_ALGORITHM}\n{amz_date}\n{date}{self._scope_tail}\n{digest}".encode()
            key = self._signing_key(credentials.secret_access_key, date)
        except UnicodeEncodeError as exc:
            raise InvalidInput(f"SigV4Signer.sign: request is not valid UTF-8 text: {exc}") from exc
        inner = key[0].copy()
        inner.update(to_sign)
        outer = key[1].copy()
        outer.update(inner.digest())
        signature = outer.hexdigest()
        headers["Authorization"] = (
            f"{_ALGORITHM} Credential={credentials.access_key_id}/{date}{self._scope_tail}, "
            f"SignedHeaders={signed_names}, Signature={signature}"
        )
