"""Where a repository's requests go: a client and a table prefix, fixed or per context.

A :class:`Binding` pairs a :class:`~dynamorm_async.client.DynamoClient` with a table
prefix. Repositories, batches, transactions and table management accept a client, a
``Binding``, or a :class:`BindingSource` whose ``binding()`` is called on every
operation; the partner registry is such a source, so one repository object serves
every partner, each in its own scope.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs

from .client import DynamoClient
from .errors import InvalidInput

__all__ = ["Binding", "BindingSource", "Target", "resolve_binding"]


@attrs.frozen
class Binding:
    """A client and the prefix put before every table name it touches."""

    client: DynamoClient
    table_prefix: str = ""

    def binding(self) -> Binding:
        """A binding is its own source."""
        return self


@runtime_checkable
class BindingSource(Protocol):
    """Anything that says, at call time, which binding applies (e.g. the current partner)."""

    def binding(self) -> Binding:
        """The binding for the current context (raise a clear error if there is none)."""
        ...


Target = DynamoClient | Binding | BindingSource


def resolve_binding(target: Target, table_prefix: str = "") -> BindingSource:
    """Normalise ``target`` into a source of bindings.

    A bare client becomes ``Binding(client, table_prefix)``; a ``table_prefix`` with
    anything else is an error (the binding already carries its prefix).
    """
    if isinstance(target, DynamoClient):
        return Binding(target, table_prefix)
    if table_prefix:
        raise InvalidInput("table_prefix applies to a bare client; a Binding carries its own")
    if isinstance(target, Binding | BindingSource):
        return target
    raise InvalidInput(
        f"expected a DynamoClient, a Binding or a BindingSource, got {type(target).__name__}"
    )
