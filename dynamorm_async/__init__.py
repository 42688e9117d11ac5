"""dynamorm-async: an async-first DynamoDB data-access toolkit.

Importing this package is nearly free: the names below load on first use (module
``__getattr__``), so a Lambda handler pays only for what it touches. botocore and
aiobotocore are never imported here; they load only when the credential chain beyond
the environment is needed.

>>> from dynamorm_async import ClientPool, deadline
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import errors
    from .batch import BatchExecutor
    from .batch_report import BatchFailed, BatchReport
    from .binding import Binding
    from .client import DynamoClient
    from .db import Database
    from .deadlines import deadline
    from .model import GSI, LSI, entity, field, meta_of
    from .partners import Partner, PartnerRegistry
    from .pool import ClientPool
    from .repository import Repository
    from .transactions import Transaction
    from .wire.retry import RetryPolicy

__all__ = [
    "GSI",
    "LSI",
    "BatchExecutor",
    "BatchFailed",
    "BatchReport",
    "Binding",
    "ClientPool",
    "Database",
    "DynamoClient",
    "Partner",
    "PartnerRegistry",
    "Repository",
    "RetryPolicy",
    "Transaction",
    "deadline",
    "entity",
    "errors",
    "field",
    "meta_of",
]
__version__ = "0.1.0"

#: Lazily exported name -> (module, attribute or ``None`` for the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    "ClientPool": (".pool", "ClientPool"),
    "DynamoClient": (".client", "DynamoClient"),
    "RetryPolicy": (".wire.retry", "RetryPolicy"),
    "deadline": (".deadlines", "deadline"),
    "errors": (".errors", None),
    "BatchExecutor": (".batch", "BatchExecutor"),
    "BatchFailed": (".batch_report", "BatchFailed"),
    "BatchReport": (".batch_report", "BatchReport"),
    "Binding": (".binding", "Binding"),
    "Database": (".db", "Database"),
    "GSI": (".model", "GSI"),
    "LSI": (".model", "LSI"),
    "entity": (".model", "entity"),
    "field": (".model", "field"),
    "meta_of": (".model", "meta_of"),
    "Partner": (".partners", "Partner"),
    "PartnerRegistry": (".partners", "PartnerRegistry"),
    "Repository": (".repository", "Repository"),
    "Transaction": (".transactions", "Transaction"),
}


def __getattr__(name: str) -> Any:
    """Import an exported name on first access and cache it in the module."""
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
