"""One BatchWriteItem or BatchGetItem request for a chunk of prepared items.

Each function sends its chunk once, marks the items DynamoDB processed as done and
returns those it answered as unprocessed (matched back by table and key), for the
executor to send again with backoff. Errors of the request itself propagate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from .batch_keys import canonical_key
from .batch_report import BatchReport, ItemResult
from .client import DynamoClient
from .errors import DecodeError

__all__ = ["Decoder", "match_unprocessed", "send_get", "send_write"]

#: Decodes stored items of one entity class and table: ``(cls, table, items) -> entities``.
Decoder = Callable[[type[Any], str, list[dict[str, Any]]], Awaitable[list[Any]]]


async def send_write(
    client: DynamoClient, items: list[ItemResult], report: BatchReport
) -> list[ItemResult]:
    """Send ``items`` (puts and deletes) in one BatchWriteItem; return the unprocessed ones."""
    request: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        item.attempts += 1
        entries = request.get(item.table)
        if entries is None:
            entries = request[item.table] = []
        entries.append(item.payload)  # type: ignore[arg-type]
    report.requests += 1
    out = await client.call("BatchWriteItem", {"RequestItems": request})
    unprocessed = out.get("UnprocessedItems")
    left = match_unprocessed(items, unprocessed, _write_key_source) if unprocessed else []
    report.unprocessed += len(left)
    waiting = {id(i) for i in left}
    for item in items:
        if id(item) not in waiting:
            item.done()
    return left


async def send_get(
    client: DynamoClient,
    items: list[ItemResult],
    report: BatchReport,
    options: dict[str, Any],
    decode: Decoder,
) -> list[ItemResult]:
    """Read ``items`` (keys) in one BatchGetItem, setting each found item's ``value``;
    return the keys left unprocessed. ``options`` go in every table's entry."""
    request: dict[str, dict[str, Any]] = {}
    for item in items:
        item.attempts += 1
        entry = request.get(item.table)
        if entry is None:
            entry = request[item.table] = {"Keys": [], **options}
        entry["Keys"].append(item.key)
    report.requests += 1
    out = await client.call("BatchGetItem", {"RequestItems": request})
    unprocessed = out.get("UnprocessedKeys")
    left = match_unprocessed(items, unprocessed, _get_key_source) if unprocessed else []
    report.unprocessed += len(left)
    index = {i.canon: i for i in items}
    names = {i.table: list(i.key) for i in items}
    found: dict[tuple[type[Any], str], list[tuple[ItemResult, dict[str, Any]]]] = {}
    for table, raws in (out.get("Responses") or {}).items():
        for raw in raws:
            hit = index.get(_canon_from(table, names.get(table, ()), raw))
            if hit is not None and hit.entity is not None:
                found.setdefault((hit.entity, table), []).append((hit, raw))
    for (cls, table), pairs in found.items():
        await _decode(decode, cls, table, pairs)
    waiting = {id(i) for i in left}
    for item in items:
        if item.status == "pending" and id(item) not in waiting:
            item.done()
    return left


async def _decode(
    decode: Decoder, cls: type[Any], table: str, pairs: list[tuple[ItemResult, dict[str, Any]]]
) -> None:
    try:
        values = await decode(cls, table, [raw for _, raw in pairs])
    except DecodeError:
        for hit, raw in pairs:  # find the bad ones; the others still decode
            try:
                hit.value = (await decode(cls, table, [raw]))[0]
            except DecodeError as exc:
                hit.fail(exc)
        return
    for (hit, _), value in zip(pairs, values, strict=True):
        hit.value = value


def _write_key_source(entry: dict[str, Any]) -> dict[str, Any]:
    put = entry.get("PutRequest")
    if put is not None:
        item: dict[str, Any] = put["Item"]
        return item
    key: dict[str, Any] = entry["DeleteRequest"]["Key"]
    return key


def _get_key_source(entry: dict[str, Any]) -> dict[str, Any]:
    return entry


def _canon_from(table: str, names: Iterable[str], source: dict[str, Any]) -> tuple[Any, ...]:
    return canonical_key(table, {n: source[n] for n in names if n in source})


def match_unprocessed(
    items: list[ItemResult],
    unprocessed: dict[str, Any],
    source: Callable[[dict[str, Any]], dict[str, Any]],
) -> list[ItemResult]:
    """The items of ``items`` that DynamoDB named in ``unprocessed`` (matched by table and
    key; ``source`` picks the attributes holding the key from one unprocessed entry)."""
    index = {i.canon: i for i in items}
    names = {i.table: list(i.key) for i in items}
    left: list[ItemResult] = []
    for table, entries in unprocessed.items():
        table_names = names.get(table, ())
        raw = entries["Keys"] if isinstance(entries, dict) else entries
        for entry in raw:
            hit = index.get(_canon_from(table, table_names, source(entry)))
            if hit is not None:
                left.append(hit)
    return left
