"""Merchants and customers: who takes payments and who pays.

>>> accounts = proc.accounts                      # or Accounts(db)
>>> await accounts.add_merchant("m-1", "Corner Shop")
>>> await accounts.add_customer("c-1", "Ann", "4111111111111111", email="ann@example.com")
>>> await accounts.find_customer_by_email("Ann@Example.com")

Customers' card numbers (or tokens) and emails are encrypted fields: the database needs a
:class:`~dynamorm_async.crypto.FieldEncryptor` sealer (with a ``blind_index_key`` for the
email lookup). Merchant checks are cached for a few seconds per table (so per partner).
"""

from __future__ import annotations

import time
from collections import OrderedDict

from ..db import Database
from ..errors import InvalidInput
from ..model import meta_of
from ..repository import Repository
from .entities import Customer, Merchant
from .errors import MerchantUnavailable
from .requests import check_id

__all__ = ["Accounts"]

_MERCHANT_CACHE = 4096


class Accounts:
    """Merchant and customer records of ``db``; merchant lookups cached for
    ``merchant_cache_ttl`` seconds (0: no cache)."""

    def __init__(self, db: Database, *, merchant_cache_ttl: float = 5.0) -> None:
        self.db = db
        self.merchant_cache_ttl = merchant_cache_ttl
        self.merchants = db.repository(Merchant)
        self._merchant_cache: OrderedDict[tuple[str, ...], tuple[float, bool]] = OrderedDict()

    @property
    def customers(self) -> Repository[Customer]:
        """The customer repository (made on first use: it needs the database's sealer,
        which a processor that never touches customers can do without)."""
        return self.db.repository(Customer)

    async def add_merchant(self, merchant_id: str, name: str, *, active: bool = True) -> Merchant:
        """Register a merchant (``AlreadyExists`` if the id is taken)."""
        check_id(merchant_id, "merchant_id")
        return await self.merchants.create(Merchant(merchant_id, name, active=active))

    async def set_merchant_active(self, merchant_id: str, active: bool) -> Merchant:
        """Enable or disable a merchant (other processors see it within their cache TTL)."""
        merchant = await self.merchants.update(
            {"merchant_id": merchant_id}, meta_of(Merchant).path("active").set(active)
        )
        self._merchant_cache.pop(self._slot(merchant_id), None)
        return merchant

    async def add_customer(
        self, customer_id: str, name: str, card: str, *, email: str = ""
    ) -> Customer:
        """Register a customer with a card number (PAN, Luhn-checked) or a card token.

        The card and the email are stored encrypted; ``last4`` in clear.
        """
        check_id(customer_id, "customer_id")
        last4 = _card_last4(card)
        return await self.customers.create(
            Customer(customer_id, name, card, last4=last4, email=email.strip().lower())
        )

    async def find_customer_by_email(self, email: str) -> Customer | None:
        """The customer with this email, found through its blind index (no decryption
        of other customers' data)."""
        blind_index = getattr(self.db.sealer, "blind_index", None)
        if blind_index is None:
            raise InvalidInput("looking customers up by email needs a FieldEncryptor sealer")
        value = blind_index(Customer, "email", email.strip().lower())
        query = self.customers.query(
            meta_of(Customer).path("email_index") == value,
            index="by_email",
            projection=["customer_id"],
            limit=1,
        )
        hit = await query.first()
        if hit is None:
            return None
        return await self.customers.get(customer_id=hit["customer_id"])

    def _slot(self, merchant_id: str) -> tuple[str, ...]:
        """The cache key: where the merchant lives (endpoint, principal, table) and its id,
        so partners never see each other's entries."""
        client, table = self.merchants._bound()
        return (client.endpoint.url, client.credentials.identity, table, merchant_id)

    async def require_merchant(self, merchant_id: str) -> None:
        """Raise :class:`MerchantUnavailable` unless the merchant exists and is active."""
        slot = self._slot(merchant_id)
        now = time.monotonic()
        cached = self._merchant_cache.get(slot)
        if cached is not None and cached[0] > now:
            active = cached[1]
        else:
            merchant = await self.merchants.get(merchant_id=merchant_id)
            active = merchant is not None and merchant.active
            if self.merchant_cache_ttl > 0:
                self._merchant_cache[slot] = (now + self.merchant_cache_ttl, active)
                self._merchant_cache.move_to_end(slot)
                while len(self._merchant_cache) > _MERCHANT_CACHE:
                    self._merchant_cache.popitem(last=False)
        if not active:
            raise MerchantUnavailable(merchant_id)


def _card_last4(card: str) -> str:
    if not isinstance(card, str) or not 8 <= len(card) <= 64:
        raise InvalidInput("card must be a PAN (12-19 digits) or a token of 8-64 characters")
    if card.isdigit():
        if not 12 <= len(card) <= 19 or not _luhn(card):
            raise InvalidInput("card number fails the length or Luhn check")
        return card[-4:]
    check_id(card, "card token")
    return ""


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
