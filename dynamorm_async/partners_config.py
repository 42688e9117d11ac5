"""Partner configuration and the errors of the partner layer.

A :class:`Partner` says how to reach one partner's data: the IAM role to assume (with an
optional external ID), the session name and duration of the assumed-role session, the
region and endpoint of its DynamoDB, and the prefix put before every table name.
Everything is validated when the object is built, so a bad config fails at start-up,
not on the first request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs

from .errors import DynamormError, InvalidInput
from .wire.credentials import CredentialRefreshFailed

__all__ = [
    "MAX_DURATION",
    "MIN_DURATION",
    "NoPartnerScope",
    "Partner",
    "PartnerCredentialsError",
    "UnknownPartner",
]

#: Shortest and longest assumed-role session STS grants, in seconds.
MIN_DURATION = 900
MAX_DURATION = 43_200

_NAME = re.compile(r"^[A-Za-z0-9_.@=,+-]{1,64}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_SESSION = re.compile(r"^[\w+=,.@-]{2,64}$")
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{0,200}$")


class UnknownPartner(DynamormError, LookupError):
    """No partner of that name is registered (or it was removed)."""


class NoPartnerScope(DynamormError, LookupError):
    """A partner-scoped call was made outside any ``async with registry.use(name):``."""


class PartnerCredentialsError(CredentialRefreshFailed):
    """A partner's credentials could not be obtained and none valid are left.

    ``partner`` names the partner; ``sts_code`` is the error code STS answered with
    (e.g. ``AccessDenied``), or ``None`` when STS was not reached or answered nothing
    usable. The original error is chained as ``__cause__``.
    """

    def __init__(self, partner: str, sts_code: str | None, detail: str) -> None:
        self.partner = partner
        self.sts_code = sts_code
        what = f"STS error {sts_code}" if sts_code else "error"
        super().__init__(f"credentials for partner {partner!r} unavailable: {what}: {detail}")


_Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _check(pattern: re.Pattern[str], what: str, *, optional: bool = False) -> _Validator:
    def validate(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str) or not pattern.match(value):
            raise InvalidInput(f"Partner.{attribute.name}={value!r}: {what}")

    return validate


def _duration(_inst: Any, _attribute: Any, value: Any) -> None:
    if type(value) is not int or not MIN_DURATION <= value <= MAX_DURATION:
        raise InvalidInput(
            f"Partner.duration={value!r}: STS grants {MIN_DURATION} to {MAX_DURATION} seconds"
        )


def _optional_text(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidInput(f"Partner.{attribute.name} must be a non-empty string or None")


def _default_session(partner: Partner) -> str:
    return ("dynamorm-" + partner.name)[:64]


@attrs.frozen
class Partner:
    """How to reach one partner's data.

    * ``name``: the key used with ``registry.use(name)`` (1-64 of ``A-Za-z0-9_.@=,+-``).
    * ``role_arn``: the IAM role assumed with STS AssumeRole.
    * ``external_id``: sent with AssumeRole only when set.
    * ``session_name``: the role session name (default ``dynamorm-<name>``), visible in
      the partner's CloudTrail.
    * ``duration``: requested session length in seconds (900 to 43,200; the role's
      maximum session duration must allow it).
    * ``region`` / ``endpoint_url``: where the partner's DynamoDB is (resolved like
      :func:`~dynamorm_async.wire.endpoints.resolve_endpoint`).
    * ``table_prefix``: put before every table name the partner touches.
    """

    name: str = attrs.field(validator=_check(_NAME, "1-64 characters of A-Za-z0-9_.@=,+-"))
    role_arn: str = attrs.field(
        validator=_check(_ROLE_ARN, "expected arn:aws:iam::<12-digit account>:role/<name>")
    )
    external_id: str | None = attrs.field(
        default=None,
        validator=_check(
            _EXTERNAL_ID, "2-1224 characters of letters, digits and _+=,.@:/-", optional=True
        ),
        repr=lambda v: "None" if v is None else "'***'",
    )
    session_name: str = attrs.field(
        default=attrs.Factory(_default_session, takes_self=True),
        validator=_check(_SESSION, "2-64 characters of letters, digits and _+=,.@-"),
    )
    duration: int = attrs.field(default=3600, validator=_duration)
    region: str | None = attrs.field(default=None, validator=_optional_text)
    endpoint_url: str | None = attrs.field(default=None, validator=_optional_text)
    table_prefix: str = attrs.field(
        default="",
        validator=_check(_PREFIX, "up to 200 characters of A-Za-z0-9_.- (valid in table names)"),
    )

    @property
    def account_id(self) -> str:
        """The 12-digit AWS account of ``role_arn``."""
        return self.role_arn.split(":")[4]
