"""Entities: ``@entity`` attrs classes, their compiled metadata and generated codecs.

>>> @entity(table="payments", hash_key="pk", range_key="sk")
... class Payment:
...     pk: str
...     sk: str
...     amount: Decimal
...     customer_id: str = field(name="cust")
>>> meta_of(Payment).encode(Payment("p#1", "v1", Decimal("9.50"), "c1"))
{'pk': {'S': 'p#1'}, 'sk': {'S': 'v1'}, 'amount': {'N': '9.50'}, 'cust': {'S': 'c1'}}

``Payment.amount`` is an expression :class:`~dynamorm_async.expr.path.Path`
(``Payment.amount > 100``); on instances, fields are plain attrs attributes.
"""

from __future__ import annotations

from .entity import GSI, LSI, META_ATTR, entity, meta_of
from .fields import FieldOptions, field
from .meta import EntityMeta, FieldMeta, Index, KeyAttr, KeyType, Projection

__all__ = [
    "GSI",
    "LSI",
    "META_ATTR",
    "EntityMeta",
    "FieldMeta",
    "FieldOptions",
    "Index",
    "KeyAttr",
    "KeyType",
    "Projection",
    "entity",
    "field",
    "meta_of",
]
