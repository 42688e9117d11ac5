"""Write transactions: ``async with db.transaction() as tx:`` (TransactWriteItems).

>>> async with db.transaction() as tx:            # commits when the block ends
...     tx.create(Payment(...))
...     tx.update(account, Account.balance.increment(-10), condition=Account.balance >= 10)
...     tx.condition_check(key(Merchant, id="m-1"), Merchant.active == True)
>>> tx.token                                      # the ClientRequestToken that was used

* Up to 100 actions and 4 MB of items, across entities and tables; checked before
  sending. Two actions on one item raise :class:`~dynamorm_async.errors.DuplicateItem`.
* ``put``/``create``/``update``/``delete`` mean what they mean on a repository
  (versions, timestamps; see :mod:`dynamorm_async.transactions_actions`).
* A ``ClientRequestToken`` is generated (or given with ``token=``), so sending the same
  transaction again within DynamoDB's 10-minute window is idempotent. The client's
  retries of a lost answer reuse it.
* A cancelled transaction raises :class:`~dynamorm_async.transactions_errors.TxCanceled`
  (a ``TransactionCanceled``) whose ``reasons[i]`` names action *i*.
* With ``retry_conflicts=True``, a transaction cancelled only by
  ``TransactionConflict`` is sent again with backoff (full jitter), bounded by
  attempts and the deadline. Cancellations caused only by throttling are always retried.
* Leaving the block with an exception sends nothing.

Extending a transaction (e.g. an audit trail written atomically with the change):
``tx.create(entry)``/``tx.put(entry, condition=...)`` add entity actions,
``tx.add_raw({"Put": {...}}, label="audit")`` adds a raw ``TransactItems`` entry (use
``tx.table_of(Entity)`` for the bound table name), and ``tx.before_commit(hook)`` (or
``Database.before_commit``, for every transaction of a database) registers an
``async hook(tx)`` run just before the request is built; hooks may add actions.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, TypeVar

import orjson
import tenacity

from . import deadlines
from .attrvalue import item_size
from .batch_keys import EntityKey, KeyRef, canonical_key, entity_meta, resolve_key
from .binding import BindingSource
from .client import DynamoClient
from .errors import DuplicateItem, InvalidInput, TransactionCanceled, TransactionConflict
from .expr import Condition, UpdateAction
from .repository import Repository
from .transactions_actions import TxAction, build_raw, build_write
from .transactions_errors import (
    CONFLICT_CODES,
    THROTTLE_CODES,
    TransactionTooLarge,
    map_cancellation,
)
from .wire.retry import RetryPolicy

__all__ = [
    "DEFAULT_CONFLICT_RETRY",
    "MAX_TRANSACTION_ACTIONS",
    "MAX_TRANSACTION_BYTES",
    "BeforeCommit",
    "Transaction",
    "TransactionHost",
]

T = TypeVar("T")

#: DynamoDB's limits for one transaction.
MAX_TRANSACTION_ACTIONS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
#: Retries of conflicting (or throttled) transactions: 5 sends, full jitter 50 ms .. 1 s.
DEFAULT_CONFLICT_RETRY = RetryPolicy(max_attempts=5, base_delay=0.05, max_delay=1.0)

#: ``async hook(tx)`` run before a transaction is sent; it may add actions.
BeforeCommit = Callable[["Transaction"], Awaitable[None]]


class TransactionHost(Protocol):
    """What a transaction needs from a Database: repositories and the binding source."""

    source: BindingSource

    def repository(self, entity: type[T]) -> Repository[T]:
        """The repository of ``entity``."""
        ...


class Transaction:
    """A write transaction being built; sent by :meth:`commit` (or at the end of its
    ``async with`` block). See the module doc.

    ``hooks`` run at commit after the transaction's own :meth:`before_commit` hooks
    (``Database.transaction`` passes ``Database.before_commit``).
    """

    def __init__(
        self,
        host: TransactionHost,
        *,
        token: str | None = None,
        retry_conflicts: bool = False,
        retry: RetryPolicy | None = None,
        hooks: Sequence[BeforeCommit] = (),
    ) -> None:
        if token is not None and not (isinstance(token, str) and 1 <= len(token) <= 36):
            raise InvalidInput("a ClientRequestToken is 1 to 36 characters")
        self.host = host
        #: The ClientRequestToken sent with the transaction.
        self.token: str = token or str(uuid.uuid4())
        self.retry_conflicts = retry_conflicts
        self.retry = retry or DEFAULT_CONFLICT_RETRY
        #: The actions, in request order.
        self.actions: list[TxAction] = []
        #: How many times the request was sent (conflict retries included).
        self.attempts = 0
        self.committed = False
        self._closed = False
        self._hooks: list[BeforeCommit] = []
        self._final_hooks = tuple(hooks)
        self._keys: dict[Hashable, TxAction] = {}

    # ------------------------------------------------------------------ actions

    def put(self, obj: T, *, condition: Condition | None = None) -> TxAction:
        """Write ``obj`` whole (stamped like ``Repository.put``); optional condition."""
        return self._entity_action("put", obj, condition=condition)

    def create(self, obj: T, *, condition: Condition | None = None) -> TxAction:
        """Write ``obj`` only if its key is free (version 1, timestamps); ``condition`` is
        ANDed with that."""
        return self._entity_action("create", obj, condition=condition)

    def update(
        self, target: KeyRef, *actions: UpdateAction, condition: Condition | None = None
    ) -> TxAction:
        """With ``actions``: update the item of ``target`` (an entity or ``key(...)``).
        Without: write the whole entity ``target`` if the stored version is its version."""
        return self._entity_action("update", target, actions=actions, condition=condition)

    def delete(
        self, target: KeyRef, *, condition: Condition | None = None, check_version: bool = True
    ) -> TxAction:
        """Delete the item of ``target``; for a versioned entity, only at its version."""
        return self._entity_action(
            "delete", target, condition=condition, check_version=check_version
        )

    def condition_check(self, target: KeyRef, condition: Condition) -> TxAction:
        """Require ``condition`` on the item of ``target`` without writing it."""
        return self._entity_action("condition_check", target, condition=condition)

    def add_raw(self, entry: Mapping[str, Any], *, label: str | None = None) -> TxAction:
        """Add a raw ``TransactItems`` entry (``{"Put": {"TableName": ..., "Item": ...}}``,
        ``Update``, ``Delete`` or ``ConditionCheck``), sent as given."""
        self._check_open()
        action = build_raw(len(self.actions), entry, label)
        return self._append(action)

    def table_of(self, entity: type[Any]) -> str:
        """The table of ``entity`` in the current binding (prefix included)."""
        return self.host.repository(entity).table_name

    def before_commit(self, hook: BeforeCommit) -> None:
        """Run ``await hook(self)`` just before the transaction is sent."""
        self._check_open()
        self._hooks.append(hook)

    # ------------------------------------------------------------------ commit

    async def commit(self) -> None:
        """Run the hooks, validate, and send the transaction (once; later calls do nothing)."""
        if self._closed:
            return
        for hook in [*self._hooks, *self._final_hooks]:
            await hook(self)
        self._closed = True
        if not self.actions:
            self.committed = True
            return
        client = self._client()
        items = [await self._entry(a) for a in self.actions]
        self._check_size(items)
        request = {"TransactItems": items, "ClientRequestToken": self.token}
        await self._send(client, request)
        self.committed = True

    async def __aenter__(self) -> Transaction:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if et is not None:
            self._closed = True  # an exception in the block: nothing is sent
            return
        await self.commit()

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInput("this transaction was already committed or abandoned")

    def _entity_action(
        self,
        kind: Any,
        target: Any,
        *,
        actions: Sequence[UpdateAction] = (),
        condition: Condition | None = None,
        check_version: bool = True,
    ) -> TxAction:
        self._check_open()
        cls = target.entity if isinstance(target, EntityKey) else type(target)
        entity_meta(cls, f"transaction {kind}")
        repo = self.host.repository(cls)
        _, key = resolve_key(target, f"transaction {kind}")
        action = build_write(
            len(self.actions),
            kind,
            repo,
            target,
            key,
            actions=actions,
            condition=condition,
            check_version=check_version,
        )
        return self._append(action)

    def _append(self, action: TxAction) -> TxAction:
        if len(self.actions) >= MAX_TRANSACTION_ACTIONS:
            raise TransactionTooLarge(
                f"a transaction holds at most {MAX_TRANSACTION_ACTIONS} actions"
            )
        if action.key is not None:
            canon = canonical_key(action.table, action.key)
            other = self._keys.get(canon)
            if other is not None:
                raise DuplicateItem(
                    f"actions {other.describe()} and {action.describe()} touch the same item; "
                    "DynamoDB allows one action per item in a transaction"
                )
            self._keys[canon] = action
        self.actions.append(action)
        return action

    def _client(self) -> DynamoClient:
        client = self.host.source.binding().client
        for action in self.actions:
            if action.repo is not None and action.repo.client is not client:
                raise InvalidInput(
                    f"{action.describe()} goes to another client; a transaction has one"
                )
        return client

    async def _entry(self, action: TxAction) -> dict[str, Any]:
        if action.repo is None or "Put" not in action.request:
            return action.request
        body = dict(action.request["Put"])
        body["Item"] = await action.repo.encode_item(action.value, action.table)
        return {"Put": body}

    @staticmethod
    def _check_size(items: list[dict[str, Any]]) -> None:
        if len(orjson.dumps(items)) <= MAX_TRANSACTION_BYTES:
            return  # the JSON is longer than DynamoDB's measure of the same items
        total = 0
        for entry in items:
            ((_, body),) = entry.items()
            total += item_size(body.get("Item") or body.get("Key") or {})
        if total > MAX_TRANSACTION_BYTES:
            raise TransactionTooLarge(
                f"the transaction's items total {total} bytes, over DynamoDB's "
                f"{MAX_TRANSACTION_BYTES} bytes"
            )

    def _retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, TransactionConflict):
            return self.retry_conflicts
        if not isinstance(exc, TransactionCanceled):
            return False
        codes = {r.code for r in exc.failed}
        allowed = THROTTLE_CODES | (CONFLICT_CODES if self.retry_conflicts else frozenset())
        return bool(codes) and codes <= allowed

    async def _send(self, client: DynamoClient, request: dict[str, Any]) -> None:
        policy = self.retry

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= policy.max_attempts:
                return True
            left = deadlines.remaining()
            return left is not None and left <= state.upcoming_sleep

        retrying = tenacity.AsyncRetrying(
            stop=stop,
            wait=tenacity.wait_random_exponential(
                multiplier=policy.base_delay, max=policy.max_delay
            ),
            retry=tenacity.retry_if_exception(self._retryable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    self.attempts += 1
                    await client.call("TransactWriteItems", request)
        except TransactionCanceled as exc:
            raise await map_cancellation(exc, self.actions) from exc
