"""The tables of the payment processor: create (if missing) and delete them together.

>>> await ensure_payment_tables(db)                 # inside registry.use(...) for a partner
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..audit import AuditEntry
from ..binding import Target
from ..db import Database
from ..tables import TableReport, delete_table, ensure_table
from .entities import Customer, Merchant, Payment, Settlement, Transaction

__all__ = ["PAYMENT_ENTITIES", "delete_payment_tables", "ensure_payment_tables"]

#: Every entity whose table the processor uses (the audit trail's included).
PAYMENT_ENTITIES: tuple[type[Any], ...] = (
    Merchant,
    Customer,
    Payment,
    Transaction,
    Settlement,
    AuditEntry,
)


def _target(where: Database | Target) -> Target:
    return where.source if isinstance(where, Database) else where


async def ensure_payment_tables(where: Database | Target, *, prefix: str = "") -> list[TableReport]:
    """Create the missing tables (concurrently) of ``where`` (a database, client or
    binding; ``prefix`` applies to a bare client) and report on each."""
    target = _target(where)
    return list(
        await asyncio.gather(*(ensure_table(target, e, prefix=prefix) for e in PAYMENT_ENTITIES))
    )


async def delete_payment_tables(where: Database | Target, *, prefix: str = "") -> None:
    """Delete the processor's tables (those that exist)."""
    target = _target(where)
    await asyncio.gather(*(delete_table(target, e, prefix=prefix) for e in PAYMENT_ENTITIES))
