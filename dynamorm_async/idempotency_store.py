"""Persistence of idempotency records: the :class:`IdempotencyStore` ABC and its DynamoDB
implementation.

The record model is Powertools' (``id``, ``status``, ``expiration``,
``in_progress_expiration``, ``data``, ``validation``). A store has four operations,
each one request in the DynamoDB implementation:

* :meth:`~IdempotencyStore.claim`: one conditional PutItem of an ``INPROGRESS`` record
  that succeeds only if no live record holds the key (``attribute_not_exists(id) OR
  expiration < now OR (status = INPROGRESS AND in_progress_expiration < now)``). When it
  fails, ``ReturnValuesOnConditionCheckFailure=ALL_OLD`` hands back the record in the
  way, so no GetItem is needed;
* :meth:`~IdempotencyStore.complete`: one conditional UpdateItem storing the response;
* :meth:`~IdempotencyStore.release`: one conditional DeleteItem after a failure;
* :meth:`~IdempotencyStore.get`: a consistent GetItem (for inspection).

``complete`` and ``release`` are conditioned on the claim still being the caller's
(status ``INPROGRESS`` with the same in-progress expiry), so a caller whose claim
expired and was taken over cannot overwrite or delete the new owner's record.
"""

from __future__ import annotations

import abc
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
    """

    key: str
    status: RecordStatus
    expiration: int
    in_progress_expiration: int | None = None
    data: AttributeValue | None = None
    validation: str | None = None

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
        and, if ``INPROGRESS``, not past its in-progress expiry) holds its key.

        Returns ``None`` when the claim is made, else the record in the way. Must be
        atomic: of concurrent claims for one key, exactly one succeeds.
        """

    @abc.abstractmethod
    async def complete(self, claimed: IdempotencyRecord, done: IdempotencyRecord) -> bool:
        """Replace the ``claimed`` record by the ``COMPLETED`` record ``done``.

        Returns ``False`` (and changes nothing) when the claim is no longer the caller's.
        """

    @abc.abstractmethod
    async def release(self, claimed: IdempotencyRecord) -> bool:
        """Delete the ``claimed`` record so the call can be retried.

        Returns ``False`` (and deletes nothing) when the claim is no longer the caller's.
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


async def ensure_idempotency_table(target: Target, *, prefix: str = "") -> TableReport:
    """Create the ``idempotency`` table (with ``prefix``, TTL on ``expiration``) if missing."""
    return await ensure_table(target, IdempotencyItem, prefix=prefix)


_NAMES = {"#id": "id", "#exp": "expiration", "#st": "status", "#ipe": "in_progress_expiration"}
_OWNED = "#st = :ip AND #ipe = :mine"
_IP: AttributeValue = {"S": INPROGRESS}
#: Responses whose JSON is shorter than this cannot make a record exceed the item limit.
_SMALL = MAX_ITEM_SIZE - 4096


def _n(value: int) -> AttributeValue:
    return {"N": str(value)}


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
    return item


def from_item(item: Item) -> IdempotencyRecord:
    """The record of a stored item (``DecodeError`` if it is not one)."""
    try:
        status = item["status"]["S"]
        if status not in (INPROGRESS, COMPLETED):
            raise DecodeError(f"unknown idempotency status {status!r}", "status")
        ipe = item.get("in_progress_expiration")
        validation = item.get("validation")
        return IdempotencyRecord(
            key=item["id"]["S"],
            status=status,
            expiration=int(item["expiration"]["N"]),
            in_progress_expiration=None if ipe is None else int(ipe["N"]),
            data=item.get("data"),
            validation=None if validation is None else validation["S"],
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
            "ConditionExpression": (
                "attribute_not_exists(#id) OR #exp < :now OR (#st = :ip AND #ipe < :nowms)"
            ),
            "ExpressionAttributeNames": _NAMES,
            "ExpressionAttributeValues": {
                ":now": _n(int(now)),
                ":nowms": _n(int(now * 1000)),
                ":ip": _IP,
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            await client.call("PutItem", req)
        except ConditionalCheckFailed as exc:
            old = exc.item
            if old is None:  # a backend without ReturnValuesOnConditionCheckFailure
                return await self.get(record.key) or record
            return from_item(old)
        return None

    async def complete(self, claimed: IdempotencyRecord, done: IdempotencyRecord) -> bool:
        """One UpdateItem, conditioned on the claim still being the caller's.

        An item over DynamoDB's size limit raises
        :class:`~dynamorm_async.errors.ItemTooLarge` before sending.
        """
        if done.data is not None and len(orjson.dumps(done.data)) > _SMALL:
            check_item_size(to_item(done))  # JSON overstates DynamoDB's measure: exact check
        client, table = self._bound()
        values: dict[str, AttributeValue] = {
            ":ip": _IP,
            ":mine": _n(claimed.in_progress_expiration or 0),
            ":st": {"S": done.status},
            ":exp": _n(done.expiration),
        }
        sets = "SET #st = :st, #exp = :exp"
        names = {"#st": "status", "#exp": "expiration", "#ipe": "in_progress_expiration"}
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
        }
        try:
            await client.call("UpdateItem", req)
        except ConditionalCheckFailed:
            return False
        return True

    async def release(self, claimed: IdempotencyRecord) -> bool:
        """One DeleteItem, conditioned on the claim still being the caller's."""
        client, table = self._bound()
        req = {
            "TableName": table,
            "Key": {"id": {"S": claimed.key}},
            "ConditionExpression": _OWNED,
            "ExpressionAttributeNames": {"#st": "status", "#ipe": "in_progress_expiration"},
            "ExpressionAttributeValues": {
                ":ip": _IP,
                ":mine": _n(claimed.in_progress_expiration or 0),
            },
        }
        try:
            await client.call("DeleteItem", req)
        except ConditionalCheckFailed:
            return False
        return True

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
