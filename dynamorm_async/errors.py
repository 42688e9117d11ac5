"""The typed exception family of dynamorm-async.

Every error the toolkit raises derives from :class:`DynamormError`. Errors fall in
four groups:

* **Bad input** (:class:`InvalidInput` and subclasses): detected *before* any request
  is sent. They are also ``ValueError`` so generic handlers keep working.
* **Decoding** (:class:`DecodeError`): a stored item does not match the entity.
* **Transport** (:class:`TransportError`): the endpoint could not be reached or
  answered something that is not DynamoDB JSON. Retryable.
* **Service** (:class:`DynamoDBError` and one subclass per DynamoDB error code):
  DynamoDB answered with an error. The class is chosen from the response's
  ``__type`` by table lookup, never by matching message text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "AccessDenied",
    "AlreadyExists",
    "BackupInUse",
    "CancellationReason",
    "ChecksumMismatch",
    "ConditionalCheckFailed",
    "DeadlineExceeded",
    "DecodeError",
    "DuplicateItem",
    "DynamoDBError",
    "DynamormError",
    "EncodeError",
    "ExpressionError",
    "IdempotentParameterMismatch",
    "InternalServerError",
    "InvalidCursor",
    "InvalidInput",
    "ItemCollectionSizeLimitExceeded",
    "ItemNotFound",
    "ItemTooLarge",
    "KeyError_",
    "LimitExceeded",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
    "ResourceInUse",
    "ResourceNotFound",
    "SchemaMismatch",
    "ServiceUnavailable",
    "Throttled",
    "ThrottlingException",
    "TransactionCanceled",
    "TransactionConflict",
    "TransactionInProgress",
    "TransportError",
    "UnrecognizedClient",
    "ValidationError",
    "VersionConflict",
    "error_from_response",
]


class DynamormError(Exception):
    """Base class of every error raised by dynamorm-async."""

    #: Whether retrying the same request may succeed.
    retryable: bool = False


# --------------------------------------------------------------------------- bad input


class InvalidInput(DynamormError, ValueError):
    """Input that DynamoDB would reject (or that would lose data), caught before sending."""


class EncodeError(InvalidInput):
    """A value cannot be stored. ``path`` names the attribute (``amount``, ``meta.ip``)."""

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class ItemTooLarge(InvalidInput):
    """An item is over DynamoDB's 400 KB limit."""

    def __init__(self, size: int, limit: int, what: str = "item") -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"{what} is {size} bytes, over DynamoDB's limit of {limit} bytes; "
            "store large values in S3 and keep a reference"
        )


class KeyError_(InvalidInput):
    """A key is missing a part, has a wrong type, or names an unknown attribute."""


class ExpressionError(InvalidInput):
    """An expression names an unknown field or is not valid where it is used."""


class InvalidCursor(InvalidInput):
    """A pagination cursor was tampered with, truncated, or made for another query."""


class DuplicateItem(InvalidInput):
    """The same key appears twice in one batch or transaction."""


class SchemaMismatch(DynamormError):
    """A table exists but its schema differs from the entity's declaration."""


# --------------------------------------------------------------------------- decoding


class DecodeError(DynamormError):
    """A stored item cannot be decoded into the entity (schema drift). ``path`` names it."""

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


# --------------------------------------------------------------------------- runtime


class DeadlineExceeded(DynamormError, TimeoutError):
    """The current deadline (see :mod:`dynamorm_async.deadlines`) ran out."""


class TransportError(DynamormError):
    """The endpoint could not be reached, or answered something that is not DynamoDB JSON."""

    retryable = True

    def __init__(self, message: str, endpoint: str) -> None:
        self.endpoint = endpoint
        super().__init__(f"{message} (endpoint {endpoint})")


class ChecksumMismatch(TransportError):
    """The response body does not match its ``x-amz-crc32`` header."""


class ItemNotFound(DynamormError, LookupError):
    """``get_or_raise`` found no item for the key."""


# --------------------------------------------------------------------------- service


