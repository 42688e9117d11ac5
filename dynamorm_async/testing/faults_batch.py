"""Synthetic unprocessed batches for the fault proxy: split a BatchWriteItem or
BatchGetItem into the part to forward and the part to answer as unprocessed.

The held-back part never reaches the server, so it is never applied; the answer merges
it into the server's ``UnprocessedItems``/``UnprocessedKeys`` exactly as DynamoDB would
report it (the same write requests; the same keys with the table's read options).
"""

from __future__ import annotations

import random
from typing import Any

import attrs
import orjson

__all__ = ["BATCH_OPERATIONS", "BatchSplit", "split_batch"]

#: The operations whose answers can hold unprocessed entries.
BATCH_OPERATIONS = frozenset({"BatchWriteItem", "BatchGetItem"})


@attrs.frozen
class BatchSplit:
    """The body to forward (``None``: nothing) and the entries held back, per table."""

    operation: str
    request: dict[str, Any]
    forward: bytes | None
    kept: dict[str, list[Any]]

    @property
    def held(self) -> int:
        """How many entries are held back."""
        return sum(len(v) for v in self.kept.values())

    def answer(self, upstream_body: bytes) -> bytes:
        """The server's answer to the forwarded part, with the held-back entries added."""
        out: dict[str, Any] = orjson.loads(upstream_body) if upstream_body else {}
        items = self.request["RequestItems"]
        if self.operation == "BatchWriteItem":
            unprocessed = out.setdefault("UnprocessedItems", {})
            for table, entries in self.kept.items():
                unprocessed.setdefault(table, []).extend(entries)
        else:
            out.setdefault("Responses", {})
            unprocessed = out.setdefault("UnprocessedKeys", {})
            for table, keys in self.kept.items():
                spec = unprocessed.get(table)
                if spec is None:
                    options = {k: v for k, v in items[table].items() if k != "Keys"}
                    spec = unprocessed[table] = {**options, "Keys": []}
                spec["Keys"].extend(keys)
        return orjson.dumps(out)


def split_batch(operation: str, body: bytes, fraction: float, rng: random.Random) -> BatchSplit:
    """Hold back about ``fraction`` (at least one) of the entries of a batch request."""
    request: dict[str, Any] = orjson.loads(body)
    items: dict[str, Any] = request.get("RequestItems") or {}
    write = operation == "BatchWriteItem"
    entries = [
        (table, entry)
        for table, spec in items.items()
        for entry in (spec if write else spec.get("Keys", []))
    ]
    count = min(len(entries), max(1, round(len(entries) * fraction))) if entries else 0
    held = set(rng.sample(range(len(entries)), count))
    kept: dict[str, list[Any]] = {}
    sent: dict[str, list[Any]] = {}
    for i, (table, entry) in enumerate(entries):
        (kept if i in held else sent).setdefault(table, []).append(entry)
    if not sent:
        return BatchSplit(operation, request, None, kept)
    if write:
        forward_items: dict[str, Any] = sent
    else:
        forward_items = {t: {**items[t], "Keys": keys} for t, keys in sent.items()}
    forward = orjson.dumps({**request, "RequestItems": forward_items})
    return BatchSplit(operation, request, forward, kept)
