"""Cancelled transactions, mapped to their actions.

DynamoDB answers a cancelled transaction with one reason per action, by position. The
transaction layer raises :class:`TxCanceled`, a
:class:`~dynamorm_async.errors.TransactionCanceled` whose ``reasons[i]`` is an
:class:`ActionReason`: the code, message and old item of action *i*, plus the action
itself (kind, entity, table, key) and, where DynamoDB returned the old item, the
decoded ``current`` entity.

>>> except TransactionCanceled as exc:
...     for r in exc.failed:                       # only the actions that failed
...         print(r.index, r.action.kind, r.entity, r.key, r.code, r.current)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import CancellationReason, DecodeError, InvalidInput, TransactionCanceled
from .transactions_actions import TxAction

__all__ = [
    "CONFLICT_CODES",
    "THROTTLE_CODES",
    "ActionReason",
    "TransactionTooLarge",
    "TxCanceled",
    "map_cancellation",
]

#: Cancellation codes that another attempt may not meet again.
CONFLICT_CODES = frozenset({"TransactionConflict"})
THROTTLE_CODES = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})


class TransactionTooLarge(InvalidInput):
    """A transaction is over 100 actions or 4 MB of items (caught before sending)."""


class ActionReason(CancellationReason):
    """Why action ``index`` of a cancelled transaction failed (``code == "None"``: it did
    not; it was only cancelled with the rest)."""

    __slots__ = ("action", "current")

    def __init__(
        self, index: int, code: str, message: str | None, item: Any, action: TxAction | None
    ) -> None:
        super().__init__(index, code, message, item)
        #: The action (``None`` only if DynamoDB sent more reasons than actions).
        self.action = action
        #: The stored entity DynamoDB returned for a failed condition, decoded.
        self.current: Any = None

    @property
    def failed(self) -> bool:
        """True if this action is why the transaction was cancelled."""
        return self.code != "None"

    @property
    def entity(self) -> type[Any] | None:
        """The entity class of the action (``None`` for raw actions)."""
        return None if self.action is None else self.action.entity

    @property
    def key(self) -> dict[str, Any] | None:
        """The wire key of the item the action touched."""
        return None if self.action is None else self.action.key

    @property
    def already_exists(self) -> bool:
        """A ``create`` whose item already exists."""
        return (
            self.code == "ConditionalCheckFailed"
            and self.action is not None
            and self.action.kind == "create"
            and self.item is not None
        )

    @property
    def version_conflict(self) -> bool:
        """A versioned update or delete that met another version (or a deleted item)."""
        action = self.action
        if self.code != "ConditionalCheckFailed" or action is None:
            return False
        if action.expected_version is None or action.repo is None:
            return False
        version = action.repo.meta.version
        if self.current is None or version is None:
            return True
        return bool(getattr(self.current, version.name) != action.expected_version)

    def __repr__(self) -> str:
        what = self.action.describe() if self.action is not None else f"#{self.index}"
        return f"ActionReason({what}: {self.code}{f' ({self.message})' if self.message else ''})"


class TxCanceled(TransactionCanceled):
    """A cancelled transaction whose ``reasons`` name their actions (see the module doc)."""

    def __init__(self, source: TransactionCanceled, reasons: Sequence[ActionReason]) -> None:
        self._mapped = list(reasons)
        failed = [r for r in self._mapped if r.failed]
        detail = "; ".join(
            f"{r.action.describe() if r.action is not None else f'#{r.index}'}: {r.code}"
            + (f" ({r.message})" if r.message else "")
            for r in failed
        )
        super().__init__(
            f"transaction cancelled: {detail or source.message}",
            code=source.code,
            status=source.status,
            request_id=source.request_id,
            response=source.response,
        )

    @property
    def reasons(self) -> list[ActionReason]:  # type: ignore[override]
        """Per-action reasons, in request order, each with its action."""
        return list(self._mapped)

    @property
    def failed(self) -> list[ActionReason]:  # type: ignore[override]
        """Only the actions that failed."""
        return [r for r in self._mapped if r.failed]

    @property
    def codes(self) -> set[str]:
        """The distinct codes of the failed actions."""
        return {r.code for r in self.failed}


async def map_cancellation(exc: TransactionCanceled, actions: Sequence[TxAction]) -> TxCanceled:
    """Attach ``actions`` to the reasons of ``exc`` and decode returned old items."""
    raw: Sequence[Mapping[str, Any]] = exc.response.get("CancellationReasons") or []
    reasons: list[ActionReason] = []
    for i, r in enumerate(raw):
        action = actions[i] if i < len(actions) else None
        reason = ActionReason(
            i, str(r.get("Code", "None")), r.get("Message"), r.get("Item"), action
        )
        if reason.item is not None and action is not None and action.repo is not None:
            try:
                decoded = await action.repo.decode_items([dict(reason.item)], action.table)
                reason.current = decoded[0]
            except DecodeError:
                reason.current = None
        reasons.append(reason)
    return TxCanceled(exc, reasons)
