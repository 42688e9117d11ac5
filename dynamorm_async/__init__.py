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
    from .client import DynamoClient
    from .deadlines import deadline
    from .pool import ClientPool
    from .wire.retry import RetryPolicy

__all__ = ["ClientPool", "DynamoClient", "RetryPolicy", "deadline", "errors"]
__version__ = "0.1.0"

#: Lazily exported name -> (module, attribute or ``None`` for the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    "ClientPool": (".pool", "ClientPool"),
    "DynamoClient": (".client", "DynamoClient"),
    "RetryPolicy": (".wire.retry", "RetryPolicy"),
    "deadline": (".deadlines", "deadline"),
    "errors": (".errors", None),
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
