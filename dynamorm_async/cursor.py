"""Opaque, url-safe, HMAC-signed pagination cursors.

A cursor carries DynamoDB's ``LastEvaluatedKey`` and is bound to the query that made
it (table, index and a fingerprint of the key condition and filter). A tampered,
truncated or foreign cursor raises :class:`~dynamorm_async.errors.InvalidCursor`
before any request is sent.

Format: ``base64url(json(key)) "." base64url(hmac_sha256(secret, fingerprint + json)[:16])``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from typing import Any

import orjson

from .errors import InvalidCursor

__all__ = ["CursorCodec", "default_cursor_secret"]

_SIG_BYTES = 16
_PROCESS_SECRET = secrets.token_bytes(32)


def default_cursor_secret() -> bytes:
    """``DYNAMORM_CURSOR_SECRET`` from the environment, else a random per-process secret.

    Set the variable (or pass ``cursor_secret=``) when cursors must survive a restart or
    travel between processes, as they do behind a load balancer or across Lambdas.
    """
    env = os.environ.get("DYNAMORM_CURSOR_SECRET")
    return env.encode("utf-8") if env else _PROCESS_SECRET


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Encodes and verifies cursors with one secret (at least 16 bytes)."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes | str | None = None) -> None:
        raw = default_cursor_secret() if secret is None else secret
        key = raw.encode("utf-8") if isinstance(raw, str) else raw
        if len(key) < 16:
            raise ValueError("a cursor secret must be at least 16 bytes")
        self._secret = key

    def _sign(self, fingerprint: str, payload: bytes) -> bytes:
        mac = hmac.new(
            self._secret, fingerprint.encode("utf-8") + b"\x00" + payload, hashlib.sha256
        )
        return mac.digest()[:_SIG_BYTES]

    def encode(self, last_key: Mapping[str, Any], fingerprint: str) -> str:
        """Make a cursor from ``LastEvaluatedKey`` for the query named by ``fingerprint``."""
        payload = orjson.dumps(last_key, option=orjson.OPT_SORT_KEYS)
        return f"{_b64(payload)}.{_b64(self._sign(fingerprint, payload))}"

    def decode(self, cursor: str, fingerprint: str) -> dict[str, Any]:
        """Verify ``cursor`` for ``fingerprint`` and return the ``ExclusiveStartKey``."""
        if not isinstance(cursor, str) or cursor.count(".") != 1:
            raise InvalidCursor("malformed cursor: expected the opaque string a page returned")
        body, sig = cursor.split(".")
        try:
            payload = _unb64(body)
            given = _unb64(sig)
        except (binascii.Error, ValueError) as exc:
            raise InvalidCursor("malformed cursor: not url-safe base64") from exc
        if not hmac.compare_digest(given, self._sign(fingerprint, payload)):
            raise InvalidCursor(
                "cursor signature mismatch: it was altered, truncated, signed with another "
                "secret, or made by a different query"
            )
        try:
            key = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:  # pragma: no cover - signed payloads are JSON
            raise InvalidCursor("cursor payload is not JSON") from exc
        if not isinstance(key, dict) or not all(isinstance(v, dict) for v in key.values()):
            raise InvalidCursor("cursor payload is not a DynamoDB key")
        return key
