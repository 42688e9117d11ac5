"""dynamorm-async: an async-first DynamoDB data-access toolkit.

Importing this package is cheap: it imports neither botocore nor aiobotocore (those
load lazily, only when the credential chain beyond the environment is needed).
"""

from __future__ import annotations

from . import errors
from .client import DynamoClient
from .deadlines import deadline
from .pool import ClientPool
from .wire.retry import RetryPolicy

__all__ = ["ClientPool", "DynamoClient", "RetryPolicy", "deadline", "errors"]
__version__ = "0.1.0"
