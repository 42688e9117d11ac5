"""Probe (not run by ``make bench``): typed page decoding with msgspec, for a proposal.

The ``query_page`` benchmark shows that no pure-Python decoder, not even check-free
hand-written code, reaches its target of 10x less CPU than aiobotocore: after
``orjson.loads`` has built wire dicts, turning 100 of them into entities costs about as
much again. msgspec can parse the page *straight into typed wrapper structs* (UUID,
Decimal and datetime converted in C, every value type-checked), which leaves only the
unwrapping to Python. This probe measures both ways on the same canned page and checks
that they build equal entities.

msgspec is not a dependency. To run the probe::

    python3 -m venv /tmp/msv
    /tmp/msv/bin/pip install msgspec orjson attrs cattrs tenacity
    PYTHONPATH=. /tmp/msv/bin/python benchmarks/probes/msgspec_page.py
"""

from __future__ import annotations

import gc
import sys
import timeit
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec  # type: ignore[import-not-found]
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import query_page


class S(msgspec.Struct):  # type: ignore[misc]
    S: str


class SUuid(msgspec.Struct):  # type: ignore[misc]
    S: uuid.UUID


class NDecimal(msgspec.Struct):  # type: ignore[misc]
    N: Decimal


class SDatetime(msgspec.Struct):  # type: ignore[misc]
    S: datetime


class NInt(msgspec.Struct):  # type: ignore[misc]
    N: str


class MStr(msgspec.Struct):  # type: ignore[misc]
    M: dict[str, S]


class WireItem(msgspec.Struct):  # type: ignore[misc]
    pk: S
    sk: S
    payment_id: SUuid
    merchant_id: S
    cust: S
    amount: NDecimal | None = None
    currency: S | None = None
    status: S | None = None
    created_at: SDatetime | None = None
    updated_at: SDatetime | None = None
    version: NInt | None = None
    metadata: MStr | None = None


class WirePage(msgspec.Struct):  # type: ignore[misc]
    Items: list[WireItem]
    Count: int
    ScannedCount: int
    LastEvaluatedKey: dict[str, dict[str, str]] | None = None


def main() -> None:
    """Time both ways, median of 9 runs of 200 pages each, GC enabled."""
    payment, decode = query_page.payment_entity()
    page = query_page.RESPONSE
    statuses = {m.value: m for m in payment.__annotations__["status"]}
    new = object.__new__
    typed = msgspec.json.Decoder(WirePage).decode

    def unwrap(w: Any) -> Any:
        o = new(payment)
        o.pk, o.sk, o.payment_id = w.pk.S, w.sk.S, w.payment_id.S
        o.merchant_id, o.customer_id, o.amount = w.merchant_id.S, w.cust.S, w.amount.N
        o.currency, o.status = w.currency.S, statuses[w.status.S]
        o.created_at, o.updated_at = w.created_at.S, w.updated_at.S
        o.version = int(w.version.N)
        o.metadata = {k: v.S for k, v in w.metadata.M.items()}
        return o

    ways: dict[str, Callable[[], object]] = {
        "orjson.loads only (the floor's share)": lambda: orjson.loads(page),
        "ours: orjson.loads + generated decoder": lambda: [
            decode(i) for i in orjson.loads(page)["Items"]
        ],
        "msgspec typed parse only": lambda: typed(page),
        "msgspec typed parse + unwrap": lambda: [unwrap(w) for w in typed(page).Items],
    }
    ours = ways["ours: orjson.loads + generated decoder"]
    assert ours() == ways["msgspec typed parse + unwrap"]()
    for name, fn in ways.items():
        t = timeit.Timer(fn, setup="gc.enable()", globals={"gc": gc})
        runs = sorted(t.repeat(number=200, repeat=9))
        print(f"{name:42s} {runs[4] / 200 * 1e6:7.0f} µs/page")


if __name__ == "__main__":
    main()
