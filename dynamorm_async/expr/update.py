"""Update actions: the pieces of an UpdateExpression.

Actions are built from paths (``Payment.status.set("paid")``,
``Payment.retries.increment()``, ``Payment.note.remove()``) and compiled together
by :meth:`~dynamorm_async.expr.compiler.ExpressionBuilder.update`, which groups them
by clause (``SET``, ``REMOVE``, ``ADD``, ``DELETE``) and rejects two actions on the
same or overlapping paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

from .operands import Value, encode_value

if TYPE_CHECKING:
    from .path import Path

__all__ = [
    "AddAction",
    "Arithmetic",
    "DeleteAction",
    "IfNotExists",
    "ListAppend",
    "RemoveAction",
    "SetAction",
    "SetOperand",
    "UpdateAction",
    "if_not_exists",
]


class IfNotExists:
    """``if_not_exists(path, default)``: the attribute's value, or ``default`` if absent."""

    __slots__ = ("default", "path")

    def __init__(self, path: Path, default: Value) -> None:
        self.path = path
        self.default = default

    def __repr__(self) -> str:
        return f"if_not_exists({self.path!r}, {self.default!r})"


class ListAppend:
    """``list_append(first, second)``: the concatenation of two lists."""

    __slots__ = ("first", "second")

    def __init__(self, first: SetOperand, second: SetOperand) -> None:
        self.first = first
        self.second = second

    def __repr__(self) -> str:
        return f"list_append({self.first!r}, {self.second!r})"


class Arithmetic:
    """``left + right`` or ``left - right`` on numbers."""

    __slots__ = ("left", "op", "right")

    def __init__(self, left: SetOperand, op: Literal["+", "-"], right: SetOperand) -> None:
        self.left = left
        self.op: Literal["+", "-"] = op
        self.right = right

    def __repr__(self) -> str:
        return f"({self.left!r} {self.op} {self.right!r})"


#: What the right-hand side of ``SET path = ...`` can be.
SetOperand: TypeAlias = "Value | Path | IfNotExists | ListAppend | Arithmetic"


class UpdateAction:
    """Base class of update actions; ``path`` is the attribute the action writes."""

    __slots__ = ("path",)

    #: The UpdateExpression clause the action belongs to.
    clause: ClassVar[str] = ""

    def __init__(self, path: Path) -> None:
        self.path = path


class SetAction(UpdateAction):
    """``SET path = value`` where ``value`` is a :data:`SetOperand`."""

    __slots__ = ("value",)
    clause = "SET"

    def __init__(self, path: Path, value: SetOperand) -> None:
        super().__init__(path)
        self.value = value

    def __repr__(self) -> str:
        return f"SET {self.path!r} = {self.value!r}"


class RemoveAction(UpdateAction):
    """``REMOVE path``: delete the attribute (or list element / map key)."""

    __slots__ = ()
    clause = "REMOVE"

    def __repr__(self) -> str:
        return f"REMOVE {self.path!r}"


class AddAction(UpdateAction):
    """``ADD path value``: add to a number, or add elements to a set."""

    __slots__ = ("value",)
    clause = "ADD"

    def __init__(self, path: Path, value: Value) -> None:
        super().__init__(path)
        self.value = value

    def __repr__(self) -> str:
        return f"ADD {self.path!r} {self.value!r}"


class DeleteAction(UpdateAction):
    """``DELETE path value``: remove elements from a set."""

    __slots__ = ("value",)
    clause = "DELETE"

    def __init__(self, path: Path, value: Value) -> None:
        super().__init__(path)
        self.value = value

    def __repr__(self) -> str:
        return f"DELETE {self.path!r} {self.value!r}"


def if_not_exists(path: Path, default: Any) -> IfNotExists:
    """``if_not_exists(path, default)`` for use in ``other.set(...)``.

    ``default`` is encoded with ``path``'s encoder (a :class:`Value` is used as is).
    """
    return IfNotExists(path, Value(encode_value(default, path.encoder, path.name)))
