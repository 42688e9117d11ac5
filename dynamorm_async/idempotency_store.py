"""Persistence of idempotency records: the :class:`IdempotencyStore` ABC and its DynamoDB
implementation.

The record model is Powertools' (``id``, ``status``, ``expiration``,
``in_progress_expiration``, ``data``, ``validation``) plus ``claim_token``: a random
token each call writes into its claim. A store has four operations, each one request
in the DynamoDB implementation:

* :meth:`~IdempotencyStore.claim`: one conditional PutItem of an ``INPROGRESS`` record
  that succeeds only if no live record holds the key, or the holder is this very claim
  (``attribute_not_exists(id) OR expiration < now OR (status = INPROGRESS AND
  (in_progress_expiration < now OR claim_token = :mine))``). The last branch makes the
  client's retry of a claim whose answer was lost succeed instead of finding "someone
  else's" claim. When it fails, ``ReturnValuesOnConditionCheckFailure=ALL_OLD`` hands
  back the record in the way, so no GetItem is needed;
* :meth:`~IdempotencyStore.complete`: one conditional UpdateItem storing the response;
* :meth:`~IdempotencyStore.release`: one conditional DeleteItem after a failure;
* :meth:`~IdempotencyStore.get`: a consistent GetItem (for inspection).

``complete`` and ``release`` are conditioned on the claim still being the caller's
(status ``INPROGRESS`` with the caller's token), so a caller whose claim expired and
was taken over cannot overwrite or delete the new owner's record. They also ask for
``ALL_OLD`` on failure, so the retry of a completion or release whose answer was lost
(the record is already ``COMPLETED`` with the caller's token, or already gone) counts
as done rather than as a takeover.
"""

from __future__ import annotations

import abc
import secrets
from typing import Any, Literal

import attrs
import orjson

from .attrvalue import MAX_ITEM_SIZE, AttributeValue, Item, check_item_size
from .binding import Target, resolve_binding
from .client import DynamoClient
from .errors import ConditionalCheckFailed, DecodeError, DynamormError, InvalidInput
from .model import entity
from .tables import TableReport, ensure_table, validate_table_name

__all__ = [
    "COMPLETED",
    "INPROGRESS",
    "DynamoDBIdempotencyStore",
    "IdempotencyError",
    "IdempotencyInProgress",
    "IdempotencyItem",
    "IdempotencyKeyError",
    "IdempotencyPayloadMismatch",
    "IdempotencyPersistenceError",
    "IdempotencyRecord",
    "IdempotencyStore",
    "RecordStatus",
    "ensure_idempotency_table",
    "new_claim_token",
]

RecordStatus = Literal["INPROGRESS", "COMPLETED"]
#: The status of a claimed record whose function is still running.
INPROGRESS: RecordStatus = "INPROGRESS"
#: The status of a record holding a stored response.
COMPLETED: RecordStatus = "COMPLETED"


class IdempotencyError(DynamormError):
    """Base class of the idempotency errors."""


class IdempotencyInProgress(IdempotencyError):
    """Another call with the same key is running. Retryable: retry after a pause.

    ``key`` is the record key; ``until`` the epoch second at which the running call is
    presumed dead and the key may be claimed again (``None`` if unknown).
    """

    retryable = True

    def __init__(self, key: str, until: float | None) -> None:
        self.key = key
        self.until = until
        super().__init__(f"a call with idempotency key {key} is in progress")


class IdempotencyPayloadMismatch(IdempotencyError):
    """The key was used before with a different payload (its validation hash differs)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"idempotency key {key} was used with a different payload; "
            "use a new key for a different request"
        )


class IdempotencyKeyError(IdempotencyError, InvalidInput):
    """The key fields cannot be read from the call's arguments."""


class IdempotencyPersistenceError(IdempotencyError):
    """The function ran but its response could not be stored. The record stays
    ``INPROGRESS`` until its in-progress expiry, so no duplicate runs before then."""


@attrs.frozen
class IdempotencyRecord:
    """One idempotency record.

    ``key``: function-name prefix and payload hash. ``expiration``: epoch seconds after
    which the record no longer counts (also the table's TTL attribute).
    ``in_progress_expiration``: epoch **milliseconds** after which an ``INPROGRESS``
    record may be claimed again (the caller is presumed dead). ``data``: the encoded
    response (a wire AttributeValue). ``validation``: the payload validation hash.
    ``token``: the claim token of the call that claimed the key (kept when it completes).
    """

    key: str
    status: RecordStatus
    expiration: int
    in_progress_expiration: int | None = None
    data: AttributeValue | None = None
    validation: str | None = None
    token: str | None = None

    def is_expired(self, now: float) -> bool:
        """True when the record no longer counts at epoch second ``now``."""
        return self.expiration < int(now)

    def in_progress_expired(self, now: float) -> bool:
        """True when an ``INPROGRESS`` record's owner is presumed gone at ``now``."""
        ipe = self.in_progress_expiration
        return ipe is not None and ipe < int(now * 1000)


