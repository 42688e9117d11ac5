"""Audit trail: append-only, hash-chained entries written in the same transaction as the
change they record.

>>> trail = AuditTrail(db, secret=AUDIT_KEY)              # table "audit"
>>> async with db.transaction() as tx:
...     new = tx.update(captured_payment).value            # the entity as it will be stored
...     trail.record(tx, actor="user:42", action="capture", before=payment, after=new,
...                  request_id=ctx.aws_request_id)
>>> async for entry in trail.history(trail.aggregate_of(payment)): ...
>>> (await trail.verify_chain(trail.aggregate_of(payment))).raise_for_error()

Each aggregate (an id such as ``Payment#c1#p1``) has a chain of entries ``seq = 1, 2,
...`` and a head item (``seq = 0``) holding the last sequence number and hash. Recording
adds, to the transaction being committed, for each aggregate it touches:

* a Put of each new entry, conditioned on ``attribute_not_exists`` (append-only);
* a write of the head, conditioned on the head still holding the sequence number and
  hash read just before the commit (or on there being no head, for a new chain).

So a change never exists without its entry, two writers can never both append the same
sequence number, and a failed change writes no entry. Each entry stores who
(``actor``), what (``action``, the entity, the before/after of the changed fields, with
encrypted fields redacted), when (``at``) and the ``request_id``, plus ``prev_hash``
and ``hash``: SHA-256 (or, given ``secret``, HMAC-SHA256) of the canonical JSON of the
whole stored entry except ``hash``. :meth:`AuditTrail.verify_chain` recomputes the
chain and names the first entry that was edited, deleted, reordered or added.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import hmac
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import attrs
import orjson

from .attrvalue import AttributeValue, Item, to_attribute_value
from .db import Database
from .errors import DynamormError, InvalidInput
from .model import entity, meta_of
from .query import Query
from .repository import _utcnow
from .tables import TableReport, ensure_table
from .transactions import Transaction

__all__ = [
    "GENESIS",
    "AuditChainBroken",
    "AuditEntry",
    "AuditHead",
    "AuditTrail",
    "ChainReport",
    "ensure_audit_table",
]

#: The ``prev_hash`` of the first entry of every chain.
GENESIS = "0" * 64
_REDACTED: AttributeValue = {"S": "<encrypted>"}
_HEAD_SEQ = 0


@entity(table="audit", hash_key="aggregate", range_key="seq")
@attrs.define(slots=False)
class AuditEntry:
    """One audit entry. ``changes`` is canonical JSON: ``{field: [before, after]}`` with
    wire AttributeValues (``null`` for absent)."""

    aggregate: str
    seq: int
    prev_hash: str
    hash: str
    at: _dt.datetime
    actor: str
    action: str
    entity: str | None = None
    request_id: str | None = None
    changes: str = "{}"

    def changed(self) -> dict[str, tuple[AttributeValue | None, AttributeValue | None]]:
        """The changes as ``{field: (before, after)}`` wire AttributeValues."""
        raw: dict[str, list[Any]] = orjson.loads(self.changes)
        return {k: (v[0], v[1]) for k, v in raw.items()}


@entity(table="audit", hash_key="aggregate", range_key="seq")
@attrs.define(slots=False)
class AuditHead:
    """The head of an aggregate's chain (``seq`` is always 0)."""

    aggregate: str
    seq: int
    last_seq: int
    last_hash: str
    updated_at: _dt.datetime


async def ensure_audit_table(target: Any, *, prefix: str = "") -> TableReport:
    """Create the ``audit`` table (with ``prefix``) if it is missing."""
    return await ensure_table(target, AuditEntry, prefix=prefix)


class AuditChainBroken(DynamormError):
    """:meth:`ChainReport.raise_for_error`: the chain of ``aggregate`` fails at ``seq``."""

    def __init__(self, aggregate: str, seq: int, reason: str) -> None:
        self.aggregate = aggregate
        self.seq = seq
        self.reason = reason
        super().__init__(f"audit chain {aggregate} is broken at seq {seq}: {reason}")


@attrs.frozen
class ChainReport:
    """The result of :meth:`AuditTrail.verify_chain`: ``ok``, the number of entries read,
    and for a broken chain the first bad ``seq`` and why."""

    aggregate: str
    length: int
    bad_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """True when every entry and the head check out."""
        return self.bad_seq is None

    def raise_for_error(self) -> ChainReport:
        """Raise :class:`AuditChainBroken` if the chain is broken; else return self."""
        if self.bad_seq is not None:
            raise AuditChainBroken(self.aggregate, self.bad_seq, self.reason or "")
        return self


