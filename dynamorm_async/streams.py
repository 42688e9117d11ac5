"""DynamoDB Streams events for Lambda: typed records and partial-batch failure responses.

>>> for name, old, new in decode_stream_records(event, {"payments": Payment}):
...     if name == "INSERT": ...
>>> return await process_stream_records(event, {"payments": Payment}, handle_one)

Stream images are DynamoDB JSON exactly as the wire format of this package (``B`` as
base64 text), so each image goes straight through the entity's generated ``decode``.
A ``REMOVE`` made by the TTL process (``userIdentity`` of type ``Service``, principal
``dynamodb.amazonaws.com``) has ``removed_by_ttl`` set.

:func:`process_stream_records` runs a coroutine per record, in order, and builds the
``batchItemFailures`` answer (enable ``ReportBatchItemFailures`` on the event source
mapping): Lambda then retries from the first failed record instead of the whole batch.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar, cast, get_args

import attrs

from .attrvalue import Item
from .errors import DynamormError, InvalidInput
from .model import EntityMeta, meta_of
from .sealing import ItemSealer, MissingSealer, needs_sealer

__all__ = [
    "EventName",
    "InvalidStreamEvent",
    "StreamRecord",
    "batch_item_failures",
    "decode_stream_records",
    "decode_stream_records_sealed",
    "process_stream_records",
    "stream_table_name",
]

T = TypeVar("T")
EventName = Literal["INSERT", "MODIFY", "REMOVE"]
_EVENT_NAMES: frozenset[str] = frozenset(get_args(EventName))
Unknown = Literal["raise", "skip"]
Entities = Mapping[str, type[T]] | Iterable[type[T]]

_log = logging.getLogger(__name__)


class InvalidStreamEvent(InvalidInput):
    """The event is not a DynamoDB Streams event, or a record names a table not mapped."""


@attrs.frozen(slots=True, eq=False)
class StreamRecord(Generic[T]):
    """One stream record, decoded. Unpacks as ``(event_name, old, new)``.

    ``old``/``new`` are entities, or ``None`` when the image is absent (``INSERT`` has no
    old image, ``REMOVE`` no new one, and the stream's view type may carry neither).
    ``keys`` is the item key in wire format; ``sequence_number`` identifies the record
    in ``batchItemFailures``; ``created_at`` is ``ApproximateCreationDateTime`` (UTC);
    ``removed_by_ttl`` marks deletions made by DynamoDB's TTL process; ``raw`` is the
    record as received.
    """

    event_name: EventName
    old: T | None
    new: T | None
    table: str
    entity: type[T]
    keys: Item
    sequence_number: str
    event_id: str
    created_at: _dt.datetime | None
    removed_by_ttl: bool
    view_type: str | None
    raw: Mapping[str, Any] = attrs.field(repr=False)

    def __iter__(self) -> Iterator[Any]:
        """``event_name, old, new = record``."""
        return iter((self.event_name, self.old, self.new))

    @property
    def item(self) -> T | None:
        """The newest image there is: ``new``, else ``old``."""
        return self.new if self.new is not None else self.old


def stream_table_name(arn: str) -> str:
    """The table name in a stream ARN.

    The ARN reads ``arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>``.
    """
    parts = arn.split(":", 5)
    path = parts[5].split("/") if len(parts) == 6 and parts[2] == "dynamodb" else []
    if len(path) < 2 or path[0] != "table" or not path[1]:
        raise InvalidStreamEvent(f"not a DynamoDB stream ARN: {arn!r}")
    return path[1]


def _entity_map(entities: Entities[T], table_prefix: str) -> dict[str, EntityMeta[T]]:
    if isinstance(entities, Mapping):
        if table_prefix:
            raise InvalidInput("table_prefix applies to a list of entities, not to a mapping")
        return {table: meta_of(cls) for table, cls in entities.items()}
    metas = (meta_of(cls) for cls in entities)
    return {table_prefix + m.table: m for m in metas}


class _Raw:
    """A record's parts, its images still in wire format (unsealed in place if needed)."""

    __slots__ = ("body", "meta", "name", "new", "old", "record", "table")

    def __init__(self, record: Mapping[str, Any], table: str, meta: EntityMeta[Any]) -> None:
        self.record = record
        self.name = cast(EventName, record["eventName"])
        self.body: Mapping[str, Any] = record["dynamodb"]
        self.table = table
        self.meta = meta
        self.old: Item | None = self.body.get("OldImage")
        self.new: Item | None = self.body.get("NewImage")

    def decode(self) -> StreamRecord[Any]:
        meta = self.meta
        try:
            old_obj = None if self.old is None else meta.decode(self.old)
            new_obj = None if self.new is None else meta.decode(self.new)
        except DynamormError as exc:
            exc.add_note(f"in stream record {self.record.get('eventID')} of table {self.table}")
            raise
        identity = self.record.get("userIdentity") or {}
        when = self.body.get("ApproximateCreationDateTime")
        return StreamRecord(
            event_name=self.name,
            old=old_obj,
            new=new_obj,
            table=self.table,
            entity=meta.cls,
            keys=dict(self.body.get("Keys") or {}),
            sequence_number=str(self.body.get("SequenceNumber", "")),
            event_id=str(self.record.get("eventID", "")),
            created_at=(
                None
                if not isinstance(when, int | float)
                else _dt.datetime.fromtimestamp(when, _dt.UTC)
            ),
            removed_by_ttl=(
                self.name == "REMOVE"
                and identity.get("type") == "Service"
                and identity.get("principalId") == "dynamodb.amazonaws.com"
            ),
            view_type=self.body.get("StreamViewType"),
            raw=self.record,
        )


def _records(event: Mapping[str, Any]) -> Sequence[Any]:
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise InvalidStreamEvent("the event has no 'Records' list; is it a DynamoDB stream event?")
    return records


def _check(record: Any) -> Mapping[str, Any]:
    if not isinstance(record, Mapping) or record.get("eventSource") != "aws:dynamodb":
        source = record.get("eventSource") if isinstance(record, Mapping) else record
        raise InvalidStreamEvent(f"not a DynamoDB stream record (eventSource {source!r})")
    if record.get("eventName") not in _EVENT_NAMES or not isinstance(
        record.get("dynamodb"), Mapping
    ):
        raise InvalidStreamEvent(f"stream record {record.get('eventID')!r} is malformed")
    return record


def _parse(
    event: Mapping[str, Any], metas: Mapping[str, EntityMeta[Any]], unknown: Unknown
) -> list[_Raw]:
    out = []
    for record in map(_check, _records(event)):
        table = stream_table_name(str(record.get("eventSourceARN", "")))
        meta = metas.get(table)
        if meta is not None:
            out.append(_Raw(record, table, meta))
        elif unknown != "skip":
            raise InvalidStreamEvent(
                f"stream record of table {table!r}, which has no entity "
                f"(mapped: {', '.join(sorted(metas)) or 'none'})"
            )
    return out


def decode_stream_records(
    event: Mapping[str, Any],
    entities: Entities[T],
    *,
    table_prefix: str = "",
    unknown: Unknown = "raise",
) -> list[StreamRecord[T]]:
    """Decode every record of a DynamoDB Streams Lambda ``event``, in order.

    ``entities`` maps table names to entity classes (``{"payments": Payment}``), or lists
    entity classes, each for ``table_prefix + its table``. A record of another table
    raises :class:`InvalidStreamEvent`, or is left out with ``unknown="skip"``. An image
    that does not decode raises :class:`~dynamorm_async.errors.DecodeError` (with a note
    naming the record). Entities with encrypted fields need
    :func:`decode_stream_records_sealed`.
    """
    metas = _entity_map(entities, table_prefix)
    for meta in metas.values():
        if needs_sealer(meta):
            raise MissingSealer(
                f"{meta.cls.__name__} has encrypted fields; use decode_stream_records_sealed()"
            )
    return [raw.decode() for raw in _parse(event, metas, unknown)]


async def decode_stream_records_sealed(
    event: Mapping[str, Any],
    entities: Entities[T],
    sealer: ItemSealer | None,
    *,
    table_prefix: str = "",
    unknown: Unknown = "raise",
) -> list[StreamRecord[T]]:
    """:func:`decode_stream_records` for entities with encrypted fields: their images are
    unsealed by ``sealer`` (one ``unseal`` call per table) before decoding."""
    raws = _parse(event, _entity_map(entities, table_prefix), unknown)
    await _unseal(raws, sealer)
    return [raw.decode() for raw in raws]


async def _unseal(raws: Sequence[_Raw], sealer: ItemSealer | None) -> None:
    by_table: dict[str, list[_Raw]] = {}
    for raw in raws:
        if needs_sealer(raw.meta):
            by_table.setdefault(raw.table, []).append(raw)
    for table, group in by_table.items():
        meta = group[0].meta
        if sealer is None:
            raise MissingSealer(f"{meta.cls.__name__} has encrypted fields; pass sealer=")
        images = [img for r in group for img in (r.old, r.new) if img is not None]
        plain = iter(await sealer.unseal(meta, table, images))
        for r in group:
            if r.old is not None:
                r.old = next(plain)
            if r.new is not None:
                r.new = next(plain)


def batch_item_failures(identifiers: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """The partial-batch response: ``{"batchItemFailures": [{"itemIdentifier": id}, ...]}``.

    For DynamoDB and Kinesis streams the identifier is the record's sequence number; for
    SQS it is the message id. An empty list tells Lambda the whole batch succeeded.
    """
    return {"batchItemFailures": [{"itemIdentifier": i} for i in identifiers]}


async def process_stream_records(
    event: Mapping[str, Any],
    entities: Entities[T],
    handle: Callable[[StreamRecord[T]], Awaitable[object]],
    *,
    table_prefix: str = "",
    unknown: Unknown = "raise",
    sealer: ItemSealer | None = None,
    stop_on_failure: bool = True,
) -> dict[str, list[dict[str, str]]]:
    """Run ``handle`` on each record in order and return the ``batchItemFailures`` answer.

    A record fails when its images do not decode or ``handle`` raises (the error is
    logged with its traceback). With ``stop_on_failure`` (the default) processing stops
    at the first failure and only that record is reported: Lambda retries the batch from
    it, so records of one item are never handled out of order. Otherwise every record is
    tried and every failure reported. Malformed events and unmapped tables raise (they
    are deployment errors, not bad records).
    """
    metas = _entity_map(entities, table_prefix)
    raws = _parse(event, metas, unknown)
    failed: list[str] = []
    for raw in raws:
        seq = str(raw.body.get("SequenceNumber", ""))
        try:
            await _unseal([raw], sealer)
            await handle(raw.decode())
        except Exception:
            _log.exception("stream record %s (%s) of %s failed", seq, raw.name, raw.table)
            failed.append(seq)
            if stop_on_failure:
                break
    return batch_item_failures(failed)
