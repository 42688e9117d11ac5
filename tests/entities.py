"""Entities shared by the repository tests."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from dynamorm_async.model import GSI, LSI, entity, field


class Status(enum.Enum):
    PENDING = "pending"
    PAID = "paid"
    REFUNDED = "refunded"


@entity(
    table="payments",
    hash_key="customer",
    range_key="payment_id",
    indexes=[
        GSI("by_status", hash_key="status", range_key="created_at"),
        GSI("by_merchant", hash_key="merchant", projection="KEYS_ONLY"),
        LSI("by_amount", range_key="amount", projection=("INCLUDE", ["status"])),
    ],
    ttl="expires_at",
    version="version",
    created_at="created_at",
    updated_at="updated_at",
)
class Payment:
    customer: str
    payment_id: str
    amount: Decimal
    merchant: str = field(name="mid", default="m-1")
    status: Status = Status.PENDING
    tags: set[str] = field(factory=set)
    meta: dict[str, Any] = field(factory=dict)
    expires_at: dt.datetime | None = field(default=None, epoch=True)
    version: int = 0
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
