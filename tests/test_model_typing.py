"""User code declaring ``@entity`` classes type-checks under ``mypy --strict`` (PEP 681).

Two samples are written to a temporary directory and checked with ``mypy.api.run`` (one
run each, sharing a cache): the good one declares entities the way the README and docs
do, builds them by keyword and by position and reads typed attributes, and must report
nothing; the bad one marks each line mypy must reject with ``# E: <error code>`` and must
report exactly those. The good sample also runs, so the ``__init__`` the type checker
sees is the one attrs generates. No DynamoDB is needed.
"""

from __future__ import annotations

import inspect
import re
import runpy
import textwrap
from collections.abc import Iterator
from pathlib import Path

import mypy.api
import pytest

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
import datetime as dt
import enum
from decimal import Decimal
from typing import assert_type

import attr
import attrs

from dynamorm_async.model import GSI, EntityMeta, entity, field, meta_of


class Status(enum.Enum):
    OPEN = "open"
    PAID = "paid"


@attrs.define
class Address:
    city: str
    zip_code: str | None = None


@entity(table="orders", hash_key="customer", range_key="order_id",
        indexes=[GSI("by_status", hash_key="status", range_key="order_id")],
        version="version", ttl="expires_at", created_at="created_at")
class Order:
    customer: str
    order_id: str
    total: Decimal
    status: Status = Status.OPEN
    tags: set[str] = field(factory=set)
    notes: dict[str, str] = field(factory=dict, name="n")
    discount: Decimal = field(default=Decimal(0), name="d")
    code: str = field("c", default="")
    address: Address | None = None
    lines: list[int] = attrs.Factory(list)
    priority: int = attrs.field(default=0)
    legacy: int = attr.ib(default=0)
    card: str | None = field(default=None, encrypted=True)
    note: str = field(kw_only=True, default="")
    computed: str = field(init=False, default="-")
    expires_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    version: int = 0


@entity(table="payments", hash_key="pk", range_key="sk")
@attrs.define(slots=False)
class Payment:
    pk: str
    sk: str
    amount: Decimal
    customer_id: str = field(name="cust", default="")


