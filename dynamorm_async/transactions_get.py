"""``transact_get``: read up to 100 items, across entities and tables, as one snapshot
(TransactGetItems).

>>> payment, account = await db.transact_get(
...     key(Payment, customer="c#1", payment_id="p#1"), key(Account, id="a#1"))

Each result is the decoded entity (``None`` when there is no item), typed per key. A
cancellation (e.g. a conflicting write transaction) raises
:class:`~dynamorm_async.transactions_errors.TxCanceled` naming each key.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from .batch_keys import KeyRef, canonical_key, resolve_key
from .errors import DuplicateItem, TransactionCanceled
from .transactions import MAX_TRANSACTION_ACTIONS, TransactionHost
from .transactions_actions import TxAction
from .transactions_errors import TransactionTooLarge, map_cancellation

__all__ = ["transact_get"]


async def transact_get(host: TransactionHost, refs: Sequence[KeyRef]) -> tuple[Any, ...]:
    """The entities of ``refs`` (entities or ``key(...)`` references), read atomically."""
    if len(refs) > MAX_TRANSACTION_ACTIONS:
        raise TransactionTooLarge(
            f"transact_get reads at most {MAX_TRANSACTION_ACTIONS} items, not {len(refs)}"
        )
    if not refs:
        return ()
    actions: list[TxAction] = []
    seen: dict[Hashable, int] = {}
    for i, ref in enumerate(refs):
        meta, wire = resolve_key(ref, f"transact_get #{i}")
        repo = host.repository(meta.cls)
        table = repo.table_name
        canon = canonical_key(table, wire)
        if canon in seen:
            raise DuplicateItem(
                f"transact_get keys #{seen[canon]} and #{i} name the same item {wire} in {table}"
            )
        seen[canon] = i
        request = {"Get": {"TableName": table, "Key": wire}}
        actions.append(TxAction(i, "get", table, wire, request, repo=repo))
    client = host.source.binding().client
    try:
        out = await client.call("TransactGetItems", {"TransactItems": [a.request for a in actions]})
    except TransactionCanceled as exc:
        raise await map_cancellation(exc, actions) from exc
    responses = out.get("Responses") or []
    results: list[Any] = []
    for action, response in zip(actions, responses, strict=True):
        item = (response or {}).get("Item")
        if item is None or action.repo is None:
            results.append(None)
            continue
        results.append((await action.repo.decode_items([item], action.table))[0])
    return tuple(results)
