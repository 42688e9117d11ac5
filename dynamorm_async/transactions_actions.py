"""The actions of a write transaction and how each is built from entities.

Each builder follows the repository's single-item semantics exactly, so a write means
the same inside and outside a transaction:

* ``put``: stamps ``updated_at`` (and a missing ``created_at``); no version check.
* ``create``: version 1, both timestamps, and "no item with this key" as condition.
* ``update`` with actions: sets ``updated_at``, increments the version, requires the item.
* ``update`` of a whole entity: requires the stored version to equal the entity's and
  writes version + 1 (optimistic locking).
* ``delete`` of a versioned entity: requires the stored version to equal the entity's.

Items are encoded (sealed, size-checked) at commit, by the entity's repository.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from .attrvalue import Item
from .errors import InvalidInput
from .expr import Condition, ExpressionBuilder, UpdateAction
from .repository import Repository

__all__ = ["ActionKind", "TxAction", "build_raw", "build_write"]

ActionKind = Literal["put", "create", "update", "delete", "condition_check", "raw", "get"]
_RAW_KINDS = ("Put", "Update", "Delete", "ConditionCheck")


class TxAction:
    """One action of a transaction, in request order (``index``).

    ``kind`` is ``put``, ``create``, ``update``, ``delete``, ``condition_check``,
    ``raw`` (or ``get`` in ``transact_get``); ``entity``, ``table`` and ``key`` say what
    it touches (``entity`` is ``None`` for raw actions). ``value`` is the entity as it
    will be stored, for puts, creates and whole-entity updates (version and timestamps
    set); ``None`` otherwise.
    ``request`` is its ``TransactItems`` entry (the item is added at commit).
    """

    __slots__ = (
        "entity",
        "expected_version",
        "index",
        "key",
        "kind",
        "label",
        "repo",
        "request",
        "table",
        "value",
    )

    def __init__(
        self,
        index: int,
        kind: ActionKind,
        table: str,
        key: Item | None,
        request: dict[str, Any],
        *,
        repo: Repository[Any] | None = None,
        value: Any = None,
        expected_version: int | None = None,
        label: str | None = None,
    ) -> None:
        self.index = index
        self.kind: ActionKind = kind
        self.table = table
        self.key = key
        self.request = request
        self.repo = repo
        self.entity: type[Any] | None = None if repo is None else repo.entity
        self.value = value
        #: For versioned writes: the version the stored item must have.
        self.expected_version = expected_version
        self.label = label

    def describe(self) -> str:
        """``#2 update Payment {...} in table`` (the label for raw actions)."""
        what = self.entity.__name__ if self.entity is not None else (self.label or "raw")
        return f"#{self.index} {self.kind} {what} {self.key or ''} in {self.table}".replace(
            "  ", " "
        )

    def __repr__(self) -> str:
        return f"TxAction({self.describe()})"


def _finish(
    b: ExpressionBuilder, body: dict[str, Any], condition: Condition | None
) -> dict[str, Any]:
    if condition is not None:
        body["ConditionExpression"] = b.condition(condition)
        body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    b.apply(body)
    return body


def build_write(
    index: int,
    kind: ActionKind,
    repo: Repository[Any],
    target: Any,
    key: Item,
    *,
    actions: Sequence[UpdateAction] = (),
    condition: Condition | None = None,
    check_version: bool = True,
) -> TxAction:
    """The action ``kind`` on ``target`` (an entity, or for key-only kinds a key) of ``repo``."""
    meta, table = repo.meta, repo.table_name
    b = ExpressionBuilder(entity=repo.entity)
    version = meta.version
    is_entity = isinstance(target, repo.entity)
    if kind == "put" or kind == "create" or (kind == "update" and not actions):
        if not is_entity:
            raise InvalidInput(f"{kind} needs a whole {repo.entity.__name__} entity")
        obj, expected = target, None
        cond = condition
        if kind == "create":
            obj = repo._stamp(obj, created=True)
            if version is not None:
                obj = attrs.evolve(obj, **{version.name: 1})
            exists = meta.path(meta.hash_key.field_name).not_exists()
            cond = exists if condition is None else exists & condition
        elif kind == "update":
            cond = repo._hash_exists()
            if version is not None:
                expected = getattr(obj, version.name)
                cond = cond & (meta.path(version.name) == expected)
                obj = attrs.evolve(obj, **{version.name: (expected or 0) + 1})
            if condition is not None:
                cond = cond & condition
            obj = repo._stamp(obj, created=False)
        else:
            obj = repo._stamp(obj, created=False)
        body = _finish(b, {"TableName": table}, cond)
        return TxAction(
            index, kind, table, key, {"Put": body}, repo=repo, value=obj, expected_version=expected
        )
    if kind == "update":
        acts = list(actions)
        touched = {a.path.elements[0] for a in acts}
        repo._refuse_encrypted(touched)
        if meta.updated_at is not None and meta.updated_at.stored_name not in touched:
            acts.append(meta.path(meta.updated_at.name).set(repo._clock()))
        if version is not None and version.stored_name not in touched:
            acts.append(meta.path(version.name).increment(1, initial=0))
        body = {"TableName": table, "Key": key}
        body["UpdateExpression"] = b.update(acts, protected=[k.stored_name for k in meta.key_attrs])
        cond = repo._hash_exists() if condition is None else repo._hash_exists() & condition
        return TxAction(index, kind, table, key, {"Update": _finish(b, body, cond)}, repo=repo)
    if kind == "delete":
        cond, expected = condition, None
        if check_version and version is not None and is_entity:
            expected = getattr(target, version.name)
            vcond = meta.path(version.name) == expected
            cond = vcond if cond is None else vcond & cond
        body = _finish(b, {"TableName": table, "Key": key}, cond)
        return TxAction(
            index, kind, table, key, {"Delete": body}, repo=repo, expected_version=expected
        )
    if condition is None:
        raise InvalidInput("condition_check needs a condition")
    body = _finish(b, {"TableName": table, "Key": key}, condition)
    return TxAction(index, "condition_check", table, key, {"ConditionCheck": body}, repo=repo)


def build_raw(index: int, entry: Mapping[str, Any], label: str | None) -> TxAction:
    """A raw ``TransactItems`` entry (``{"Put": {...}}`` and the like), checked for shape."""
    if not isinstance(entry, Mapping) or len(entry) != 1:
        raise InvalidInput(
            f"a raw action is one of {', '.join(_RAW_KINDS)} mapping to its request, "
            f"got {entry!r:.200}"
        )
    ((kind, body),) = entry.items()
    if kind not in _RAW_KINDS or not isinstance(body, Mapping):
        raise InvalidInput(f"a raw action must be one of {', '.join(_RAW_KINDS)}, not {kind!r}")
    table = body.get("TableName")
    if not isinstance(table, str) or not table:
        raise InvalidInput(f"raw {kind} action has no TableName")
    if kind == "Put" and not isinstance(body.get("Item"), Mapping):
        raise InvalidInput("raw Put action has no Item")
    if kind != "Put" and not isinstance(body.get("Key"), Mapping):
        raise InvalidInput(f"raw {kind} action has no Key")
    key = dict(body["Key"]) if kind != "Put" else None
    return TxAction(index, "raw", table, key, {kind: dict(body)}, label=label)