order = Order("c#1", "o#1", Decimal("9.50"), tags={"gift"},
              expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
full = Order(customer="c#2", order_id="o#2", total=Decimal(1), status=Status.PAID,
             tags=set(), notes={"k": "v"}, discount=Decimal("0.5"), code="x",
             address=Address("Paris"), lines=[1, 2], priority=1, legacy=2,
             card="4111", note="n", expires_at=None, created_at=None, version=3)
pay = Payment(pk="a", sk="b", amount=Decimal(1))

assert_type(full.customer, str)
assert_type(full.total, Decimal)
assert_type(full.status, Status)
assert_type(full.tags, set[str])
assert_type(full.notes, dict[str, str])
assert_type(full.discount, Decimal)
assert_type(full.code, str)
assert_type(full.address, Address | None)
assert_type(full.lines, list[int])
assert_type(full.priority, int)
assert_type(full.legacy, int)
assert_type(full.card, str | None)
assert_type(full.computed, str)
assert_type(full.expires_at, dt.datetime | None)
assert_type(pay.amount, Decimal)
assert_type(pay.customer_id, str)
city: str | None = full.address.city if full.address is not None else None
versions: list[int] = [order.version, full.version]

meta: EntityMeta[Order] = meta_of(Order)
assert_type(meta_of(pay), EntityMeta[Payment])
item = meta.encode(full)
assert (item["n"], item["d"], item["c"]) == ({"M": {"k": {"S": "v"}}}, {"N": "0.5"}, {"S": "x"})
assert meta.decode(item) == full
assert (order.tags, order.lines, order.computed, order.note) == ({"gift"}, [], "-", "")
assert (city, versions, pay.customer_id) == ("Paris", [0, 3], "")
"""

BAD = """
from decimal import Decimal

from dynamorm_async.model import entity, field


@entity(table="orders", hash_key="customer", range_key="order_id")
class Order:
    customer: str
    order_id: str
    total: Decimal
    discount: Decimal = field(default="0")  # E: assignment
    tags: list[str] = field(default=[], factory=list)  # E: call-overload
    notes: dict[str, str] = field(factory=dict, name="n")
    note: str = field(kw_only=True, default="")
    computed: str = field(init=False, default="-")


@entity(table="things", hash_key="pk")
class Unordered:
    pk: str = ""
    required: int  # E: misc


Order(customer="c", order_id="o", total=Decimal(1), colour="red")  # E: call-arg
Order(customer=1, order_id="o", total=Decimal(1))  # E: arg-type
Order(customer="c", order_id="o")  # E: call-arg
Order("c", "o", "9.50")  # E: arg-type
Order("c", "o", Decimal(1), n={})  # E: call-arg
Order("c", "o", Decimal(1), computed="x")  # E: call-arg
Order("c", "o", Decimal(1), Decimal(0), [], {}, "positional")  # E: call-arg
order = Order("c", "o", Decimal(1))
count: int = order.customer  # E: assignment
order.colour  # E: attr-defined
"""

_LINE = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+): (?P<severity>error|note): (?P<message>.*?)"
    r"(?:  \[(?P<code>[a-z-]+)\])?$"
)
_EXPECT = re.compile(r"# E: ([a-z-]+)\s*$")


def _mypy(path: Path, cache_dir: Path) -> list[tuple[int, str, str]]:
    """``(line, code, message)`` of every error mypy --strict reports in ``path``."""
    stdout, stderr, status = mypy.api.run(
        [
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(cache_dir),
            "--no-color-output",
            "--show-error-codes",
            str(path),
        ]
    )
    assert status in (0, 1), f"mypy did not run (exit {status}):\n{stdout}\n{stderr}"
    errors = []
    for line in stdout.splitlines():
        m = _LINE.match(line)
        # Errors elsewhere (the package, under someone's edit) are not this test's concern.
        if m and m["severity"] == "error" and Path(m["file"]).resolve() == path.resolve():
            errors.append((int(m["line"]), m["code"] or "?", m["message"]))
    return errors


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The samples on disk, with MYPYPATH pointing at this checkout (an editable install's
    import hook is invisible to mypy)."""
    base = tmp_path_factory.mktemp("typing")
    paths = {}
    for name, text in (("good_sample", GOOD), ("bad_sample", BAD)):
        paths[name] = base / f"{name}.py"
        paths[name].write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    paths["cache"] = base / "mypy_cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MYPYPATH", str(ROOT))
        yield paths


def test_good_user_code_type_checks_strict(checked: dict[str, Path]) -> None:
    errors = _mypy(checked["good_sample"], checked["cache"])
    assert errors == [], "\n".join(f"line {n}: {msg} [{code}]" for n, code, msg in errors)


def test_good_user_code_runs_with_the_checked_signature(checked: dict[str, Path]) -> None:
    ns = runpy.run_path(str(checked["good_sample"]))
    params = inspect.signature(ns["Order"]).parameters
    assert params["note"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "computed" not in params and "n" not in params and "notes" in params
    assert list(params)[:3] == ["customer", "order_id", "total"]


def test_bad_user_code_is_reported_with_the_expected_codes(checked: dict[str, Path]) -> None:
    path = checked["bad_sample"]
    expected = {
        (n, m[1])
        for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if (m := _EXPECT.search(text))
    }
    assert len(expected) == 12
    errors = _mypy(path, checked["cache"])
    got = {(n, code) for n, code, _ in errors}
    detail = "\n".join(f"line {n}: {msg} [{code}]" for n, code, msg in errors)
    assert got == expected, (
        f"missing {sorted(expected - got)}, extra {sorted(got - expected)}\n{detail}"
    )