class IdempotencyStore(abc.ABC):
    """Where idempotency records live (Powertools' persistence-layer seam)."""

    @abc.abstractmethod
    async def claim(self, record: IdempotencyRecord, now: float) -> IdempotencyRecord | None:
        """Write the ``INPROGRESS`` ``record`` unless a live record (not expired at ``now``
        and, if ``INPROGRESS``, not past its in-progress expiry) holds its key. An
        ``INPROGRESS`` record with ``record.token`` is no obstacle: it is this claim,
        written by an attempt whose answer was lost.

        Returns ``None`` when the claim is made, else the record in the way. Must be
        atomic: of concurrent claims for one key, exactly one succeeds.
        """

    @abc.abstractmethod
    async def complete(self, claimed: IdempotencyRecord, done: IdempotencyRecord) -> bool:
        """Replace the ``claimed`` record by the ``COMPLETED`` record ``done``.

        Returns ``False`` (and changes nothing) when the claim is no longer the caller's
        (no ``INPROGRESS`` record with ``claimed.token``); ``True`` also when the record
        is already completed under ``claimed.token`` (a retry after a lost answer).
        """

    @abc.abstractmethod
    async def release(self, claimed: IdempotencyRecord) -> bool:
        """Delete the ``claimed`` record so the call can be retried.

        Returns ``False`` (and deletes nothing) when another call holds the key now;
        ``True`` also when the record is already gone.
        """

    @abc.abstractmethod
    async def get(self, key: str) -> IdempotencyRecord | None:
        """The record stored under ``key``, expired or not, or ``None``."""


@entity(table="idempotency", hash_key="id", ttl="expiration")
class IdempotencyItem:
    """The stored shape of a record; declared so the table can be created from it."""

    id: str
    status: str
    expiration: int
    in_progress_expiration: int | None = None
    data: Any = None
    validation: str | None = None
    claim_token: str | None = None


def new_claim_token() -> str:
    """A fresh random claim token (96 bits, URL-safe text)."""
    return secrets.token_urlsafe(12)


async def ensure_idempotency_table(target: Target, *, prefix: str = "") -> TableReport:
    """Create the ``idempotency`` table (with ``prefix``, TTL on ``expiration``) if missing."""
    return await ensure_table(target, IdempotencyItem, prefix=prefix)


_NAMES = {
    "#id": "id",
    "#exp": "expiration",
    "#st": "status",
    "#ipe": "in_progress_expiration",
    "#tok": "claim_token",
}
_CLAIMABLE = (
    "attribute_not_exists(#id) OR #exp < :now OR (#st = :ip AND (#ipe < :nowms OR #tok = :mine))"
)
_OWNED = "#st = :ip AND #tok = :mine"
_IP: AttributeValue = {"S": INPROGRESS}
#: Responses whose JSON is shorter than this cannot make a record exceed the item limit.
_SMALL = MAX_ITEM_SIZE - 4096


def _n(value: int) -> AttributeValue:
    return {"N": str(value)}


def _token(record: IdempotencyRecord) -> str:
    if record.token is None:
        raise InvalidInput(f"idempotency key {record.key}: a claim needs a token")
    return record.token


def to_item(record: IdempotencyRecord) -> Item:
    """The stored item of ``record``."""
    item: Item = {
        "id": {"S": record.key},
        "status": {"S": record.status},
        "expiration": _n(record.expiration),
    }
    if record.in_progress_expiration is not None:
        item["in_progress_expiration"] = _n(record.in_progress_expiration)
    if record.data is not None:
        item["data"] = record.data
    if record.validation is not None:
        item["validation"] = {"S": record.validation}
    if record.token is not None:
        item["claim_token"] = {"S": record.token}
    return item