class DynamoDBError(DynamormError):
    """DynamoDB answered with an error.

    Attributes: ``code`` (the short ``__type``, e.g. ``ValidationException``),
    ``message``, ``status`` (HTTP status), ``request_id`` and ``response`` (the decoded body).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        status: int = 400,
        request_id: str | None = None,
        response: Mapping[str, Any] | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id
        self.response: Mapping[str, Any] = response or {}
        super().__init__(f"{code}: {message}" if code else message)

    @property
    def is_server_error(self) -> bool:
        """True for 5xx answers."""
        return self.status >= 500


class ConditionalCheckFailed(DynamoDBError):
    """A condition expression was false. ``item`` holds the old item when asked for.

    ``item`` is the raw DynamoDB-JSON item returned with
    ``ReturnValuesOnConditionCheckFailure=ALL_OLD``, or ``None``.
    """

    @property
    def item(self) -> dict[str, Any] | None:
        """The existing item (DynamoDB JSON), when the request asked for it."""
        item = self.response.get("Item")
        return dict(item) if item is not None else None


class AlreadyExists(ConditionalCheckFailed):
    """``create`` found an item with the same key."""


class VersionConflict(ConditionalCheckFailed):
    """Optimistic locking failed: the stored version is not the expected one.

    ``current`` holds the current stored entity (or ``None`` if it was deleted).
    """

    def __init__(self, message: str, *, current: Any = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.current = current


class CancellationReason:
    """Why one action of a cancelled transaction failed."""

    __slots__ = ("code", "index", "item", "message")

    def __init__(self, index: int, code: str, message: str | None, item: Any) -> None:
        self.index = index
        self.code = code
        self.message = message
        self.item = item

    def __repr__(self) -> str:
        return (
            f"CancellationReason(index={self.index}, code={self.code!r}, message={self.message!r})"
        )


class TransactionCanceled(DynamoDBError):
    """A transaction was cancelled. ``reasons`` has one entry per action (``code == 'None'``
    for the actions that did not fail)."""

    @property
    def reasons(self) -> list[CancellationReason]:
        """Per-action reasons, in request order."""
        raw: Sequence[Mapping[str, Any]] = self.response.get("CancellationReasons") or []
        return [
            CancellationReason(i, str(r.get("Code", "None")), r.get("Message"), r.get("Item"))
            for i, r in enumerate(raw)
        ]

    @property
    def failed(self) -> list[CancellationReason]:
        """Only the actions that failed."""
        return [r for r in self.reasons if r.code != "None"]


class Throttled(DynamoDBError):
    """DynamoDB throttled the request. Retryable."""

    retryable = True


class ProvisionedThroughputExceeded(Throttled):
    """``ProvisionedThroughputExceededException``."""


class ThrottlingException(Throttled):
    """``ThrottlingException``."""


class RequestLimitExceeded(Throttled):
    """``RequestLimitExceeded``: account-level throughput limit."""


class ResourceNotFound(DynamoDBError):
    """The table or index does not exist (or is not ACTIVE yet)."""


class ResourceInUse(DynamoDBError):
    """The table is being created, updated or deleted, or already exists."""


class ValidationError(DynamoDBError):
    """DynamoDB rejected the request as invalid (``ValidationException``)."""


class ItemCollectionSizeLimitExceeded(DynamoDBError):
    """An item collection of a table with an LSI is over 10 GB."""


class InternalServerError(DynamoDBError):
    """DynamoDB failed internally (5xx). Retryable."""

    retryable = True


class ServiceUnavailable(InternalServerError):
    """``ServiceUnavailable`` (503). Retryable."""


class AccessDenied(DynamoDBError):
    """The credentials are not allowed to make this request."""


class UnrecognizedClient(AccessDenied):
    """The access key or security token is invalid."""


class TransactionConflict(DynamoDBError):
    """Another transaction is using the same item."""


class TransactionInProgress(DynamoDBError):
    """A transaction with the same ClientRequestToken is still in progress. Retryable."""

    retryable = True


class IdempotentParameterMismatch(DynamoDBError):
    """A ClientRequestToken was reused with different parameters."""


class LimitExceeded(DynamoDBError):
    """Too many concurrent control-plane operations."""


class BackupInUse(DynamoDBError):
    """A backup is in progress."""


_BY_CODE: dict[str, type[DynamoDBError]] = {
    "ConditionalCheckFailedException": ConditionalCheckFailed,
    "TransactionCanceledException": TransactionCanceled,
    "ProvisionedThroughputExceededException": ProvisionedThroughputExceeded,
    "ThrottlingException": ThrottlingException,
    "Throttling": ThrottlingException,
    "RequestLimitExceeded": RequestLimitExceeded,
    "ResourceNotFoundException": ResourceNotFound,
    "ResourceInUseException": ResourceInUse,
    "ValidationException": ValidationError,
    "SerializationException": ValidationError,
    "ItemCollectionSizeLimitExceededException": ItemCollectionSizeLimitExceeded,
    "InternalServerError": InternalServerError,
    "InternalFailure": InternalServerError,
    "ServiceUnavailable": ServiceUnavailable,
    "AccessDeniedException": AccessDenied,
    "UnrecognizedClientException": UnrecognizedClient,
    "InvalidSignatureException": UnrecognizedClient,
    "MissingAuthenticationTokenException": UnrecognizedClient,
    "IncompleteSignatureException": UnrecognizedClient,
    "ExpiredTokenException": UnrecognizedClient,
    "TransactionConflictException": TransactionConflict,
    "TransactionInProgressException": TransactionInProgress,
    "IdempotentParameterMismatchException": IdempotentParameterMismatch,
    "LimitExceededException": LimitExceeded,
    "BackupInUseException": BackupInUse,
}


def error_from_response(
    status: int, body: Mapping[str, Any], request_id: str | None = None
) -> DynamoDBError:
    """Build the typed error for a DynamoDB error answer (``status`` >= 400)."""
    raw_type = str(body.get("__type", ""))
    code = raw_type.rpartition("#")[2]
    message = str(body.get("message") or body.get("Message") or "")
    cls = _BY_CODE.get(code)
    if cls is None:
        cls = InternalServerError if status >= 500 else DynamoDBError
    return cls(message, code=code, status=status, request_id=request_id, response=body)