@attrs.frozen
class _Pending:
    aggregate: str
    actor: str
    action: str
    entity: str | None
    request_id: str | None
    changes: str


class AuditTrail:
    """Hash-chained audit entries in the ``audit`` table of ``db`` (see the module doc).

    ``secret`` (>= 32 bytes) makes the chain an HMAC chain, which nobody without the
    secret can recompute after an edit. ``clock`` stamps ``at`` (tz-aware UTC).
    """

    def __init__(
        self,
        db: Database,
        *,
        secret: bytes | None = None,
        clock: Callable[[], _dt.datetime] = _utcnow,
    ) -> None:
        if secret is not None and len(secret) < 32:
            raise InvalidInput("an audit secret must be at least 32 bytes")
        self.db = db
        self._secret = secret
        self._clock = clock
        self._entries = db.repository(AuditEntry)
        self._heads = db.repository(AuditHead)
        self._pending: weakref.WeakKeyDictionary[Transaction, list[_Pending]] = (
            weakref.WeakKeyDictionary()
        )

    # ------------------------------------------------------------------ hashing

    def entry_hash(self, item: Mapping[str, Any]) -> str:
        """The hash of a stored entry item (all attributes but ``hash``)."""
        body = orjson.dumps(
            {k: v for k, v in item.items() if k != "hash"}, option=orjson.OPT_SORT_KEYS
        )
        if self._secret is not None:
            return hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        return hashlib.sha256(body).hexdigest()

    @staticmethod
    def aggregate_of(obj: Any) -> str:
        """The default aggregate id of an entity: ``Class#key1#key2``."""
        meta = meta_of(obj)
        return "#".join(
            [meta.cls.__name__, *(str(getattr(obj, k.field_name)) for k in meta.key_attrs)]
        )

    # ------------------------------------------------------------------ record

    def record(
        self,
        tx: Transaction,
        *,
        actor: str,
        action: str,
        before: Any = None,
        after: Any = None,
        changes: Mapping[str, tuple[Any, Any]] | None = None,
        aggregate: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """Add an entry to ``tx``, written when it commits (in the same request).

        Give the entity ``before`` and/or ``after`` the change (``None`` for a create or
        a delete; pass ``tx.update(...).value`` / ``tx.put(...).value`` to record what is
        stored), whose differing fields are recorded, or ``changes`` as
        ``{field: (before, after)}`` plain values. ``aggregate`` defaults to
        :meth:`aggregate_of` the entity.
        """
        if not actor or not action:
            raise InvalidInput("an audit entry needs an actor and an action")
        subject = after if after is not None else before
        if aggregate is None:
            if subject is None:
                raise InvalidInput("give aggregate=, or before/after entities to derive it")
            aggregate = self.aggregate_of(subject)
        if changes is not None and subject is not None:
            raise InvalidInput("give before/after entities or changes=, not both")
        diff = _diff(before, after) if subject is not None else _plain(changes or {})
        pending = self._pending.get(tx)
        if pending is None:
            pending = self._pending[tx] = []
            tx.before_commit(self._commit_hook)
        pending.append(
            _Pending(
                aggregate,
                actor,
                action,
                None if subject is None else type(subject).__name__,
                request_id,
                orjson.dumps(diff, option=orjson.OPT_SORT_KEYS).decode(),
            )
        )

    async def _commit_hook(self, tx: Transaction) -> None:
        by_aggregate: dict[str, list[_Pending]] = {}
        for p in self._pending.pop(tx, []):
            by_aggregate.setdefault(p.aggregate, []).append(p)
        table, now = tx.table_of(AuditEntry), self._clock()
        heads = await asyncio.gather(
            *(self._heads.get(aggregate=a, seq=_HEAD_SEQ, consistent=True) for a in by_aggregate)
        )
        for (aggregate, entries), head in zip(by_aggregate.items(), heads, strict=True):
            seq, last = (0, GENESIS) if head is None else (head.last_seq, head.last_hash)
            for p in entries:
                seq += 1
                entry = AuditEntry(
                    aggregate, seq, last, "", now, p.actor, p.action, p.entity, p.request_id,
                    p.changes,
                )  # fmt: skip
                item = meta_of(AuditEntry).encode(entry)
                last = self.entry_hash(item)
                item["hash"] = {"S": last}
                tx.add_raw(_put_new(table, item), label=f"audit entry {aggregate}#{seq}")
            new_head = meta_of(AuditHead).encode(AuditHead(aggregate, _HEAD_SEQ, seq, last, now))
            if head is None:
                write = _put_new(table, new_head)
            else:  # the head must still be the one read: no one appended meanwhile
                write = {
                    "Put": {
                        "TableName": table,
                        "Item": new_head,
                        "ConditionExpression": "#s = :s AND #h = :h",
                        "ExpressionAttributeNames": {"#s": "last_seq", "#h": "last_hash"},
                        "ExpressionAttributeValues": {
                            ":s": {"N": str(head.last_seq)},
                            ":h": {"S": head.last_hash},
                        },
                    }
                }
            tx.add_raw(write, label=f"audit head {aggregate}")

    # ------------------------------------------------------------------ read

    def history(
        self, aggregate: str, *, newest_first: bool = False, limit: int | None = None
    ) -> Query[AuditEntry]:
        """The entries of ``aggregate`` in sequence order (or newest first): iterate it,
        or use ``.to_list()``, ``.pages()``, ``.first()``."""
        meta = meta_of(AuditEntry)
        cond = (meta.path("aggregate") == aggregate) & (meta.path("seq") >= 1)
        query: Query[AuditEntry] = self._entries.query(
            cond, reverse=newest_first, limit=limit, consistent=True
        )
        return query

    async def _raw_entries(self, aggregate: str) -> AsyncIterator[Item]:
        client, table = self._entries._bound()
        req: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "#a = :a AND #s >= :one",
            "ExpressionAttributeNames": {"#a": "aggregate", "#s": "seq"},
            "ExpressionAttributeValues": {":a": {"S": aggregate}, ":one": {"N": "1"}},
            "ConsistentRead": True,
        }
        while True:
            page = await client.call("Query", req)
            for item in page.get("Items", []):
                yield item
            lek = page.get("LastEvaluatedKey")
            if not lek:
                return
            req = {**req, "ExclusiveStartKey": lek}

    async def verify_chain(self, aggregate: str) -> ChainReport:
        """Recompute the chain of ``aggregate`` from the stored items (consistent reads).

        The first entry whose sequence number is not the next one (deleted, reordered),
        whose ``prev_hash`` is not the previous entry's hash, or whose stored hash is not
        the hash of its content (edited) is reported; so is a head that does not point
        at the last entry (the newest entries deleted).
        """
        n, prev = 0, GENESIS
        async for item in self._raw_entries(aggregate):
            seq = int(item.get("seq", {}).get("N", "-1"))
            if seq != n + 1:
                return ChainReport(aggregate, n, n + 1, f"entry {n + 1} is missing (next is {seq})")
            if item.get("prev_hash") != {"S": prev}:
                return ChainReport(aggregate, n, seq, "prev_hash is not the previous entry's hash")
            stored = item.get("hash", {}).get("S")
            if not isinstance(stored, str) or not hmac.compare_digest(
                stored, self.entry_hash(item)
            ):  # constant time: with a secret the hash is a keyed HMAC
                return ChainReport(aggregate, n, seq, "the entry's content does not match its hash")
            n, prev = seq, stored
        head = await self._heads.get(aggregate=aggregate, seq=_HEAD_SEQ, consistent=True)
        if head is None:
            if n:
                return ChainReport(aggregate, n, n, "the chain has entries but no head")
        elif head.last_seq != n or head.last_hash != prev:
            return ChainReport(
                aggregate,
                n,
                n + 1,
                f"the head points at entry {head.last_seq}; entries after "
                f"{n} are missing or the head was altered",
            )
        return ChainReport(aggregate, n)


def _put_new(table: str, item: Item) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(#a)",
            "ExpressionAttributeNames": {"#a": "aggregate"},
        }
    }


def _diff(before: Any, after: Any) -> dict[str, list[AttributeValue | None]]:
    if before is not None and after is not None and type(before) is not type(after):
        raise InvalidInput(f"before is a {type(before).__name__}, after a {type(after).__name__}")
    meta = meta_of(before if before is not None else after)
    old = meta.encode(before) if before is not None else {}
    new = meta.encode(after) if after is not None else {}
    out: dict[str, list[AttributeValue | None]] = {}
    for f in meta.fields.values():
        a, b = old.get(f.stored_name), new.get(f.stored_name)
        if a == b:
            continue
        if f.encrypted:
            a, b = (None if a is None else _REDACTED), (None if b is None else _REDACTED)
        out[f.name] = [a, b]
    return out


def _plain(changes: Mapping[str, tuple[Any, Any]]) -> dict[str, list[AttributeValue | None]]:
    out: dict[str, list[AttributeValue | None]] = {}
    for name, pair in changes.items():
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise InvalidInput(f"changes[{name!r}] must be a (before, after) pair")
        out[name] = [None if v is None else to_attribute_value(v, f"changes.{name}") for v in pair]
    return out
