"""Compile conditions, key conditions, updates and projections to expression text.

One :class:`ExpressionBuilder` serves one request: every attribute name becomes a
``#nN`` placeholder (the same name always gets the same placeholder) and every value
a ``:vN`` placeholder, across all the expressions of the request. Names never appear
in the expression text, so reserved words, dots, ``#``, ``:`` and any other
character are safe. ``apply(request)`` then adds ``ExpressionAttributeNames`` and
``ExpressionAttributeValues``.

Use a new builder per request (per action of a transaction): placeholders are only
meaningful inside the request they were made for.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Final

from ..attrvalue import AttributeValue
from ..errors import ExpressionError
from .conditions import (
    And,
    AttributeType,
    BeginsWith,
    Between,
    Compare,
    Condition,
    Contains,
    Exists,
    In,
    Not,
    NotExists,
    Or,
)
from .keycond import split_key_condition
from .operands import Operand, Value
from .path import Path, Size
from .update import (
    AddAction,
    Arithmetic,
    DeleteAction,
    IfNotExists,
    ListAppend,
    RemoveAction,
    SetAction,
    UpdateAction,
)

__all__ = ["MAX_EXPRESSION_LENGTH", "ExpressionBuilder"]

#: DynamoDB's limit on the length of one expression string, in bytes.
MAX_EXPRESSION_LENGTH: Final = 4096

_CLAUSES: Final = ("SET", "REMOVE", "ADD", "DELETE")


class ExpressionBuilder:
    """Accumulates the placeholders of one request and compiles its expressions.

    ``entity``, if given, makes the builder reject paths that belong to another
    entity class (a path's ``owner`` must be ``entity`` or one of its bases).

    >>> b = ExpressionBuilder()
    >>> b.condition(Path(("status",)) == "paid")
    '#n0 = :v0'
    """

    __slots__ = ("_entity", "_name_ph", "_names", "_values")

    def __init__(self, *, entity: type | None = None) -> None:
        self._entity = entity
        self._names: dict[str, str] = {}
        self._name_ph: dict[str, str] = {}
        self._values: dict[str, AttributeValue] = {}

    # ----------------------------------------------------------------- placeholders

    @property
    def names(self) -> dict[str, str]:
        """``ExpressionAttributeNames`` so far (placeholder to name), a copy."""
        return dict(self._names)

    @property
    def values(self) -> dict[str, AttributeValue]:
        """``ExpressionAttributeValues`` so far (placeholder to value), a copy."""
        return dict(self._values)

    def name(self, name: str) -> str:
        """The placeholder of attribute name ``name`` (one per distinct name)."""
        ph = self._name_ph.get(name)
        if ph is None:
            ph = f"#n{len(self._names)}"
            self._names[ph] = name
            self._name_ph[name] = ph
        return ph

    def value(self, av: AttributeValue) -> str:
        """A new placeholder for the wire-format AttributeValue ``av``."""
        ph = f":v{len(self._values)}"
        self._values[ph] = av
        return ph

    def path(self, path: Path) -> str:
        """The document path ``path`` with every name replaced by a placeholder."""
        if not isinstance(path, Path):
            raise ExpressionError(f"expected a Path, got {type(path).__name__}")
        entity = self._entity
        if entity is not None and path.owner is not None and not issubclass(entity, path.owner):
            raise ExpressionError(
                f"{path!r} belongs to {path.owner.__name__}, not to {entity.__name__}"
            )
        elements = path.elements
        out = [self.name(str(elements[0]))]
        for e in elements[1:]:
            out.append(f"[{e}]" if isinstance(e, int) else "." + self.name(e))
        return "".join(out)

    def apply(self, request: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Add ``ExpressionAttributeNames``/``Values`` to ``request`` (if non-empty).

        Entries already in the request are kept; a placeholder already there with a
        different meaning raises :class:`~dynamorm_async.errors.ExpressionError`.
        Returns ``request``.
        """
        for key, mine in (
            ("ExpressionAttributeNames", self._names),
            ("ExpressionAttributeValues", self._values),
        ):
            if not mine:
                continue
            existing = request.get(key)
            if existing:
                for ph, v in mine.items():
                    if ph in existing and existing[ph] != v:
                        raise ExpressionError(
                            f"{key} already maps {ph} to {existing[ph]!r}; "
                            "use one ExpressionBuilder per request"
                        )
                request[key] = {**existing, **mine}
            else:
                request[key] = dict(mine)
        return request

    # ----------------------------------------------------------------- expressions

    def condition(self, condition: Condition) -> str:
        """A ConditionExpression or FilterExpression for ``condition``."""
        if not isinstance(condition, Condition):
            raise ExpressionError(_not_a_condition(condition))
        with self._atomic():
            return _checked("condition", self._cond(condition))

    def key_condition(
        self, condition: Condition, *, hash_key: str, range_key: str | None = None
    ) -> str:
        """A KeyConditionExpression, validated against the stored key names.

        See :func:`~dynamorm_async.expr.keycond.split_key_condition` for the rules.
        """
        parts = split_key_condition(condition, hash_key, range_key)
        with self._atomic():
            text = self._cond(parts.hash_condition)
            if parts.range_condition is not None:
                text += " AND " + self._cond(parts.range_condition)
            return _checked("key condition", text)

    def update(
        self,
        actions: UpdateAction | Iterable[UpdateAction],
        *,
        protected: Collection[str] = (),
    ) -> str:
        """An UpdateExpression: the actions grouped by clause (SET, REMOVE, ADD, DELETE).

        Two actions on the same path, or on overlapping paths (``a`` and ``a.b``),
        raise :class:`~dynamorm_async.errors.ExpressionError`, as do actions on a
        top-level attribute named in ``protected`` (e.g. the key attributes).
        """
        acts = [actions] if isinstance(actions, UpdateAction) else list(actions)
        if not acts:
            raise ExpressionError("an update needs at least one action")
        for a in acts:
            if not isinstance(a, UpdateAction):
                raise ExpressionError(
                    f"expected update actions (path.set(...), path.remove(), ...), "
                    f"got {type(a).__name__}"
                )
            if a.path.elements[0] in protected:
                raise ExpressionError(f"{a.path.name} cannot be updated (key attribute)")
        _check_disjoint([a.path for a in acts], "updated")
        groups: dict[str, list[UpdateAction]] = {c: [] for c in _CLAUSES}
        for a in acts:
            groups[a.clause].append(a)
        with self._atomic():
            text = " ".join(
                f"{c} {', '.join(self._action(a) for a in group)}"
                for c, group in groups.items()
                if group
            )
            return _checked("update", text)

    def projection(self, paths: Path | str | Iterable[Path | str]) -> str:
        """A ProjectionExpression for ``paths`` (a ``str`` is a top-level attribute name).

        Repeated paths are kept once; overlapping paths (``a`` and ``a.b``) raise
        :class:`~dynamorm_async.errors.ExpressionError`.
        """
        items = [paths] if isinstance(paths, Path | str) else list(paths)
        unique: dict[tuple[str | int, ...], Path] = {}
        for p in items:
            if isinstance(p, str):
                p = Path((p,))
            if not isinstance(p, Path):
                raise ExpressionError(
                    f"a projection lists paths or attribute names, got {type(p).__name__}"
                )
            unique.setdefault(p.elements, p)
        if not unique:
            raise ExpressionError("a projection needs at least one path")
        _check_disjoint(list(unique.values()), "projected")
        with self._atomic():
            return _checked("projection", ", ".join(self.path(p) for p in unique.values()))

    # ----------------------------------------------------------------- rendering

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        """Drop the placeholders added by a failed compile: DynamoDB rejects unused ones."""
        n_names, n_values = len(self._names), len(self._values)
        try:
            yield
        except BaseException:
            for ph in list(self._names)[n_names:]:
                del self._name_ph[self._names.pop(ph)]
            for ph in list(self._values)[n_values:]:
                del self._values[ph]
            raise

    def _operand(self, o: Operand) -> str:
        if isinstance(o, Path):
            return self.path(o)
        if isinstance(o, Value):
            return self.value(o.av)
        if isinstance(o, Size):
            return f"size({self.path(o.path)})"
        raise ExpressionError(f"not an operand: {o!r}")

    def _cond(self, c: Condition) -> str:
        if isinstance(c, Compare):
            return f"{self._operand(c.left)} {c.op} {self._operand(c.right)}"
        if isinstance(c, And | Or):
            sep = " AND " if isinstance(c, And) else " OR "
            return sep.join(self._nested(x) for x in c.conditions)
        if isinstance(c, Not):
            return f"NOT {self._nested(c.condition)}"
        if isinstance(c, Between):
            return (
                f"{self._operand(c.operand)} BETWEEN {self._operand(c.low)} "
                f"AND {self._operand(c.high)}"
            )
        if isinstance(c, In):
            listed = ", ".join(self._operand(x) for x in c.candidates)
            return f"{self._operand(c.operand)} IN ({listed})"
        if isinstance(c, BeginsWith):
            return f"begins_with({self.path(c.path)}, {self._operand(c.prefix)})"
        if isinstance(c, Contains):
            return f"contains({self.path(c.path)}, {self._operand(c.operand)})"
        if isinstance(c, Exists):
            return f"attribute_exists({self.path(c.path)})"
        if isinstance(c, NotExists):
            return f"attribute_not_exists({self.path(c.path)})"
        if isinstance(c, AttributeType):
            return f"attribute_type({self.path(c.path)}, {self.value({'S': c.type_name})})"
        raise ExpressionError(f"unknown condition {c!r}")

    def _nested(self, c: Condition) -> str:
        text = self._cond(c)
        return f"({text})" if isinstance(c, And | Or | Not) else text

    def _set_operand(self, o: object) -> str:
        if isinstance(o, Path | Value):
            return self._operand(o)
        if isinstance(o, IfNotExists):
            return f"if_not_exists({self.path(o.path)}, {self.value(o.default.av)})"
        if isinstance(o, ListAppend):
            return f"list_append({self._set_operand(o.first)}, {self._set_operand(o.second)})"
        if isinstance(o, Arithmetic):
            return f"{self._set_operand(o.left)} {o.op} {self._set_operand(o.right)}"
        raise ExpressionError(f"not a SET operand: {o!r}")

    def _action(self, a: UpdateAction) -> str:
        if isinstance(a, SetAction):
            return f"{self.path(a.path)} = {self._set_operand(a.value)}"
        if isinstance(a, RemoveAction):
            return self.path(a.path)
        if isinstance(a, AddAction | DeleteAction):
            return f"{self.path(a.path)} {self.value(a.value.av)}"
        raise ExpressionError(f"unknown update action {a!r}")


def _check_disjoint(paths: list[Path], verb: str) -> None:
    """Reject the same path twice and paths inside one another."""
    seen: dict[tuple[str | int, ...], Path] = {}
    for p in paths:
        if p.elements in seen:
            raise ExpressionError(f"{p.name} is {verb} twice; DynamoDB allows one action per path")
        seen[p.elements] = p
    for key, p in seen.items():
        for k in range(1, len(key)):
            outer = seen.get(key[:k])
            if outer is not None:
                raise ExpressionError(
                    f"{p.name} and {outer.name} overlap (one is inside the other); "
                    f"DynamoDB rejects overlapping paths {verb} in one request"
                )


def _checked(what: str, text: str) -> str:
    size = len(text.encode("utf-8"))
    if size > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"the {what} expression is {size} bytes; DynamoDB allows {MAX_EXPRESSION_LENGTH}"
        )
    return text


def _not_a_condition(value: object) -> str:
    if isinstance(value, Path):
        return f"{value!r} is a path, not a condition; compare it (== True) or use .exists()"
    return f"expected a Condition, got {type(value).__name__}"