def from_item(item: Item) -> IdempotencyRecord:
    """The record of a stored item (``DecodeError`` if it is not one)."""
    try:
        status = item["status"]["S"]
        if status not in (INPROGRESS, COMPLETED):
            raise DecodeError(f"unknown idempotency status {status!r}", "status")
        ipe = item.get("in_progress_expiration")
        validation = item.get("validation")
        token = item.get("claim_token")
        return IdempotencyRecord(
            key=item["id"]["S"],
            status=status,
            expiration=int(item["expiration"]["N"]),
            in_progress_expiration=None if ipe is None else int(ipe["N"]),
            data=item.get("data"),
            validation=None if validation is None else validation["S"],
            token=None if token is None else token["S"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"not an idempotency record: {item!r} ({exc!r})") from exc


class DynamoDBIdempotencyStore(IdempotencyStore):
    """Records in a DynamoDB table (``idempotency`` by default, hash key ``id``).

    ``target`` is a client, a :class:`~dynamorm_async.binding.Binding` or a binding
    source (the partner registry), resolved on every call; ``table_prefix`` applies to
    a bare client. Create the table with :func:`ensure_idempotency_table`.
    """

    def __init__(
        self, target: Target, *, table: str = "idempotency", table_prefix: str = ""
    ) -> None:
        self._source = resolve_binding(target, table_prefix)
        self.table = table
        self._names: dict[str, str] = {}

    def _bound(self) -> tuple[DynamoClient, str]:
        b = self._source.binding()
        name = self._names.get(b.table_prefix)
        if name is None:
            name = self._names[b.table_prefix] = validate_table_name(b.table_prefix + self.table)
        return b.client, name

    async def claim(self, record: IdempotencyRecord, now: float) -> IdempotencyRecord | None:
        """One conditional PutItem; the blocking record comes back with the failure."""
        client, table = self._bound()
        req = {
            "TableName": table,
            "Item": to_item(record),
            "ConditionExpression": _CLAIMABLE,
            "ExpressionAttributeNames": _NAMES,
            "ExpressionAttributeValues": {
                ":now": _n(int(now)),
                ":nowms": _n(int(now * 1000)),
                ":ip": _IP,
                ":mine": {"S": _token(record)},
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            await client.call("PutItem", req)
        except ConditionalCheckFailed as exc:
            return await self._in_the_way(exc, record.key) or record
        return None

    async def complete(self, claimed: IdempotencyRecord, done: IdempotencyRecord) -> bool:
        """One UpdateItem, conditioned on the claim still being the caller's.

        An item over DynamoDB's size limit raises
        :class:`~dynamorm_async.errors.ItemTooLarge` before sending.
        """
        token = _token(claimed)
        if done.data is not None and len(orjson.dumps(done.data)) > _SMALL:
            check_item_size(to_item(done))  # JSON overstates DynamoDB's measure: exact check
        client, table = self._bound()
        values: dict[str, AttributeValue] = {
            ":ip": _IP,
            ":mine": {"S": token},
            ":st": {"S": done.status},
            ":exp": _n(done.expiration),
        }
        sets = "SET #st = :st, #exp = :exp"
        names = {
            "#st": "status",
            "#exp": "expiration",
            "#ipe": "in_progress_expiration",
            "#tok": "claim_token",
        }
        if done.data is not None:
            sets += ", #data = :data"
            names["#data"] = "data"
            values[":data"] = done.data
        req = {
            "TableName": table,
            "Key": {"id": {"S": claimed.key}},
            "UpdateExpression": sets + " REMOVE #ipe",
            "ConditionExpression": _OWNED,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            await client.call("UpdateItem", req)
        except ConditionalCheckFailed as exc:
            # Already completed under this token: the answer to our own update was lost.
            old = await self._in_the_way(exc, claimed.key)
            return old is not None and old.status == COMPLETED and old.token == token
        return True

    async def release(self, claimed: IdempotencyRecord) -> bool:
        """One DeleteItem, conditioned on the claim still being the caller's."""
        client, table = self._bound()
        req = {
            "TableName": table,
            "Key": {"id": {"S": claimed.key}},
            "ConditionExpression": _OWNED,
            "ExpressionAttributeNames": {"#st": "status", "#tok": "claim_token"},
            "ExpressionAttributeValues": {":ip": _IP, ":mine": {"S": _token(claimed)}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            await client.call("DeleteItem", req)
        except ConditionalCheckFailed as exc:
            # Gone already (the answer to our own delete was lost): the key is free.
            return await self._in_the_way(exc, claimed.key) is None
        return True

    async def _in_the_way(self, exc: ConditionalCheckFailed, key: str) -> IdempotencyRecord | None:
        """The record that failed a condition: from ``ALL_OLD``, else (no item came back:
        none exists, or a backend ignores ``ReturnValuesOnConditionCheckFailure``) read."""
        old = exc.item
        return from_item(old) if old is not None else await self.get(key)

    async def get(self, key: str) -> IdempotencyRecord | None:
        """A consistent GetItem."""
        client, table = self._bound()
        out = await client.call(
            "GetItem", {"TableName": table, "Key": {"id": {"S": key}}, "ConsistentRead": True}
        )
        item = out.get("Item")
        return None if item is None else from_item(item)

    def __repr__(self) -> str:
        return f"DynamoDBIdempotencyStore(table={self.table!r})"
